//! The part of kube-controller-manager the simulation needs: pods (and
//! PersistentVolumeClaims) from StatefulSets, DaemonSets and Deployments,
//! replaced one at a time when the pod template changes (a Deployment's
//! pods are named after their template, so a new template replaces them
//! all at once, as `strategy: Recreate` does; there are no ReplicaSets),
//! and the workloads' status.
//!
//! Pods are built by pure functions (`statefulset_pods`, `daemonset_pods`,
//! `deployment_pods`) and applied by `sync_workloads`, which the kubelet
//! loop calls.

use super::Node;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

/// Annotation on each pod: a hash of the template it was made from.
pub const TEMPLATE_HASH: &str = "e2e.alluxio.rs/template-hash";

pub fn template_hash(template: &PodTemplateSpec) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(template)
        .unwrap_or_default()
        .hash(&mut h);
    format!("{:016x}", h.finish())
}

fn owner_ref<K: Resource<DynamicType = ()>>(owner: &K) -> Option<OwnerReference> {
    owner.controller_owner_ref(&())
}

/// A pod from `template`, owned by the workload, bound to `node`.
fn pod_from_template(
    name: String,
    template: &PodTemplateSpec,
    owner: Option<OwnerReference>,
    node: &str,
) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(TEMPLATE_HASH.into(), template_hash(template));
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.node_name = Some(node.to_string());
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// The pods a StatefulSet wants (`<name>-<ordinal>`, spread over the
/// nodes) and the claims of its volumeClaimTemplates.
pub fn statefulset_pods(
    sts: &StatefulSet,
    nodes: &[Node],
) -> (Vec<Pod>, Vec<PersistentVolumeClaim>) {
    let Some(spec) = &sts.spec else {
        return (Vec::new(), Vec::new());
    };
    let name = sts.name_any();
    let (mut pods, mut claims) = (Vec::new(), Vec::new());
    for ordinal in 0..spec.replicas.unwrap_or(1).max(0) {
        let pod_name = format!("{name}-{ordinal}");
        let node = &nodes[ordinal as usize % nodes.len()].name;
        let mut pod = pod_from_template(pod_name.clone(), &spec.template, owner_ref(sts), node);
        let pod_spec = pod.spec.get_or_insert_with(Default::default);
        pod_spec.hostname = Some(pod_name.clone());
        pod_spec.subdomain = spec.service_name.clone();
        pod.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(
                "statefulset.kubernetes.io/pod-name".into(),
                pod_name.clone(),
            );
        for template in spec.volume_claim_templates.iter().flatten() {
            let claim_name = format!("{}-{pod_name}", template.name_any());
            pod_spec
                .volumes
                .get_or_insert_with(Default::default)
                .push(Volume {
                    name: template.name_any(),
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: claim_name.clone(),
                        read_only: None,
                    }),
                    ..Default::default()
                });
            let mut claim = template.clone();
            claim.metadata = ObjectMeta {
                name: Some(claim_name),
                labels: spec.selector.match_labels.clone(),
                ..Default::default()
            };
            claims.push(claim);
        }
        pods.push(pod);
    }
    (pods, claims)
}

/// Whether `labels` satisfy a nodeSelector.
fn selects(selector: &Option<BTreeMap<String, String>>, labels: &BTreeMap<String, String>) -> bool {
    selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v))
}

/// The nodes a pod template's nodeSelector matches.
fn eligible_nodes<'a>(template: &PodTemplateSpec, nodes: &'a [Node]) -> Vec<&'a Node> {
    let node_selector = template.spec.as_ref().and_then(|s| s.node_selector.clone());
    nodes
        .iter()
        .filter(|n| selects(&node_selector, &n.labels))
        .collect()
}

/// The pods a DaemonSet wants: one per node its nodeSelector matches.
pub fn daemonset_pods(ds: &DaemonSet, nodes: &[Node]) -> Vec<Pod> {
    let Some(spec) = &ds.spec else {
        return Vec::new();
    };
    eligible_nodes(&spec.template, nodes)
        .into_iter()
        .map(|n| {
            pod_from_template(
                format!("{}-{}", ds.name_any(), n.name),
                &spec.template,
                owner_ref(ds),
                &n.name,
            )
        })
        .collect()
}

/// The pods a Deployment wants: `<name>-<template hash>-<n>`, spread
/// over the nodes its nodeSelector matches.
pub fn deployment_pods(deployment: &Deployment, nodes: &[Node]) -> Vec<Pod> {
    let Some(spec) = &deployment.spec else {
        return Vec::new();
    };
    let eligible = eligible_nodes(&spec.template, nodes);
    if eligible.is_empty() {
        return Vec::new();
    }
    let hash = template_hash(&spec.template);
    (0..spec.replicas.unwrap_or(1).max(0))
        .map(|n| {
            pod_from_template(
                format!("{}-{}-{n}", deployment.name_any(), &hash[..10]),
                &spec.template,
                owner_ref(deployment),
                &eligible[n as usize % eligible.len()].name,
            )
        })
        .collect()
}

pub fn pod_is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn hash_of(pod: &Pod) -> Option<&str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(TEMPLATE_HASH)
        .map(String::as_str)
}

/// Counts of a workload's pods after a sync.
struct Counts {
    existing: i32,
    ready: i32,
    updated: i32,
}

/// Brings the pods owned by `owner_uid` in `namespace` to `desired`:
/// creates the missing, deletes the unwanted, and replaces one pod with
/// an old template at a time, only while all the others are ready.
async fn sync_pods(
    pods: &Api<Pod>,
    owner_uid: &str,
    desired: Vec<Pod>,
) -> Result<Counts, kube::Error> {
    let existing: Vec<Pod> = pods
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|p| p.owner_references().iter().any(|o| o.uid == owner_uid))
        .collect();
    let wanted: BTreeMap<String, &Pod> = desired.iter().map(|p| (p.name_any(), p)).collect();
    for p in &existing {
        if !wanted.contains_key(&p.name_any()) {
            pods.delete(&p.name_any(), &DeleteParams::default()).await?;
        }
    }
    let mut counts = Counts {
        existing: 0,
        ready: 0,
        updated: 0,
    };
    let mut stale = Vec::new();
    for (name, want) in &wanted {
        match existing.iter().find(|p| &p.name_any() == name) {
            None => {
                pods.create(&PostParams::default(), want).await?;
                counts.existing += 1;
            }
            Some(have) => {
                counts.existing += 1;
                counts.ready += i32::from(pod_is_ready(have));
                if hash_of(have) == hash_of(want) {
                    counts.updated += 1;
                } else {
                    stale.push(name.clone());
                }
            }
        }
    }
    if let Some(name) = stale.first() {
        if counts.ready == counts.existing {
            pods.delete(name, &DeleteParams::default()).await?;
        }
    }
    Ok(counts)
}

/// One pass over every StatefulSet and DaemonSet.
pub async fn sync_workloads(client: &kube::Client, nodes: &[Node]) -> Result<(), kube::Error> {
    let statefulsets: Api<StatefulSet> = Api::all(client.clone());
    for sts in statefulsets.list(&ListParams::default()).await?.items {
        let ns = sts.namespace().unwrap_or_default();
        let (desired, claims) = statefulset_pods(&sts, nodes);
        let claims_api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
        for claim in claims {
            if claims_api.get_opt(&claim.name_any()).await?.is_none() {
                claims_api.create(&PostParams::default(), &claim).await?;
                claims_api
                    .patch_status(
                        &claim.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(json!({"status": {"phase": "Bound"}})),
                    )
                    .await?;
            }
        }
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let c = sync_pods(&pods, &sts.uid().unwrap_or_default(), desired).await?;
        let status = json!({"status": {
            "observedGeneration": sts.metadata.generation,
            "replicas": c.existing, "readyReplicas": c.ready, "availableReplicas": c.ready,
            "currentReplicas": c.updated, "updatedReplicas": c.updated,
        }});
        patch_status_if_changed(&Api::namespaced(client.clone(), &ns), &sts, status).await?;
    }
    let daemonsets: Api<DaemonSet> = Api::all(client.clone());
    for ds in daemonsets.list(&ListParams::default()).await?.items {
        let ns = ds.namespace().unwrap_or_default();
        let desired = daemonset_pods(&ds, nodes);
        let scheduled = desired.len();
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let c = sync_pods(&pods, &ds.uid().unwrap_or_default(), desired).await?;
        let status = json!({"status": {
            "observedGeneration": ds.metadata.generation,
            "desiredNumberScheduled": scheduled, "currentNumberScheduled": c.existing,
            "numberReady": c.ready, "numberAvailable": c.ready,
            "updatedNumberScheduled": c.updated, "numberMisscheduled": 0,
        }});
        patch_status_if_changed(&Api::namespaced(client.clone(), &ns), &ds, status).await?;
    }
    let deployments: Api<Deployment> = Api::all(client.clone());
    for deployment in deployments.list(&ListParams::default()).await?.items {
        let ns = deployment.namespace().unwrap_or_default();
        let desired = deployment_pods(&deployment, nodes);
        let wanted = desired.len() as i32;
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let c = sync_pods(&pods, &deployment.uid().unwrap_or_default(), desired).await?;
        let available = if c.ready >= wanted { "True" } else { "False" };
        let status = json!({"status": {
            "observedGeneration": deployment.metadata.generation,
            "replicas": c.existing, "readyReplicas": c.ready, "availableReplicas": c.ready,
            "updatedReplicas": c.updated,
            "conditions": [{"type": "Available", "status": available}],
        }});
        patch_status_if_changed(&Api::namespaced(client.clone(), &ns), &deployment, status).await?;
    }
    Ok(())
}

/// Patches `status` unless the object already has exactly those values.
async fn patch_status_if_changed<K>(
    api: &Api<K>,
    object: &K,
    status: serde_json::Value,
) -> Result<(), kube::Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let current = serde_json::to_value(object).unwrap_or_default();
    let unchanged = status["status"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| {
            current["status"][k] == *v || (v.is_null() && current["status"][k].is_null())
        });
    if !unchanged {
        api.patch_status(
            &object.name_any(),
            &PatchParams::default(),
            &Patch::Merge(status),
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DaemonSetSpec, StatefulSetSpec};
    use k8s_openapi::api::core::v1::PodSpec;

    fn nodes() -> Vec<Node> {
        vec![
            Node::new("node-0", &[("cache", "true")]),
            Node::new("node-1", &[]),
        ]
    }

    fn template(selector: Option<BTreeMap<String, String>>) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(BTreeMap::from([("app".into(), "x".into())])),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                node_selector: selector,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn statefulset_pods_are_numbered_with_their_claims() {
        let sts = StatefulSet {
            metadata: ObjectMeta {
                name: Some("m".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            spec: Some(StatefulSetSpec {
                replicas: Some(3),
                service_name: Some("m-headless".into()),
                template: template(None),
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some("journal".into()),
                        ..Default::default()
                    },
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (pods, claims) = statefulset_pods(&sts, &nodes());
        let names: Vec<String> = pods.iter().map(|p| p.name_any()).collect();
        assert_eq!(names, ["m-0", "m-1", "m-2"]);
        let spec = pods[1].spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("node-1"));
        assert_eq!(spec.subdomain.as_deref(), Some("m-headless"));
        assert_eq!(claims[2].name_any(), "journal-m-2");
        assert_eq!(pods[0].owner_references()[0].uid, "u");
        assert!(hash_of(&pods[0]).is_some());
    }

    #[test]
    fn deployment_pods_are_named_after_their_template() {
        let deployment = |replicas, selector| Deployment {
            metadata: ObjectMeta {
                name: Some("op".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::apps::v1::DeploymentSpec {
                replicas: Some(replicas),
                template: template(selector),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pods = deployment_pods(&deployment(2, None), &nodes());
        assert_eq!(pods.len(), 2);
        let hash = &hash_of(&pods[0]).unwrap()[..10];
        assert_eq!(pods[1].name_any(), format!("op-{hash}-1"));
        assert_eq!(
            pods[1].spec.as_ref().unwrap().node_name.as_deref(),
            Some("node-1")
        );
        let only_cache = BTreeMap::from([("cache".to_string(), "true".to_string())]);
        let placed = deployment_pods(&deployment(2, Some(only_cache)), &nodes());
        assert!(placed
            .iter()
            .all(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some("node-0")));
    }

    #[test]
    fn daemonset_pods_follow_the_node_selector() {
        let ds = |selector| DaemonSet {
            metadata: ObjectMeta {
                name: Some("w".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            spec: Some(DaemonSetSpec {
                template: template(selector),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(daemonset_pods(&ds(None), &nodes()).len(), 2);
        let only_cache = BTreeMap::from([("cache".to_string(), "true".to_string())]);
        let pods = daemonset_pods(&ds(Some(only_cache)), &nodes());
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].name_any(), "w-node-0");
    }
}
