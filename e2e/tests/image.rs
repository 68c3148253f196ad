//! The container image that `scripts/build-image.sh` builds from
//! `images/Containerfile`: its config (entrypoint, user, labels, ports),
//! its contents (users, CA certificates, the three binaries, which run
//! there with the image's own libraries), and a master and a worker
//! started inside its root filesystem as PID 1 of their own PID
//! namespace, as the image's non-root user: they serve, and stop cleanly
//! on SIGTERM. Needs root, podman and debootstrap.

use alluxio_e2e::kubelet::image::{mount_rootfs, unmount_rootfs, LocalImage};
use alluxio_e2e::kubelet::runtime::{self, BindMount, Program, Sandbox};
use alluxio_e2e::project_image::project_image;
use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const IMAGE_USER: u32 = 65532;
const BINARIES: [&str; 3] = ["alluxio", "alluxio-operator", "alluxio-csi"];

#[test]
fn the_image_has_its_config_users_certificates_and_binaries() {
    let Some(image) = project_image() else {
        return;
    };
    let config = &image.config;
    assert_eq!(
        config.entrypoint.as_deref(),
        Some(&["/usr/local/bin/alluxio".to_string()][..])
    );
    assert_eq!(config.user.as_deref(), Some("65532:65532"));
    assert_eq!(config.working_dir.as_deref(), Some("/opt/alluxio"));
    let labels = config.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("org.opencontainers.image.version")
            .map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        labels
            .get("org.opencontainers.image.licenses")
            .map(String::as_str),
        Some("Apache-2.0")
    );
    assert!(
        labels.contains_key("org.opencontainers.image.source"),
        "{labels:?}"
    );
    let ports = config.exposed_ports.clone().unwrap_or_default();
    for port in [
        "19998/tcp",
        "19999/tcp",
        "29998/tcp",
        "29999/tcp",
        "30000/tcp",
    ] {
        assert!(ports.contains_key(port), "{port} not exposed: {ports:?}");
    }

    let dir = tempfile::tempdir().unwrap();
    let rootfs = mount_rootfs(&image, dir.path()).unwrap();
    let _unmount = Unmount(dir.path().to_path_buf());
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("alluxio:x:65532:65532:")),
        "{passwd}"
    );
    assert!(passwd.lines().any(|l| l.starts_with("root:x:0:0:")));
    let certificates =
        std::fs::read_to_string(rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert!(certificates.matches("BEGIN CERTIFICATE").count() > 50);
    let home = std::fs::metadata(rootfs.join("opt/alluxio")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&home), IMAGE_USER);
    for bin in BINARIES {
        let meta = std::fs::metadata(rootfs.join("usr/local/bin").join(bin)).unwrap();
        assert!(
            meta.permissions().mode() & 0o111 != 0,
            "{bin} is not executable"
        );
        // Run inside the image (its libc, its loader) as its user.
        let out = Command::new("/usr/sbin/chroot")
            .args(["--userspec=65532:65532"])
            .arg(&rootfs)
            .args([bin, "--version"])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{bin}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("{bin} {}", env!("CARGO_PKG_VERSION"))
        );
    }
}

/// Unmounts a container's root filesystem when the test ends, passed or not.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        unmount_rootfs(&self.0);
    }
}

/// A pod of one container of the image, run by the kubelet's runtime.
struct ImageContainer {
    child: Option<tokio::process::Child>,
    log: std::path::PathBuf,
    _rootfs: Unmount,
}

impl ImageContainer {
    fn start(
        image: &LocalImage,
        dir: &Path,
        name: &str,
        args: &[String],
        mounts: &[BindMount],
    ) -> ImageContainer {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": []},
        }))
        .unwrap();
        let container = Container {
            name: name.into(),
            args: Some(args.to_vec()),
            env: Some(vec![EnvVar {
                name: "ALLUXIO_SECURITY_KEY_FILE".into(),
                value: Some("/opt/alluxio/security/cluster.key".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let hosts = dir.join(format!("{name}.hosts"));
        std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
        let logs = dir.join(format!("{name}-logs"));
        std::fs::create_dir_all(&logs).unwrap();
        let container_dir = dir.join(format!("{name}-container"));
        let sandbox = Sandbox {
            pod: &pod,
            ip: "127.0.0.1",
            node: "node-0",
            hosts_file: &hosts,
            mounts,
            log_dir: &logs,
            service_env: &[],
        };
        let program = Program::Image {
            image,
            dir: &container_dir,
        };
        let child = runtime::start_container(&container, program, &sandbox).unwrap();
        ImageContainer {
            child: Some(child),
            log: logs.join(format!("{name}.log")),
            _rootfs: Unmount(container_dir),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The entrypoint's PID in the container's PID namespace.
    fn pid_inside(&self) -> Option<String> {
        let monitor = self.child.as_ref()?.id()?;
        let children =
            std::fs::read_to_string(format!("/proc/{monitor}/task/{monitor}/children")).ok()?;
        let entrypoint = children.split_whitespace().next()?;
        let status = std::fs::read_to_string(format!("/proc/{entrypoint}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
        line.split_whitespace().last().map(str::to_string)
    }

    /// SIGTERM to the container, as the kubelet stops it; the exit code.
    async fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        runtime::signal_group(&child, libc::SIGTERM);
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("stopped within 30 s of SIGTERM")
            .unwrap();
        status.code()
    }
}

fn port() -> String {
    alluxio_testkit::free_port().unwrap().to_string()
}

async fn until<T>(what: &str, check: impl Fn() -> Option<T>) -> T {
    alluxio_testkit::eventually(what, Duration::from_secs(60), || {
        let found = check();
        async move { found }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_and_a_worker_run_in_the_image_as_pid_1_and_stop_on_sigterm() {
    let Some(image) = project_image() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The cluster key is shared the way the operator shares it: a volume.
    let security = dir.path().join("security");
    std::fs::create_dir_all(&security).unwrap();
    std::os::unix::fs::chown(&security, Some(IMAGE_USER), Some(IMAGE_USER)).unwrap();
    let key_mount = BindMount {
        source: security.clone(),
        target: "/opt/alluxio/security".into(),
        read_only: false,
        bidirectional: false,
    };
    let (rpc, web) = (port(), port());
    let master_args: Vec<String> = [
        "master",
        "--hostname",
        "127.0.0.1",
        "--port",
        &rpc,
        "--web-port",
        &web,
        "--journal-dir",
        "/opt/alluxio/journal",
        "--root-ufs",
        "file:///opt/alluxio/underfs",
    ]
    .map(String::from)
    .to_vec();
    let mut master = ImageContainer::start(
        &image,
        dir.path(),
        "master",
        &master_args,
        std::slice::from_ref(&key_mount),
    );
    let key_file = security.join("cluster.key");
    until("the master's key", || key_file.exists().then_some(())).await;
    let master_address = format!("127.0.0.1:{rpc}");
    let (worker_rpc, worker_web, worker_data) = (port(), port(), port());
    let worker_args: Vec<String> = [
        "worker",
        "--hostname",
        "127.0.0.1",
        "--master",
        &master_address,
        "--port",
        &worker_rpc,
        "--web-port",
        &worker_web,
        "--data-port",
        &worker_data,
        "--data-dir",
        "/opt/alluxio/worker",
        "--tier",
        "MEM:/opt/alluxio/worker/mem:64MiB",
    ]
    .map(String::from)
    .to_vec();
    let mut worker = ImageContainer::start(
        &image,
        dir.path(),
        "worker",
        &worker_args,
        std::slice::from_ref(&key_mount),
    );

    // Both serve: the worker registers with the master, which reports it.
    let report = || {
        let out = Command::new(alluxio_testkit::binaries::built_binary("alluxio"))
            .args(["fsadmin", "report", "--master", &master_address])
            .env("ALLUXIO_SECURITY_KEY_FILE", &key_file)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.contains("Live Workers: 1").then_some(text)
    };
    let found =
        alluxio_testkit::eventually("the worker registered", Duration::from_secs(60), || {
            let found = report();
            async move { found }
        })
        .await;
    assert!(
        found.contains("Live Workers: 1"),
        "{found}\nmaster:\n{}\nworker:\n{}",
        master.log(),
        worker.log()
    );
    let (status, _) = alluxio_testkit::http_get::http_get(&format!("127.0.0.1:{web}"), "/healthz")
        .await
        .unwrap();
    assert_eq!(status, 200);

    // PID 1 of their namespaces, as the image's user.
    assert_eq!(
        master.pid_inside().as_deref(),
        Some("1"),
        "{}",
        master.log()
    );
    assert_eq!(
        worker.pid_inside().as_deref(),
        Some("1"),
        "{}",
        worker.log()
    );
    let journal_owner = std::fs::metadata(
        dir.path()
            .join("master-container/rootfs/opt/alluxio/journal"),
    )
    .unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&journal_owner),
        IMAGE_USER
    );

    // SIGTERM: both drain and exit 0 (PID 1 gets no default signal
    // handling from the kernel, so this shows they handle it).
    assert_eq!(worker.terminate().await, Some(0), "{}", worker.log());
    assert_eq!(master.terminate().await, Some(0), "{}", master.log());
}
