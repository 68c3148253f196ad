//! Cluster DNS, simulated with each pod's own `/etc/hosts` (bind-mounted
//! in the pod's mount namespace and rewritten in place as pods come and
//! go): pod host names, headless Service records per pod, and ordinary
//! Services resolving to one of their pods' IPs (a ready one when there
//! is one), since no kube-proxy gives them virtual IPs here.

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::ResourceExt;
use std::collections::{BTreeMap, HashMap};

pub const CLUSTER_DOMAIN: &str = "cluster.local";

fn selected_by(service: &Service, pod: &Pod) -> bool {
    let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    let labels = pod.labels();
    pod.namespace() == service.namespace()
        && !selector.is_empty()
        && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The hosts file of `own` (at `own_ip`), given every pod's IP by uid.
pub fn hosts_file(
    own: &Pod,
    own_ip: &str,
    pods: &[Pod],
    ips: &HashMap<String, String>,
    services: &[Service],
) -> String {
    let ip_of = |p: &Pod| ips.get(&p.uid().unwrap_or_default()).cloned();
    // name -> ip; BTreeMap keeps the file stable between rewrites.
    let mut records: BTreeMap<String, String> = BTreeMap::new();
    let own_ns = own.namespace().unwrap_or_default();
    let own_host = own
        .spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .unwrap_or_else(|| own.name_any());
    records.insert(own_host, own_ip.to_string());
    for svc in services {
        let ns = svc.namespace().unwrap_or_default();
        let name = svc.name_any();
        let fqdn = format!("{name}.{ns}.svc.{CLUSTER_DOMAIN}");
        let headless = svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None");
        let mut members: Vec<&Pod> = pods.iter().filter(|p| selected_by(svc, p)).collect();
        // Ready pods first, then by name, so the choice is stable.
        members.sort_by_key(|p| (!super::workloads::pod_is_ready(p), p.name_any()));
        if headless {
            for p in &members {
                let spec = p.spec.as_ref();
                let (Some(host), Some(sub)) = (
                    spec.and_then(|s| s.hostname.as_ref()),
                    spec.and_then(|s| s.subdomain.as_ref()),
                ) else {
                    continue;
                };
                if *sub == name {
                    if let Some(ip) = ip_of(p) {
                        records.insert(format!("{host}.{fqdn}"), ip);
                    }
                }
            }
        }
        if let Some(ip) = members.iter().find_map(|p| ip_of(p)) {
            records.insert(fqdn.clone(), ip.clone());
            records.insert(format!("{name}.{ns}.svc"), ip.clone());
            records.insert(format!("{name}.{ns}"), ip.clone());
            if ns == own_ns {
                records.insert(name, ip);
            }
        }
    }
    let mut out = String::from("# Written by the e2e process kubelet (simulated cluster DNS)\n");
    out.push_str("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (name, ip) in records {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus, ServiceSpec};
    use kube::api::ObjectMeta;

    fn pod(name: &str, uid: &str, sub: Option<&str>, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(uid.into()),
                labels: Some(BTreeMap::from([("app".into(), "m".into())])),
                ..Default::default()
            },
            spec: Some(PodSpec {
                hostname: sub.map(|_| name.to_string()),
                subdomain: sub.map(String::from),
                ..Default::default()
            }),
            status: Some(PodStatus {
                conditions: Some(vec![k8s_openapi::api::core::v1::PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn service(name: &str, headless: bool) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some(BTreeMap::from([("app".into(), "m".into())])),
                cluster_ip: headless.then(|| "None".to_string()),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn services_resolve_to_their_pods_ready_ones_first() {
        let pods = vec![
            pod("m-0", "a", Some("m-headless"), false),
            pod("m-1", "b", Some("m-headless"), true),
        ];
        let ips = HashMap::from([
            ("a".to_string(), "127.9.0.2".to_string()),
            ("b".to_string(), "127.9.0.3".to_string()),
        ]);
        let services = vec![service("m", false), service("m-headless", true)];
        let hosts = hosts_file(&pods[0], "127.9.0.2", &pods, &ips, &services);
        assert!(
            hosts.contains("127.9.0.3\tm.ns.svc.cluster.local\n"),
            "{hosts}"
        );
        assert!(hosts.contains("127.9.0.2\tm-0.m-headless.ns.svc.cluster.local\n"));
        assert!(hosts.contains("127.9.0.3\tm-1.m-headless.ns.svc.cluster.local\n"));
        assert!(hosts.contains("127.9.0.2\tm-0\n"));
        assert!(hosts.contains("127.9.0.3\tm\n"));
    }
}
