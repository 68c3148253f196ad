//! CEL validation rules of custom resources (`x-kubernetes-validations`),
//! evaluated with a real CEL interpreter (the `cel` crate) on every write,
//! as the real API server does: `self` is the value at the rule's place
//! in the object, and transition rules (those that use `oldSelf`) run only
//! on updates that had an old value there. A rule that is false refuses
//! the write with the rule's `message`.
//!
//! Not done: correlating list items of `x-kubernetes-list-type: map` for
//! `oldSelf` (list items get no `oldSelf`), `messageExpression`, and cost
//! limits.

use serde_json::Value;

/// Checks every rule in `schema` against `value` (and `old`, on updates);
/// appends the failures to `errors` with their field paths.
pub fn check_rules(
    schema: &Value,
    value: &Value,
    old: Option<&Value>,
    path: &str,
    errors: &mut Vec<String>,
) {
    for rule in schema["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(text) = rule["rule"].as_str() else {
            continue;
        };
        let transition = text.contains("oldSelf");
        if transition && old.is_none() {
            continue;
        }
        let message = rule["message"]
            .as_str()
            .map_or_else(|| format!("failed rule: {text}"), str::to_string);
        match evaluate(text, value, old) {
            Ok(true) => {}
            Ok(false) => errors.push(format!("{path}: Invalid value: {}: {message}", kind(value))),
            Err(e) => errors.push(format!(
                "{path}: Invalid value: {}: rule {text:?} could not be evaluated: {e}",
                kind(value)
            )),
        }
    }
    if let (Some(props), Some(map)) = (schema["properties"].as_object(), value.as_object()) {
        for (key, sub) in props {
            if let Some(v) = map.get(key) {
                let old_child = old.and_then(|o| o.get(key));
                check_rules(sub, v, old_child, &format!("{path}.{key}"), errors);
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (i, v) in list.iter().enumerate() {
            check_rules(items, v, None, &format!("{path}[{i}]"), errors);
        }
    }
}

/// How the real server names a value's type in these messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "\"object\"",
        Value::Array(_) => "\"array\"",
        Value::String(_) => "\"string\"",
        Value::Number(_) => "\"number\"",
        Value::Bool(_) => "\"boolean\"",
        Value::Null => "\"null\"",
    }
}

fn evaluate(rule: &str, value: &Value, old: Option<&Value>) -> Result<bool, String> {
    let program = cel::Program::compile(rule).map_err(|e| e.to_string())?;
    let mut context = cel::Context::default();
    context
        .add_variable("self", value.clone())
        .map_err(|e| e.to_string())?;
    if let Some(old) = old {
        context
            .add_variable("oldSelf", old.clone())
            .map_err(|e| e.to_string())?;
    }
    match program.execute(&context).map_err(|e| e.to_string())? {
        cel::Value::Bool(b) => Ok(b),
        other => Err(format!("the rule gave {other:?}, not a boolean")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tiers_schema() -> Value {
        json!({"type": "object", "properties": {"tiers": {
            "type": "array",
            "items": {"type": "object", "x-kubernetes-validations": [
                {"rule": "self.medium != 'HostPath' || has(self.path)", "message": "a HostPath tier needs a path"}]},
            "x-kubernetes-validations": [
                {"rule": "self.all(t, self.exists_one(u, u.alias == t.alias))", "message": "each alias once"}]},
            "cluster": {"type": "string", "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "immutable"}]}}})
    }

    fn errors(value: Value, old: Option<Value>) -> Vec<String> {
        let mut e = Vec::new();
        check_rules(&tiers_schema(), &value, old.as_ref(), "spec", &mut e);
        e
    }

    #[test]
    fn rules_refuse_with_their_messages_and_transition_rules_need_an_old_value() {
        let good = json!({"tiers": [{"alias": "MEM", "medium": "Memory"},
            {"alias": "SSD", "medium": "HostPath", "path": "/mnt"}], "cluster": "a"});
        assert!(errors(good.clone(), None).is_empty());
        assert!(errors(good.clone(), Some(good.clone())).is_empty());
        let twice = json!({"tiers": [{"alias": "MEM", "medium": "Memory"}, {"alias": "MEM", "medium": "Memory"}]});
        assert_eq!(
            errors(twice, None),
            ["spec.tiers: Invalid value: \"array\": each alias once"]
        );
        let no_path = json!({"tiers": [{"alias": "SSD", "medium": "HostPath"}]});
        assert_eq!(
            errors(no_path, None),
            ["spec.tiers[0]: Invalid value: \"object\": a HostPath tier needs a path"]
        );
        let moved = json!({"cluster": "b"});
        assert_eq!(
            errors(moved, Some(json!({"cluster": "a"}))),
            ["spec.cluster: Invalid value: \"string\": immutable"]
        );
    }
}
