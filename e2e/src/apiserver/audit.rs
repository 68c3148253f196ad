//! Who asked for what: every resource request is recorded with the user
//! it came from (the `Impersonate-User` header, as clients send it when
//! they act as a ServiceAccount), and RBAC rules can be checked against
//! the record. The server does not enforce RBAC; tests use this to show
//! that a Role or ClusterRole (say, the Helm chart's) allows every
//! request a component actually made.

use serde_json::Value;

/// One request, in RBAC's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub user: String,
    /// get, list, watch, create, update, patch, delete.
    pub verb: &'static str,
    /// API group, `""` for the core group.
    pub group: String,
    /// Plural, with `/status` for the status subresource.
    pub resource: String,
    /// `""` for cluster-scoped requests.
    pub namespace: String,
}

/// The RBAC verb of an HTTP request.
pub fn verb(method: &axum::http::Method, named: bool, watch: bool) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET if watch => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
}

/// The rules of a Role or ClusterRole, with where they apply.
#[derive(Clone, Debug)]
pub struct Grant {
    /// `None` for a ClusterRole (every namespace and cluster scope).
    pub namespace: Option<String>,
    pub rules: Vec<Value>,
}

impl Grant {
    /// Grants of every Role and ClusterRole among `objects`.
    pub fn from_objects(objects: &[Value]) -> Vec<Grant> {
        objects
            .iter()
            .filter(|o| matches!(o["kind"].as_str(), Some("Role" | "ClusterRole")))
            .map(|o| Grant {
                namespace: (o["kind"] == "Role").then(|| {
                    o["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("default")
                        .to_string()
                }),
                rules: o["rules"].as_array().cloned().unwrap_or_default(),
            })
            .collect()
    }

    pub fn allows(&self, e: &AuditEntry) -> bool {
        if let Some(ns) = &self.namespace {
            if *ns != e.namespace {
                return false;
            }
        }
        let has = |list: &Value, want: &str| {
            list.as_array()
                .is_some_and(|l| l.iter().any(|v| v == "*" || v == want))
        };
        self.rules.iter().any(|r| {
            has(&r["apiGroups"], &e.group)
                && has(&r["resources"], &e.resource)
                && has(&r["verbs"], e.verb)
        })
    }
}

/// The requests no grant allows.
pub fn denied<'a>(entries: &'a [AuditEntry], grants: &[Grant]) -> Vec<&'a AuditEntry> {
    entries
        .iter()
        .filter(|e| !grants.iter().any(|g| g.allows(e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_allow_by_group_resource_verb_and_namespace() {
        let grants = Grant::from_objects(&[
            json!({"kind": "ClusterRole", "rules": [
                {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["get", "patch"]}]}),
            json!({"kind": "Role", "metadata": {"namespace": "ops"}, "rules": [
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["*"]}]}),
        ]);
        let entry = |verb, group: &str, resource: &str, ns: &str| AuditEntry {
            user: "u".into(),
            verb,
            group: group.into(),
            resource: resource.into(),
            namespace: ns.into(),
        };
        let ok = [
            entry("patch", "apps", "daemonsets", "a"),
            entry("update", "coordination.k8s.io", "leases", "ops"),
        ];
        let refused = [
            entry("delete", "apps", "daemonsets", "a"),
            entry("get", "apps", "daemonsets/status", "a"),
            entry("get", "coordination.k8s.io", "leases", "other"),
        ];
        assert!(denied(&ok, &grants).is_empty());
        assert_eq!(denied(&refused, &grants).len(), 3);
    }
}
