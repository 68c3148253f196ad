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

use super::image::LocalImage;
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
    /// `mountPropagation: Bidirectional`: mounts the container makes
    /// below it appear on the host (the CSI node plugin's FUSE mounts).
    pub bidirectional: bool,
}

/// What a container needs besides its spec.
pub struct Sandbox<'a> {
    pub pod: &'a Pod,
    pub ip: &'a str,
    pub node: &'a str,
    pub hosts_file: &'a Path,
    pub mounts: &'a [BindMount],
    pub log_dir: &'a Path,
    /// Variables the kubelet adds to every container before the spec's
    /// (`KUBERNETES_SERVICE_HOST`/`_PORT`).
    pub service_env: &'a [(String, String)],
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

/// What a container runs.
#[derive(Clone, Copy)]
pub enum Program<'a> {
    /// A binary of the host, in the host's filesystem (see the module doc).
    HostBinary(&'a Path),
    /// The image's own entrypoint inside its root filesystem, made in
    /// `dir` (the container's directory of the pod).
    Image {
        image: &'a LocalImage,
        dir: &'a Path,
    },
}

/// The container's environment, in order: `base` (the image's, or a
/// default `PATH`), `HOSTNAME`, then the spec's.
pub fn container_env(
    c: &Container,
    sb: &Sandbox<'_>,
    base: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, String> {
    let mut env = base;
    env.extend(sb.service_env.iter().cloned());
    env.push((
        "HOSTNAME".to_string(),
        sb.pod
            .spec
            .as_ref()
            .and_then(|s| s.hostname.clone())
            .unwrap_or_else(|| sb.pod.metadata.name.clone().unwrap_or_default()),
    ));
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
        env.retain(|(k, _)| *k != var.name);
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
    Tmpfs {
        dir: CString,
        options: CString,
    },
    Mkdir(CString),
    /// Creates an empty file to bind a file (a device node) over.
    Touch(CString),
    Bind {
        source: CString,
        target: CString,
    },
    ReadOnly(CString),
    /// The last step in an image: fork, so that the entrypoint is PID 1 of
    /// the new PID namespace; there mount `/proc`, enter the root
    /// filesystem and become the container's user.
    BecomePid1(Box<Pid1>),
}

struct Pid1 {
    proc_dir: CString,
    rootfs: CString,
    working_dir: CString,
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
}

/// The pod's volumes, `/etc/hosts` and, in an image, `/dev`, `/sys`: as
/// mounts over `root` (`/` for a host binary, the rootfs for an image).
fn mount_plan(sb: &Sandbox<'_>, root: Option<&Path>) -> Result<Vec<MountOp>, String> {
    let hostname = sb
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .or_else(|| sb.pod.metadata.name.clone())
        .unwrap_or_default();
    let mut ops = vec![MountOp::Hostname(cstring(&hostname)?)];
    // A Bidirectional volume must stay a peer of the host's mount, so the
    // namespace keeps the host's propagation (as containerd makes the
    // root "rshared" for such a container); the host's own mounts are
    // private, and only the kubelet's shared directories propagate.
    if !sb.mounts.iter().any(|m| m.bidirectional) {
        ops.push(MountOp::Private);
    }
    match root {
        None => ops.push(MountOp::Tmpfs {
            dir: cstring(CONTAINER_OWN_DIR)?,
            options: cstring("mode=755")?,
        }),
        Some(rootfs) => device_and_system_mounts(rootfs, &mut ops)?,
    }
    for m in sb.mounts {
        let target = Path::new(&m.target);
        if !target.is_absolute() {
            return Err(format!("mountPath {} is not absolute", m.target));
        }
        let host_target = match root {
            Some(rootfs) => {
                // In an image the runtime creates the mount point.
                let inside = super::image::path_in_rootfs(rootfs, &m.target)?;
                create_mount_point(&m.source, &inside)?;
                inside
            }
            None if target.starts_with(CONTAINER_OWN_DIR) => {
                // Inside the container's own /opt: create the path there.
                let mut dir = PathBuf::from(CONTAINER_OWN_DIR);
                for part in target.strip_prefix(CONTAINER_OWN_DIR).unwrap_or(target) {
                    dir.push(part);
                    ops.push(MountOp::Mkdir(cstring(&dir)?));
                }
                target.to_path_buf()
            }
            None if !target.exists() => {
                return Err(format!(
                    "mountPath {} does not exist; the simulated container only has its own {CONTAINER_OWN_DIR}",
                    m.target
                ))
            }
            None => target.to_path_buf(),
        };
        ops.push(MountOp::Bind {
            source: cstring(&m.source)?,
            target: cstring(&host_target)?,
        });
        if m.read_only {
            ops.push(MountOp::ReadOnly(cstring(&host_target)?));
        }
    }
    let hosts = match root {
        Some(rootfs) => {
            let hosts = super::image::path_in_rootfs(rootfs, "/etc/hosts")?;
            create_mount_point(sb.hosts_file, &hosts)?;
            hosts
        }
        None => PathBuf::from("/etc/hosts"),
    };
    ops.push(MountOp::Bind {
        source: cstring(sb.hosts_file)?,
        target: cstring(&hosts)?,
    });
    Ok(ops)
}

/// The device nodes a container runtime gives every container, a
/// `/dev/shm`, and the host's `/sys` read-only.
fn device_and_system_mounts(rootfs: &Path, ops: &mut Vec<MountOp>) -> Result<(), String> {
    for dir in ["dev", "sys", "proc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(dir)).map_err(|e| e.to_string())?;
    }
    let dev = rootfs.join("dev");
    ops.push(MountOp::Tmpfs {
        dir: cstring(&dev)?,
        options: cstring("mode=755")?,
    });
    for node in ["null", "zero", "full", "random", "urandom", "tty", "fuse"] {
        let host = Path::new("/dev").join(node);
        if !host.exists() {
            continue;
        }
        ops.push(MountOp::Touch(cstring(dev.join(node))?));
        ops.push(MountOp::Bind {
            source: cstring(&host)?,
            target: cstring(dev.join(node))?,
        });
    }
    ops.push(MountOp::Mkdir(cstring(dev.join("shm"))?));
    ops.push(MountOp::Tmpfs {
        dir: cstring(dev.join("shm"))?,
        options: cstring("mode=1777")?,
    });
    ops.push(MountOp::Bind {
        source: cstring("/sys")?,
        target: cstring(rootfs.join("sys"))?,
    });
    ops.push(MountOp::ReadOnly(cstring(rootfs.join("sys"))?));
    Ok(())
}

/// A directory, or an empty file when `source` is a file, at `target`.
fn create_mount_point(source: &Path, target: &Path) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("mount point {}: {e}", target.display());
    if source.is_dir() {
        std::fs::create_dir_all(target).map_err(fail)
    } else {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(fail)?;
        }
        if !target.exists() {
            std::fs::write(target, b"").map_err(fail)?;
        }
        Ok(())
    }
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
    let pid_namespace = ops.iter().any(|op| matches!(op, MountOp::BecomePid1(_)));
    let flags =
        libc::CLONE_NEWNS | libc::CLONE_NEWUTS | if pid_namespace { libc::CLONE_NEWPID } else { 0 };
    // SAFETY: every pointer passed is a NUL-terminated string built before
    // the fork (or null where the call allows it).
    unsafe {
        check(libc::unshare(flags))?;
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
                MountOp::Tmpfs { dir, options } => check(libc::mount(
                    c"tmpfs".as_ptr(),
                    dir.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID,
                    options.as_ptr().cast(),
                ))?,
                MountOp::Mkdir(dir) => {
                    if libc::mkdir(dir.as_ptr(), 0o755) != 0
                        && std::io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST)
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                MountOp::Touch(file) => {
                    let fd = libc::open(file.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o666);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(fd);
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
                MountOp::BecomePid1(pid1) => become_pid1(pid1)?,
            }
        }
    }
    Ok(())
}

/// Forks into the new PID namespace. The child (PID 1 there) enters the
/// image and returns, to exec the entrypoint; this process stays outside
/// as the container's monitor (as conmon does): it ignores the signals the
/// kubelet sends the process group (PID 1 gets them itself) and exits
/// with PID 1's status.
///
/// # Safety
/// Between fork and exec: only system calls on memory prepared before.
unsafe fn become_pid1(pid1: &Pid1) -> std::io::Result<()> {
    // SAFETY: see the function's; every pointer is prepared before the fork.
    unsafe {
        let check = |rc: libc::c_int| {
            if rc == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        };
        let pid = libc::fork();
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if pid == 0 {
            check(libc::mount(
                c"proc".as_ptr(),
                pid1.proc_dir.as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            ))?;
            check(libc::chroot(pid1.rootfs.as_ptr()))?;
            check(libc::chdir(pid1.working_dir.as_ptr()))?;
            check(libc::setgroups(pid1.groups.len(), pid1.groups.as_ptr()))?;
            check(libc::setgid(pid1.gid))?;
            check(libc::setuid(pid1.uid))?;
            // After the user change, which clears it: PID 1 dies with its
            // monitor (a kubelet that drops the container kills the monitor).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            return Ok(());
        }
        // The monitor keeps no descriptor but stdio: the one std's spawn
        // watches for the exec must close when PID 1 execs.
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
            libc::signal(signal, libc::SIG_IGN);
        }
        let mut status = 0;
        while libc::waitpid(pid, &mut status, 0) < 0 {
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                libc::_exit(127);
            }
        }
        if libc::WIFEXITED(status) {
            libc::_exit(libc::WEXITSTATUS(status));
        }
        libc::_exit(128 + libc::WTERMSIG(status))
    }
}

/// The user, group and supplementary groups of a container in an image:
/// the security contexts' `runAsUser`/`runAsGroup` (container over pod)
/// over the image's `USER`; `supplementalGroups` and `fsGroup` added.
/// `runAsNonRoot` refuses uid 0, as the real kubelet does.
fn container_user(
    c: &Container,
    sb: &Sandbox<'_>,
    rootfs: &Path,
    image: &LocalImage,
) -> Result<(u32, u32, Vec<u32>), String> {
    let pod = sb
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref());
    let own = c.security_context.as_ref();
    let image_user = image
        .config
        .user
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "0".into());
    let (image_uid, image_gid) = super::image::resolve_user(rootfs, &image_user)?;
    let uid = own
        .and_then(|s| s.run_as_user)
        .or_else(|| pod.and_then(|s| s.run_as_user))
        .map(|u| u as u32)
        .unwrap_or(image_uid);
    let gid = own
        .and_then(|s| s.run_as_group)
        .or_else(|| pod.and_then(|s| s.run_as_group))
        .map(|g| g as u32)
        .or(image_gid)
        .unwrap_or(0);
    let non_root = own
        .and_then(|s| s.run_as_non_root)
        .or_else(|| pod.and_then(|s| s.run_as_non_root))
        .unwrap_or(false);
    if non_root && uid == 0 {
        return Err("container has runAsNonRoot and image will run as root".into());
    }
    let mut groups: Vec<u32> = pod
        .and_then(|s| s.supplemental_groups.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|g| g as u32)
        .collect();
    groups.extend(pod.and_then(|s| s.fs_group).map(|g| g as u32));
    groups.push(gid);
    groups.sort_unstable();
    groups.dedup();
    Ok((uid, gid, groups))
}

/// The argv of a container in an image, Kubernetes' way: `command`
/// replaces the entrypoint and drops the image's CMD; `args` alone
/// replace CMD.
fn image_argv(c: &Container, image: &LocalImage) -> Vec<String> {
    let config = &image.config;
    let mut argv = match &c.command {
        Some(command) => command.clone(),
        None => config.entrypoint.clone().unwrap_or_default(),
    };
    match (&c.command, &c.args) {
        (_, Some(args)) => argv.extend(args.iter().cloned()),
        (None, None) => argv.extend(config.cmd.iter().flatten().cloned()),
        (Some(_), None) => {}
    }
    argv
}

/// Starts one container's process.
pub fn start_container(
    c: &Container,
    program: Program<'_>,
    sb: &Sandbox<'_>,
) -> Result<tokio::process::Child, String> {
    let (env, program, args, ops) = match program {
        Program::HostBinary(binary) => {
            let base = vec![(
                "PATH".to_string(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            )];
            let env = container_env(c, sb, base)?;
            let mut argv: Vec<String> = c.command.clone().unwrap_or_default();
            argv.extend(c.args.clone().unwrap_or_default());
            let argv: Vec<String> = argv.iter().map(|a| expand(a, &env)).collect();
            // The "image" holds one program: a command naming a program
            // runs that binary, unless it is an absolute path of the host.
            let (program, args) = match c.command.as_ref().and_then(|cmd| cmd.first()) {
                Some(first) if Path::new(first).is_absolute() => {
                    (PathBuf::from(first), argv[1..].to_vec())
                }
                Some(_) => (binary.to_path_buf(), argv[1..].to_vec()),
                None => (binary.to_path_buf(), argv),
            };
            (env, program, args, mount_plan(sb, None)?)
        }
        Program::Image { image, dir } => {
            let rootfs = super::image::mount_rootfs(image, dir)?;
            let env = container_env(c, sb, image.env())?;
            let argv: Vec<String> = image_argv(c, image)
                .iter()
                .map(|a| expand(a, &env))
                .collect();
            let Some(first) = argv.first() else {
                return Err(format!(
                    "image {} has no entrypoint and the container no command",
                    image.name
                ));
            };
            let path = env
                .iter()
                .rev()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| v.as_str())
                .unwrap_or("/usr/bin:/bin");
            let program = PathBuf::from(super::image::resolve_program(&rootfs, first, path)?);
            let (uid, gid, groups) = container_user(c, sb, &rootfs, image)?;
            let working_dir = c
                .working_dir
                .clone()
                .or_else(|| image.config.working_dir.clone())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "/".into());
            let working_dir_on_host = super::image::path_in_rootfs(&rootfs, &working_dir)?;
            std::fs::create_dir_all(working_dir_on_host).map_err(|e| e.to_string())?;
            let mut ops = mount_plan(sb, Some(&rootfs))?;
            let read_only_root = c
                .security_context
                .as_ref()
                .and_then(|s| s.read_only_root_filesystem)
                .unwrap_or(false);
            if read_only_root {
                ops.push(MountOp::ReadOnly(cstring(&rootfs)?));
            }
            ops.push(MountOp::BecomePid1(Box::new(Pid1 {
                proc_dir: cstring(rootfs.join("proc"))?,
                rootfs: cstring(&rootfs)?,
                working_dir: cstring(&working_dir)?,
                uid,
                gid,
                groups,
            })));
            (env, program, argv[1..].to_vec(), ops)
        }
    };
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
