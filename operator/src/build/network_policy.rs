//! The NetworkPolicy of a cluster (`spec.networkPolicy.enabled`, on by
//! default): only the cluster's own pods, the chart's operator and CSI
//! pods, and the client pods the spec names may reach the master's and the
//! workers' RPC and data ports; the web ports (health, metrics) stay open
//! to probes and Prometheus. A pod that can reach the ports can do
//! anything (there is no authentication yet), so this is the fence.

use super::names::Names;
use crate::crd::cluster::AlluxioClusterSpec;
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec as K8sNetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// The `app.kubernetes.io/name` of the chart's operator and CSI pods.
pub const CHART_POD_NAME: &str = "alluxio-operator";

pub fn network_policy_name(names: &Names) -> String {
    format!("{}-alluxio", names.cluster)
}

/// Labels that select every pod of the cluster (masters and workers).
fn cluster_pods(names: &Names) -> BTreeMap<String, String> {
    let mut labels = names.labels("any");
    labels.retain(|k, _| k == "app.kubernetes.io/name" || k == "app.kubernetes.io/instance");
    labels
}

fn selector(labels: BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels),
        ..Default::default()
    }
}

fn tcp(port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

pub fn network_policy(
    names: &Names,
    spec: &AlluxioClusterSpec,
    owner: OwnerReference,
) -> NetworkPolicy {
    let service_ports = || {
        vec![
            tcp(spec.master.rpc_port),
            tcp(spec.worker.rpc_port),
            tcp(spec.worker.data_port),
        ]
    };
    let mut callers = vec![NetworkPolicyPeer {
        // The chart's operator and CSI plugins, in whatever namespace.
        namespace_selector: Some(LabelSelector::default()),
        pod_selector: Some(selector(BTreeMap::from([(
            "app.kubernetes.io/name".to_string(),
            CHART_POD_NAME.to_string(),
        )]))),
        ..Default::default()
    }];
    let clients = &spec.network_policy.client_pod_labels;
    if !clients.is_empty() {
        callers.push(NetworkPolicyPeer {
            pod_selector: Some(selector(clients.clone())),
            ..Default::default()
        });
    }
    let rules = vec![
        // The cluster's own pods talk to each other on every port.
        NetworkPolicyIngressRule {
            from: Some(vec![NetworkPolicyPeer {
                pod_selector: Some(selector(cluster_pods(names))),
                ..Default::default()
            }]),
            ports: None,
        },
        NetworkPolicyIngressRule {
            from: Some(callers),
            ports: Some(service_ports()),
        },
        // Health probes and metrics scrapes, from anywhere.
        NetworkPolicyIngressRule {
            from: None,
            ports: Some(vec![tcp(spec.master.web_port), tcp(spec.worker.web_port)]),
        },
    ];
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(network_policy_name(names)),
            namespace: Some(names.namespace.clone()),
            labels: Some(names.labels("network")),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(K8sNetworkPolicySpec {
            pod_selector: Some(selector(cluster_pods(names))),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(rules),
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(rule: &NetworkPolicyIngressRule) -> Vec<i32> {
        rule.ports
            .iter()
            .flatten()
            .map(|p| match p.port {
                Some(IntOrString::Int(n)) => n,
                _ => panic!("named port"),
            })
            .collect()
    }

    #[test]
    fn only_the_cluster_the_chart_and_named_clients_reach_the_service_ports() {
        let names = Names::new("demo", "data");
        let mut spec: AlluxioClusterSpec = serde_yaml::from_str("{}").unwrap();
        assert!(spec.network_policy.enabled, "on by default");
        spec.network_policy
            .client_pod_labels
            .insert("role".into(), "spark".into());
        let policy = network_policy(&names, &spec, crate::build::test_owner());
        assert_eq!(policy.metadata.name.as_deref(), Some("demo-alluxio"));
        assert_eq!(policy.metadata.owner_references.unwrap()[0].name, "demo");
        let s = policy.spec.unwrap();
        let pods = s.pod_selector.unwrap().match_labels.unwrap();
        assert_eq!(pods["app.kubernetes.io/instance"], "demo");
        assert!(
            !pods.contains_key("app.kubernetes.io/component"),
            "masters and workers"
        );
        assert_eq!(s.policy_types.unwrap(), ["Ingress"]);
        let rules = s.ingress.unwrap();
        assert_eq!(rules.len(), 3);
        // Own pods: every port.
        assert!(rules[0].ports.is_none());
        // Operator, CSI and the named clients: RPC and data ports only.
        assert_eq!(
            ports(&rules[1]),
            [
                spec.master.rpc_port,
                spec.worker.rpc_port,
                spec.worker.data_port
            ]
        );
        let from = rules[1].from.as_ref().unwrap();
        assert_eq!(from.len(), 2);
        let chart = from[0]
            .pod_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap();
        assert_eq!(chart["app.kubernetes.io/name"], CHART_POD_NAME);
        assert!(from[0].namespace_selector.is_some(), "from any namespace");
        let clients = from[1]
            .pod_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap();
        assert_eq!(clients["role"], "spark");
        assert!(
            from[1].namespace_selector.is_none(),
            "the cluster's namespace only"
        );
        // Web ports from anywhere.
        assert!(rules[2].from.is_none());
        assert_eq!(
            ports(&rules[2]),
            [spec.master.web_port, spec.worker.web_port]
        );
    }
}
