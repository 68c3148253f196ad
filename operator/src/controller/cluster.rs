//! Applying an AlluxioCluster: dereference (names, owner) -> validate and
//! build (pure, `build/`) -> server-side apply of each object, with one
//! error variant per stage.

use super::Context;
use crate::build::config::{alluxio_config, ConfigError};
use crate::build::names::Names;
use crate::build::workloads::{
    self, config_map, master_services, master_statefulset, worker_daemonset,
};
use crate::crd::AlluxioCluster;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

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
}

impl ApplyError {
    /// A short label for metrics and condition reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            ApplyError::Dereference => "Dereference",
            ApplyError::Invalid(_) => "InvalidSpec",
            ApplyError::Apply { .. } => "ApplyFailed",
        }
    }
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
