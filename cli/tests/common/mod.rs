//! Runs the real `alluxio` binary: a master as a child process on free
//! ports, and CLI commands against it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_alluxio");

pub fn free_port() -> u16 {
    alluxio_testkit::free_port().expect("a free port")
}

/// `alluxio local` on `data_dir` with its master on `master_port` and
/// every other port free, on 127.0.0.1 (not started).
pub fn local_command(data_dir: &Path, master_port: u16, extra: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["-D", &format!("master.rpc_port={master_port}")])
        .args(["-D", &format!("master.web_port={}", free_port())])
        .args(["-D", &format!("worker.rpc_port={}", free_port())])
        .args(["-D", &format!("worker.web_port={}", free_port())])
        .args(["-D", &format!("worker.data_port={}", free_port())])
        .args([
            "-D",
            "master.hostname=127.0.0.1",
            "-D",
            "worker.hostname=127.0.0.1",
        ])
        .arg("local")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--cache", "16MiB"])
        .args(extra);
    command
}

/// Runs `alluxio <args>` against the local cluster on `port` whose data
/// directory is `data`; returns stdout, or stderr when it failed.
pub fn cli(data: &Path, port: u16, args: &[&str]) -> Result<String, String> {
    let out = Command::new(BIN)
        .env(
            "ALLUXIO_SECURITY_KEY_FILE",
            data.join("security/cluster.key"),
        )
        .args(["--master", &format!("127.0.0.1:{port}")])
        .args(args)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8(out.stderr).unwrap())
    }
}

pub struct MasterProcess {
    pub child: Child,
    pub rpc_port: u16,
    pub web_port: u16,
    pub journal: PathBuf,
    pub ufs: PathBuf,
    pub extra: Vec<String>,
    pub log: PathBuf,
    /// The cluster key the master creates; every process of the test
    /// finds it through `ALLUXIO_SECURITY_KEY_FILE`.
    pub key_file: PathBuf,
}

impl MasterProcess {
    /// Starts a master with its journal and root UFS under `dir`.
    pub fn start(dir: &Path, extra: &[&str]) -> MasterProcess {
        Self::start_member(dir, "", free_port(), extra)
    }

    /// Starts master `name` of several sharing `dir`'s root UFS and cluster
    /// key, with its own journal (`journal<name>`) and log, on `rpc_port`.
    pub fn start_member(dir: &Path, name: &str, rpc_port: u16, extra: &[&str]) -> MasterProcess {
        let mut m = MasterProcess {
            child: Command::new("true").spawn().unwrap(),
            rpc_port,
            web_port: free_port(),
            journal: dir.join(format!("journal{name}")),
            ufs: dir.join("ufs"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            log: dir.join(format!("master{name}.log")),
            key_file: dir.join("security/cluster.key"),
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        self.child = self
            .command()
            .arg("master")
            .args(["--hostname", "127.0.0.1"])
            .args(["--port", &self.rpc_port.to_string()])
            .args(["--web-port", &self.web_port.to_string()])
            .arg("--journal-dir")
            .arg(&self.journal)
            .args(["--root-ufs", &format!("file://{}", self.ufs.display())])
            // Tests mount temporary directories wherever they are.
            .args(["-D", "master.allowed_local_ufs_roots=[/]"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.wait_ready();
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.rpc_port)
    }

    /// The `alluxio` binary with this cluster's key in its environment.
    pub fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env("ALLUXIO_SECURITY_KEY_FILE", &self.key_file);
        c
    }

    /// A client of this master as the test's user.
    pub async fn client(&self) -> alluxio_client::MasterClient {
        alluxio_client::MasterClient::connect(
            &self.address(),
            Duration::from_secs(10),
            self.credentials(),
        )
        .await
        .unwrap()
    }

    /// Credentials minted from the cluster key for the test's user.
    pub fn credentials(&self) -> alluxio_common::auth::Credentials {
        let key = alluxio_common::auth::ClusterKey::load(&self.key_file).unwrap();
        let me = alluxio_common::users::current_user();
        alluxio_common::auth::Credentials::from_key(
            key,
            &me.name,
            &[me.group],
            alluxio_common::auth::Role::User,
            Duration::from_secs(3600),
        )
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "master exited with {status}:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.web_port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", self.rpc_port)).is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "master did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill9(&mut self) {
        alluxio_testkit::signal(self.child.id(), libc::SIGKILL);
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        alluxio_testkit::signal(self.child.id(), libc::SIGTERM);
        self.child.wait().unwrap()
    }

    pub fn restart(&mut self) {
        self.spawn();
    }

    /// Runs `alluxio <args>` against this master.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command()
            .args(["--master", &self.address()])
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "alluxio {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "alluxio {args:?} should fail with status 1"
        );
        String::from_utf8(out.stderr).unwrap()
    }
}

impl Drop for MasterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
