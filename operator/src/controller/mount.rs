//! Reconciling a Mount: read inputs (the Secret, the master's mount table)
//! -> plan (pure, `build/mount_plan.rs`) -> act on the master over gRPC ->
//! update the status. A finalizer makes sure the UFS is unmounted before
//! the object goes. Credential values are never logged or put in errors.

use super::Context;
use crate::build::mount_plan::{
    credentials_hash, plan_mount, plan_unmount, MountAction, PlanError,
};
use crate::crd::{Condition, Mount, MountStatus};
use alluxio_client::MasterClient;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;
use std::collections::BTreeMap;

/// Held by every Mount until its UFS is unmounted.
pub const FINALIZER: &str = "alluxio.rs/unmount";

#[derive(Debug, thiserror::Error)]
pub enum MountError {
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
            MountError::Secret { .. } | MountError::SecretValue { .. } => "CredentialsUnavailable",
            MountError::Plan(PlanError::Occupied { .. }) => "PathOccupied",
            MountError::Plan(PlanError::DuplicateOption(_)) => "InvalidSpec",
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
        let rest: Vec<String> = mount
            .finalizers()
            .iter()
            .filter(|f| *f != FINALIZER)
            .cloned()
            .collect();
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": rest}})),
        )
        .await?;
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
    let status = status(mount, &result);
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await?;
    result.map(|_| Outcome::Applied)
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

fn status(mount: &Mount, result: &Result<String, MountError>) -> MountStatus {
    let previous = mount.status.clone().unwrap_or_default();
    let generation = mount.metadata.generation.unwrap_or(0);
    let (ok, reason, message) = match result {
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
    MountStatus {
        mounted: ok || previous.mounted,
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: status.into(),
            reason: reason.into(),
            message,
            observed_generation: Some(generation),
            last_transition_time: since,
        }],
        observed_generation: Some(generation),
        credentials_hash: match result {
            Ok(hash) => Some(hash.clone()),
            Err(_) => previous.credentials_hash.clone(),
        },
        ..previous
    }
}
