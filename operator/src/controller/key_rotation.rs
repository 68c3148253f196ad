//! The impure half of `build/key_rotation.rs`: reads the cluster's and
//! its Secret's annotations, applies the next step of a key rotation to
//! the Secret (keys and progress in one patch, so they never disagree),
//! publishes an Event, and says when to look again.

use super::cluster::{ApplyError, ClusterRef};
use super::Context;
use crate::build::key_rotation::{rotation_interval, rotation_plan, rotation_record, RotationPlan};
use crate::build::security::{key_of, security_secret_name, KEY_FILE};
use crate::crd::AlluxioCluster;
use alluxio_common::auth::RotationStep;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Api, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;
use std::time::Duration;

/// Makes the next step of a rotation the cluster asked for, if one is
/// due, on the cluster's Secret as the reconcile just read it. Returns
/// how long until the next step (`None`: no rotation under way).
pub async fn rotate_key(
    cx: &Context,
    target: &ClusterRef,
    cluster: &AlluxioCluster,
    secret: &Secret,
) -> Result<Option<Duration>, ApplyError> {
    let names = &target.names;
    let name = security_secret_name(names);
    let fail = |reason: String| ApplyError::Secret {
        name: name.clone(),
        reason,
    };
    let interval = rotation_interval(cluster.annotations()).map_err(&fail)?;
    let api: Api<Secret> = Api::namespaced(cx.client.clone(), &names.namespace);
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (step, request) =
        match rotation_plan(cluster.annotations(), secret.annotations(), interval, now_s) {
            RotationPlan::Idle => return Ok(None),
            RotationPlan::Wait(left) => return Ok(Some(left)),
            RotationPlan::Step { step, request } => (step, request),
        };
    let next = key_of(secret)
        .map_err(&fail)?
        .rotated(step)
        .map_err(|e| fail(format!("rotation {request:?}: {e}")))?;
    let patch = json!({
        "metadata": { "annotations": rotation_record(&request, step, now_s) },
        "data": { KEY_FILE: ByteString(next.to_text().into_bytes()) },
    });
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| fail(e.to_string()))?;
    let what = match step {
        RotationStep::Add => "a new key is accepted (not signing yet)",
        RotationStep::Sign => "the new key signs; the old one is still accepted",
        RotationStep::Drop => "the old key is dropped: the rotation is done",
    };
    let note = format!(
        "key rotation {request:?}, step {step:?}: {what} (signing key {})",
        next.signing_id()
    );
    tracing::info!(cluster = cluster.name_any(), "{note}");
    cx.events
        .normal(cluster, "KeyRotated", "Rotate", note)
        .await;
    Ok((step != RotationStep::Drop).then_some(interval))
}
