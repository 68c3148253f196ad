//! `kubectl get` output: the server answers a list or an object as a
//! `meta.k8s.io/v1` Table when kubectl asks for one (`Accept: ...;as=Table`),
//! with a Name column, the resource's printer columns (CRD
//! `additionalPrinterColumns`) and an Age column for kinds without any.

use serde_json::{json, Value};
use std::time::{Duration, SystemTime};

/// Whether the client asked for a Table.
pub fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("as=Table"))
}

/// A Table of `objects` with `columns` (CRD printer column definitions).
pub fn table(objects: &[Value], columns: &[Value], resource_version: u64) -> Value {
    let mut defs = vec![json!({"name": "Name", "type": "string", "format": "name",
        "description": "Name must be unique within a namespace.", "priority": 0})];
    let columns: Vec<Value> = if columns.is_empty() {
        vec![json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})]
    } else {
        columns.to_vec()
    };
    for c in &columns {
        defs.push(json!({
            "name": c["name"], "type": c["type"], "format": c.get("format").cloned().unwrap_or(json!("")),
            "description": c.get("description").cloned().unwrap_or(json!("")),
            "priority": c.get("priority").cloned().unwrap_or(json!(0)),
        }));
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            for c in &columns {
                let value = lookup(o, c["jsonPath"].as_str().unwrap_or(""));
                cells.push(match (c["type"].as_str(), value) {
                    (Some("date"), Some(Value::String(t))) => json!(age(&t)),
                    (_, Some(v)) => v,
                    (_, None) => Value::Null,
                });
            }
            json!({"cells": cells, "object": {
                "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"],
            }})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": defs, "rows": rows})
}

/// The value at a simple JSONPath such as `.status.phase`.
fn lookup(o: &Value, path: &str) -> Option<Value> {
    let mut cur = o;
    for part in path
        .trim_start_matches('.')
        .split('.')
        .filter(|p| !p.is_empty())
    {
        cur = cur.get(part)?;
    }
    (!cur.is_null()).then(|| cur.clone())
}

/// "42s", "5m", "3h", "2d", as kubectl shows ages.
fn age(timestamp: &str) -> String {
    let Ok(then) = humantime::parse_rfc3339(timestamp) else {
        return "<unknown>".into();
    };
    let secs = SystemTime::now()
        .duration_since(then)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printer_columns_become_cells() {
        let o = json!({"metadata": {"name": "demo", "creationTimestamp": super::super::store::now_rfc3339()},
            "status": {"phase": "Ready", "workers": "3/3"}});
        let cols = vec![
            json!({"name": "Phase", "type": "string", "jsonPath": ".status.phase"}),
            json!({"name": "Workers", "type": "string", "jsonPath": ".status.workers"}),
            json!({"name": "Capacity", "type": "string", "jsonPath": ".status.capacity"}),
            json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}),
        ];
        let t = table(&[o], &cols, 7);
        let cells = t["rows"][0]["cells"].as_array().unwrap().clone();
        assert_eq!(cells[0], "demo");
        assert_eq!(cells[1], "Ready");
        assert_eq!(cells[2], "3/3");
        assert_eq!(cells[3], Value::Null);
        assert!(cells[4].as_str().unwrap().ends_with('s'));
        assert_eq!(t["columnDefinitions"][0]["name"], "Name");
        assert!(wants_table(Some(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        )));
        assert!(!wants_table(Some("application/json")));
    }
}
