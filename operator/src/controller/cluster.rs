//! Reconciling an AlluxioCluster: dereference (names, owner) -> validate
//! and build (pure, `build/`) -> server-side apply of each object ->
//! observe (pods ready, workers registered at the master) -> status, with
//! one error variant per stage and an Event for each change and failure.
//! An invalid spec is not retried: it gets a Ready=False condition and
//! waits for the next change. kube's finalizer helper keeps the
//! cluster-scoped StorageClass from outliving the cluster.

use super::masters::MASTER_TIMEOUT;
use super::{key_rotation, membership};
use super::{object_key, unwrap_finalizer_error, Context, ReconcileError};
use crate::build::cluster_status::{cluster_status, Observed};
use crate::build::config::{alluxio_config, ConfigError, Masters};
use crate::build::names::Names;
use crate::build::network_policy::{network_policy, network_policy_name};
use crate::build::security::{
    has_journal_key, key_of, new_journal_key, security_secret, security_secret_name, tls_entries,
};
use crate::build::storage_class::{storage_class, storage_class_name, STORAGE_CLASS_FINALIZER};
use crate::build::workloads::{
    self, config_map, master_services, master_statefulset, worker_daemonset, CONFIG_HASH_ANNOTATION,
};
use crate::crd::{AlluxioCluster, AlluxioClusterStatus, ClusterPhase};
use alluxio_common::auth::ClusterKey;
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

/// How often a cluster's status is refreshed from the master when nothing
/// changes: often while it comes up, rarely once it is Ready.
const REFRESH_NOT_READY: Duration = Duration::from_secs(5);
const REFRESH_READY: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("AlluxioCluster has no namespace or uid yet")]
    Dereference,
    #[error("invalid spec: {0}")]
    Invalid(#[from] ConfigError),
    #[error("cannot apply {kind} {name}: {source}")]
    Apply {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
    #[error("cannot read {kind} {name}: {source}")]
    Observe {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
    #[error("cannot update the status: {0}")]
    Status(kube::Error),
    #[error("cannot keep the cluster's StorageClass: {0}")]
    StorageClass(kube::Error),
    #[error("cannot add or remove the finalizer: {0}")]
    Finalizer(String),
    #[error("the cluster's Secret {name}: {reason}")]
    Secret { name: String, reason: String },
}

impl ReconcileError for ApplyError {
    /// A short label for metrics and condition reasons.
    fn reason(&self) -> &'static str {
        match self {
            ApplyError::Dereference => "Dereference",
            ApplyError::Invalid(_) => "InvalidSpec",
            ApplyError::Apply { .. } => "ApplyFailed",
            ApplyError::Observe { .. } => "ObserveFailed",
            ApplyError::Status(_) => "StatusFailed",
            ApplyError::StorageClass(_) => "StorageClassFailed",
            ApplyError::Finalizer(_) => "FinalizerFailed",
            ApplyError::Secret { .. } => "SecretFailed",
        }
    }
}

/// A cluster, dereferenced once per reconcile: its names, the owner
/// reference its objects carry, and its API.
pub struct ClusterRef {
    pub names: Names,
    pub owner: OwnerReference,
    pub api: Api<AlluxioCluster>,
}

impl ClusterRef {
    pub fn dereference(cx: &Context, cluster: &AlluxioCluster) -> Result<Self, ApplyError> {
        let namespace = cluster.namespace().ok_or(ApplyError::Dereference)?;
        let owner = cluster
            .controller_owner_ref(&())
            .ok_or(ApplyError::Dereference)?;
        Ok(ClusterRef {
            names: Names::new(&cluster.name_any(), &namespace),
            owner,
            api: Api::namespaced(cx.client.clone(), &namespace),
        })
    }
}

/// One reconcile of `cluster`, under its finalizer: apply, observe and
/// write the status; on deletion, remove the StorageClass (owned objects
/// go with the cluster; a cluster-scoped StorageClass cannot be owned).
pub async fn reconcile_cluster(
    cx: &Context,
    cluster: Arc<AlluxioCluster>,
) -> Result<Action, ApplyError> {
    let target = ClusterRef::dereference(cx, &cluster)?;
    let api = target.api.clone();
    finalizer(&api, STORAGE_CLASS_FINALIZER, cluster, |event| async {
        match event {
            FinalizerEvent::Apply(cluster) => apply_and_report(cx, &target, &cluster).await,
            FinalizerEvent::Cleanup(cluster) => {
                remove_storage_class(cx, &target, &cluster).await?;
                cx.backoff.forget(&object_key(cluster.as_ref()));
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| unwrap_finalizer_error(e, ApplyError::Finalizer))
}

/// Apply -> observe -> status, with an Event for what changed.
async fn apply_and_report(
    cx: &Context,
    target: &ClusterRef,
    cluster: &AlluxioCluster,
) -> Result<Action, ApplyError> {
    let mut observed = Observed {
        generation: cluster.metadata.generation.unwrap_or(0),
        ..Default::default()
    };
    // Not yet at the spec's masters: look again soon.
    let mut masters_pending = false;
    // A key rotation's next step is due after this long.
    let mut rotation_due = None;
    match apply(cx, target, cluster).await {
        Ok(applied) => {
            masters_pending = applied.masters.count != cluster.spec.master.replicas;
            rotation_due = applied.rotation_due;
            sync_storage_class(cx, target, cluster).await?;
            observe(cx, target, cluster, &mut observed).await?
        }
        Err(e @ ApplyError::Invalid(_)) => {
            cx.events
                .warning(cluster, "InvalidSpec", "Validate", e.to_string())
                .await;
            observed.invalid = Some(e.to_string());
        }
        Err(e) => return Err(e),
    }
    let previous = cluster.status.clone().unwrap_or_default();
    let status = cluster_status(
        &previous,
        &observed,
        Time(k8s_openapi::jiff::Timestamp::now()),
    );
    if master_became_unreachable(&previous, &status) {
        let note = format!(
            "master pods are ready but the master at {} does not answer",
            observed.master_endpoint
        );
        cx.events
            .warning(cluster, "MasterUnavailable", "Observe", note)
            .await;
    }
    if status != previous {
        target
            .api
            .patch_status(
                &cluster.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
            .map_err(ApplyError::Status)?;
    }
    let refresh = match status.phase {
        Some(ClusterPhase::Failed) => return Ok(Action::await_change()),
        _ if masters_pending => REFRESH_NOT_READY,
        Some(ClusterPhase::Ready) => REFRESH_READY,
        _ => REFRESH_NOT_READY,
    };
    // A second late rather than early: the step is due then.
    let rotation = rotation_due.map(|d| d + Duration::from_secs(1));
    Ok(Action::requeue(
        rotation.map_or(refresh, |r| r.min(refresh)),
    ))
}

/// Whether this status is the first to say the master pods are ready but
/// the master does not answer.
fn master_became_unreachable(previous: &AlluxioClusterStatus, now: &AlluxioClusterStatus) -> bool {
    let unreachable = |s: &AlluxioClusterStatus| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "MasterReady" && c.reason == "Unreachable")
    };
    unreachable(now) && !unreachable(previous)
}

/// With `spec.csi.enabled`, the cluster's StorageClass; without, none.
async fn sync_storage_class(
    cx: &Context,
    target: &ClusterRef,
    cluster: &AlluxioCluster,
) -> Result<(), ApplyError> {
    if !cluster.spec.csi.enabled {
        return remove_storage_class(cx, target, cluster).await;
    }
    let class = storage_class(&target.names, &cluster.spec);
    let api: Api<StorageClass> = Api::all(cx.client.clone());
    let name = storage_class_name(&target.names);
    let existed = api
        .get_opt(&name)
        .await
        .map_err(ApplyError::StorageClass)?
        .is_some();
    let params = PatchParams::apply(&cx.field_manager).force();
    api.patch(&name, &params, &Patch::Apply(&class))
        .await
        .map_err(ApplyError::StorageClass)?;
    if !existed {
        let note = format!("StorageClass {name} provisions volumes of this cluster");
        cx.events
            .normal(cluster, "StorageClassApplied", "Apply", note)
            .await;
    }
    Ok(())
}

/// Deletes the cluster's StorageClass, if there is one.
async fn remove_storage_class(
    cx: &Context,
    target: &ClusterRef,
    cluster: &AlluxioCluster,
) -> Result<(), ApplyError> {
    let api: Api<StorageClass> = Api::all(cx.client.clone());
    let name = storage_class_name(&target.names);
    match api.delete(&name, &Default::default()).await {
        Ok(_) => {
            let note = format!("StorageClass {name} deleted");
            cx.events
                .normal(cluster, "StorageClassRemoved", "Delete", note)
                .await;
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(ApplyError::StorageClass(e)),
    }
}

/// Reads the workloads' readiness and, when a master pod is ready, the
/// workers registered with the master (`None` when it does not answer).
async fn observe(
    cx: &Context,
    target: &ClusterRef,
    cluster: &AlluxioCluster,
    o: &mut Observed,
) -> Result<(), ApplyError> {
    let names = &target.names;
    let statefulsets: Api<StatefulSet> = Api::namespaced(cx.client.clone(), &names.namespace);
    let daemonsets: Api<DaemonSet> = Api::namespaced(cx.client.clone(), &names.namespace);
    let observe_error =
        |kind, name: String| move |source| ApplyError::Observe { kind, name, source };
    let sts_name = names.master_statefulset();
    let sts = statefulsets
        .get(&sts_name)
        .await
        .map_err(observe_error("StatefulSet", sts_name))?;
    let ds_name = names.worker_daemonset();
    let ds = daemonsets
        .get(&ds_name)
        .await
        .map_err(observe_error("DaemonSet", ds_name))?;
    o.masters_desired = cluster.spec.master.replicas;
    o.masters_ready = sts
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let ds_status = ds.status.unwrap_or_default();
    o.workers_desired = ds_status.desired_number_scheduled;
    o.workers_ready = ds_status.number_ready;
    o.master_endpoint = format!(
        "{}:{}",
        names.master_service_host(),
        cluster.spec.master.rpc_port
    );
    match cx.masters.of(&cx.client, cluster).await {
        Ok(master) => {
            o.workers = tokio::time::timeout(MASTER_TIMEOUT, master.worker_infos())
                .await
                .ok()
                .and_then(Result::ok);
            if workloads::masters_of(&sts).is_some_and(|m| m.raft) {
                o.quorum = tokio::time::timeout(MASTER_TIMEOUT, master.quorum_info())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .filter(|q| q.fault_tolerant);
            }
        }
        Err(e) => {
            tracing::debug!(cluster = cluster.name_any(), "master not reachable: {e}");
            o.workers = None;
        }
    }
    Ok(())
}

/// Server-side applies every object of `cluster`; idempotent.
pub async fn apply_cluster(cx: &Context, cluster: &AlluxioCluster) -> Result<(), ApplyError> {
    apply(cx, &ClusterRef::dereference(cx, cluster)?, cluster)
        .await
        .map(|_| ())
}

/// What an apply did that the reconcile's next look depends on.
struct Applied {
    /// The masters applied: the spec's, except on the way between one
    /// master and a group, or while a group shrinks (see
    /// `build/membership.rs`).
    masters: Masters,
    /// When a key rotation's next step is due (see `build/key_rotation.rs`).
    rotation_due: Option<Duration>,
}

/// Validate and build (pure), then apply each object; publishes Applied
/// for a new generation and Rolled when the configuration changes.
async fn apply(
    cx: &Context,
    target: &ClusterRef,
    cluster: &AlluxioCluster,
) -> Result<Applied, ApplyError> {
    let names = &target.names;
    let spec = &cluster.spec;
    alluxio_config(names, spec, Masters::new_cluster(spec.master.replicas))?;
    let masters = membership::masters_for_now(cx, target, cluster).await?;
    let (_, yaml) = alluxio_config(names, spec, masters)?;
    let inputs = workloads::Inputs {
        names,
        spec,
        masters,
        owner: target.owner.clone(),
        config_yaml: &yaml,
    };
    let (headless, client_service) = master_services(&inputs);
    let namespace = &names.namespace;
    let secret = ensure_security_secret(cx, target, cluster).await?;
    let secret = sync_tls_entries(cx, target, cluster, secret).await?;
    let rotation_due = key_rotation::rotate_key(cx, target, cluster, &secret).await?;
    let daemonsets: Api<DaemonSet> = Api::namespaced(cx.client.clone(), namespace);
    let rolled_from = daemonsets
        .get_opt(&names.worker_daemonset())
        .await
        .map_err(|source| ApplyError::Observe {
            kind: "DaemonSet",
            name: names.worker_daemonset(),
            source,
        })?
        .and_then(|ds| {
            ds.spec?
                .template
                .metadata?
                .annotations?
                .remove(CONFIG_HASH_ANNOTATION)
        })
        .filter(|hash| *hash != inputs.config_hash());
    apply_object(cx, namespace, "ConfigMap", config_map(&inputs)).await?;
    apply_object(cx, namespace, "Service", headless).await?;
    apply_object(cx, namespace, "Service", client_service).await?;
    apply_object(cx, namespace, "StatefulSet", master_statefulset(&inputs)).await?;
    sync_disruption_budget(cx, &inputs).await?;
    apply_object(cx, namespace, "DaemonSet", worker_daemonset(&inputs)).await?;
    sync_network_policy(cx, target, cluster).await?;
    let generation = cluster.metadata.generation.unwrap_or(0);
    let applied_before = cluster.status.as_ref().and_then(|s| s.observed_generation);
    if applied_before != Some(generation) {
        let note = format!(
            "applied ConfigMap, Services, StatefulSet {} and DaemonSet {} for generation {generation}",
            names.master_statefulset(),
            names.worker_daemonset()
        );
        cx.events.normal(cluster, "Applied", "Apply", note).await;
    }
    if let Some(old) = rolled_from {
        let note = format!(
            "alluxio.yaml changed (hash {old} -> {}): masters and workers roll",
            inputs.config_hash()
        );
        cx.events.normal(cluster, "Rolled", "Roll", note).await;
    }
    Ok(Applied {
        masters,
        rotation_due,
    })
}

/// The masters' PodDisruptionBudget while there are several; none for one.
async fn sync_disruption_budget(
    cx: &Context,
    inputs: &workloads::Inputs<'_>,
) -> Result<(), ApplyError> {
    let namespace = &inputs.names.namespace;
    if let Some(budget) = workloads::master_disruption_budget(inputs) {
        apply_object(cx, namespace, "PodDisruptionBudget", budget).await?;
        return Ok(());
    }
    let api: Api<PodDisruptionBudget> = Api::namespaced(cx.client.clone(), namespace);
    let name = inputs.names.master_statefulset();
    match api.delete(&name, &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(source) => Err(ApplyError::Apply {
            kind: "PodDisruptionBudget",
            name,
            source,
        }),
    }
}

/// Creates the cluster's Secret with new keys when it does not exist; an
/// existing one keeps its keys (they are what the running pods use), must
/// hold a valid cluster key, and gets a journal key if it has none (a
/// Secret of an older operator).
async fn ensure_security_secret(
    cx: &Context,
    target: &ClusterRef,
    cluster: &AlluxioCluster,
) -> Result<Secret, ApplyError> {
    let names = &target.names;
    let name = security_secret_name(names);
    let fail = |reason: String| ApplyError::Secret {
        name: name.clone(),
        reason,
    };
    let api: Api<Secret> = Api::namespaced(cx.client.clone(), &names.namespace);
    match api.get_opt(&name).await {
        Ok(Some(existing)) => {
            key_of(&existing).map_err(fail)?;
            if has_journal_key(&existing) {
                return Ok(existing);
            }
            let (entry, value) = new_journal_key();
            let patch = serde_json::json!({ "data": { entry: value } });
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| fail(e.to_string()))
        }
        Ok(None) => {
            let secret = security_secret(names, target.owner.clone(), &ClusterKey::generate());
            let created = api
                .create(&Default::default(), &secret)
                .await
                .map_err(|e| fail(e.to_string()))?;
            let note = format!("Secret {name} holds the cluster key");
            cx.events
                .normal(cluster, "SecretCreated", "Apply", note)
                .await;
            Ok(created)
        }
        Err(e) => Err(fail(e.to_string())),
    }
}

/// Keeps the CA and server name of `spec.tls` in the cluster's Secret (the
/// CSI plugin's only source), or none of them without TLS.
async fn sync_tls_entries(
    cx: &Context,
    target: &ClusterRef,
    cluster: &AlluxioCluster,
    secret: Secret,
) -> Result<Secret, ApplyError> {
    let names = &target.names;
    let api: Api<Secret> = Api::namespaced(cx.client.clone(), &names.namespace);
    let ca = match &cluster.spec.tls {
        None => None,
        Some(tls) => {
            let fail = |reason: String| ApplyError::Secret {
                name: tls.secret_name.clone(),
                reason,
            };
            Some(
                super::masters::tls_secret_ca(&api, tls)
                    .await
                    .map_err(fail)?,
            )
        }
    };
    let wanted = tls_entries(names, &cluster.spec, ca.as_ref());
    let data = secret.data.clone().unwrap_or_default();
    if wanted.iter().all(|(k, v)| data.get(*k) == v.as_ref()) {
        return Ok(secret);
    }
    let patch: serde_json::Map<String, serde_json::Value> = wanted
        .into_iter()
        .map(|(k, v)| (k.to_string(), serde_json::to_value(v).unwrap_or_default()))
        .collect();
    let name = security_secret_name(names);
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": patch })),
    )
    .await
    .map_err(|e| ApplyError::Secret {
        name,
        reason: e.to_string(),
    })
}

/// With `spec.networkPolicy.enabled` (the default), the cluster's
/// NetworkPolicy; without, none.
async fn sync_network_policy(
    cx: &Context,
    target: &ClusterRef,
    cluster: &AlluxioCluster,
) -> Result<(), ApplyError> {
    let names = &target.names;
    if cluster.spec.network_policy.enabled {
        let policy = network_policy(names, &cluster.spec, target.owner.clone());
        apply_object(cx, &names.namespace, "NetworkPolicy", policy).await?;
        return Ok(());
    }
    let api: Api<NetworkPolicy> = Api::namespaced(cx.client.clone(), &names.namespace);
    let name = network_policy_name(names);
    match api.delete(&name, &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(source) => Err(ApplyError::Apply {
            kind: "NetworkPolicy",
            name,
            source,
        }),
    }
}

async fn apply_object<K>(
    cx: &Context,
    namespace: &str,
    kind: &'static str,
    object: K,
) -> Result<K, ApplyError>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
    K::DynamicType: Default,
{
    let name = object.name_any();
    let api: Api<K> = Api::namespaced(cx.client.clone(), namespace);
    let params = PatchParams::apply(&cx.field_manager).force();
    api.patch(&name, &params, &Patch::Apply(&object))
        .await
        .map_err(|source| ApplyError::Apply { kind, name, source })
}
