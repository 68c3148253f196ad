//! Test support shared by every crate's tests and the benchmarks: real
//! external systems started on 127.0.0.1 by the test itself (`s3`,
//! `prometheus`), an in-process alluxio-rs cluster on free ports
//! (`cluster`, behind the `cluster` feature so that crates below the
//! master and the worker do not compile them), process helpers, and a
//! mutation fuzzer for parsers (`fuzz`).
//!
//! Prerequisites that are missing make a test skip locally, but fail it
//! when `CI` is set, so CI never passes by skipping. The simulated
//! Kubernetes lives apart, in `alluxio-e2e`.

pub mod binaries;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod durability;
pub mod fuzz;
pub mod http_get;
pub mod linearizability;
pub mod netns;
pub mod prometheus;
#[cfg(feature = "cluster")]
pub mod quorum;
pub mod s3;
pub mod small_disk;
pub mod tls;

/// A child process that gets SIGTERM, and is waited for, when this goes
/// out of scope: a failing test or benchmark leaves nothing running.
pub struct TerminateOnDrop(pub std::process::Child);

impl Drop for TerminateOnDrop {
    fn drop(&mut self) {
        signal(self.0.id(), libc::SIGTERM);
        let _ = self.0.wait();
    }
}

/// Sends `signal` to the process `pid` (a child of the test); a process
/// that is already gone is not an error.
pub fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe { libc::kill(pid as libc::pid_t, signal) };
}

/// Whether the test runs as root (FUSE mounts and namespaces need it).
/// The number in environment variable `name`, else `default`: how the
/// long runs of the model tests ask for more steps and seeds
/// (`scripts/fuzz.sh`).
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

pub fn running_as_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// A port on 127.0.0.1 that nothing listens on right now, for a server a
/// test starts (often in a child process) on a port it must know first.
///
/// The port comes from below the kernel's ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`): a port the kernel handed out
/// for `bind(0)` is handed out again to the next outgoing connection of any
/// process, which then holds it when the server binds (a CI failure: "cannot
/// listen ... Address already in use"). Ports are taken in turn from a
/// random start, so parallel tests of one binary never get the same one.
pub fn free_port() -> Option<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    let end = ephemeral_range_start().max(FIRST + 1_000);
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let _ = NEXT.compare_exchange(
        0,
        rand::random_range(FIRST..end),
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..(end - FIRST) {
        let candidate = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = FIRST + (candidate - FIRST) % (end - FIRST);
        if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return Some(port as u16);
        }
    }
    None
}

/// The first port the kernel uses for outgoing connections and `bind(0)`.
fn ephemeral_range_start() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
        .min(u16::MAX as u32)
}

/// A new temporary directory in memory: under /dev/shm when that is a
/// tmpfs, the usual temporary directory otherwise.
pub fn memory_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    // SAFETY: statfs writes only into `fs`; the path is NUL-terminated.
    let on_tmpfs = unsafe {
        let mut fs: libc::statfs = std::mem::zeroed();
        libc::statfs(c"/dev/shm".as_ptr(), &mut fs) == 0 && fs.f_type == libc::TMPFS_MAGIC
    };
    if on_tmpfs {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
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
