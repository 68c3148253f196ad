//! A process kubelet: runs the pods of a simulated cluster as local
//! processes, talking to the (test) API server over HTTP like a real
//! kubelet. It plays three parts:
//!
//! - the StatefulSet and DaemonSet controllers of kube-controller-manager
//!   (`workloads`): pods and claims from the workloads, rolling
//!   replacement on template changes, workload status;
//! - the kubelet of each of N simulated nodes: starts each pod bound to
//!   one of its nodes (`runtime`: volumes, env, mount namespace, process
//!   group), restarts exited containers with backoff, runs readiness and
//!   liveness probes, reports pod status, and stops the processes of
//!   pods that are deleted;
//! - cluster DNS (`dns`), through each pod's `/etc/hosts`;
//! - images (`image`): containers of local podman images run inside them,
//!   and the host side of volumes (`volumes`).
//!
//! Volumes are directories under the kubelet's root: emptyDir (also
//! `medium: Memory`) per pod, hostPath per simulated node, one directory
//! per PersistentVolumeClaim (claims are bound at once), and ConfigMap
//! and Secret contents written as files when the pod starts. Needs root
//! (mount namespaces).

pub mod csi;
pub mod dns;
pub mod image;
pub mod runtime;
pub mod volumes;
pub mod workloads;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::ResourceExt;
use runtime::{BindMount, Program, Sandbox};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};
use tokio::process::Child;
use volumes::{
    apply_fs_group, share_kubelet_dirs, unmount_all_rootfs, unshare_kubelet_dirs, write_files,
    SERVICE_ACCOUNT_DIR,
};

/// How often the kubelet looks at the API server.
const SYNC_EVERY: Duration = Duration::from_millis(250);
/// Restart backoff after a container exits: doubles up to the maximum
/// (the real kubelet's maximum is 5 minutes; tests want it short).
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(500);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(10);

/// A simulated node.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl Node {
    pub fn new(name: &str, labels: &[(&str, &str)]) -> Node {
        let mut all: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.insert("kubernetes.io/hostname".into(), name.into());
        Node {
            name: name.into(),
            labels: all,
        }
    }
}

pub struct KubeletConfig {
    pub nodes: Vec<Node>,
    /// Image name (without tag) -> a local binary of the host that stands
    /// in for the image (its containers share the host's filesystem).
    pub images: Vec<(String, PathBuf)>,
    /// Images of the local podman store: their containers run inside the
    /// image's root filesystem. Looked up before `images`.
    pub local_images: Vec<image::LocalImage>,
    /// Volumes, logs and hosts files go here.
    pub root: PathBuf,
    /// The CSI node plugin for claims bound to its driver's volumes.
    pub csi: Option<csi::CsiPlugin>,
    /// The API server as pods reach it: with it, every pod gets a
    /// service-account volume and `KUBERNETES_SERVICE_*`, so that clients
    /// in pods use their in-cluster configuration.
    pub in_cluster: Option<crate::apiserver::InClusterEndpoint>,
}

struct RunningContainer {
    spec: Container,
    /// Exited and, by the pod's restartPolicy, not to be started again.
    finished: bool,
    child: Option<Child>,
    /// Ever started (the pod leaves Pending).
    started_once: bool,
    restarts: i32,
    started_at: String,
    ready: bool,
    liveness_failures: i32,
    last_exit: Option<i32>,
    waiting: Option<(String, String)>,
    next_start: Instant,
    next_readiness: Instant,
    next_liveness: Instant,
}

struct RunningPod {
    pod: Pod,
    node: String,
    ip: String,
    dir: PathBuf,
    /// Root filesystems of the pod's containers in images (outside the
    /// kubelet's shared directories, see `SHARED_DIRS`).
    containers_dir: PathBuf,
    hosts_file: PathBuf,
    hosts: String,
    volumes: HashMap<String, PathBuf>,
    /// CSI volumes published for this pod.
    published: Vec<csi::PublishedVolume>,
    /// The pod's service-account volume, and the variables that go with it.
    service_account: Option<PathBuf>,
    service_env: Vec<(String, String)>,
    containers: Vec<RunningContainer>,
    start_time: String,
    last_status: Value,
}

/// A running process kubelet; [`ProcessKubelet::stop`] stops its pods.
pub struct ProcessKubelet {
    root: PathBuf,
    /// Whether `SHARED_DIRS` are shared bind mounts to undo.
    shared: bool,
    stop_tx: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A second octet for pod IPs (127.B.node.n), different for each kubelet
/// of this process and, very likely, from other test processes'.
fn ip_block() -> u8 {
    static NEXT: AtomicU8 = AtomicU8::new(0);
    let offset = NEXT.fetch_add(1, Ordering::Relaxed);
    100u8
        .wrapping_add((std::process::id() % 100) as u8)
        .wrapping_add(offset.wrapping_mul(7))
        % 150
        + 100
}

impl ProcessKubelet {
    pub fn start(client: kube::Client, mut config: KubeletConfig) -> ProcessKubelet {
        // Containers start in "/", so entrypoints must be absolute.
        for (_, binary) in &mut config.images {
            if let Ok(absolute) = std::fs::canonicalize(&*binary) {
                *binary = absolute;
            }
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let root = config.root.clone();
        let shared = !config.local_images.is_empty();
        if shared {
            if let Err(e) = share_kubelet_dirs(&root) {
                panic!("process kubelet: {e}");
            }
        }
        let mut kubelet = Kubelet {
            client,
            block: ip_block(),
            next_host: HashMap::new(),
            pods: HashMap::new(),
            config,
        };
        let task = tokio::spawn(async move { kubelet.run(stop_rx).await });
        ProcessKubelet {
            root,
            shared,
            stop_tx,
            task: Some(task),
        }
    }

    /// Stops every pod's processes (SIGTERM, then SIGKILL after their
    /// grace period) and the kubelet.
    pub async fn stop(mut self) {
        let _ = self.stop_tx.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        unmount_all_rootfs(&self.root);
        if std::mem::take(&mut self.shared) {
            unshare_kubelet_dirs(&self.root);
        }
    }

    /// A container's log so far (for test failure messages).
    pub fn log(&self, namespace: &str, pod: &str, container: &str) -> String {
        self.logs_of(namespace, &format!("{pod}_"), container)
    }

    /// The logs of a container of every pod whose name starts with
    /// `pod_prefix` (a Deployment's pods, whose names end in hashes).
    pub fn logs_of(&self, namespace: &str, pod_prefix: &str, container: &str) -> String {
        let prefix = format!("{namespace}_{pod_prefix}");
        let Ok(entries) = std::fs::read_dir(self.root.join("pods")) else {
            return String::new();
        };
        let mut out = String::new();
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let path = e.path().join("logs").join(format!("{container}.log"));
                out.push_str(&std::fs::read_to_string(path).unwrap_or_default());
            }
        }
        out
    }
}

impl Drop for ProcessKubelet {
    fn drop(&mut self) {
        // Aborting drops the children, which kills them (kill_on_drop).
        if let Some(task) = self.task.take() {
            task.abort();
        }
        unmount_all_rootfs(&self.root);
        if self.shared {
            unshare_kubelet_dirs(&self.root);
        }
    }
}

struct Kubelet {
    client: kube::Client,
    config: KubeletConfig,
    block: u8,
    next_host: HashMap<String, u8>,
    pods: HashMap<String, RunningPod>,
}

impl Kubelet {
    async fn run(&mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.sync().await {
                eprintln!("process kubelet: {e}");
            }
            tokio::select! {
                _ = tokio::time::sleep(SYNC_EVERY) => {}
                _ = stop.changed() => break,
            }
        }
        let all: Vec<String> = self.pods.keys().cloned().collect();
        let mut stops = Vec::new();
        for uid in all {
            if let Some(p) = self.pods.remove(&uid) {
                let teardown = self.csi_teardown(&p);
                stops.push(stop_pod(p, teardown));
            }
        }
        futures::future::join_all(stops).await;
    }

    /// Secret volumes of running pods follow their Secret (a key
    /// rotation, say), as the kubelet's periodic sync makes them.
    async fn refresh_secret_volumes(&self) {
        let mut secrets: HashMap<(String, String), Option<Secret>> = HashMap::new();
        for p in self.pods.values() {
            let namespace = p.pod.namespace().unwrap_or_default();
            let volumes = p.pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
            for v in volumes.into_iter().flatten() {
                let (Some(source), Some(dir)) = (&v.secret, p.volumes.get(&v.name)) else {
                    continue;
                };
                let name = source.secret_name.clone().unwrap_or_default();
                let key = (namespace.clone(), name.clone());
                if !secrets.contains_key(&key) {
                    let api: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
                    let found = api.get_opt(&name).await.ok().flatten();
                    secrets.insert(key.clone(), found);
                }
                let Some(Some(secret)) = secrets.get(&key) else {
                    continue;
                };
                let files = secret
                    .data
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0));
                if let Err(e) = volumes::refresh_files(dir, files) {
                    eprintln!("process kubelet: secret volume {}: {e}", v.name);
                }
            }
        }
    }

    /// Unpublishes the CSI volumes of `p` (a pod just removed from
    /// `self.pods`), unstaging those no remaining pod uses.
    fn csi_teardown(
        &self,
        p: &RunningPod,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let plugin = self.config.csi.clone();
        let work: Vec<(csi::PublishedVolume, bool)> = p
            .published
            .iter()
            .map(|v| {
                let still_used = self
                    .pods
                    .values()
                    .any(|o| o.published.iter().any(|w| w.volume_id == v.volume_id));
                (v.clone(), !still_used)
            })
            .collect();
        async move {
            let Some(plugin) = plugin else {
                return;
            };
            for (v, last) in work {
                csi::unpublish(&plugin, &v, last).await;
            }
        }
    }

    async fn sync(&mut self) -> Result<(), kube::Error> {
        workloads::sync_workloads(&self.client, &self.config.nodes).await?;
        let node_names: Vec<&str> = self.config.nodes.iter().map(|n| n.name.as_str()).collect();
        let pods: Vec<Pod> = Api::<Pod>::all(self.client.clone())
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|p| {
                p.spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .is_some_and(|n| node_names.contains(&n))
            })
            .collect();
        let services = Api::<Service>::all(self.client.clone())
            .list(&ListParams::default())
            .await?
            .items;

        // Pods that are gone or being deleted: stop their processes.
        let live: Vec<String> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| p.uid())
            .collect();
        let gone: Vec<String> = self
            .pods
            .keys()
            .filter(|uid| !live.contains(uid))
            .cloned()
            .collect();
        for uid in gone {
            if let Some(p) = self.pods.remove(&uid) {
                let teardown = self.csi_teardown(&p);
                tokio::spawn(stop_pod(p, teardown));
            }
        }
        // New pods: set up their sandbox.
        for pod in pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
        {
            let uid = pod.uid().unwrap_or_default();
            if !self.pods.contains_key(&uid) {
                match self.create_sandbox(pod).await {
                    Ok(p) => {
                        self.pods.insert(uid, p);
                    }
                    Err(e) => eprintln!("process kubelet: pod {}: {e}", pod.name_any()),
                }
            }
        }
        // DNS, containers, probes, status.
        let ips: HashMap<String, String> = self
            .pods
            .iter()
            .map(|(uid, p)| (uid.clone(), p.ip.clone()))
            .collect();
        self.refresh_secret_volumes().await;
        for p in self.pods.values_mut() {
            if let Some(fresh) = pods.iter().find(|f| f.uid() == p.pod.uid()) {
                p.pod = fresh.clone();
            }
            let hosts = dns::hosts_file(&p.pod, &p.ip, &pods, &ips, &services);
            if hosts != p.hosts {
                // In place: the file is bind-mounted by inode.
                if std::fs::write(&p.hosts_file, &hosts).is_ok() {
                    p.hosts = hosts;
                }
            }
            run_containers(p, &self.config.images, &self.config.local_images).await;
            let status = pod_status(p);
            if status != p.last_status {
                let api: Api<Pod> =
                    Api::namespaced(self.client.clone(), &p.pod.namespace().unwrap_or_default());
                match api
                    .patch_status(
                        &p.pod.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&status),
                    )
                    .await
                {
                    Ok(_) => p.last_status = status,
                    Err(e) => eprintln!("process kubelet: status of {}: {e}", p.pod.name_any()),
                }
            }
        }
        Ok(())
    }

    /// A hostPath that is the node's own and so the host's: the kubelet's
    /// directory (where CSI plugins mount), and device files such as
    /// `/dev/fuse`. Other hostPaths are per simulated node.
    fn real_host_path(&self, path: &str) -> Option<PathBuf> {
        let path = Path::new(path);
        (path.starts_with(&self.config.root) || path.starts_with("/dev/"))
            .then(|| path.to_path_buf())
    }

    /// The pod's IP, directories, volumes and containers (not started).
    async fn create_sandbox(&mut self, pod: &Pod) -> Result<RunningPod, String> {
        let spec = pod.spec.clone().unwrap_or_default();
        let node = spec.node_name.clone().unwrap_or_default();
        let node_index = self
            .config
            .nodes
            .iter()
            .position(|n| n.name == node)
            .unwrap_or(0);
        let namespace = pod.namespace().unwrap_or_default();
        let uid = pod.uid().unwrap_or_default();
        let pod_dir_name = format!("{namespace}_{}_{uid}", pod.name_any());
        let dir = self.config.root.join("pods").join(&pod_dir_name);
        let containers_dir = self.config.root.join("containers").join(&pod_dir_name);
        std::fs::create_dir_all(dir.join("logs")).map_err(|e| e.to_string())?;
        let mut volumes = HashMap::new();
        let mut published_volumes = Vec::new();
        let fs_group = spec
            .security_context
            .as_ref()
            .and_then(|s| s.fs_group)
            .map(|g| g as u32);
        for v in spec.volumes.iter().flatten() {
            let path = if v.empty_dir.is_some() {
                dir.join("volumes").join(&v.name)
            } else if let Some(h) = &v.host_path {
                if let Some(real) = self.real_host_path(&h.path) {
                    if real.starts_with(&self.config.root) {
                        // DirectoryOrCreate, as the chart asks.
                        std::fs::create_dir_all(&real)
                            .map_err(|e| format!("volume {}: {e}", v.name))?;
                    }
                    volumes.insert(v.name.clone(), real);
                    continue;
                }
                let relative = h.path.trim_start_matches('/');
                self.config
                    .root
                    .join("nodes")
                    .join(&node)
                    .join("hostpath")
                    .join(relative)
            } else if let Some(claim) = &v.persistent_volume_claim {
                let mut csi_path = None;
                if let Some(plugin) = &self.config.csi {
                    let published = csi::publish_claim(
                        &self.client,
                        plugin,
                        &self.config.root,
                        &dir,
                        &namespace,
                        &claim.claim_name,
                        claim.read_only.unwrap_or(false),
                    )
                    .await?;
                    if let Some(p) = published {
                        csi_path = Some(p.target.clone());
                        published_volumes.push(p);
                    }
                }
                if let Some(target) = csi_path {
                    volumes.insert(v.name.clone(), target);
                    continue;
                }
                self.config
                    .root
                    .join("claims")
                    .join(&namespace)
                    .join(&claim.claim_name)
            } else if let Some(cm) = &v.config_map {
                let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &namespace);
                let found = api.get_opt(&cm.name).await.map_err(|e| e.to_string())?;
                let data = found
                    .ok_or_else(|| format!("ConfigMap {} not found", cm.name))?
                    .data
                    .unwrap_or_default();
                let files = data.into_iter().map(|(k, v)| (k, v.into_bytes()));
                let mode = cm.default_mode.unwrap_or(0o644) as u32;
                write_files(&dir.join("volumes").join(&v.name), files, mode)?
            } else if let Some(s) = &v.secret {
                let name = s.secret_name.clone().unwrap_or_default();
                let api: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
                let found = api.get_opt(&name).await.map_err(|e| e.to_string())?;
                let data = found
                    .ok_or_else(|| format!("Secret {name} not found"))?
                    .data
                    .unwrap_or_default();
                let files = data.into_iter().map(|(k, v)| (k, v.0));
                let mode = s.default_mode.unwrap_or(0o644) as u32;
                write_files(&dir.join("volumes").join(&v.name), files, mode)?
            } else {
                return Err(format!("volume {}: this kind is not simulated", v.name));
            };
            std::fs::create_dir_all(&path).map_err(|e| format!("volume {}: {e}", v.name))?;
            if v.empty_dir.is_some() {
                // The kubelet makes an emptyDir 0777, so any user of the pod
                // may write it.
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))
                    .map_err(|e| format!("volume {}: {e}", v.name))?;
            }
            // fsGroup, as the kubelet applies it to the volume kinds that
            // support ownership management (not hostPath).
            if let Some(gid) = fs_group.filter(|_| v.host_path.is_none()) {
                let read_only = v.config_map.is_some() || v.secret.is_some();
                apply_fs_group(&path, gid, read_only)
                    .map_err(|e| format!("volume {}: fsGroup: {e}", v.name))?;
            }
            volumes.insert(v.name.clone(), path);
        }
        let (service_account, service_env) = match &self.config.in_cluster {
            Some(api) if spec.automount_service_account_token != Some(false) => {
                let account = spec
                    .service_account_name
                    .clone()
                    .unwrap_or_else(|| "default".into());
                let files = [
                    (
                        "token",
                        format!("system:serviceaccount:{namespace}:{account}"),
                    ),
                    ("ca.crt", api.ca_pem.clone()),
                    ("namespace", namespace.clone()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.into_bytes()));
                let path = write_files(&dir.join("volumes/kube-api-access"), files, 0o644)?;
                let env = vec![
                    ("KUBERNETES_SERVICE_HOST".to_string(), api.host.clone()),
                    ("KUBERNETES_SERVICE_PORT".to_string(), api.port.to_string()),
                ];
                (Some(path), env)
            }
            _ => (None, Vec::new()),
        };
        let host = self.next_host.entry(node.clone()).or_insert(1);
        *host = host.wrapping_add(1).max(2);
        let ip = format!("127.{}.{}.{}", self.block, node_index + 1, host);
        let hosts_file = dir.join("hosts");
        std::fs::write(&hosts_file, "").map_err(|e| e.to_string())?;
        let now = Instant::now();
        let containers = spec
            .containers
            .iter()
            .map(|c| RunningContainer {
                spec: c.clone(),
                finished: false,
                child: None,
                started_once: false,
                restarts: 0,
                started_at: String::new(),
                ready: false,
                liveness_failures: 0,
                last_exit: None,
                waiting: Some(("ContainerCreating".into(), String::new())),
                next_start: now,
                next_readiness: now,
                next_liveness: now,
            })
            .collect();
        Ok(RunningPod {
            pod: pod.clone(),
            node,
            ip,
            dir,
            containers_dir,
            hosts_file,
            hosts: String::new(),
            volumes,
            published: published_volumes,
            service_account,
            service_env,
            containers,
            start_time: now_rfc3339(),
            last_status: Value::Null,
        })
    }
}

fn restart_delay(restarts: i32) -> Duration {
    FIRST_RESTART_DELAY
        .saturating_mul(1 << restarts.clamp(0, 16))
        .min(MAX_RESTART_DELAY)
}

fn binary_for<'a>(images: &'a [(String, PathBuf)], image: &str) -> Option<&'a PathBuf> {
    let name = image
        .split('@')
        .next()
        .map(|i| match i.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => repo,
            _ => i,
        })
        .unwrap_or(image);
    images.iter().find(|(n, _)| n == name).map(|(_, b)| b)
}

/// Starts, restarts (as the pod's restartPolicy says) and probes the
/// pod's containers.
async fn run_containers(
    p: &mut RunningPod,
    images: &[(String, PathBuf)],
    local_images: &[image::LocalImage],
) {
    let now = Instant::now();
    let policy = p
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_else(|| "Always".into());
    for c in &mut p.containers {
        if c.finished {
            continue;
        }
        if let Some(child) = &mut c.child {
            if let Ok(Some(status)) = child.try_wait() {
                use std::os::unix::process::ExitStatusExt;
                let code = status
                    .code()
                    .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
                c.child = None;
                c.ready = false;
                c.last_exit = Some(code);
                if policy == "Never" || (policy == "OnFailure" && code == 0) {
                    c.finished = true;
                    c.waiting = None;
                    continue;
                }
                c.next_start = now + restart_delay(c.restarts);
                c.waiting = Some((
                    "CrashLoopBackOff".into(),
                    format!("exited with {code}; restarting"),
                ));
            }
        }
        if c.child.is_none() && now >= c.next_start {
            let image = c.spec.image.clone().unwrap_or_default();
            let container_dir = p.containers_dir.join(&c.spec.name);
            let program = match local_images.iter().find(|i| i.is_named(&image)) {
                Some(local) => Program::Image {
                    image: local,
                    dir: &container_dir,
                },
                None => match binary_for(images, &image) {
                    Some(binary) => Program::HostBinary(binary),
                    None => {
                        c.waiting =
                            Some(("ErrImagePull".into(), format!("image {image} is not known")));
                        c.next_start = now + MAX_RESTART_DELAY;
                        continue;
                    }
                },
            };
            let service_account = p.service_account.iter().map(|source| BindMount {
                source: source.clone(),
                target: SERVICE_ACCOUNT_DIR.into(),
                read_only: true,
                bidirectional: false,
            });
            let mounts: Vec<BindMount> = c
                .spec
                .volume_mounts
                .iter()
                .flatten()
                .filter_map(|m| {
                    let mut source = p.volumes.get(&m.name)?.clone();
                    if let Some(sub) = m.sub_path.as_ref().filter(|s| !s.is_empty()) {
                        source = source.join(sub);
                    }
                    Some(BindMount {
                        source,
                        target: m.mount_path.clone(),
                        read_only: m.read_only.unwrap_or(false),
                        bidirectional: m.mount_propagation.as_deref() == Some("Bidirectional"),
                    })
                })
                // The host's filesystem has no place for it: images only.
                .chain(service_account.filter(|_| matches!(program, Program::Image { .. })))
                .collect();
            let sandbox = Sandbox {
                pod: &p.pod,
                ip: &p.ip,
                node: &p.node,
                hosts_file: &p.hosts_file,
                mounts: &mounts,
                log_dir: &p.dir.join("logs"),
                service_env: &p.service_env,
            };
            match runtime::start_container(&c.spec, program, &sandbox) {
                Ok(child) => {
                    if c.started_once {
                        c.restarts += 1;
                    }
                    c.child = Some(child);
                    c.started_once = true;
                    c.started_at = now_rfc3339();
                    c.waiting = None;
                    c.liveness_failures = 0;
                    let delay = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
                        Duration::from_secs(
                            probe
                                .as_ref()
                                .and_then(|p| p.initial_delay_seconds)
                                .unwrap_or(0)
                                .max(0) as u64,
                        )
                    };
                    c.next_readiness = now + delay(&c.spec.readiness_probe);
                    c.next_liveness = now + delay(&c.spec.liveness_probe);
                }
                Err(e) => {
                    eprintln!("process kubelet: pod {}: {e}", p.pod.name_any());
                    c.waiting = Some(("CreateContainerError".into(), e));
                    c.next_start = now + restart_delay(c.restarts);
                }
            }
        }
        let Some(child) = &c.child else {
            continue;
        };
        match &c.spec.readiness_probe {
            None => c.ready = true,
            Some(probe) if now >= c.next_readiness => {
                c.ready = runtime::probe(probe, &c.spec, &p.ip).await;
                c.next_readiness = runtime::next_probe(probe, now);
            }
            Some(_) => {}
        }
        if let Some(probe) = c
            .spec
            .liveness_probe
            .as_ref()
            .filter(|_| now >= c.next_liveness)
        {
            c.next_liveness = runtime::next_probe(probe, now);
            if runtime::probe(probe, &c.spec, &p.ip).await {
                c.liveness_failures = 0;
            } else {
                c.liveness_failures += 1;
                if c.liveness_failures >= probe.failure_threshold.unwrap_or(3) {
                    // Killed; the next pass restarts it with backoff.
                    runtime::signal_group(child, libc::SIGKILL);
                }
            }
        }
    }
}

fn pod_status(p: &RunningPod) -> Value {
    let all_started = p.containers.iter().all(|c| c.started_once);
    let all_ready = p.containers.iter().all(|c| c.ready && c.child.is_some());
    let flag = |b: bool| if b { "True" } else { "False" };
    let statuses: Vec<Value> = p
        .containers
        .iter()
        .map(|c| {
            let state = match (&c.child, &c.waiting) {
                (None, _) if c.finished => json!({"terminated": {
                    "exitCode": c.last_exit.unwrap_or(0),
                    "reason": if c.last_exit == Some(0) { "Completed" } else { "Error" }}}),
                (Some(_), _) => json!({"running": {"startedAt": c.started_at}}),
                (None, Some((reason, message))) => {
                    json!({"waiting": {"reason": reason, "message": message}})
                }
                (None, None) => json!({"waiting": {"reason": "ContainerCreating"}}),
            };
            let last = match c.last_exit {
                Some(code) => json!({"terminated": {"exitCode": code,
                    "reason": if code == 0 { "Completed" } else { "Error" }}}),
                None => json!({}),
            };
            json!({"name": c.spec.name, "image": c.spec.image, "imageID": "",
                "ready": c.ready && c.child.is_some(), "started": c.child.is_some(),
                "restartCount": c.restarts, "state": state, "lastState": last})
        })
        .collect();
    let phase = if p.containers.iter().all(|c| c.finished) {
        if p.containers.iter().all(|c| c.last_exit == Some(0)) {
            "Succeeded"
        } else {
            "Failed"
        }
    } else if all_started {
        "Running"
    } else {
        "Pending"
    };
    json!({"status": {
        "phase": phase,
        "hostIP": "127.0.0.1", "podIP": p.ip, "podIPs": [{"ip": p.ip}],
        "startTime": p.start_time,
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": flag(all_ready)},
            {"type": "Ready", "status": flag(all_ready)},
        ],
        "containerStatuses": statuses,
    }})
}

/// Stops every container of `p` within its grace period, unmounts its
/// CSI volumes (`csi_teardown`), then removes its per-pod directories
/// (claims and hostPaths stay). In that order, as a kubelet does: removing
/// the directories first would delete the volumes' files through their
/// mounts.
async fn stop_pod(p: RunningPod, csi_teardown: impl std::future::Future<Output = ()>) {
    let grace = Duration::from_secs(
        p.pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30)
            .max(0) as u64,
    );
    let stops = p
        .containers
        .into_iter()
        .filter_map(|c| c.child)
        .map(|child| runtime::stop_container(child, grace));
    futures::future::join_all(stops).await;
    if let Ok(containers) = std::fs::read_dir(&p.containers_dir) {
        for c in containers.flatten() {
            image::unmount_rootfs(&c.path());
        }
    }
    let _ = std::fs::remove_dir_all(&p.containers_dir);
    csi_teardown.await;
    let volumes = p.dir.join("volumes");
    if still_mounted_below(&volumes) {
        eprintln!(
            "process kubelet: {} still has mounts; its directories stay",
            volumes.display()
        );
        return;
    }
    let _ = std::fs::remove_dir_all(volumes);
}

/// Whether anything is mounted at or below `dir`.
fn still_mounted_below(dir: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|point| Path::new(point).starts_with(dir))
}
