//! A real Prometheus server (Debian's `prometheus` package) on 127.0.0.1,
//! scraping given targets every second, and its query API.

use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Prometheus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Prometheus {
    /// Starts Prometheus scraping `jobs` (name, `host:port` targets);
    /// `None` (skip) or a panic under CI when it is not installed.
    pub fn start(jobs: &[(&str, Vec<String>)]) -> Option<Prometheus> {
        if Command::new("prometheus")
            .arg("--version")
            .output()
            .is_err()
        {
            return crate::missing_prerequisite("prometheus (Debian package)");
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config =
            String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
        for (job, targets) in jobs {
            let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
                list.join(", ")
            ));
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write the Prometheus config");
        let port = crate::free_port().expect("a free port");
        let address = format!("127.0.0.1:{port}");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts");
        Some(Prometheus {
            child,
            address,
            _dir: dir,
        })
    }

    /// The result vector of an instant query (empty until it answers).
    pub async fn query(&self, query: &str) -> Vec<Value> {
        let path = format!("/api/v1/query?query={}", percent_encode(query));
        let Ok((200, body)) = crate::http_get::http_get(&self.address, &path).await else {
            return Vec::new();
        };
        serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["data"]["result"].as_array().cloned())
            .unwrap_or_default()
    }

    /// Waits until `query` returns at least `n` series.
    pub async fn wait_for_series(&self, query: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let result = self.query(query).await;
            if result.len() >= n {
                return result;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus never had {n} series for {query}: {result:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
