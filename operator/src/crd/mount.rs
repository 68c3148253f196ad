//! `Mount`: one entry of a cluster's mount table (an under storage at an
//! Alluxio path), kept in place by the operator.

use super::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "alluxio.rs",
    version = "v1alpha1",
    kind = "Mount",
    namespaced,
    status = "MountStatus",
    shortname = "amnt",
    category = "alluxio",
    doc = "An under storage mounted into an AlluxioCluster's namespace",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.cluster"),
    printcolumn(name = "Path", type_ = "string", json_path = ".spec.alluxioPath"),
    printcolumn(name = "UFS", type_ = "string", json_path = ".spec.ufs"),
    printcolumn(name = "Mounted", type_ = "boolean", json_path = ".status.mounted"),
    printcolumn(
        name = "Cached",
        type_ = "string",
        json_path = ".status.cached",
        description = "share of the UFS bytes cached"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct MountSpec {
    /// Name of the AlluxioCluster (same namespace); cannot change.
    #[x_kube(validation = Rule::new("self == oldSelf").message("a Mount cannot move to another cluster; delete it and create a new one"))]
    #[schemars(length(min = 1))]
    pub cluster: String,
    /// Absolute path in the Alluxio namespace, not `/`.
    #[schemars(regex(pattern = r"^/[^/].*$"))]
    pub alluxio_path: String,
    /// Under storage URI, e.g. `s3://bucket/prefix`, `file:///data`.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9+.-]*://.+$"))]
    pub ufs: String,
    /// UFS options (endpoint, region...); secrets go in `credentials`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub shared: bool,
    /// A Secret (same namespace) whose keys are added to the options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<SecretReference>,
    /// Metadata sync interval of the mount (`-1`, `0`, `30s`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(-1|0|[0-9]+(ms|s|m|min|h|d)?)$"))]
    pub sync_interval: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MountStatus {
    #[serde(default)]
    pub mounted: bool,
    /// Ready (mounted as specified), with the reason when it is not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub ufs_files: u64,
    #[serde(default)]
    pub ufs_bytes: u64,
    #[serde(default)]
    pub cached_bytes: u64,
    #[serde(default)]
    pub cached_percentage: u32,
    /// `cached_percentage` with a `%`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<String>,
    /// Hash of the credentials last applied (the master masks their
    /// values, so this is how a rotated Secret is noticed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_hash: Option<String>,
}
