//! `alluxio.yaml` for a cluster: what the operator decides (addresses,
//! ports, journal and tier directories inside the pods) plus the user's
//! `spec.properties`, checked by the same strict parser the `alluxio`
//! binary uses, so a bad key is refused here with its name instead of
//! crash-looping the pods.

use super::names::Names;
use super::quantity;
use crate::crd::cluster::{AlluxioClusterSpec, TierAlias};
use alluxio_common::config::AlluxioConfig;

// Every path inside the pods is under /opt/alluxio, the image's own
// directory, so nothing the pods mount shadows a system directory.

/// Inside the pods: where the journal volume is mounted.
pub const JOURNAL_DIR: &str = "/opt/alluxio/journal";
/// Inside the worker pods: the worker's identity and default data.
pub const WORKER_DATA_DIR: &str = "/opt/alluxio/data";
/// Inside the pods: where the ConfigMap is mounted.
pub const CONFIG_DIR: &str = "/opt/alluxio/conf";
/// Inside the pods: where the cluster's Secret (its key) is mounted.
pub const SECURITY_DIR: &str = "/opt/alluxio/security";
/// Inside the pods: where `spec.tls.secretName` is mounted.
pub const TLS_DIR: &str = "/opt/alluxio/tls";

/// Keys the operator sets from the spec; a property may not override them.
const OWNED_KEYS: &[(&str, &str)] = &[
    ("master.hostname", "the master Service"),
    ("master.rpc_port", "spec.master.rpcPort"),
    ("master.web_port", "spec.master.webPort"),
    ("master.journal.dir", "spec.master.journal"),
    ("master.rpc_addresses", "spec.master.replicas"),
    ("master.embedded_journal.addresses", "spec.master.replicas"),
    ("master.embedded_journal.port", "spec.master.raftPort"),
    ("worker.rpc_port", "spec.worker.rpcPort"),
    ("worker.web_port", "spec.worker.webPort"),
    ("worker.data_port", "spec.worker.dataPort"),
    ("worker.data_dir", "the worker pod's volumes"),
    ("worker.tiers", "spec.worker.tiers"),
    ("security.key_file", "the cluster's Secret"),
    (
        "master.journal.encryption_key_file",
        "spec.master.journal.encrypted",
    ),
    ("security.tls.enabled", "spec.tls"),
    ("security.tls.ca_file", "spec.tls"),
    ("security.tls.server_name", "spec.tls"),
    ("master.tls.cert_file", "spec.tls"),
    ("master.tls.key_file", "spec.tls"),
    ("worker.tls.cert_file", "spec.tls"),
    ("worker.tls.key_file", "spec.tls"),
];

/// Directory of a tier inside a worker pod.
pub fn tier_dir(alias: TierAlias) -> String {
    format!("/opt/alluxio/tiers/{}", format!("{alias:?}").to_lowercase())
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("spec.properties.{key} is set by the operator from {owner}; change that instead")]
    OwnedKey { key: String, owner: &'static str },
    #[error("spec.worker.tiers[{index}].quota: {reason}")]
    Quota { index: usize, reason: String },
    #[error("spec.properties: {0}")]
    Invalid(String),
}

/// The masters the objects are built for: how many pods, and whether they
/// replicate their journal with Raft. Usually that follows
/// `spec.master.replicas` (a group for more than one), but one master may
/// be a Raft group of one: a single master's journal becomes one on the
/// way to three masters, and a group shrunk back to one master stays one
/// (see `build/membership.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Masters {
    pub count: i32,
    pub raft: bool,
}

impl Masters {
    /// What a cluster starts with: a Raft group for more than one master,
    /// a single master's own journal for one.
    pub fn new_cluster(replicas: i32) -> Self {
        Masters {
            count: replicas,
            raft: replicas > 1,
        }
    }
}

/// Where clients, workers and proxies reach the masters: each master pod
/// by name when they replicate (clients follow the leader), else the
/// client Service.
pub fn master_rpc_addresses(
    names: &Names,
    spec: &AlluxioClusterSpec,
    masters: Masters,
) -> Vec<String> {
    let port = spec.master.rpc_port;
    if !masters.raft {
        return vec![format!("{}:{port}", names.master_service_host())];
    }
    (0..masters.count)
        .map(|i| format!("{}:{port}", names.master_pod_host(i)))
        .collect()
}

/// The Raft group of a fault-tolerant cluster (empty for a single master).
fn raft_addresses(names: &Names, spec: &AlluxioClusterSpec, masters: Masters) -> Vec<String> {
    if !masters.raft {
        return Vec::new();
    }
    (0..masters.count)
        .map(|i| format!("{}:{}", names.master_pod_host(i), spec.master.raft_port))
        .collect()
}

/// The cluster's configuration and its YAML text, for `masters`.
pub fn alluxio_config(
    names: &Names,
    spec: &AlluxioClusterSpec,
    masters: Masters,
) -> Result<(AlluxioConfig, String), ConfigError> {
    for key in spec.properties.keys() {
        if let Some((_, owner)) = OWNED_KEYS
            .iter()
            .find(|(k, _)| key == k || key.starts_with(&format!("{k}.")))
        {
            return Err(ConfigError::OwnedKey {
                key: key.clone(),
                owner,
            });
        }
    }
    let mut tiers = Vec::new();
    for (index, t) in spec.worker.tiers.iter().enumerate() {
        let quota =
            quantity::bytes(&t.quota).map_err(|reason| ConfigError::Quota { index, reason })?;
        tiers.push(format!(
            "{{alias: {:?}, dirs: [{{path: {}, quota: {quota}}}]}}",
            t.alias,
            tier_dir(t.alias)
        ));
    }
    let mut settings = vec![
        format!("master.hostname={}", names.master_service_host()),
        format!("master.rpc_port={}", spec.master.rpc_port),
        format!("master.web_port={}", spec.master.web_port),
        format!("master.journal.dir={JOURNAL_DIR}"),
        format!("worker.rpc_port={}", spec.worker.rpc_port),
        format!("worker.web_port={}", spec.worker.web_port),
        format!("worker.data_port={}", spec.worker.data_port),
        format!("worker.data_dir={WORKER_DATA_DIR}"),
        format!("worker.tiers=[{}]", tiers.join(", ")),
        format!(
            "security.key_file={SECURITY_DIR}/{}",
            super::security::KEY_FILE
        ),
    ];
    if spec.master.journal.encrypted {
        settings.push(format!(
            "master.journal.encryption_key_file={SECURITY_DIR}/{}",
            super::security::JOURNAL_KEY_FILE
        ));
    }
    if let Some(tls) = &spec.tls {
        let server_name = names.tls_server_name(tls);
        settings.extend([
            "security.tls.enabled=true".to_string(),
            format!("security.tls.ca_file={TLS_DIR}/ca.crt"),
            format!("security.tls.server_name={server_name}"),
        ]);
        // One certificate for masters and workers: both are checked
        // against the one server name.
        for component in ["master", "worker"] {
            settings.push(format!("{component}.tls.cert_file={TLS_DIR}/tls.crt"));
            settings.push(format!("{component}.tls.key_file={TLS_DIR}/tls.key"));
        }
    }
    let raft = raft_addresses(names, spec, masters);
    if !raft.is_empty() {
        settings.push(format!(
            "master.embedded_journal.addresses={}",
            raft.join(",")
        ));
        settings.push(format!(
            "master.embedded_journal.port={}",
            spec.master.raft_port
        ));
        settings.push(format!(
            "master.rpc_addresses={}",
            master_rpc_addresses(names, spec, masters).join(",")
        ));
    }
    settings.extend(spec.properties.iter().map(|(k, v)| format!("{k}={v}")));
    let config = AlluxioConfig::load_from(None, &[], &settings)
        .map_err(|e| ConfigError::Invalid(e.message().to_string()))?;
    let yaml = serde_yaml::to_string(&config)
        .map_err(|e| ConfigError::Invalid(format!("cannot write the configuration: {e}")))?;
    Ok((config, yaml))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::cluster::{TierMedium, TierSpec};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn names() -> Names {
        Names::new("demo", "data")
    }

    /// The configuration of a cluster created with `spec`.
    fn config_of(spec: &AlluxioClusterSpec) -> Result<(AlluxioConfig, String), ConfigError> {
        alluxio_config(&names(), spec, Masters::new_cluster(spec.master.replicas))
    }

    #[test]
    fn the_config_holds_addresses_tiers_and_properties_and_parses_back() {
        let mut spec = AlluxioClusterSpec::default();
        spec.worker.tiers.push(TierSpec {
            alias: TierAlias::SSD,
            medium: TierMedium::HostPath,
            path: Some("/mnt/ssd".into()),
            storage_class_name: None,
            quota: Quantity("100Gi".into()),
        });
        spec.properties
            .insert("user.block_size".into(), "128MiB".into());
        let (config, yaml) = config_of(&spec).unwrap();
        assert_eq!(config.master.hostname, "demo-master.data.svc.cluster.local");
        assert_eq!(config.master.rpc_port, 19998);
        assert_eq!(config.worker.data_port, 29998);
        assert_eq!(config.user.block_size.0, 128 << 20);
        let tiers: Vec<_> = config
            .worker
            .tiers
            .iter()
            .map(|t| {
                (
                    t.alias.clone(),
                    t.dirs[0].path.display().to_string(),
                    t.dirs[0].quota.0,
                )
            })
            .collect();
        assert_eq!(
            tiers,
            vec![
                (
                    "MEM".to_string(),
                    "/opt/alluxio/tiers/mem".to_string(),
                    1 << 30
                ),
                (
                    "SSD".to_string(),
                    "/opt/alluxio/tiers/ssd".to_string(),
                    100 << 30
                )
            ]
        );
        // What the pods load is exactly this configuration.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("alluxio.yaml");
        std::fs::write(&file, &yaml).unwrap();
        let loaded = AlluxioConfig::load_from(Some(&file), &[], &[]).unwrap();
        assert_eq!(serde_yaml::to_string(&loaded).unwrap(), yaml);
    }

    #[test]
    fn tls_points_every_component_at_the_mounted_certificate() {
        let mut spec = AlluxioClusterSpec::default();
        assert!(!config_of(&spec).unwrap().0.security.tls.enabled);
        spec.tls = Some(crate::crd::cluster::TlsSpec {
            secret_name: "demo-tls".into(),
            server_name: None,
        });
        let (config, _) = config_of(&spec).unwrap();
        let tls = &config.security.tls;
        assert!(tls.enabled);
        assert_eq!(tls.ca_file, Some(format!("{TLS_DIR}/ca.crt").into()));
        assert_eq!(tls.server_name, "demo.data.alluxio");
        let cert = Some(format!("{TLS_DIR}/tls.crt").into());
        assert_eq!(config.master.tls.cert_file, cert);
        assert_eq!(config.worker.tls.cert_file, cert);
        assert_eq!(
            config.worker.tls.key_file,
            Some(format!("{TLS_DIR}/tls.key").into())
        );
        spec.tls.as_mut().unwrap().server_name = Some("cache.example.internal".into());
        let (config, _) = config_of(&spec).unwrap();
        assert_eq!(config.security.tls.server_name, "cache.example.internal");
        spec.properties
            .insert("security.tls.enabled".into(), "false".into());
        assert!(matches!(
            config_of(&spec),
            Err(ConfigError::OwnedKey { .. })
        ));
    }

    #[test]
    fn an_encrypted_journal_reads_its_key_from_the_secret() {
        let mut spec = AlluxioClusterSpec::default();
        let (plain, _) = config_of(&spec).unwrap();
        assert_eq!(plain.master.journal.encryption_key_file, None);
        spec.master.journal.encrypted = true;
        let (sealed, _) = config_of(&spec).unwrap();
        assert_eq!(
            sealed.master.journal.encryption_key_file,
            Some(format!("{SECURITY_DIR}/journal.key").into())
        );
        spec.properties.insert(
            "master.journal.encryption_key_file".into(),
            "/elsewhere".into(),
        );
        assert!(matches!(
            config_of(&spec),
            Err(ConfigError::OwnedKey { .. })
        ));
    }

    #[test]
    fn bad_properties_and_quotas_are_refused_by_name() {
        let mut spec = AlluxioClusterSpec::default();
        spec.properties
            .insert("user.no_such_key".into(), "1".into());
        let err = config_of(&spec).unwrap_err().to_string();
        assert!(err.contains("no_such_key"), "{err}");

        let mut spec = AlluxioClusterSpec::default();
        spec.properties.insert("master.rpc_port".into(), "1".into());
        assert!(matches!(
            config_of(&spec),
            Err(ConfigError::OwnedKey { .. })
        ));

        let mut spec = AlluxioClusterSpec::default();
        spec.worker.tiers[0].quota = Quantity("lots".into());
        let err = config_of(&spec).unwrap_err().to_string();
        assert!(err.contains("tiers[0].quota"), "{err}");
    }

    #[test]
    fn three_masters_get_the_raft_group_in_their_configuration() {
        let mut spec: AlluxioClusterSpec = serde_yaml::from_str("{}").unwrap();
        spec.master.replicas = 3;
        let (config, _) = config_of(&spec).unwrap();
        let host = |i: i32| format!("demo-master-{i}.demo-master-headless.data.svc.cluster.local");
        assert_eq!(
            config.master.embedded_journal.addresses,
            (0..3)
                .map(|i| format!("{}:19200", host(i)))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            config.master.rpc_addresses,
            (0..3)
                .map(|i| format!("{}:19998", host(i)))
                .collect::<Vec<_>>()
        );
        // Each master finds itself in the group by its pod name.
        let mut pod1 = config.clone();
        pod1.master.hostname = host(1);
        let group = alluxio_master::raft::RaftSettings::from_config(&pod1)
            .unwrap()
            .unwrap();
        assert_eq!(group.me, 2);
        spec.properties
            .insert("master.embedded_journal.addresses".into(), "x:1".into());
        assert!(matches!(
            config_of(&spec),
            Err(ConfigError::OwnedKey { .. })
        ));
    }

    #[test]
    fn one_master_may_be_a_raft_group_of_one() {
        let spec: AlluxioClusterSpec = serde_yaml::from_str("{}").unwrap();
        let single = config_of(&spec).unwrap().0;
        assert!(single.master.embedded_journal.addresses.is_empty());
        let group_of_one = Masters {
            count: 1,
            raft: true,
        };
        let (config, _) = alluxio_config(&names(), &spec, group_of_one).unwrap();
        let host = "demo-master-0.demo-master-headless.data.svc.cluster.local";
        assert_eq!(
            config.master.embedded_journal.addresses,
            vec![format!("{host}:19200")]
        );
        assert_eq!(config.master.rpc_addresses, vec![format!("{host}:19998")]);
    }
}
