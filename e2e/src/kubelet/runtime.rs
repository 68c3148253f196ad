//! A pod's containers as local processes, the way a container runtime
//! would run them, minus the image: the container's entrypoint is a local
//! binary chosen by image name. Each process gets
//!
//! - its own UTS namespace with the pod's host name, and its own mount
//!   namespace, with a private, empty `/opt` (standing in
//!   for the image's own directories; the pods' paths are under it),
//!   every volumeMount bind-mounted at its mountPath (read-only when
//!   asked), and the pod's `/etc/hosts` (see `dns`);
//! - the env of its spec (`value`, `$(VAR)` references, and the
//!   downward-API fields `metadata.name`, `metadata.namespace`,
//!   `spec.nodeName`, `status.podIP`, `status.hostIP`), with `$(VAR)`
//!   expanded in its command and args;
//! - its own process group, so stopping it stops its children too.
//!
//! What is not simulated: images and their filesystems (the host's is
//! shared, except `/opt`), network namespaces (each pod has its own
//! 127.x.y.z address on the host's loopback instead), resource limits.

use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the container sees the image's private directory.
pub const CONTAINER_OWN_DIR: &str = "/opt";

/// One volume as the container sees it.
#[derive(Clone, Debug)]
pub struct BindMount {
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
}

/// What a container needs besides its spec.
pub struct Sandbox<'a> {
    pub pod: &'a Pod,
    pub ip: &'a str,
    pub node: &'a str,
    pub hosts_file: &'a Path,
    pub mounts: &'a [BindMount],
    pub log_dir: &'a Path,
}

/// `$(NAME)` replaced by `env`'s value; unknown references are kept, as
/// Kubernetes does.
pub fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find(')') {
            Some(end) => {
                let name = &after[..end];
                match env.iter().rev().find(|(k, _)| k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => out.push_str(&rest[start..start + 3 + end]),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The container's environment, in order.
pub fn container_env(c: &Container, sb: &Sandbox<'_>) -> Result<Vec<(String, String)>, String> {
    let mut env = vec![
        (
            "PATH".to_string(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        ),
        (
            "HOSTNAME".to_string(),
            sb.pod
                .spec
                .as_ref()
                .and_then(|s| s.hostname.clone())
                .unwrap_or_else(|| sb.pod.metadata.name.clone().unwrap_or_default()),
        ),
    ];
    for var in c.env.iter().flatten() {
        let value = if let Some(v) = &var.value {
            expand(v, &env)
        } else if let Some(field) = var.value_from.as_ref().and_then(|f| f.field_ref.as_ref()) {
            match field.field_path.as_str() {
                "metadata.name" => sb.pod.metadata.name.clone().unwrap_or_default(),
                "metadata.namespace" => sb.pod.metadata.namespace.clone().unwrap_or_default(),
                "spec.nodeName" => sb.node.to_string(),
                "status.podIP" => sb.ip.to_string(),
                "status.hostIP" => "127.0.0.1".to_string(),
                other => {
                    return Err(format!(
                        "env {}: fieldRef {other} is not simulated",
                        var.name
                    ))
                }
            }
        } else if var.value_from.is_some() {
            return Err(format!(
                "env {}: only value and fieldRef are simulated",
                var.name
            ));
        } else {
            String::new()
        };
        env.push((var.name.clone(), value));
    }
    Ok(env)
}

fn cstring(p: impl AsRef<std::ffi::OsStr>) -> Result<CString, String> {
    CString::new(p.as_ref().as_bytes()).map_err(|_| "a path with a NUL byte".to_string())
}

/// The mount operations, prepared before fork (no allocation after it).
enum MountOp {
    Hostname(CString),
    Private,
    Tmpfs(CString),
    Mkdir(CString),
    Bind { source: CString, target: CString },
    ReadOnly(CString),
}

fn mount_plan(sb: &Sandbox<'_>) -> Result<Vec<MountOp>, String> {
    let hostname = sb
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .or_else(|| sb.pod.metadata.name.clone())
        .unwrap_or_default();
    let mut ops = vec![
        MountOp::Hostname(cstring(&hostname)?),
        MountOp::Private,
        MountOp::Tmpfs(cstring(CONTAINER_OWN_DIR)?),
    ];
    for m in sb.mounts {
        let target = Path::new(&m.target);
        if !target.is_absolute() {
            return Err(format!("mountPath {} is not absolute", m.target));
        }
        if target.starts_with(CONTAINER_OWN_DIR) {
            // Inside the container's own /opt: create the path there.
            let mut dir = PathBuf::from(CONTAINER_OWN_DIR);
            for part in target.strip_prefix(CONTAINER_OWN_DIR).unwrap_or(target) {
                dir.push(part);
                ops.push(MountOp::Mkdir(cstring(&dir)?));
            }
        } else if !target.exists() {
            return Err(format!(
                "mountPath {} does not exist; the simulated container only has its own {CONTAINER_OWN_DIR}",
                m.target
            ));
        }
        ops.push(MountOp::Bind {
            source: cstring(&m.source)?,
            target: cstring(target)?,
        });
        if m.read_only {
            ops.push(MountOp::ReadOnly(cstring(target)?));
        }
    }
    ops.push(MountOp::Bind {
        source: cstring(sb.hosts_file)?,
        target: cstring("/etc/hosts")?,
    });
    Ok(ops)
}

/// Runs in the child between fork and exec: only system calls.
fn enter_container(ops: &[MountOp]) -> std::io::Result<()> {
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    let null = std::ptr::null::<libc::c_char>();
    // SAFETY: every pointer passed is a NUL-terminated string built before
    // the fork (or null where the call allows it).
    unsafe {
        check(libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWUTS))?;
        for op in ops {
            match op {
                MountOp::Hostname(name) => {
                    check(libc::sethostname(name.as_ptr(), name.as_bytes().len()))?
                }
                MountOp::Private => check(libc::mount(
                    null,
                    c"/".as_ptr(),
                    null,
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ))?,
                MountOp::Tmpfs(dir) => check(libc::mount(
                    c"tmpfs".as_ptr(),
                    dir.as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    c"mode=755".as_ptr().cast(),
                ))?,
                MountOp::Mkdir(dir) => {
                    if libc::mkdir(dir.as_ptr(), 0o755) != 0
                        && std::io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST)
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                MountOp::Bind { source, target } => check(libc::mount(
                    source.as_ptr(),
                    target.as_ptr(),
                    null,
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ))?,
                MountOp::ReadOnly(target) => check(libc::mount(
                    null,
                    target.as_ptr(),
                    null,
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                    std::ptr::null(),
                ))?,
            }
        }
    }
    Ok(())
}

/// Starts one container's process. `binary` is the image's entrypoint.
pub fn start_container(
    c: &Container,
    binary: &Path,
    sb: &Sandbox<'_>,
) -> Result<tokio::process::Child, String> {
    let env = container_env(c, sb)?;
    let mut argv: Vec<String> = c.command.clone().unwrap_or_default();
    argv.extend(c.args.clone().unwrap_or_default());
    let argv: Vec<String> = argv.iter().map(|a| expand(a, &env)).collect();
    // The image holds one program: a command naming a program runs the
    // image's binary, unless it is an absolute path of the host.
    let (program, args) = match c.command.as_ref().and_then(|cmd| cmd.first()) {
        Some(first) if Path::new(first).is_absolute() => (PathBuf::from(first), &argv[1..]),
        Some(_) => (binary.to_path_buf(), &argv[1..]),
        None => (binary.to_path_buf(), &argv[..]),
    };
    let ops = mount_plan(sb)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(sb.log_dir.join(format!("{}.log", c.name)))
        .map_err(|e| format!("cannot open the container log: {e}"))?;
    let log2 = log
        .try_clone()
        .map_err(|e| format!("cannot open the container log: {e}"))?;
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(args)
        .env_clear()
        .envs(env)
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: `enter_container` only makes system calls on memory
    // prepared before the fork (no allocation, no locks), as code between
    // fork and exec must.
    unsafe {
        cmd.pre_exec(move || enter_container(&ops));
    }
    cmd.spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))
}

/// Sends `signal` to the container's process group.
pub fn signal_group(child: &tokio::process::Child, signal: libc::c_int) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        unsafe { libc::kill(-(pid as i32), signal) };
    }
}

/// Stops a container: SIGTERM to its process group, SIGKILL after
/// `grace`.
pub async fn stop_container(mut child: tokio::process::Child, grace: Duration) {
    signal_group(&child, libc::SIGTERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        signal_group(&child, libc::SIGKILL);
        let _ = child.wait().await;
    }
}

/// The outcome of one probe.
pub async fn probe(p: &Probe, c: &Container, ip: &str) -> bool {
    let port_of = |port: &IntOrString| match port {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|cp| cp.name.as_deref() == Some(name))
            .map(|cp| cp.container_port),
    };
    let timeout = Duration::from_secs(p.timeout_seconds.unwrap_or(1).max(1) as u64);
    let attempt = async {
        if let Some(get) = &p.http_get {
            let Some(port) = port_of(&get.port) else {
                return false;
            };
            let path = get.path.as_deref().unwrap_or("/");
            matches!(
                alluxio_testkit::http_get::http_get(&format!("{ip}:{port}"), path).await,
                Ok((200..=399, _))
            )
        } else if let Some(tcp) = &p.tcp_socket {
            let Some(port) = port_of(&tcp.port) else {
                return false;
            };
            tokio::net::TcpStream::connect(format!("{ip}:{port}"))
                .await
                .is_ok()
        } else {
            // exec and gRPC probes are not simulated: never pass.
            false
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(false)
}

/// When a probe is next due, from its period.
pub fn next_probe(p: &Probe, now: Instant) -> Instant {
    now + Duration::from_secs(p.period_seconds.unwrap_or(10).max(1) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_expand_and_unknown_ones_stay() {
        let env = vec![("POD_IP".to_string(), "127.9.0.2".to_string())];
        assert_eq!(
            expand("--hostname=$(POD_IP):$(PORT)", &env),
            "--hostname=127.9.0.2:$(PORT)"
        );
        assert_eq!(expand("$(POD_IP", &env), "$(POD_IP");
    }
}
