//! Label selectors as the API server takes them in `?labelSelector=`:
//! `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x,y)`,
//! comma-separated (all must hold); and field selectors
//! (`?fieldSelector=`): `=`, `==` and `!=` on the fields the real server
//! supports for every kind and for pods (`metadata.name`,
//! `metadata.namespace`, `spec.nodeName`, `status.phase`).

use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    labels: Vec<Requirement>,
    /// Field path (JSON pointer) and the value it must (not) have.
    fields: Vec<(String, String, bool)>,
}

const SELECTABLE_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "status.phase",
];

impl Selector {
    pub fn parse(raw: &str) -> Result<Selector, String> {
        let mut out = Vec::new();
        for part in split_top_level(raw) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let bad = || format!("invalid label selector {raw:?} at {part:?}");
            let req = if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(key(k).ok_or_else(bad)?, v.trim().to_string())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(key(k).ok_or_else(bad)?, v.trim().to_string())
            } else if let Some((k, set)) = part.split_once(" notin ") {
                Requirement::NotIn(key(k).ok_or_else(bad)?, values(set).ok_or_else(bad)?)
            } else if let Some((k, set)) = part.split_once(" in ") {
                Requirement::In(key(k).ok_or_else(bad)?, values(set).ok_or_else(bad)?)
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::NotExists(key(k).ok_or_else(bad)?)
            } else {
                Requirement::Exists(key(part).ok_or_else(bad)?)
            };
            out.push(req);
        }
        Ok(Selector {
            labels: out,
            fields: Vec::new(),
        })
    }

    /// Adds a field selector's requirements.
    pub fn with_fields(mut self, raw: &str) -> Result<Selector, String> {
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, value, equal) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, v, true)
            } else {
                return Err(format!("invalid field selector {raw:?} at {part:?}"));
            };
            let field = field.trim();
            if !SELECTABLE_FIELDS.contains(&field) {
                return Err(format!(
                    "field label not supported: {field} (supported: {})",
                    SELECTABLE_FIELDS.join(", ")
                ));
            }
            let pointer = format!("/{}", field.replace('.', "/"));
            self.fields.push((pointer, value.trim().to_string(), equal));
        }
        Ok(self)
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels: BTreeMap<String, String> = object
            .pointer("/metadata/labels")
            .and_then(|l| serde_json::from_value(l.clone()).ok())
            .unwrap_or_default();
        let fields_hold = self.fields.iter().all(|(pointer, want, equal)| {
            let have = object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("");
            (have == want) == *equal
        });
        fields_hold
            && self.labels.iter().all(|r| match r {
                Requirement::Equals(k, v) => labels.get(k) == Some(v),
                Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
                Requirement::Exists(k) => labels.contains_key(k),
                Requirement::NotExists(k) => !labels.contains_key(k),
                Requirement::In(k, set) => labels.get(k).is_some_and(|v| set.contains(v)),
                Requirement::NotIn(k, set) => labels.get(k).is_none_or(|v| !set.contains(v)),
            })
    }
}

/// Splits at commas outside parentheses.
fn split_top_level(raw: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in raw.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&raw[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&raw[start..]);
    parts
}

fn key(raw: &str) -> Option<String> {
    let k = raw.trim();
    (!k.is_empty() && !k.contains(char::is_whitespace)).then(|| k.to_string())
}

fn values(raw: &str) -> Option<Vec<String>> {
    let inner = raw.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(inner.split(',').map(|v| v.trim().to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"labels": labels}})
    }

    #[test]
    fn every_operator_selects_what_kubernetes_would() {
        let o = obj(json!({"app": "alluxio", "tier": "mem"}));
        let yes = [
            "",
            "app=alluxio",
            "app==alluxio,tier=mem",
            "app",
            "!other",
            "tier in (mem, ssd)",
            "tier notin (hdd)",
            "app!=other",
        ];
        for s in yes {
            assert!(Selector::parse(s).unwrap().matches(&o), "{s}");
        }
        let no = [
            "app=x",
            "other",
            "!app",
            "tier in (hdd)",
            "tier notin (mem,ssd)",
            "app!=alluxio",
        ];
        for s in no {
            assert!(!Selector::parse(s).unwrap().matches(&o), "{s}");
        }
        assert!(Selector::parse("a in x").is_err());
        let named = json!({"metadata": {"name": "demo"}, "spec": {"nodeName": "n1"}});
        let by_name = Selector::default()
            .with_fields("metadata.name=demo")
            .unwrap();
        assert!(by_name.matches(&named));
        let elsewhere = Selector::default()
            .with_fields("spec.nodeName!=n1")
            .unwrap();
        assert!(!elsewhere.matches(&named));
        assert!(Selector::default().with_fields("spec.replicas=1").is_err());
        assert!(Selector::parse("=b").is_err());
    }
}
