//! `Load`: warming a cluster's cache with a path (or a Mount's path), run
//! by the cluster as a load job, once, on a schedule, or whenever the data
//! changes, with its progress in the status.

use super::Condition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "alluxio.rs",
    version = "v1alpha1",
    kind = "Load",
    namespaced,
    status = "LoadStatus",
    shortname = "ld",
    category = "alluxio",
    doc = "A dataset loaded into an AlluxioCluster's cache by the cluster",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.cluster"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Progress",
        type_ = "string",
        json_path = ".status.progress",
        description = "share of the bytes handled"
    ),
    printcolumn(
        name = "Throughput",
        type_ = "string",
        json_path = ".status.throughput"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("has(self.path) != has(self.mount)").message("set exactly one of path and mount"))]
#[serde(rename_all = "camelCase")]
pub struct LoadSpec {
    /// Name of the AlluxioCluster (same namespace).
    #[schemars(length(min = 1))]
    pub cluster: String,
    /// Absolute Alluxio path to load (a file or a directory tree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/.*$"))]
    pub path: Option<String>,
    /// Or: the name of a Mount (same namespace) whose path is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
    /// Workers that should hold each block.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 16))]
    pub replicas: u32,
    /// Most bytes per second fetched from the under storage, e.g. `200MiB/s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<String>,
    /// Cron schedule (5 fields, UTC) on which the load runs again, e.g.
    /// `0 3 * * *`; without one it runs once per spec change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// `Once`: run when created or changed (and on each scheduled time).
    /// `OnChange`: also run again when the files under the path change (at
    /// each scheduled time, or every minute without a schedule), and only
    /// then.
    #[serde(default)]
    pub policy: LoadPolicy,
    /// Load again what is missing after the pass and check every block.
    #[serde(default)]
    pub verify: bool,
}

fn one() -> u32 {
    1
}

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum LoadPolicy {
    #[default]
    Once,
    OnChange,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadStatus {
    /// Pending, Running, Succeeded, Failed, Stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Complete (the last run ended), with the reason when it did not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The master's job id of the current or last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<u64>,
    /// The Alluxio path being loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default)]
    pub files_done: u64,
    #[serde(default)]
    pub files_total: u64,
    #[serde(default)]
    pub files_failed: u64,
    #[serde(default)]
    pub bytes_done: u64,
    #[serde(default)]
    pub bytes_total: u64,
    /// Bytes read from the under storage (the rest was cached already).
    #[serde(default)]
    pub bytes_fetched: u64,
    #[serde(default)]
    pub percent: u32,
    /// `percent` with a `%`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Bytes per second of the run in progress, e.g. `120MiB/s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<String>,
    /// Time left of the run in progress, e.g. `42s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta: Option<String>,
    /// The first failed files of the last run, with reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_files: Vec<FailedFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// When the schedule runs it next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<Time>,
    /// Files, bytes and newest modification time under the path when the
    /// last run started (how `OnChange` notices a change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_fingerprint: Option<String>,
    /// Runs started so far.
    #[serde(default)]
    pub runs: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedFile {
    pub path: String,
    pub reason: String,
}
