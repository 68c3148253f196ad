//! Reconciling a Mount: read inputs (its AlluxioCluster, the master, the
//! Secret, the master's mount table) -> plan (pure, `build/mount_plan.rs`)
//! -> act on the master over gRPC -> update the status (with what the
//! master knows of the mount's files and how much of them is cached). A
//! finalizer makes sure the UFS is unmounted before the object goes; when
//! the cluster itself is gone there is nothing left to unmount. Credential
//! values are never logged or put in errors.

use super::masters::{MasterError, MASTER_TIMEOUT};
use super::Context;
use crate::build::mount_plan::{
    credentials_hash, plan_mount, plan_unmount, MountAction, PlanError,
};
use crate::crd::{AlluxioCluster, Condition, Mount, MountStatus};
use alluxio_client::MasterClient;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::ResourceExt;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// How often a mounted Mount's usage (files, bytes, cached) is refreshed.
const REFRESH_USAGE: Duration = Duration::from_secs(60);
/// How often a Mount whose cluster does not exist looks again (a new
/// cluster also triggers it through the cluster watch).
const RETRY_NO_CLUSTER: Duration = Duration::from_secs(60);

/// Held by every Mount until its UFS is unmounted.
pub const FINALIZER: &str = "alluxio.rs/unmount";

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("AlluxioCluster {0} does not exist in this namespace")]
    ClusterNotFound(String),
    #[error("master: {0}")]
    MasterUnavailable(#[from] MasterError),
    #[error("cannot read the credentials Secret {name}: {source}")]
    Secret { name: String, source: kube::Error },
    #[error("credentials Secret {name} has a key {key:?} whose value is not UTF-8")]
    SecretValue { name: String, key: String },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("master: {0}")]
    Master(#[from] alluxio_common::AlluxioError),
    #[error("cannot update the Mount object: {0}")]
    Kube(#[from] kube::Error),
}

impl MountError {
    /// Condition reason and metrics label.
    pub fn reason(&self) -> &'static str {
        match self {
            MountError::ClusterNotFound(_) => "ClusterNotFound",
            MountError::MasterUnavailable(_) => "MasterUnavailable",
            MountError::Secret { .. } | MountError::SecretValue { .. } => "CredentialsUnavailable",
            MountError::Plan(PlanError::Occupied { .. }) => "PathOccupied",
            MountError::Plan(PlanError::DuplicateOption(_) | PlanError::SyncIntervalTwice) => {
                "InvalidSpec"
            }
            MountError::Master(_) => "MountFailed",
            MountError::Kube(_) => "ApiError",
        }
    }
}

/// What a reconcile did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Removed,
}

/// One reconcile of `mount`, as the controller runs it: finds the
/// cluster's master, then [`reconcile_mount`].
pub async fn reconcile(cx: &Context, mount: &Mount) -> Result<Action, MountError> {
    let namespace = mount.namespace().unwrap_or_default();
    let clusters: Api<AlluxioCluster> = Api::namespaced(cx.client.clone(), &namespace);
    let cluster = clusters
        .get_opt(&mount.spec.cluster)
        .await?
        .filter(|c| c.metadata.deletion_timestamp.is_none());
    let Some(cluster) = cluster else {
        if mount.metadata.deletion_timestamp.is_some() {
            // The cluster, and its mount table with it, is gone.
            remove_finalizer(cx, mount).await?;
            return Ok(Action::await_change());
        }
        let missing = MountError::ClusterNotFound(mount.spec.cluster.clone());
        write_status(cx, mount, status(mount, Err(&missing), None)).await?;
        return Ok(Action::requeue(RETRY_NO_CLUSTER));
    };
    let master = match cx.masters.of(&cx.client, &cluster).await {
        Ok(master) => master,
        Err(e) => {
            let e = MountError::MasterUnavailable(e);
            if mount.metadata.deletion_timestamp.is_none() {
                write_status(cx, mount, status(mount, Err(&e), None)).await?;
            }
            return Err(e);
        }
    };
    match reconcile_mount(cx, &master, mount).await? {
        Outcome::Applied => Ok(Action::requeue(REFRESH_USAGE)),
        Outcome::Removed => Ok(Action::await_change()),
    }
}

pub async fn reconcile_mount(
    cx: &Context,
    master: &MasterClient,
    mount: &Mount,
) -> Result<Outcome, MountError> {
    let namespace = mount.namespace().unwrap_or_default();
    let api: Api<Mount> = Api::namespaced(cx.client.clone(), &namespace);
    let name = mount.name_any();
    if mount.metadata.deletion_timestamp.is_some() {
        if let MountAction::Unmount(path) = plan_unmount(&mount.spec, &master.mount_table().await?)
        {
            master.unmount(&path).await?;
            tracing::info!(mount = name, path, "unmounted");
        }
        remove_finalizer(cx, mount).await?;
        return Ok(Outcome::Removed);
    }
    if !mount.finalizers().iter().any(|f| f == FINALIZER) {
        let mut with = mount.finalizers().to_vec();
        with.push(FINALIZER.to_string());
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": with}})),
        )
        .await?;
    }
    let result = apply(cx, master, mount, &namespace).await;
    let usage = match &result {
        Ok(_) => usage(master, &mount.spec.alluxio_path).await,
        Err(_) => None,
    };
    let outcome = result.as_ref().map(String::as_str);
    write_status(cx, mount, status(mount, outcome, usage)).await?;
    result.map(|_| Outcome::Applied)
}

async fn remove_finalizer(cx: &Context, mount: &Mount) -> Result<(), MountError> {
    let api: Api<Mount> =
        Api::namespaced(cx.client.clone(), &mount.namespace().unwrap_or_default());
    let rest: Vec<String> = mount
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    api.patch(
        &mount.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": rest}})),
    )
    .await?;
    Ok(())
}

async fn write_status(cx: &Context, mount: &Mount, status: MountStatus) -> Result<(), MountError> {
    if mount.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<Mount> =
        Api::namespaced(cx.client.clone(), &mount.namespace().unwrap_or_default());
    api.patch_status(
        &mount.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await?;
    Ok(())
}

/// Files and bytes the master knows under the mount, and how many of
/// those bytes are cached; `None` when the master cannot say in time.
pub struct Usage {
    pub files: u64,
    pub bytes: u64,
    pub cached_bytes: u64,
}

async fn usage(master: &MasterClient, path: &str) -> Option<Usage> {
    let listing = tokio::time::timeout(MASTER_TIMEOUT, master.list_status(path, true, None))
        .await
        .ok()?
        .ok()?;
    let mut u = Usage {
        files: 0,
        bytes: 0,
        cached_bytes: 0,
    };
    for f in listing.iter().filter(|f| !f.folder) {
        u.files += 1;
        u.bytes += f.length;
        u.cached_bytes += f.length * u64::from(f.in_alluxio_percentage.min(100)) / 100;
    }
    Some(u)
}

async fn apply(
    cx: &Context,
    master: &MasterClient,
    mount: &Mount,
    namespace: &str,
) -> Result<String, MountError> {
    let credentials = credentials(cx, mount, namespace).await?;
    let hash = credentials_hash(&credentials);
    let applied = mount
        .status
        .as_ref()
        .and_then(|s| s.credentials_hash.as_deref());
    let table = master.mount_table().await?;
    match plan_mount(&mount.spec, &credentials, applied, &table)? {
        MountAction::Mount(req) => {
            master.mount(req).await?;
            tracing::info!(
                mount = mount.name_any(),
                path = mount.spec.alluxio_path,
                "mounted"
            );
        }
        MountAction::Update(req) => {
            master.update_mount(req).await?;
            tracing::info!(
                mount = mount.name_any(),
                path = mount.spec.alluxio_path,
                "mount updated"
            );
        }
        MountAction::Unmount(_) | MountAction::Nothing => {}
    }
    Ok(hash)
}

async fn credentials(
    cx: &Context,
    mount: &Mount,
    namespace: &str,
) -> Result<BTreeMap<String, String>, MountError> {
    let Some(reference) = &mount.spec.credentials else {
        return Ok(BTreeMap::new());
    };
    let secrets: Api<Secret> = Api::namespaced(cx.client.clone(), namespace);
    let secret = secrets
        .get(&reference.name)
        .await
        .map_err(|source| MountError::Secret {
            name: reference.name.clone(),
            source,
        })?;
    let mut out = BTreeMap::new();
    for (key, value) in secret.data.unwrap_or_default() {
        let text = String::from_utf8(value.0).map_err(|_| MountError::SecretValue {
            name: reference.name.clone(),
            key: key.clone(),
        })?;
        out.insert(key, text);
    }
    out.extend(secret.string_data.unwrap_or_default());
    Ok(out)
}

fn status(mount: &Mount, outcome: Result<&str, &MountError>, usage: Option<Usage>) -> MountStatus {
    let previous = mount.status.clone().unwrap_or_default();
    let generation = mount.metadata.generation.unwrap_or(0);
    let (ok, reason, message) = match outcome {
        Ok(_) => (
            true,
            "Mounted",
            format!(
                "{} is mounted at {}",
                mount.spec.ufs, mount.spec.alluxio_path
            ),
        ),
        Err(e) => (false, e.reason(), e.to_string()),
    };
    let status = if ok { "True" } else { "False" };
    let since = previous
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
    let usage = usage.unwrap_or(Usage {
        files: previous.ufs_files,
        bytes: previous.ufs_bytes,
        cached_bytes: previous.cached_bytes,
    });
    let percentage = (usage.cached_bytes * 100)
        .checked_div(usage.bytes)
        .unwrap_or(0) as u32;
    MountStatus {
        // Without its cluster nothing is mounted any more.
        mounted: ok
            || (previous.mounted && !matches!(outcome, Err(MountError::ClusterNotFound(_)))),
        ufs_files: usage.files,
        ufs_bytes: usage.bytes,
        cached_bytes: usage.cached_bytes,
        cached_percentage: percentage,
        cached: Some(format!("{percentage}%")),
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: status.into(),
            reason: reason.into(),
            message,
            observed_generation: Some(generation),
            last_transition_time: since,
        }],
        observed_generation: Some(generation),
        credentials_hash: match outcome {
            Ok(hash) => Some(hash.to_string()),
            Err(_) => previous.credentials_hash.clone(),
        },
    }
}
