//! A real S3 server for tests: moto's server (PyPI `moto[server]`) on a free
//! port of 127.0.0.1, stopped when dropped. Benchmarks may use s3s-fs
//! (crates.io), a Rust S3 server over a directory, instead.

use crate::free_port;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "testing-access-key";
pub const SECRET_KEY: &str = "testing-secret-key";
pub const REGION: &str = "us-east-1";

pub struct S3Server {
    child: Child,
    pub port: u16,
    /// For s3s-fs: the directory whose subdirectories are the buckets.
    root: Option<PathBuf>,
}

impl S3Server {
    /// Starts moto, or `None` (outside CI) when it is not installed.
    pub fn start() -> Option<S3Server> {
        let port = free_port()?;
        let child = match Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(_) => {
                return crate::missing_prerequisite("moto_server (pip install 'moto[server]')")
            }
        };
        let server = S3Server {
            child,
            port,
            root: None,
        };
        server.wait_listening();
        Some(server)
    }

    /// Starts s3s-fs from `binary`, serving buckets below `root`.
    pub fn start_s3s_fs(binary: &Path, root: &Path) -> S3Server {
        let port = free_port().expect("a free port");
        std::fs::create_dir_all(root).expect("s3s-fs root");
        let child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let server = S3Server {
            child,
            port,
            root: Some(root.to_path_buf()),
        };
        server.wait_listening();
        server
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the S3 server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Mount options that reach this server.
    pub fn options(&self) -> Vec<(String, String)> {
        vec![
            ("endpoint".to_string(), self.endpoint()),
            ("region".to_string(), REGION.to_string()),
            ("access_key_id".to_string(), ACCESS_KEY.to_string()),
            ("secret_access_key".to_string(), SECRET_KEY.to_string()),
        ]
    }

    /// Creates a bucket: a directory for s3s-fs; for moto a plain HTTP PUT
    /// (moto does not check signatures), so tests need no S3 SDK.
    pub fn create_bucket(&self, name: &str) {
        if let Some(root) = &self.root {
            std::fs::create_dir_all(root.join(name)).expect("bucket directory");
            return;
        }
        self.unsigned_put(&format!("/{name}"), b"");
    }

    /// Stores an object: a file for s3s-fs; for moto an unsigned HTTP PUT.
    pub fn put_object(&self, bucket: &str, key: &str, bytes: &[u8]) {
        if let Some(root) = &self.root {
            let path = root.join(bucket).join(key);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("object directory");
            std::fs::write(path, bytes).expect("object file");
            return;
        }
        self.unsigned_put(&format!("/{bucket}/{key}"), bytes);
    }

    fn unsigned_put(&self, path: &str, body: &[u8]) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let head = format!(
            "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(
            resp.starts_with("HTTP/1.1 200") || resp.starts_with("HTTP/1.0 200"),
            "PUT {path}: {resp}"
        );
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        crate::signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
