//! Support for end-to-end tests: an in-process cluster on free ports
//! (`cluster`), and real external systems started on 127.0.0.1 by the test
//! itself (`s3`).
//!
//! Prerequisites that are missing make a test skip locally, but fail it
//! when `CI` is set, so CI never passes by skipping.

pub mod apiserver;
pub mod binaries;
pub mod cluster;
pub mod csi_client;
pub mod http_get;
pub mod kube_tools;
pub mod kubelet;
pub mod prometheus;
pub mod provisioner;
pub mod s3;

/// A child process that gets SIGTERM, and is waited for, when this goes
/// out of scope: a failing test or benchmark leaves nothing running.
pub struct TerminateOnDrop(pub std::process::Child);

impl Drop for TerminateOnDrop {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// Reports a missing prerequisite: panics under CI, returns `None` otherwise.
pub fn missing_prerequisite<T>(what: &str) -> Option<T> {
    if std::env::var_os("CI").is_some() {
        panic!("prerequisite missing in CI: {what} (scripts/test.sh installs it)");
    }
    eprintln!("SKIPPED: {what} is not available here; run scripts/test.sh to install it");
    None
}

/// Polls `check` every 100 ms until it returns `Some`, for up to
/// `timeout`; panics naming `what` after that.
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    timeout: std::time::Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
