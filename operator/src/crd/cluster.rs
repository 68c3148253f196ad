//! `AlluxioCluster`: a master (1 or 3 replicas) and a worker on every
//! selected node, with their tiers, configuration and optional CSI plugin.

use super::Condition;
use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The image `images/Containerfile` builds, tagged with the crate version
/// (the chart's appVersion; scripts/build-image.sh tags it so).
pub const DEFAULT_IMAGE: &str = concat!("ghcr.io/alluxio-rs/alluxio:", env!("CARGO_PKG_VERSION"));

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "alluxio.rs",
    version = "v1alpha1",
    kind = "AlluxioCluster",
    namespaced,
    status = "AlluxioClusterStatus",
    shortname = "ac",
    category = "alluxio",
    doc = "An alluxio-rs cluster: a master StatefulSet and a worker DaemonSet",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Workers",
        type_ = "string",
        json_path = ".status.workers",
        description = "ready/desired workers"
    ),
    printcolumn(
        name = "Capacity",
        type_ = "string",
        json_path = ".status.capacity",
        description = "cache capacity of the ready workers"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AlluxioClusterSpec {
    /// Image with the `alluxio` binary, for masters and workers.
    #[serde(default = "default_image")]
    pub image: String,
    #[serde(default)]
    pub image_pull_policy: ImagePullPolicy,
    #[serde(default)]
    pub master: MasterSpec,
    #[serde(default)]
    pub worker: WorkerSpec,
    #[serde(default)]
    pub csi: CsiSpec,
    #[serde(default)]
    pub network_policy: NetworkPolicySpec,
    /// Configuration merged into `alluxio.yaml`, as `section.key: value`
    /// (for example `user.block_size: 128MiB`); the operator sets the
    /// addresses, ports and tiers itself.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    #[serde(default)]
    pub metrics: MetricsSpec,
    /// TLS on every port of the masters and workers (plain when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
}

/// `spec.tls`: the certificate every master and worker serves, from a
/// Secret in the cluster's namespace holding `tls.crt`, `tls.key` and
/// `ca.crt` (what cert-manager writes for a Certificate).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    pub secret_name: String,
    /// The DNS name the certificate carries, which clients check on every
    /// master and worker (they are dialled by pod IP). Default:
    /// `<cluster>.<namespace>.alluxio`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

fn default_image() -> String {
    DEFAULT_IMAGE.to_string()
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ImagePullPolicy {
    Always,
    #[default]
    IfNotPresent,
    Never,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MasterSpec {
    /// 1, or 3 or 5 for fault tolerance: the masters replicate their
    /// journal with Raft and survive the loss of 1 (of 3) or 2 (of 5).
    #[serde(default = "one")]
    #[schemars(extend("enum" = [1, 3, 5]))]
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default)]
    pub journal: JournalStorage,
    #[serde(default = "master_rpc_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub rpc_port: i32,
    #[serde(default = "master_web_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub web_port: i32,
    /// Port of the embedded journal (Raft) between masters.
    #[serde(default = "master_raft_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub raft_port: i32,
}

fn one() -> i32 {
    1
}
fn master_rpc_port() -> i32 {
    19998
}
fn master_web_port() -> i32 {
    19999
}
fn master_raft_port() -> i32 {
    19200
}
fn worker_rpc_port() -> i32 {
    29999
}
fn worker_web_port() -> i32 {
    30000
}
fn worker_data_port() -> i32 {
    29998
}

impl Default for MasterSpec {
    fn default() -> Self {
        MasterSpec {
            replicas: 1,
            resources: None,
            journal: JournalStorage::default(),
            rpc_port: master_rpc_port(),
            web_port: master_web_port(),
            raft_port: master_raft_port(),
        }
    }
}

/// Where a master keeps its journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JournalStorage {
    #[serde(default)]
    pub medium: JournalMedium,
    /// Size of the volume (a Kubernetes quantity such as `10Gi`).
    #[serde(default = "journal_size")]
    pub size: Quantity,
    /// Storage class of the claim (PersistentVolumeClaim only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Encrypt the journal at rest (AES-256-GCM) with the key the
    /// operator keeps in the cluster's Secret (`journal.key`). Turning it
    /// on needs no migration; turning it off does not decrypt what is
    /// written.
    #[serde(default)]
    pub encrypted: bool,
}

fn journal_size() -> Quantity {
    Quantity("10Gi".to_string())
}

impl Default for JournalStorage {
    fn default() -> Self {
        JournalStorage {
            medium: JournalMedium::default(),
            size: journal_size(),
            storage_class_name: None,
            encrypted: false,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum JournalMedium {
    /// A claim per master from the StatefulSet's template: survives pod
    /// restarts and rescheduling.
    #[default]
    PersistentVolumeClaim,
    /// Lost with the pod: for tests and throw-away clusters.
    EmptyDir,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerSpec {
    /// Cache tiers, fastest first; each alias at most once.
    #[serde(default = "default_tiers")]
    #[x_kube(validation = Rule::new("self.all(t, self.exists_one(u, u.alias == t.alias))").message("each tier alias (MEM, SSD, HDD) may appear only once"))]
    pub tiers: Vec<TierSpec>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default = "worker_rpc_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub rpc_port: i32,
    #[serde(default = "worker_web_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub web_port: i32,
    /// Raw TCP port serving cached blocks to remote clients.
    #[serde(default = "worker_data_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub data_port: i32,
}

fn default_tiers() -> Vec<TierSpec> {
    vec![TierSpec {
        alias: TierAlias::MEM,
        medium: TierMedium::Memory,
        path: None,
        storage_class_name: None,
        quota: Quantity("1Gi".to_string()),
    }]
}

impl Default for WorkerSpec {
    fn default() -> Self {
        WorkerSpec {
            tiers: default_tiers(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            resources: None,
            rpc_port: worker_rpc_port(),
            web_port: worker_web_port(),
            data_port: worker_data_port(),
        }
    }
}

#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TierAlias {
    MEM,
    SSD,
    HDD,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.medium != 'HostPath' || has(self.path)").message("a HostPath tier needs a path"))]
pub struct TierSpec {
    pub alias: TierAlias,
    pub medium: TierMedium,
    /// Directory on the node (HostPath only); must be absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/"))]
    pub path: Option<String>,
    /// Storage class of the claim (PersistentVolumeClaim only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Cache space of this tier on each worker (a Kubernetes quantity).
    pub quota: Quantity,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TierMedium {
    /// A memory-backed emptyDir (tmpfs), counted against the pod's memory.
    Memory,
    /// A directory of the node: the cache survives pod restarts.
    HostPath,
    /// A generic ephemeral volume claimed for each worker pod.
    PersistentVolumeClaim,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CsiSpec {
    /// Offer the cluster to pods through the CSI driver (installed by the
    /// chart with `csi.enabled`): the operator keeps a StorageClass
    /// `alluxio-<namespace>-<name>` for it.
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Keep a NetworkPolicy that lets only the cluster's own pods, the
    /// chart's operator and CSI pods and `clientPodLabels` reach the RPC
    /// and data ports (web ports stay open for probes and metrics).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Labels of other pods in the cluster's namespace that use the
    /// Alluxio client directly and may call the master and workers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub client_pod_labels: BTreeMap<String, String>,
}

impl Default for NetworkPolicySpec {
    fn default() -> Self {
        NetworkPolicySpec {
            enabled: true,
            client_pod_labels: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSpec {
    /// Annotate pods for Prometheus scraping of /metrics.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

impl Default for MetricsSpec {
    fn default() -> Self {
        MetricsSpec { enabled: true }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlluxioClusterStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ClusterPhase>,
    /// Ready, MasterReady, WorkersReady, Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `host:port` clients use to reach the master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_endpoint: Option<String>,
    #[serde(default)]
    pub workers_ready: i32,
    #[serde(default)]
    pub workers_desired: i32,
    /// `ready/desired`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<String>,
    /// Total cache capacity, human readable, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<String>,
    /// Capacity and usage per tier, as the master reports them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<TierStatus>,
    /// Fault-tolerant masters: the leader's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// Fault-tolerant masters: each one's role as the leader sees it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masters: Vec<MasterMemberStatus>,
}

/// One master of a Raft group in the cluster's status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MasterMemberStatus {
    /// `host:port` of the master's RPC endpoint.
    pub address: String,
    /// LEADER, FOLLOWER, LAGGING or UNAVAILABLE.
    pub role: String,
    /// Log entries behind the leader.
    #[serde(default)]
    pub lag: u64,
}

/// Where a cluster is in its life, for `kubectl get` (the conditions say why).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ClusterPhase {
    /// Objects applied; no master or worker pod is ready yet.
    Pending,
    /// Some, not all, of the masters and workers are ready.
    Running,
    /// Every master and worker is ready and registered.
    Ready,
    /// Ready once, and some part is missing now.
    Degraded,
    /// The spec cannot be built (it waits for a change).
    Failed,
}

impl ClusterPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterPhase::Pending => "Pending",
            ClusterPhase::Running => "Running",
            ClusterPhase::Ready => "Ready",
            ClusterPhase::Degraded => "Degraded",
            ClusterPhase::Failed => "Failed",
        }
    }
}

impl std::fmt::Display for ClusterPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TierStatus {
    pub alias: String,
    pub capacity_bytes: u64,
    pub used_bytes: u64,
}
