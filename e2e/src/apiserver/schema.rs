//! Structural-schema handling of custom resources, as the real API server
//! does it on every write: defaults are filled in, unknown fields are
//! pruned, and values are checked against `type`, `required`, `enum`,
//! `pattern`, `minimum`/`maximum`, `minLength`, `nullable` and
//! `x-kubernetes-int-or-string`, with messages in the real server's words.
//! CEL rules (`x-kubernetes-validations`) are evaluated afterwards, on
//! the defaulted object (`cel`).

use serde_json::{Map, Value};

/// Fills defaults, prunes and validates `object` (a whole resource) with
/// the CRD version's `openAPIV3Schema`, then checks its CEL rules (`old`
/// is the stored object on updates). All errors, joined, on failure.
pub fn admit(schema: &Value, object: &mut Value, old: Option<&Value>) -> Result<(), String> {
    let mut errors = Vec::new();
    if let (Some(props), Some(o)) = (schema["properties"].as_object(), object.as_object_mut()) {
        // apiVersion, kind and metadata are the server's, not the schema's.
        for (key, sub) in props {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            fill_default(o, key, sub);
            if let Some(v) = o.get_mut(key) {
                check(sub, v, key, &mut errors);
            }
        }
        o.retain(|k, _| {
            props.contains_key(k) || matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
        });
        for r in schema["required"].as_array().into_iter().flatten() {
            if let Some(r) = r.as_str() {
                if !o.contains_key(r) {
                    errors.push(format!("{r}: Required value"));
                }
            }
        }
    }
    if errors.is_empty() {
        if let (Some(props), Some(o)) = (schema["properties"].as_object(), object.as_object()) {
            for (key, sub) in props.iter().filter(|(k, _)| *k != "metadata") {
                if let Some(v) = o.get(key) {
                    let old_value = old.and_then(|o| o.get(key));
                    super::cel::check_rules(sub, v, old_value, key, &mut errors);
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join(", "))
    }
}

fn fill_default(o: &mut Map<String, Value>, key: &str, schema: &Value) {
    if !o.contains_key(key) {
        if let Some(d) = schema.get("default") {
            o.insert(key.to_string(), d.clone());
        }
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn check(schema: &Value, v: &mut Value, path: &str, errors: &mut Vec<String>) {
    if v.is_null() {
        if !schema["nullable"].as_bool().unwrap_or(false) {
            errors.push(format!(
                "{path}: Invalid value: \"null\": {path} in body must not be null"
            ));
        }
        return;
    }
    if schema["x-kubernetes-int-or-string"]
        .as_bool()
        .unwrap_or(false)
    {
        if !(v.is_string() || v.is_i64() || v.is_u64()) {
            errors.push(format!(
                "{path}: Invalid value: {}: {path} in body must be of type int-or-string",
                show(v)
            ));
        }
        return;
    }
    let ty = schema["type"].as_str().unwrap_or("");
    let type_ok = match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    };
    if !type_ok {
        errors.push(format!(
            "{path}: Invalid value: {}: {path} in body must be of type {ty}",
            show(v)
        ));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(v) {
            let list: Vec<String> = allowed.iter().filter(|a| !a.is_null()).map(show).collect();
            errors.push(format!(
                "{path}: Unsupported value: {}: supported values: {}",
                show(v),
                list.join(", ")
            ));
        }
    }
    match v {
        Value::String(s) => {
            if let Some(p) = schema["pattern"].as_str() {
                if !regex::Regex::new(p).is_ok_and(|re| re.is_match(s)) {
                    errors.push(format!(
                        "{path}: Invalid value: {s:?}: {path} in body should match '{p}'"
                    ));
                }
            }
            if let Some(min) = schema["minLength"].as_u64() {
                if (s.chars().count() as u64) < min {
                    errors.push(format!(
                        "{path}: Invalid value: {s:?}: {path} in body should be at least {min} chars long"
                    ));
                }
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if let Some(min) = schema["minimum"].as_f64() {
                if x < min {
                    errors.push(format!(
                        "{path}: Invalid value: {n}: {path} in body should be greater than or equal to {min}"
                    ));
                }
            }
            if let Some(max) = schema["maximum"].as_f64() {
                if x > max {
                    errors.push(format!(
                        "{path}: Invalid value: {n}: {path} in body should be less than or equal to {max}"
                    ));
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                check(&schema["items"], item, &format!("{path}[{i}]"), errors);
            }
        }
        Value::Object(o) => {
            let props = schema["properties"].as_object();
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let preserve = schema["x-kubernetes-preserve-unknown-fields"]
                .as_bool()
                .unwrap_or(false);
            if let Some(props) = props {
                for (key, sub) in props {
                    fill_default(o, key, sub);
                    if let Some(child) = o.get_mut(key) {
                        check(sub, child, &format!("{path}.{key}"), errors);
                    }
                }
            }
            if let Some(additional) = additional {
                for (key, child) in o.iter_mut() {
                    if props.is_none_or(|p| !p.contains_key(key)) {
                        check(additional, child, &format!("{path}.{key}"), errors);
                    }
                }
            } else if !preserve {
                if let Some(props) = props {
                    o.retain(|k, _| props.contains_key(k));
                }
            }
            for r in schema["required"].as_array().into_iter().flatten() {
                if let Some(r) = r.as_str() {
                    if !o.contains_key(r) {
                        errors.push(format!("{path}.{r}: Required value"));
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "required": ["spec"], "properties": {
            "spec": {"type": "object", "required": ["path"], "properties": {
                "path": {"type": "string", "pattern": "^/"},
                "replicas": {"type": "integer", "enum": [1, 3], "default": 1},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "tiers": {"type": "array", "items": {"type": "object", "properties": {
                    "alias": {"type": "string", "enum": ["MEM", "SSD"]},
                    "quota": {"x-kubernetes-int-or-string": true}}}},
                "options": {"type": "object", "additionalProperties": {"type": "string"}},
                "note": {"type": "string", "nullable": true}}},
            "status": {"type": "object", "nullable": true}}})
    }

    #[test]
    fn defaults_are_filled_and_unknown_fields_pruned() {
        let mut o = json!({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x"},
            "spec": {"path": "/d", "bogus": 1, "tiers": [{"alias": "MEM", "quota": "1Gi", "extra": true}],
                     "options": {"k": "v"}}, "junk": {}});
        admit(&schema(), &mut o, None).unwrap();
        assert_eq!(o["spec"]["replicas"], 1);
        assert!(o["spec"].get("bogus").is_none());
        assert!(o["spec"]["tiers"][0].get("extra").is_none());
        assert!(o.get("junk").is_none());
        assert_eq!(o["metadata"]["name"], "x");
        assert_eq!(o["spec"]["options"]["k"], "v");
    }

    #[test]
    fn invalid_values_are_refused_with_the_servers_messages() {
        let cases = [
            (
                json!({"spec": {"path": "d"}}),
                "spec.path: Invalid value: \"d\": spec.path in body should match '^/'",
            ),
            (
                json!({"spec": {"path": "/d", "replicas": 2}}),
                "spec.replicas: Unsupported value: 2: supported values: 1, 3",
            ),
            (
                json!({"spec": {"path": "/d", "port": 70000}}),
                "less than or equal to 65535",
            ),
            (
                json!({"spec": {"path": "/d", "tiers": [{"alias": "NVME"}]}}),
                "spec.tiers[0].alias: Unsupported value: \"NVME\"",
            ),
            (
                json!({"spec": {"path": "/d", "tiers": [{"quota": true}]}}),
                "int-or-string",
            ),
            (
                json!({"spec": {"path": "/d", "options": {"k": 1}}}),
                "spec.options.k: Invalid value: 1",
            ),
            (json!({"spec": {}}), "spec.path: Required value"),
            (json!({}), "spec: Required value"),
            (json!({"spec": {"path": 5}}), "must be of type string"),
        ];
        for (mut o, want) in cases {
            let err = admit(&schema(), &mut o, None).unwrap_err();
            assert!(err.contains(want), "{o}: {err}");
        }
        let mut ok = json!({"spec": {"path": "/d", "note": null}, "status": null});
        admit(&schema(), &mut ok, None).unwrap();
    }
}
