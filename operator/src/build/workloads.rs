//! The objects of a cluster, built from its spec: the ConfigMap with
//! `alluxio.yaml`, the masters' headless and client Services, the master
//! StatefulSet and the worker DaemonSet. Pod templates carry a hash of
//! the configuration, so a changed configuration rolls the pods.

use super::config::{
    master_rpc_addresses, tier_dir, Masters, CONFIG_DIR, JOURNAL_DIR, SECURITY_DIR, TLS_DIR,
    WORKER_DATA_DIR,
};
use super::names::Names;
use crate::crd::cluster::{AlluxioClusterSpec, ImagePullPolicy, JournalMedium, TierMedium};
use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, EphemeralVolumeSource, HTTPGetAction, HostPathVolumeSource, KeyToPath,
    ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimTemplate, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    SecretVolumeSource, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// The image's non-root user and group (`alluxio` in images/Containerfile).
pub const IMAGE_USER: i64 = 65532;

/// Pod annotation with the hash of `alluxio.yaml`.
pub const CONFIG_HASH_ANNOTATION: &str = "alluxio.rs/config-hash";

/// Master StatefulSet annotation: the journal its masters keep, `raft` or
/// `single` (read back by `masters_of`, since one master may be either).
pub const JOURNAL_ANNOTATION: &str = "alluxio.rs/journal";

/// What every builder reads: the cluster's names, spec, owner reference,
/// the masters to build for (usually as the spec says; see
/// `build/membership.rs`) and the rendered configuration.
pub struct Inputs<'a> {
    pub names: &'a Names,
    pub spec: &'a AlluxioClusterSpec,
    pub masters: Masters,
    pub owner: OwnerReference,
    pub config_yaml: &'a str,
}

impl Inputs<'_> {
    fn meta(&self, name: String, component: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.names.namespace.clone()),
            labels: Some(self.names.labels(component)),
            owner_references: Some(vec![self.owner.clone()]),
            ..Default::default()
        }
    }

    pub fn config_hash(&self) -> String {
        format!("{:08x}", crc32fast::hash(self.config_yaml.as_bytes()))
    }

    fn pod_meta(&self, component: &str) -> ObjectMeta {
        let mut annotations =
            BTreeMap::from([(CONFIG_HASH_ANNOTATION.to_string(), self.config_hash())]);
        if self.spec.metrics.enabled {
            annotations.insert("prometheus.io/scrape".into(), "true".into());
            let port = match component {
                "master" => self.spec.master.web_port,
                _ => self.spec.worker.web_port,
            };
            annotations.insert("prometheus.io/port".into(), port.to_string());
        }
        ObjectMeta {
            labels: Some(self.names.labels(component)),
            annotations: Some(annotations),
            ..Default::default()
        }
    }
}

/// The masters a master StatefulSet was built for. One without the
/// journal annotation (built by an older operator) keeps a Raft journal
/// exactly when it has more than one master.
pub fn masters_of(sts: &StatefulSet) -> Option<Masters> {
    let count = sts.spec.as_ref()?.replicas?;
    let journal = sts
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(JOURNAL_ANNOTATION));
    Some(Masters {
        count,
        raft: count > 1 || journal.is_some_and(|j| j == "raft"),
    })
}

/// The configuration hash a pod template carries, if any.
pub fn config_hash_of(template: &PodTemplateSpec) -> Option<&str> {
    template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(CONFIG_HASH_ANNOTATION)
        .map(String::as_str)
}

pub fn config_map(inputs: &Inputs) -> ConfigMap {
    ConfigMap {
        metadata: inputs.meta(inputs.names.config_map(), "config"),
        data: Some(BTreeMap::from([(
            "alluxio.yaml".to_string(),
            inputs.config_yaml.to_string(),
        )])),
        ..Default::default()
    }
}

fn ports(rpc: i32, web: i32) -> Vec<ServicePort> {
    vec![
        ServicePort {
            name: Some("rpc".into()),
            port: rpc,
            target_port: Some(IntOrString::Int(rpc)),
            ..Default::default()
        },
        ServicePort {
            name: Some("web".into()),
            port: web,
            target_port: Some(IntOrString::Int(web)),
            ..Default::default()
        },
    ]
}

/// The headless Service naming each master pod, and the client Service.
pub fn master_services(inputs: &Inputs) -> (Service, Service) {
    let m = &inputs.spec.master;
    let selector = Some(inputs.names.labels("master"));
    let mut headless_ports = ports(m.rpc_port, m.web_port);
    if inputs.masters.raft {
        headless_ports.push(ServicePort {
            name: Some("raft".into()),
            port: m.raft_port,
            target_port: Some(IntOrString::Int(m.raft_port)),
            ..Default::default()
        });
    }
    // The headless Service names every master pod, ready or not: masters
    // find each other through it before any of them is ready.
    let headless = Service {
        metadata: inputs.meta(inputs.names.master_headless_service(), "master"),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: selector.clone(),
            ports: Some(headless_ports),
            ..Default::default()
        }),
        ..Default::default()
    };
    let client = Service {
        metadata: inputs.meta(inputs.names.master_service(), "master"),
        spec: Some(ServiceSpec {
            selector,
            ports: Some(ports(m.rpc_port, m.web_port)),
            ..Default::default()
        }),
        ..Default::default()
    };
    (headless, client)
}

fn container_ports(rpc: i32, web: i32) -> Vec<ContainerPort> {
    vec![
        ContainerPort {
            name: Some("rpc".into()),
            container_port: rpc,
            ..Default::default()
        },
        ContainerPort {
            name: Some("web".into()),
            container_port: web,
            ..Default::default()
        },
    ]
}

fn probe(path: &str, port: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(port),
            ..Default::default()
        }),
        period_seconds: Some(5),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..Default::default()
    }
}

/// The cluster's Secret, readable by the pod's user only: all of it for
/// masters, only the cluster key for workers (the journal key is none of
/// their business).
fn security_volume(inputs: &Inputs, masters: bool) -> Volume {
    let items = (!masters).then(|| {
        vec![KeyToPath {
            key: super::security::KEY_FILE.into(),
            path: super::security::KEY_FILE.into(),
            mode: None,
        }]
    });
    Volume {
        name: "security".into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(super::security::security_secret_name(inputs.names)),
            default_mode: Some(0o400),
            items,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// With `spec.tls`, its Secret at [`TLS_DIR`], readable by the pod's user
/// only.
fn add_tls_volume(inputs: &Inputs, mounts: &mut Vec<VolumeMount>, volumes: &mut Vec<Volume>) {
    let Some(tls) = &inputs.spec.tls else {
        return;
    };
    mounts.push(mount("tls", TLS_DIR));
    volumes.push(Volume {
        name: "tls".into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(tls.secret_name.clone()),
            default_mode: Some(0o400),
            ..Default::default()
        }),
        ..Default::default()
    });
}

fn config_volume(inputs: &Inputs) -> Volume {
    Volume {
        name: "config".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: inputs.names.config_map(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container(inputs: &Inputs, name: &str, args: Vec<String>) -> Container {
    Container {
        name: name.into(),
        image: Some(inputs.spec.image.clone()),
        image_pull_policy: Some(
            match inputs.spec.image_pull_policy {
                ImagePullPolicy::Always => "Always",
                ImagePullPolicy::IfNotPresent => "IfNotPresent",
                ImagePullPolicy::Never => "Never",
            }
            .into(),
        ),
        args: Some(args),
        // Servers bind the pod's IP (`--hostname $(POD_IP)`).
        env: Some(vec![
            EnvVar {
                name: "ALLUXIO_CONF".into(),
                value: Some(format!("{CONFIG_DIR}/alluxio.yaml")),
                ..Default::default()
            },
            field_env("POD_IP", "status.podIP"),
            field_env("POD_NAME", "metadata.name"),
        ]),
        ..Default::default()
    }
}

/// An environment variable from a field of the pod (the downward API).
fn field_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn claim_spec(size: &Quantity, storage_class: &Option<String>) -> PersistentVolumeClaimSpec {
    PersistentVolumeClaimSpec {
        access_modes: Some(vec!["ReadWriteOnce".into()]),
        storage_class_name: storage_class.clone(),
        resources: Some(VolumeResourceRequirements {
            requests: Some(BTreeMap::from([("storage".to_string(), size.clone())])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Masters and workers run as the image's non-root user; `fsGroup` makes
/// their volumes (journal claim, emptyDirs, the key Secret) theirs. A
/// worker with a HostPath tier runs as root: the kubelet creates a
/// DirectoryOrCreate hostPath owned by root and applies no fsGroup to it.
fn pod_security_context(as_root: bool) -> PodSecurityContext {
    if as_root {
        return PodSecurityContext {
            run_as_user: Some(0),
            run_as_group: Some(0),
            ..Default::default()
        };
    }
    PodSecurityContext {
        run_as_user: Some(IMAGE_USER),
        run_as_group: Some(IMAGE_USER),
        fs_group: Some(IMAGE_USER),
        run_as_non_root: Some(true),
        ..Default::default()
    }
}

pub fn master_statefulset(inputs: &Inputs) -> StatefulSet {
    let m = &inputs.spec.master;
    let fault_tolerant = inputs.masters.raft;
    // A member of a Raft group is known by its pod's stable DNS name.
    let hostname = if fault_tolerant {
        format!(
            "$(POD_NAME).{}.{}.svc.cluster.local",
            inputs.names.master_headless_service(),
            inputs.names.namespace
        )
    } else {
        "$(POD_IP)".to_string()
    };
    let mut c = container(
        inputs,
        "master",
        vec!["master".into(), "--hostname".into(), hostname],
    );
    let mut ports = container_ports(m.rpc_port, m.web_port);
    if fault_tolerant {
        ports.push(ContainerPort {
            name: Some("raft".into()),
            container_port: m.raft_port,
            ..Default::default()
        });
    }
    c.ports = Some(ports);
    c.readiness_probe = Some(probe("/readyz", m.web_port));
    c.liveness_probe = Some(probe("/healthz", m.web_port));
    c.resources = m.resources.clone();
    let mut mounts = vec![
        mount("config", CONFIG_DIR),
        mount("security", SECURITY_DIR),
        mount("journal", JOURNAL_DIR),
    ];
    let mut volumes = vec![config_volume(inputs), security_volume(inputs, true)];
    add_tls_volume(inputs, &mut mounts, &mut volumes);
    c.volume_mounts = Some(mounts);
    let mut claims = None;
    match m.journal.medium {
        JournalMedium::EmptyDir => volumes.push(Volume {
            name: "journal".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(m.journal.size.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        JournalMedium::PersistentVolumeClaim => {
            claims = Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some("journal".into()),
                    ..Default::default()
                },
                spec: Some(claim_spec(&m.journal.size, &m.journal.storage_class_name)),
                ..Default::default()
            }])
        }
    }
    let mut metadata = inputs.meta(inputs.names.master_statefulset(), "master");
    let journal = if fault_tolerant { "raft" } else { "single" };
    metadata.annotations = Some(BTreeMap::from([(
        JOURNAL_ANNOTATION.to_string(),
        journal.to_string(),
    )]));
    StatefulSet {
        metadata,
        spec: Some(StatefulSetSpec {
            replicas: Some(inputs.masters.count),
            service_name: Some(inputs.names.master_headless_service()),
            selector: LabelSelector {
                match_labels: Some(inputs.names.labels("master")),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(inputs.pod_meta("master")),
                spec: Some(PodSpec {
                    containers: vec![c],
                    volumes: Some(volumes),
                    security_context: Some(pod_security_context(false)),
                    ..Default::default()
                }),
            },
            volume_claim_templates: claims,
            // All members at once: a Raft group needs a majority up before
            // any member is ready (OrderedReady would wait for pod 0 alone).
            pod_management_policy: Some("Parallel".into()),
            // A master scaled away has left the Raft group (the operator
            // removed it first); its journal must not come back with a
            // new pod of that ordinal, which joins afresh instead.
            persistent_volume_claim_retention_policy: fault_tolerant.then(|| {
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_scaled: Some("Delete".into()),
                    when_deleted: Some("Retain".into()),
                }
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// For fault-tolerant masters: at most one master down at a time by choice
/// (drains, rolling restarts), so a majority always remains.
pub fn master_disruption_budget(inputs: &Inputs) -> Option<PodDisruptionBudget> {
    if inputs.masters.count <= 1 {
        return None;
    }
    Some(PodDisruptionBudget {
        metadata: inputs.meta(inputs.names.master_statefulset(), "master"),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(inputs.names.labels("master")),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

pub fn worker_daemonset(inputs: &Inputs) -> DaemonSet {
    let w = &inputs.spec.worker;
    let master = master_rpc_addresses(inputs.names, inputs.spec, inputs.masters).join(",");
    let mut c = container(
        inputs,
        "worker",
        vec![
            "--master".into(),
            master,
            "worker".into(),
            "--hostname".into(),
            "$(POD_IP)".into(),
        ],
    );
    let mut ports = container_ports(w.rpc_port, w.web_port);
    ports.push(ContainerPort {
        name: Some("data".into()),
        container_port: w.data_port,
        ..Default::default()
    });
    c.ports = Some(ports);
    c.readiness_probe = Some(probe("/readyz", w.web_port));
    c.liveness_probe = Some(probe("/healthz", w.web_port));
    c.resources = w.resources.clone();
    let mut mounts = vec![
        mount("config", CONFIG_DIR),
        mount("security", SECURITY_DIR),
        mount("data", WORKER_DATA_DIR),
    ];
    let mut volumes = vec![
        config_volume(inputs),
        security_volume(inputs, false),
        Volume {
            name: "data".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    ];
    add_tls_volume(inputs, &mut mounts, &mut volumes);
    for t in &w.tiers {
        let name = format!("tier-{}", format!("{:?}", t.alias).to_lowercase());
        mounts.push(mount(&name, &tier_dir(t.alias)));
        let mut v = Volume {
            name,
            ..Default::default()
        };
        match t.medium {
            TierMedium::Memory => {
                v.empty_dir = Some(EmptyDirVolumeSource {
                    medium: Some("Memory".into()),
                    size_limit: Some(t.quota.clone()),
                })
            }
            TierMedium::HostPath => {
                v.host_path = Some(HostPathVolumeSource {
                    path: t.path.clone().unwrap_or_default(),
                    type_: Some("DirectoryOrCreate".into()),
                })
            }
            TierMedium::PersistentVolumeClaim => {
                v.ephemeral = Some(EphemeralVolumeSource {
                    volume_claim_template: Some(PersistentVolumeClaimTemplate {
                        metadata: None,
                        spec: claim_spec(&t.quota, &t.storage_class_name),
                    }),
                })
            }
        }
        volumes.push(v);
    }
    c.volume_mounts = Some(mounts);
    DaemonSet {
        metadata: inputs.meta(inputs.names.worker_daemonset(), "worker"),
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(inputs.names.labels("worker")),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(inputs.pod_meta("worker")),
                spec: Some(PodSpec {
                    containers: vec![c],
                    volumes: Some(volumes),
                    security_context: Some(pod_security_context(
                        w.tiers.iter().any(|t| t.medium == TierMedium::HostPath),
                    )),
                    node_selector: (!w.node_selector.is_empty()).then(|| w.node_selector.clone()),
                    tolerations: (!w.tolerations.is_empty()).then(|| w.tolerations.clone()),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::config::alluxio_config;
    use crate::crd::cluster::{TierAlias, TierSpec};

    /// `f` of the objects of a cluster created with `spec`.
    fn build<T>(spec: &AlluxioClusterSpec, f: impl FnOnce(&Inputs) -> T) -> T {
        build_for(spec, Masters::new_cluster(spec.master.replicas), f)
    }

    fn build_for<T>(
        spec: &AlluxioClusterSpec,
        masters: Masters,
        f: impl FnOnce(&Inputs) -> T,
    ) -> T {
        let names = Names::new("demo", "data");
        let (_, yaml) = alluxio_config(&names, spec, masters).unwrap();
        let inputs = Inputs {
            names: &names,
            spec,
            masters,
            owner: crate::build::test_owner(),
            config_yaml: &yaml,
        };
        f(&inputs)
    }

    #[test]
    fn every_object_is_owned_labelled_and_named_after_the_cluster() {
        let spec = AlluxioClusterSpec::default();
        let (cm, (headless, client), sts, ds) = build(&spec, |inputs| {
            (
                config_map(inputs),
                master_services(inputs),
                master_statefulset(inputs),
                worker_daemonset(inputs),
            )
        });
        let metas = [
            &cm.metadata,
            &headless.metadata,
            &client.metadata,
            &sts.metadata,
            &ds.metadata,
        ];
        for m in metas {
            assert_eq!(m.owner_references.as_ref().unwrap()[0].name, "demo");
            assert_eq!(m.namespace.as_deref(), Some("data"));
            assert_eq!(
                m.labels.as_ref().unwrap()["app.kubernetes.io/instance"],
                "demo"
            );
        }
        assert_eq!(cm.metadata.name.as_deref(), Some("demo-config"));
        assert!(cm.data.unwrap()["alluxio.yaml"].contains("demo-master.data.svc.cluster.local"));
        assert_eq!(headless.spec.unwrap().cluster_ip.as_deref(), Some("None"));
        assert_eq!(client.spec.unwrap().ports.unwrap()[0].port, 19998);
    }

    #[test]
    fn three_masters_form_a_raft_group_by_their_pod_names() {
        let mut spec = AlluxioClusterSpec::default();
        spec.master.replicas = 3;
        let (sts, (headless, _), pdb, ds) = build(&spec, |inputs| {
            (
                master_statefulset(inputs),
                master_services(inputs),
                master_disruption_budget(inputs),
                worker_daemonset(inputs),
            )
        });
        let sts = sts.spec.unwrap();
        assert_eq!(sts.pod_management_policy.as_deref(), Some("Parallel"));
        let pod = sts.template.spec.unwrap();
        let c = &pod.containers[0];
        let args = c.args.clone().unwrap();
        assert_eq!(
            args[2],
            "$(POD_NAME).demo-master-headless.data.svc.cluster.local"
        );
        assert!(c.env.as_ref().unwrap().iter().any(|e| e.name == "POD_NAME"));
        let ports = c.ports.as_ref().unwrap();
        assert!(ports
            .iter()
            .any(|p| p.name.as_deref() == Some("raft") && p.container_port == 19200));
        let headless_ports = headless.spec.unwrap().ports.unwrap();
        assert!(headless_ports.iter().any(|p| p.port == 19200));
        let pdb = pdb.expect("a budget for three masters").spec.unwrap();
        assert_eq!(pdb.max_unavailable, Some(IntOrString::Int(1)));
        // Workers know every master.
        let worker_args = ds.spec.unwrap().template.spec.unwrap().containers[0]
            .args
            .clone()
            .unwrap();
        assert_eq!(
            worker_args[1],
            (0..3)
                .map(|i| format!(
                    "demo-master-{i}.demo-master-headless.data.svc.cluster.local:19998"
                ))
                .collect::<Vec<_>>()
                .join(",")
        );
        // One master: no group, no budget, the client Service.
        let spec = AlluxioClusterSpec::default();
        assert!(build(&spec, master_disruption_budget).is_none());
        let args = build(&spec, worker_daemonset)
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .containers[0]
            .args
            .clone()
            .unwrap();
        assert_eq!(args[1], "demo-master.data.svc.cluster.local:19998");
    }

    #[test]
    fn a_tls_secret_is_mounted_in_masters_and_workers() {
        let mut spec = AlluxioClusterSpec::default();
        let tls_of = |pod: PodSpec| {
            let volume = pod.volumes.unwrap().into_iter().find(|v| v.name == "tls");
            let mounted = pod.containers[0]
                .volume_mounts
                .as_ref()
                .unwrap()
                .iter()
                .any(|m| m.name == "tls" && m.mount_path == TLS_DIR);
            volume.map(|v| (v.secret.unwrap(), mounted))
        };
        let master = |spec: &AlluxioClusterSpec| {
            let sts = build(spec, master_statefulset).spec.unwrap();
            tls_of(sts.template.spec.unwrap())
        };
        let worker = |spec: &AlluxioClusterSpec| {
            let ds = build(spec, worker_daemonset).spec.unwrap();
            tls_of(ds.template.spec.unwrap())
        };
        assert!(master(&spec).is_none() && worker(&spec).is_none());
        spec.tls = Some(crate::crd::cluster::TlsSpec {
            secret_name: "demo-tls".into(),
            server_name: None,
        });
        for (secret, mounted) in [master(&spec).unwrap(), worker(&spec).unwrap()] {
            assert!(mounted);
            assert_eq!(secret.secret_name.as_deref(), Some("demo-tls"));
            assert_eq!(secret.default_mode, Some(0o400));
        }
    }

    #[test]
    fn masters_get_the_whole_secret_and_workers_only_the_cluster_key() {
        let spec = AlluxioClusterSpec::default();
        let secret_of = |volumes: Vec<Volume>| {
            volumes
                .into_iter()
                .find(|v| v.name == "security")
                .and_then(|v| v.secret)
                .unwrap()
        };
        let master = build(&spec, master_statefulset).spec.unwrap();
        let master = secret_of(master.template.spec.unwrap().volumes.unwrap());
        assert_eq!(master.items, None, "the journal key too");
        let worker = build(&spec, worker_daemonset).spec.unwrap();
        let worker = secret_of(worker.template.spec.unwrap().volumes.unwrap());
        let items = worker.items.unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].key, super::super::security::KEY_FILE);
        assert_eq!(worker.default_mode, Some(0o400));
    }

    #[test]
    fn the_statefulset_says_which_journal_its_masters_keep() {
        let spec = AlluxioClusterSpec::default();
        let single = build(&spec, master_statefulset);
        assert_eq!(
            masters_of(&single),
            Some(Masters {
                count: 1,
                raft: false
            })
        );
        let group_of_one = Masters {
            count: 1,
            raft: true,
        };
        let sts = build_for(&spec, group_of_one, master_statefulset);
        assert_eq!(masters_of(&sts), Some(group_of_one));
        // A member of a group is known by its pod name, even alone.
        let args = sts.spec.unwrap().template.spec.unwrap().containers[0]
            .args
            .clone()
            .unwrap();
        assert_eq!(
            args[2],
            "$(POD_NAME).demo-master-headless.data.svc.cluster.local"
        );
        // An older operator's StatefulSet: a group exactly for several.
        let mut three = build(&spec, master_statefulset);
        three.metadata.annotations = None;
        three.spec.as_mut().unwrap().replicas = Some(3);
        assert_eq!(masters_of(&three), Some(Masters::new_cluster(3)));
        three.spec.as_mut().unwrap().replicas = Some(1);
        assert_eq!(masters_of(&three), Some(Masters::new_cluster(1)));
    }

    #[test]
    fn the_master_statefulset_follows_replicas_and_journal_storage() {
        let mut spec = AlluxioClusterSpec::default();
        spec.master.replicas = 3;
        let sts = build(&spec, master_statefulset).spec.unwrap();
        assert_eq!(sts.replicas, Some(3));
        assert_eq!(sts.service_name.as_deref(), Some("demo-master-headless"));
        // A master scaled away left the group: its journal goes with it.
        let retention = sts
            .persistent_volume_claim_retention_policy
            .as_ref()
            .unwrap();
        assert_eq!(retention.when_scaled.as_deref(), Some("Delete"));
        assert_eq!(retention.when_deleted.as_deref(), Some("Retain"));
        let claims = sts.volume_claim_templates.unwrap();
        assert_eq!(claims[0].metadata.name.as_deref(), Some("journal"));
        let pod = sts.template.spec.unwrap();
        let c = &pod.containers[0];
        assert_eq!(c.args.as_ref().unwrap()[0], "master");
        assert!(c
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .any(|m| m.name == "journal" && m.mount_path == JOURNAL_DIR));

        spec.master.journal.medium = JournalMedium::EmptyDir;
        let sts = build(&spec, master_statefulset).spec.unwrap();
        assert!(sts.volume_claim_templates.is_none());
        let volumes = sts.template.spec.unwrap().volumes.unwrap();
        assert!(volumes
            .iter()
            .any(|v| v.name == "journal" && v.empty_dir.is_some()));
    }

    #[test]
    fn pods_run_as_the_image_user_unless_a_worker_needs_a_host_directory() {
        let mut spec = AlluxioClusterSpec::default();
        let user = |pod: PodSpec| {
            let sc = pod.security_context.unwrap();
            (sc.run_as_user, sc.fs_group, sc.run_as_non_root)
        };
        let master = build(&spec, master_statefulset)
            .spec
            .unwrap()
            .template
            .spec
            .unwrap();
        assert_eq!(
            user(master),
            (Some(IMAGE_USER), Some(IMAGE_USER), Some(true))
        );
        let worker = build(&spec, worker_daemonset)
            .spec
            .unwrap()
            .template
            .spec
            .unwrap();
        assert_eq!(
            user(worker),
            (Some(IMAGE_USER), Some(IMAGE_USER), Some(true))
        );
        spec.worker.tiers.push(TierSpec {
            alias: TierAlias::SSD,
            medium: TierMedium::HostPath,
            path: Some("/mnt/ssd".into()),
            storage_class_name: None,
            quota: Quantity("10Gi".into()),
        });
        let worker = build(&spec, worker_daemonset)
            .spec
            .unwrap()
            .template
            .spec
            .unwrap();
        assert_eq!(user(worker), (Some(0), None, None));
    }

    #[test]
    fn worker_tiers_become_volumes_and_placement_is_kept() {
        let mut spec = AlluxioClusterSpec::default();
        spec.worker.tiers.push(TierSpec {
            alias: TierAlias::SSD,
            medium: TierMedium::HostPath,
            path: Some("/mnt/ssd".into()),
            storage_class_name: None,
            quota: Quantity("10Gi".into()),
        });
        spec.worker.tiers.push(TierSpec {
            alias: TierAlias::HDD,
            medium: TierMedium::PersistentVolumeClaim,
            path: None,
            storage_class_name: Some("slow".into()),
            quota: Quantity("1Ti".into()),
        });
        spec.worker
            .node_selector
            .insert("alluxio.rs/cache".into(), "true".into());
        let ds = build(&spec, worker_daemonset).spec.unwrap();
        let pod = ds.template.spec.unwrap();
        let volumes = pod.volumes.unwrap();
        let by_name = |n: &str| volumes.iter().find(|v| v.name == n).unwrap();
        assert_eq!(
            by_name("tier-mem")
                .empty_dir
                .as_ref()
                .unwrap()
                .medium
                .as_deref(),
            Some("Memory")
        );
        assert_eq!(
            by_name("tier-ssd").host_path.as_ref().unwrap().path,
            "/mnt/ssd"
        );
        assert!(by_name("tier-hdd").ephemeral.is_some());
        assert_eq!(pod.node_selector.unwrap()["alluxio.rs/cache"], "true");
        let args = pod.containers[0].args.clone().unwrap();
        assert_eq!(
            args,
            vec![
                "--master",
                "demo-master.data.svc.cluster.local:19998",
                "worker",
                "--hostname",
                "$(POD_IP)"
            ]
        );
        let ports: Vec<(String, i32)> = pod.containers[0]
            .ports
            .clone()
            .unwrap()
            .into_iter()
            .map(|p| (p.name.unwrap(), p.container_port))
            .collect();
        assert_eq!(
            ports,
            [("rpc", 29999), ("web", 30000), ("data", 29998)].map(|(n, p)| (n.to_string(), p))
        );
    }

    #[test]
    fn a_configuration_change_changes_the_pod_template() {
        let spec = AlluxioClusterSpec::default();
        let before = build(&spec, worker_daemonset);
        let mut changed = spec.clone();
        changed
            .properties
            .insert("user.block_size".into(), "256MiB".into());
        let after = build(&changed, worker_daemonset);
        let hash = |d: &DaemonSet| {
            config_hash_of(&d.spec.as_ref().unwrap().template)
                .unwrap()
                .to_string()
        };
        assert_ne!(hash(&before), hash(&after));
        assert_eq!(hash(&before), hash(&build(&spec, worker_daemonset)));
    }
}
