//! A schema check of rendered Kubernetes objects against the OpenAPI
//! types that `k8s-openapi` generates from Kubernetes' own schemas, for
//! what `kubectl apply --validate=false` does not check: each object must
//! deserialize into its type, and serializing that back must keep every
//! field it had (a misspelt or misplaced field, which the types drop,
//! shows as a difference, as the API server's strict field validation
//! would report it).

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// Kinds that `k8s-openapi` has no type for, checked by their own
/// project's schema elsewhere (not here).
pub const UNCHECKED_KINDS: &[&str] = &["ServiceMonitor"];

/// The fields of `object` its schema does not know, or why it does not
/// fit its type; empty when it is valid.
pub fn schema_errors(object: &Value) -> Vec<String> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let typed = match kind {
        "ClusterRole" => round_trip::<ClusterRole>(object),
        "ClusterRoleBinding" => round_trip::<ClusterRoleBinding>(object),
        "ConfigMap" => round_trip::<ConfigMap>(object),
        "CSIDriver" => round_trip::<CSIDriver>(object),
        "CustomResourceDefinition" => round_trip::<CustomResourceDefinition>(object),
        "DaemonSet" => round_trip::<DaemonSet>(object),
        "Deployment" => round_trip::<Deployment>(object),
        "Role" => round_trip::<Role>(object),
        "RoleBinding" => round_trip::<RoleBinding>(object),
        "Secret" => round_trip::<Secret>(object),
        "Service" => round_trip::<Service>(object),
        "ServiceAccount" => round_trip::<ServiceAccount>(object),
        "StatefulSet" => round_trip::<StatefulSet>(object),
        "StorageClass" => round_trip::<StorageClass>(object),
        other if UNCHECKED_KINDS.contains(&other) => return vec![],
        other => return vec![format!("no schema known for kind {other:?}")],
    };
    match typed {
        Err(e) => vec![format!("{kind}: does not fit its schema: {e}")],
        Ok(typed) => {
            let mut errors = Vec::new();
            unknown_fields(object, &typed, kind, &mut errors);
            errors
        }
    }
}

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(
    object: &Value,
) -> Result<Value, String> {
    let typed: T = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

/// Every field of `original` that is missing from, or different in, `typed`.
fn unknown_fields(original: &Value, typed: &Value, path: &str, errors: &mut Vec<String>) {
    match (original, typed) {
        (Value::Object(fields), Value::Object(kept)) => {
            for (name, value) in fields {
                let here = format!("{path}.{name}");
                match kept.get(name) {
                    None if value.is_null() => {}
                    None => errors.push(format!("{here}: unknown field")),
                    Some(k) => unknown_fields(value, k, &here, errors),
                }
            }
        }
        (Value::Array(items), Value::Array(kept)) if items.len() == kept.len() => {
            for (i, (item, k)) in items.iter().zip(kept).enumerate() {
                unknown_fields(item, k, &format!("{path}[{i}]"), errors);
            }
        }
        (a, b) if a == b => {}
        (a, b) => errors.push(format!("{path}: {a} became {b}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_misplaced_field_is_reported_and_a_valid_object_is_not() {
        let good = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80, "targetPort": "http"}]}});
        assert_eq!(schema_errors(&good), Vec::<String>::new());
        let bad = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80, "targetport": "http"}]}});
        assert_eq!(
            schema_errors(&bad),
            ["Service.spec.ports[0].targetport: unknown field"]
        );
        let wrong_type = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s"}, "spec": {"ports": "80"}});
        assert!(schema_errors(&wrong_type)[0].contains("does not fit"));
        assert!(schema_errors(&json!({"kind": "Widget"}))[0].contains("no schema"));
    }
}
