//! Reconciling an AlluxioCluster: dereference (names, owner) -> validate
//! and build (pure, `build/`) -> server-side apply of each object ->
//! observe (pods ready, workers registered at the master) -> status, with
//! one error variant per stage. An invalid spec is not retried: it gets a
//! Ready=False condition and waits for the next change.

use super::masters::MASTER_TIMEOUT;
use super::Context;
use crate::build::cluster_status::{cluster_status, Observed};
use crate::build::config::{alluxio_config, ConfigError};
use crate::build::names::Names;
use crate::build::storage_class::{storage_class, storage_class_name, STORAGE_CLASS_FINALIZER};
use crate::build::workloads::{
    self, config_map, master_services, master_statefulset, worker_daemonset,
};
use crate::crd::AlluxioCluster;
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;
use std::fmt::Debug;
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
}

impl ApplyError {
    /// A short label for metrics and condition reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            ApplyError::Dereference => "Dereference",
            ApplyError::Invalid(_) => "InvalidSpec",
            ApplyError::Apply { .. } => "ApplyFailed",
            ApplyError::Observe { .. } => "ObserveFailed",
            ApplyError::Status(_) => "StatusFailed",
            ApplyError::StorageClass(_) => "StorageClassFailed",
        }
    }
}

/// One reconcile of `cluster`: apply, observe, write the status.
pub async fn reconcile_cluster(
    cx: &Context,
    cluster: &AlluxioCluster,
) -> Result<Action, ApplyError> {
    if cluster.metadata.deletion_timestamp.is_some() {
        // Owned objects go with the cluster; the StorageClass is not owned.
        remove_storage_class(cx, cluster).await?;
        return Ok(Action::await_change());
    }
    let mut observed = Observed {
        generation: cluster.metadata.generation.unwrap_or(0),
        ..Default::default()
    };
    match apply_cluster(cx, cluster).await {
        Ok(()) => {
            sync_storage_class(cx, cluster).await?;
            observe(cx, cluster, &mut observed).await?
        }
        Err(e @ ApplyError::Invalid(_)) => observed.invalid = Some(e.to_string()),
        Err(e) => return Err(e),
    }
    let previous = cluster.status.clone().unwrap_or_default();
    let status = cluster_status(
        &previous,
        &observed,
        Time(k8s_openapi::jiff::Timestamp::now()),
    );
    if status != previous {
        let api: Api<AlluxioCluster> =
            Api::namespaced(cx.client.clone(), &cluster.namespace().unwrap_or_default());
        api.patch_status(
            &cluster.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .map_err(ApplyError::Status)?;
    }
    Ok(match status.phase.as_deref() {
        Some("Failed") => Action::await_change(),
        Some("Ready") => Action::requeue(REFRESH_READY),
        _ => Action::requeue(REFRESH_NOT_READY),
    })
}

fn set_finalizers(cluster: &AlluxioCluster, with: bool) -> Option<Vec<String>> {
    let has = cluster
        .finalizers()
        .iter()
        .any(|f| f == STORAGE_CLASS_FINALIZER);
    if has == with {
        return None;
    }
    let mut finalizers: Vec<String> = cluster
        .finalizers()
        .iter()
        .filter(|f| *f != STORAGE_CLASS_FINALIZER)
        .cloned()
        .collect();
    if with {
        finalizers.push(STORAGE_CLASS_FINALIZER.to_string());
    }
    Some(finalizers)
}

async fn patch_finalizers(
    cx: &Context,
    cluster: &AlluxioCluster,
    with: bool,
) -> Result<(), ApplyError> {
    let Some(finalizers) = set_finalizers(cluster, with) else {
        return Ok(());
    };
    let api: Api<AlluxioCluster> =
        Api::namespaced(cx.client.clone(), &cluster.namespace().unwrap_or_default());
    api.patch(
        &cluster.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": finalizers}})),
    )
    .await
    .map_err(ApplyError::StorageClass)?;
    Ok(())
}

/// With `spec.csi.enabled`: the finalizer first, then the StorageClass
/// (so it can never be left behind); without: both removed.
async fn sync_storage_class(cx: &Context, cluster: &AlluxioCluster) -> Result<(), ApplyError> {
    if !cluster.spec.csi.enabled {
        return remove_storage_class(cx, cluster).await;
    }
    patch_finalizers(cx, cluster, true).await?;
    let names = Names::new(
        &cluster.name_any(),
        &cluster.namespace().unwrap_or_default(),
    );
    let class = storage_class(&names, &cluster.spec);
    let api: Api<StorageClass> = Api::all(cx.client.clone());
    let params = PatchParams::apply(&cx.field_manager).force();
    api.patch(&storage_class_name(&names), &params, &Patch::Apply(&class))
        .await
        .map_err(ApplyError::StorageClass)?;
    Ok(())
}

/// Deletes the cluster's StorageClass, if any, then drops the finalizer.
async fn remove_storage_class(cx: &Context, cluster: &AlluxioCluster) -> Result<(), ApplyError> {
    if !cluster
        .finalizers()
        .iter()
        .any(|f| f == STORAGE_CLASS_FINALIZER)
    {
        return Ok(());
    }
    let names = Names::new(
        &cluster.name_any(),
        &cluster.namespace().unwrap_or_default(),
    );
    let api: Api<StorageClass> = Api::all(cx.client.clone());
    match api
        .delete(&storage_class_name(&names), &Default::default())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(ApplyError::StorageClass(e)),
    }
    patch_finalizers(cx, cluster, false).await
}

/// Reads the workloads' readiness and, when a master pod is ready, the
/// workers registered with the master (`None` when it does not answer).
async fn observe(
    cx: &Context,
    cluster: &AlluxioCluster,
    o: &mut Observed,
) -> Result<(), ApplyError> {
    let namespace = cluster.namespace().unwrap_or_default();
    let names = Names::new(&cluster.name_any(), &namespace);
    let statefulsets: Api<StatefulSet> = Api::namespaced(cx.client.clone(), &namespace);
    let daemonsets: Api<DaemonSet> = Api::namespaced(cx.client.clone(), &namespace);
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
    o.workers = match cx.masters.of(&cx.client, cluster).await {
        Ok(master) => tokio::time::timeout(MASTER_TIMEOUT, master.worker_infos())
            .await
            .ok()
            .and_then(Result::ok),
        Err(e) => {
            tracing::debug!(cluster = cluster.name_any(), "master not reachable: {e}");
            None
        }
    };
    Ok(())
}

/// Server-side applies every object of `cluster`; idempotent.
pub async fn apply_cluster(cx: &Context, cluster: &AlluxioCluster) -> Result<(), ApplyError> {
    let namespace = cluster.namespace().ok_or(ApplyError::Dereference)?;
    let owner = cluster
        .controller_owner_ref(&())
        .ok_or(ApplyError::Dereference)?;
    let names = Names::new(&cluster.name_any(), &namespace);
    let (_, yaml) = alluxio_config(&names, &cluster.spec)?;
    let b = workloads::Context {
        names: &names,
        spec: &cluster.spec,
        owner,
        config_yaml: &yaml,
    };
    let (headless, client_service) = master_services(&b);
    apply(cx, &namespace, "ConfigMap", config_map(&b)).await?;
    apply(cx, &namespace, "Service", headless).await?;
    apply(cx, &namespace, "Service", client_service).await?;
    apply(cx, &namespace, "StatefulSet", master_statefulset(&b)).await?;
    apply(cx, &namespace, "DaemonSet", worker_daemonset(&b)).await?;
    Ok(())
}

async fn apply<K>(
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
