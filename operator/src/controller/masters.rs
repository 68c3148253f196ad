//! Finding a cluster's master and keeping one gRPC client per address.
//!
//! The operator dials the master pod's IP (from the pod's status) rather
//! than the Service's DNS name: it works wherever the operator runs with
//! a route to pod IPs, needs no cluster DNS, and tells "no master pod is
//! ready" apart from "the master does not answer". It calls as the
//! operator, with tokens minted from the key in the cluster's Secret.

use crate::build::names::Names;
use crate::build::security::{key_of, security_secret_name, CA_FILE};
use crate::crd::cluster::TlsSpec;
use crate::crd::AlluxioCluster;
use alluxio_client::MasterClient;
use alluxio_common::auth::{Credentials, Role};
use alluxio_common::tls::ClientTls;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::ByteString;
use kube::api::{Api, ListParams};
use kube::ResourceExt;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// How long one attempt to reach a master may take before the reconcile
/// reports it unreachable and tries again later.
pub const MASTER_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("cannot list the master pods: {0}")]
    List(#[from] kube::Error),
    #[error("no master pod of cluster {0} is ready")]
    NotReady(String),
    #[error("the cluster's Secret {name}: {reason}")]
    Secret { name: String, reason: String },
    #[error("{0}")]
    Client(#[from] alluxio_common::AlluxioError),
}

/// Whether a pod's Ready condition is True.
pub fn pod_is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// `ip:port` of the cluster's ready master pods, lowest ordinal first.
pub async fn master_addresses(
    client: &kube::Client,
    cluster: &AlluxioCluster,
) -> Result<Vec<String>, MasterError> {
    let namespace = cluster.namespace().unwrap_or_default();
    let names = Names::new(&cluster.name_any(), &namespace);
    let selector = names
        .labels("master")
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let mut ready: Vec<Pod> = pods
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .filter(pod_is_ready)
        .collect();
    ready.sort_by_key(|p| p.name_any());
    Ok(ready
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .map(|ip| format!("{ip}:{}", cluster.spec.master.rpc_port))
        .collect())
}

/// One gRPC client per cluster (by namespace/name), replaced when the
/// cluster's master moves to another address, its Secret's signing key
/// changes (a key rotation) or its TLS CA or server name change. The
/// Secrets are read again at most every [`SECRETS_RECHECK`], not on every
/// call (a reconcile makes several).
#[derive(Default)]
pub struct MasterClients {
    by_cluster: Mutex<HashMap<String, Cached>>,
}

/// How long a client is used without reading its cluster's Secrets again:
/// well inside a key rotation's interval (2 min by default) and the
/// 10 s the pods take to reread their key files.
pub const SECRETS_RECHECK: Duration = Duration::from_secs(5);

struct Cached {
    client: MasterClient,
    /// The signing key and TLS trust it was made with.
    made_with: String,
    checked: std::time::Instant,
}

impl MasterClients {
    /// A client of the cluster's ready masters.
    pub async fn of(
        &self,
        client: &kube::Client,
        cluster: &AlluxioCluster,
    ) -> Result<MasterClient, MasterError> {
        let addresses = master_addresses(client, cluster).await?;
        if addresses.is_empty() {
            return Err(MasterError::NotReady(cluster.name_any()));
        }
        // Every ready master: the client follows the leader among them.
        let address = addresses.join(",");
        let key = format!(
            "{}/{}",
            cluster.namespace().unwrap_or_default(),
            cluster.name_any()
        );
        let cached = |fresh_only: bool, made_with: Option<&str>| {
            let mut clients = self.by_cluster.lock().unwrap_or_else(|e| e.into_inner());
            let entry = clients.get_mut(&key)?;
            let usable = entry.client.addresses().join(",") == address
                && (!fresh_only || entry.checked.elapsed() < SECRETS_RECHECK)
                && made_with.is_none_or(|m| m == entry.made_with);
            if made_with.is_some() && usable {
                entry.checked = std::time::Instant::now();
            }
            usable.then(|| entry.client.clone())
        };
        if let Some(c) = cached(true, None) {
            return Ok(c);
        }
        let cluster_key = cluster_key(client, cluster).await?;
        let tls = tls_trust(client, cluster).await?;
        // What the client was made with: a change means a new client.
        let made_with = format!(
            "{} {}",
            cluster_key.signing_id(),
            tls.as_ref()
                .map_or_else(|| "plain".to_string(), TlsTrust::describe)
        );
        if let Some(c) = cached(false, Some(&made_with)) {
            return Ok(c);
        }
        // Parsed only for a new client (a few KB of PEM).
        let tls = tls.as_ref().map(TlsTrust::client).transpose()?;
        let credentials = Credentials::from_key(
            cluster_key,
            "alluxio-operator",
            &[],
            Role::Operator,
            Duration::from_secs(3600),
        )
        .with_tls(tls);
        let master = MasterClient::connect_lazy(&address, credentials)?;
        let cached = Cached {
            client: master.clone(),
            made_with,
            checked: std::time::Instant::now(),
        };
        self.by_cluster
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, cached);
        Ok(master)
    }
}

/// What the operator trusts in a TLS cluster's masters.
struct TlsTrust<'a> {
    spec: &'a TlsSpec,
    /// The name their certificate carries.
    server_name: String,
    /// The CA of `spec.tls`'s Secret (PEM).
    ca: ByteString,
}

impl TlsTrust<'_> {
    /// As text: tells a client made for another CA or name.
    fn describe(&self) -> String {
        format!(
            "{}\n{}",
            self.server_name,
            String::from_utf8_lossy(&self.ca.0)
        )
    }

    fn client(&self) -> Result<ClientTls, MasterError> {
        ClientTls::from_pem(&self.ca.0, Some(&self.server_name)).map_err(|e| MasterError::Secret {
            name: self.spec.secret_name.clone(),
            reason: e.to_string(),
        })
    }
}

/// With `spec.tls`: what the operator checks the masters against.
async fn tls_trust<'a>(
    client: &kube::Client,
    cluster: &'a AlluxioCluster,
) -> Result<Option<TlsTrust<'a>>, MasterError> {
    let Some(tls) = &cluster.spec.tls else {
        return Ok(None);
    };
    let namespace = cluster.namespace().unwrap_or_default();
    let names = Names::new(&cluster.name_any(), &namespace);
    let secrets = Api::<Secret>::namespaced(client.clone(), &namespace);
    let ca = tls_secret_ca(&secrets, tls)
        .await
        .map_err(|reason| MasterError::Secret {
            name: tls.secret_name.clone(),
            reason,
        })?;
    Ok(Some(TlsTrust {
        spec: tls,
        server_name: names.tls_server_name(tls),
        ca,
    }))
}

/// The CA (`ca.crt`) of `spec.tls`'s Secret; the error says what is
/// wrong with the Secret.
pub async fn tls_secret_ca(secrets: &Api<Secret>, tls: &TlsSpec) -> Result<ByteString, String> {
    let secret = secrets
        .get_opt(&tls.secret_name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "(spec.tls.secretName) does not exist".to_string())?;
    secret
        .data
        .and_then(|mut d| d.remove(CA_FILE))
        .ok_or_else(|| format!("has no {CA_FILE}"))
}

/// The key in `cluster`'s Secret, which the operator mints its tokens
/// from.
async fn cluster_key(
    client: &kube::Client,
    cluster: &AlluxioCluster,
) -> Result<alluxio_common::auth::ClusterKey, MasterError> {
    let namespace = cluster.namespace().unwrap_or_default();
    let name = security_secret_name(&Names::new(&cluster.name_any(), &namespace));
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let fail = |reason: String| MasterError::Secret {
        name: name.clone(),
        reason,
    };
    let secret = secrets
        .get_opt(&name)
        .await?
        .ok_or_else(|| fail("does not exist yet".to_string()))?;
    key_of(&secret).map_err(fail)
}
