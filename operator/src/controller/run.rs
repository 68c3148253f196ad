//! The watch-driven controllers (kube's runtime `Controller`): one for
//! AlluxioClusters, which also watches the objects they own; one for
//! Mounts, which also wakes the Mounts of a cluster when it changes and a
//! Mount whose data a Load is loading (its cached share moves); and one
//! for Loads, woken by their cluster too. Each
//! reconcile is timed and counted; a failure is published as a Warning
//! Event and retried with exponential backoff per object.

use super::cluster::{reconcile_cluster, ApplyError};
use super::load::LoadError;
use super::mount::{reconcile, MountError};
use super::{object_key, Context, ReconcileError};
use crate::crd::{AlluxioCluster, Load, Mount};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How long running reconciles may take to finish after shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Label the operator puts on everything it creates; owned-object watches
/// select on it so they do not cache every ConfigMap of the cluster.
const MANAGED_BY: &str = "app.kubernetes.io/managed-by=alluxio-operator";

fn api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs both controllers until `shutdown` resolves, then lets running
/// reconciles finish. `namespace` limits them to one namespace. The
/// returned store holds the clusters the controller sees (for metrics).
pub fn controllers(
    cx: Arc<Context>,
    namespace: Option<&str>,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) -> (Store<AlluxioCluster>, impl Future<Output = ()>) {
    let client = &cx.client;
    let owned = watcher::Config::default().labels(MANAGED_BY);
    let clusters = Controller::new(api::<AlluxioCluster>(client, namespace), Default::default())
        .owns(api::<ConfigMap>(client, namespace), owned.clone())
        .owns(api::<Service>(client, namespace), owned.clone())
        .owns(api::<StatefulSet>(client, namespace), owned.clone())
        .owns(api::<DaemonSet>(client, namespace), owned)
        .graceful_shutdown_on(shutdown.clone());
    let cluster_store = clusters.store();

    let mounts = Controller::new(api::<Mount>(client, namespace), Default::default());
    let mount_store = mounts.store();
    let (mounts_by_cluster, mounts_by_load) = (mount_store.clone(), mount_store.clone());
    let mounts = mounts
        .watches(
            api::<AlluxioCluster>(client, namespace),
            Default::default(),
            move |cluster| of_cluster(&mounts_by_cluster, &cluster, |m: &Mount| &m.spec.cluster),
        )
        .watches(
            api::<Load>(client, namespace),
            Default::default(),
            move |load| mounts_loaded_by(&mounts_by_load, &load),
        )
        .graceful_shutdown_on(shutdown.clone());

    let loads = Controller::new(api::<Load>(client, namespace), Default::default());
    let load_store = loads.store();
    let loads_by_cluster = load_store.clone();
    let loads = loads
        .watches(
            api::<AlluxioCluster>(client, namespace),
            Default::default(),
            move |cluster| of_cluster(&loads_by_cluster, &cluster, |l: &Load| &l.spec.cluster),
        )
        .graceful_shutdown_on(shutdown.clone());

    let run_clusters = clusters
        .run(reconcile_cluster_timed, error_policy, cx.clone())
        .for_each(|result| log_controller_error("AlluxioCluster", result));
    let run_mounts = mounts
        .run(reconcile_mount_timed, error_policy, cx.clone())
        .for_each(|result| log_controller_error("Mount", result));
    let run_loads = loads
        .run(reconcile_load_timed, error_policy, cx)
        .for_each(|result| log_controller_error("Load", result));
    // kube's Controller does not finish while its cache has never filled
    // (say the CRDs are missing): then there is no reconcile to wait for.
    let stores_ready = {
        let cluster_store = cluster_store.clone();
        move || {
            cluster_store.wait_until_ready().now_or_never().is_some()
                && mount_store.wait_until_ready().now_or_never().is_some()
                && load_store.wait_until_ready().now_or_never().is_some()
        }
    };
    let grace_over = async move {
        shutdown.await;
        if stores_ready() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
            tracing::warn!("reconciles still running after {SHUTDOWN_GRACE:?}; stopping anyway");
        }
    };
    (cluster_store, async move {
        tokio::select! {
            _ = async { tokio::join!(run_clusters, run_mounts, run_loads) } => {}
            _ = grace_over => {}
        }
    })
}

/// Reconcile failures are logged by the error policies; what is left are
/// watch errors, such as missing CRDs or no permission to list.
async fn log_controller_error<T, E1, E2>(
    kind: &'static str,
    result: Result<T, kube::runtime::controller::Error<E1, E2>>,
) where
    E1: std::error::Error,
    E2: std::error::Error,
{
    use kube::runtime::controller::Error;
    match result {
        Err(Error::QueueError(e)) => tracing::warn!("cannot watch {kind}s: {e}"),
        Err(e) => tracing::debug!("{kind} controller: {e}"),
        Ok(_) => {}
    }
}

/// The objects (from a controller's cache) that name `cluster`.
fn of_cluster<K>(
    store: &Store<K>,
    cluster: &AlluxioCluster,
    cluster_of: impl Fn(&K) -> &String,
) -> Vec<ObjectRef<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .state()
        .iter()
        .filter(|o| *cluster_of(o) == cluster.name_any() && o.namespace() == cluster.namespace())
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// The Mounts whose files `load` loads: the Mount it names, or those of
/// its cluster above or below its path.
fn mounts_loaded_by(store: &Store<Mount>, load: &Load) -> Vec<ObjectRef<Mount>> {
    let overlaps = |m: &Mount| match (&load.spec.mount, &load.spec.path) {
        (Some(name), _) => m.name_any() == *name,
        (None, Some(path)) => {
            let mount = m.spec.alluxio_path.trim_end_matches('/');
            let path = path.trim_end_matches('/');
            path.starts_with(&format!("{mount}/"))
                || path == mount
                || mount.starts_with(&format!("{path}/"))
        }
        (None, None) => false,
    };
    store
        .state()
        .iter()
        .filter(|m| {
            m.spec.cluster == load.spec.cluster && m.namespace() == load.namespace() && overlaps(m)
        })
        .map(|m| ObjectRef::from_obj(m.as_ref()))
        .collect()
}

/// Runs one reconcile of `object` timed and counted; a failure becomes a
/// Warning Event, a success clears the object's backoff.
async fn timed<K, E>(
    controller: &'static str,
    object: &K,
    cx: &Context,
    reconcile: impl Future<Output = Result<Action, E>>,
) -> Result<Action, E>
where
    K: kube::Resource<DynamicType = ()>,
    E: ReconcileError,
{
    let timer = cx.metrics.start(controller);
    let result = reconcile.await;
    timer.finish(result.as_ref().err().map(|e| e.reason()));
    match &result {
        Ok(_) => cx.backoff.forget(&object_key(object)),
        Err(e) => {
            let note = e.to_string();
            cx.events
                .warning(object, e.reason(), "Reconcile", note)
                .await
        }
    }
    result
}

/// Retries a failed reconcile after the object's next backoff delay.
fn error_policy<K, E>(object: Arc<K>, e: &E, cx: Arc<Context>) -> Action
where
    K: kube::Resource<DynamicType = ()>,
    E: ReconcileError,
{
    let key = object_key(object.as_ref());
    let delay = cx.backoff.failed(&key);
    tracing::warn!(object = key, retry_in = ?delay, "reconcile failed: {e}");
    Action::requeue(delay)
}

async fn reconcile_cluster_timed(
    cluster: Arc<AlluxioCluster>,
    cx: Arc<Context>,
) -> Result<Action, ApplyError> {
    let reconcile = reconcile_cluster(&cx, cluster.clone());
    timed("alluxiocluster", cluster.as_ref(), &cx, reconcile).await
}

async fn reconcile_mount_timed(mount: Arc<Mount>, cx: Arc<Context>) -> Result<Action, MountError> {
    let reconcile = reconcile(&cx, mount.clone());
    timed("mount", mount.as_ref(), &cx, reconcile).await
}

async fn reconcile_load_timed(load: Arc<Load>, cx: Arc<Context>) -> Result<Action, LoadError> {
    let reconcile = super::load::reconcile(&cx, load.clone());
    timed("load", load.as_ref(), &cx, reconcile).await
}
