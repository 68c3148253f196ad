//! Reconciling a Mount: read inputs (its AlluxioCluster, the master, the
//! Secret, the master's mount table) -> plan (pure, `build/mount_plan.rs`)
//! -> act on the master over gRPC -> update the status (with what the
//! master knows of the mount's files and how much of them is cached), with
//! an Event for each thing done. kube's finalizer helper makes sure the UFS
//! is unmounted before the object goes; when the cluster itself is gone
//! there is nothing left to unmount. Credential values are never logged,
//! put in errors or in Events.

use super::masters::{MasterError, MASTER_TIMEOUT};
use super::{object_key, unwrap_finalizer_error, Context, ReconcileError};
use crate::build::mount_plan::{
    credentials_hash, plan_mount, plan_unmount, MountAction, PlanError,
};
use crate::crd::{AlluxioCluster, Condition, Mount, MountStatus};
use alluxio_client::MasterClient;
use alluxio_proto::grpc::FileInfo;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::ResourceExt;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
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
    #[error("cannot add or remove the finalizer: {0}")]
    Finalizer(String),
}

impl ReconcileError for MountError {
    /// Condition reason and metrics label.
    fn reason(&self) -> &'static str {
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
            MountError::Finalizer(_) => "FinalizerFailed",
        }
    }
}

/// What a reconcile did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Removed,
}

/// A Mount, dereferenced once per reconcile: its name, namespace and API.
pub struct MountRef {
    pub name: String,
    pub namespace: String,
    pub api: Api<Mount>,
}

impl MountRef {
    pub fn dereference(cx: &Context, mount: &Mount) -> Self {
        let namespace = mount.namespace().unwrap_or_default();
        MountRef {
            name: mount.name_any(),
            api: Api::namespaced(cx.client.clone(), &namespace),
            namespace,
        }
    }
}

/// One reconcile of `mount`, as the controller runs it: finds the
/// cluster's master, then [`reconcile_mount`].
pub async fn reconcile(cx: &Context, mount: Arc<Mount>) -> Result<Action, MountError> {
    let target = MountRef::dereference(cx, &mount);
    let clusters: Api<AlluxioCluster> = Api::namespaced(cx.client.clone(), &target.namespace);
    let cluster = clusters
        .get_opt(&mount.spec.cluster)
        .await?
        .filter(|c| c.metadata.deletion_timestamp.is_none());
    let Some(cluster) = cluster else {
        if mount.metadata.deletion_timestamp.is_some() {
            // The cluster, and its mount table with it, is gone: nothing
            // to unmount.
            under_finalizer(cx, &target, mount, None).await?;
            return Ok(Action::await_change());
        }
        let missing = MountError::ClusterNotFound(mount.spec.cluster.clone());
        if !matches!(condition_reason(&mount), Some("ClusterNotFound")) {
            cx.events
                .warning(
                    mount.as_ref(),
                    missing.reason(),
                    "Mount",
                    missing.to_string(),
                )
                .await;
        }
        write_status(&target, &mount, status(&mount, Err(&missing), None)).await?;
        return Ok(Action::requeue(RETRY_NO_CLUSTER));
    };
    let master = match cx.masters.of(&cx.client, &cluster).await {
        Ok(master) => master,
        Err(e) => {
            let e = MountError::MasterUnavailable(e);
            if mount.metadata.deletion_timestamp.is_none() {
                write_status(&target, &mount, status(&mount, Err(&e), None)).await?;
            }
            return Err(e);
        }
    };
    match under_finalizer(cx, &target, mount, Some(&master)).await? {
        Outcome::Applied => Ok(Action::requeue(REFRESH_USAGE)),
        Outcome::Removed => Ok(Action::await_change()),
    }
}

/// One reconcile of `mount` against a known master: mounts or updates it,
/// or, when it is being deleted, unmounts it and lets it go.
pub async fn reconcile_mount(
    cx: &Context,
    master: &MasterClient,
    mount: &Mount,
) -> Result<Outcome, MountError> {
    let target = MountRef::dereference(cx, mount);
    under_finalizer(cx, &target, Arc::new(mount.clone()), Some(master)).await
}

/// Runs the reconcile under kube's finalizer helper (`master` is `None`
/// when the cluster is gone). The helper only adds a missing finalizer and
/// returns; the work is then done on the object as it is now.
async fn under_finalizer(
    cx: &Context,
    target: &MountRef,
    mut mount: Arc<Mount>,
    master: Option<&MasterClient>,
) -> Result<Outcome, MountError> {
    for _ in 0..2 {
        let mut outcome = None;
        let done = &mut outcome;
        finalizer(&target.api, FINALIZER, mount.clone(), |event| async move {
            *done = Some(match event {
                FinalizerEvent::Apply(mount) => {
                    let master = master
                        .ok_or_else(|| MountError::ClusterNotFound(mount.spec.cluster.clone()))?;
                    apply_and_report(cx, target, master, &mount).await?;
                    Outcome::Applied
                }
                FinalizerEvent::Cleanup(mount) => {
                    if let Some(master) = master {
                        unmount(cx, master, &mount).await?;
                    }
                    cx.backoff.forget(&object_key(mount.as_ref()));
                    Outcome::Removed
                }
            });
            Ok(Action::await_change())
        })
        .await
        .map_err(|e| unwrap_finalizer_error(e, MountError::Finalizer))?;
        if let Some(outcome) = outcome {
            return Ok(outcome);
        }
        if mount.metadata.deletion_timestamp.is_some() {
            return Ok(Outcome::Removed); // our finalizer was already gone
        }
        mount = Arc::new(target.api.get(&target.name).await?);
    }
    Err(MountError::Finalizer(
        "the finalizer was added, but the Mount does not carry it".to_string(),
    ))
}

/// Mount or update on the master, then write the status with the usage.
async fn apply_and_report(
    cx: &Context,
    target: &MountRef,
    master: &MasterClient,
    mount: &Mount,
) -> Result<(), MountError> {
    let result = apply_to_master(cx, target, master, mount).await;
    let usage = match &result {
        Ok(_) => usage(master, &mount.spec.alluxio_path).await,
        Err(_) => None,
    };
    let outcome = result.as_ref().map(String::as_str);
    write_status(target, mount, status(mount, outcome, usage)).await?;
    result.map(|_| ())
}

/// Unmounts the Mount's path if the master still has it mounted.
async fn unmount(cx: &Context, master: &MasterClient, mount: &Mount) -> Result<(), MountError> {
    if let MountAction::Unmount(path) = plan_unmount(&mount.spec, &master.mount_table().await?) {
        master.unmount(&path).await?;
        tracing::info!(mount = mount.name_any(), path, "unmounted");
        let note = format!("{} unmounted from {path}", mount.spec.ufs);
        cx.events.normal(mount, "Unmounted", "Unmount", note).await;
    }
    Ok(())
}

/// The reason of the Mount's Ready condition, as last written.
fn condition_reason(mount: &Mount) -> Option<&str> {
    let status = mount.status.as_ref()?;
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready")?;
    Some(ready.reason.as_str())
}

async fn write_status(
    target: &MountRef,
    mount: &Mount,
    status: MountStatus,
) -> Result<(), MountError> {
    if mount.status.as_ref() == Some(&status) {
        return Ok(());
    }
    target
        .api
        .patch_status(
            &target.name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await?;
    Ok(())
}

/// Files and bytes the master knows under the mount, and how many of
/// those bytes are cached; `None` when the master cannot say in time.
#[derive(Default)]
pub struct Usage {
    pub files: u64,
    pub bytes: u64,
    pub cached_bytes: u64,
}

impl Usage {
    fn add(&mut self, f: &FileInfo) {
        if !f.folder {
            self.files += 1;
            self.bytes += f.length;
            self.cached_bytes += f.length * u64::from(f.in_alluxio_percentage.min(100)) / 100;
        }
    }
}

/// How long a Mount's usage may take to sum, so that a huge mount does
/// not hold its reconcile (a deletion, say) for minutes; past it the
/// status keeps the last usage.
const USAGE_BUDGET: Duration = Duration::from_secs(20);

/// Sums the listing under `path` batch by batch as the master streams it,
/// so the operator holds one batch, not the mount's whole tree; each batch
/// must come within `MASTER_TIMEOUT`, all of them within `USAGE_BUDGET`.
async fn usage(master: &MasterClient, path: &str) -> Option<Usage> {
    let sum = async {
        let listing = master.list_status_batches(path, true, None);
        let mut batches = tokio::time::timeout(MASTER_TIMEOUT, listing)
            .await
            .ok()?
            .ok()?;
        let mut u = Usage::default();
        while let Some(batch) = tokio::time::timeout(MASTER_TIMEOUT, batches.next())
            .await
            .ok()?
        {
            batch.ok()?.iter().for_each(|f| u.add(f));
        }
        Some(u)
    };
    tokio::time::timeout(USAGE_BUDGET, sum).await.ok()?
}

/// Mounts or updates the Mount on the master as the plan says; returns
/// the hash of the credentials applied.
async fn apply_to_master(
    cx: &Context,
    target: &MountRef,
    master: &MasterClient,
    mount: &Mount,
) -> Result<String, MountError> {
    let credentials = credentials(cx, mount, &target.namespace).await?;
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
            let note = format!("{} mounted at {}", mount.spec.ufs, mount.spec.alluxio_path);
            cx.events.normal(mount, "Mounted", "Mount", note).await;
        }
        MountAction::Update(req) => {
            master.update_mount(req).await?;
            tracing::info!(
                mount = mount.name_any(),
                path = mount.spec.alluxio_path,
                "mount updated"
            );
            let note = format!("options of {} updated", mount.spec.alluxio_path);
            cx.events
                .normal(mount, "MountUpdated", "UpdateMount", note)
                .await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_files_and_their_cached_share_not_folders() {
        let file = |length, in_alluxio_percentage| FileInfo {
            length,
            in_alluxio_percentage,
            ..Default::default()
        };
        let folder = FileInfo {
            folder: true,
            length: 4096,
            ..Default::default()
        };
        let mut u = Usage::default();
        for f in [file(1000, 100), file(1000, 50), folder, file(200, 250)] {
            u.add(&f);
        }
        assert_eq!((u.files, u.bytes), (3, 2200));
        assert_eq!(
            u.cached_bytes,
            1000 + 500 + 200,
            "a share above 100% counts as 100%"
        );
    }
}
