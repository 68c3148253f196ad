//! Request bodies in Kubernetes' protobuf encoding, for the kinds clients
//! send that way to this server: Secrets and ConfigMaps (Helm stores its
//! releases in Secrets through client-go's typed client, which encodes
//! built-in kinds as protobuf and cannot fall back to JSON). The envelope
//! is the magic `k8s\0` and a `runtime.Unknown` whose `raw` is the object;
//! the field numbers are those of Kubernetes' `generated.proto` files.
//! Answers are JSON, which client-go accepts whatever it sent.

use base64::Engine;
use prost::Message;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

const MAGIC: &[u8] = b"k8s\0";

#[derive(Clone, PartialEq, Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", tag = "2")]
    raw: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct TypeMeta {
    #[prost(string, tag = "1")]
    api_version: String,
    #[prost(string, tag = "2")]
    kind: String,
}

/// The parts of `ObjectMeta` a client sets on create or update.
#[derive(Clone, PartialEq, Message)]
struct ObjectMeta {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    generate_name: String,
    #[prost(string, tag = "3")]
    namespace: String,
    #[prost(string, tag = "5")]
    uid: String,
    #[prost(string, tag = "6")]
    resource_version: String,
    #[prost(map = "string, string", tag = "11")]
    labels: HashMap<String, String>,
    #[prost(map = "string, string", tag = "12")]
    annotations: HashMap<String, String>,
    #[prost(string, repeated, tag = "14")]
    finalizers: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct Secret {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(map = "string, bytes", tag = "2")]
    data: HashMap<String, Vec<u8>>,
    #[prost(string, tag = "3")]
    r#type: String,
    #[prost(map = "string, string", tag = "4")]
    string_data: HashMap<String, String>,
    #[prost(bool, optional, tag = "5")]
    immutable: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct ConfigMap {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(map = "string, string", tag = "2")]
    data: HashMap<String, String>,
    #[prost(map = "string, bytes", tag = "3")]
    binary_data: HashMap<String, Vec<u8>>,
    #[prost(bool, optional, tag = "4")]
    immutable: Option<bool>,
}

/// The JSON form of a protobuf-encoded Secret or ConfigMap.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or("not a Kubernetes protobuf body (no k8s\\0 prefix)")?;
    let unknown = Unknown::decode(envelope).map_err(|e| e.to_string())?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let base64 =
        |bytes: &Vec<u8>| Value::from(base64::engine::general_purpose::STANDARD.encode(bytes));
    let mut object = match type_meta.kind.as_str() {
        "Secret" => {
            let s = Secret::decode(&unknown.raw[..]).map_err(|e| e.to_string())?;
            let mut o = Map::new();
            o.insert("metadata".into(), metadata(s.metadata.unwrap_or_default()));
            put_map(
                &mut o,
                "data",
                s.data.iter().map(|(k, v)| (k.clone(), base64(v))),
            );
            put_map(
                &mut o,
                "stringData",
                s.string_data.into_iter().map(|(k, v)| (k, v.into())),
            );
            if !s.r#type.is_empty() {
                o.insert("type".into(), s.r#type.into());
            }
            if let Some(immutable) = s.immutable {
                o.insert("immutable".into(), immutable.into());
            }
            o
        }
        "ConfigMap" => {
            let c = ConfigMap::decode(&unknown.raw[..]).map_err(|e| e.to_string())?;
            let mut o = Map::new();
            o.insert("metadata".into(), metadata(c.metadata.unwrap_or_default()));
            put_map(
                &mut o,
                "data",
                c.data.into_iter().map(|(k, v)| (k, v.into())),
            );
            put_map(
                &mut o,
                "binaryData",
                c.binary_data.iter().map(|(k, v)| (k.clone(), base64(v))),
            );
            if let Some(immutable) = c.immutable {
                o.insert("immutable".into(), immutable.into());
            }
            o
        }
        other => {
            return Err(format!(
                "protobuf bodies of kind {other:?} are not decoded here; send JSON"
            ))
        }
    };
    object.insert("apiVersion".into(), type_meta.api_version.into());
    object.insert("kind".into(), type_meta.kind.into());
    Ok(Value::Object(object))
}

fn put_map(o: &mut Map<String, Value>, key: &str, entries: impl Iterator<Item = (String, Value)>) {
    let map: Map<String, Value> = entries.collect();
    if !map.is_empty() {
        o.insert(key.into(), Value::Object(map));
    }
}

fn metadata(m: ObjectMeta) -> Value {
    let mut o = Map::new();
    for (key, value) in [
        ("name", m.name),
        ("generateName", m.generate_name),
        ("namespace", m.namespace),
        ("uid", m.uid),
        ("resourceVersion", m.resource_version),
    ] {
        if !value.is_empty() {
            o.insert(key.into(), value.into());
        }
    }
    put_map(
        &mut o,
        "labels",
        m.labels.into_iter().map(|(k, v)| (k, v.into())),
    );
    put_map(
        &mut o,
        "annotations",
        m.annotations.into_iter().map(|(k, v)| (k, v.into())),
    );
    if !m.finalizers.is_empty() {
        o.insert("finalizers".into(), json!(m.finalizers));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_decodes_to_its_json_form() {
        let secret = Secret {
            metadata: Some(ObjectMeta {
                name: "sh.helm.release.v1.test.v1".into(),
                labels: [("owner".to_string(), "helm".to_string())].into(),
                ..Default::default()
            }),
            data: [("release".to_string(), b"H4sI".to_vec())].into(),
            r#type: "helm.sh/release.v1".into(),
            ..Default::default()
        };
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: "v1".into(),
                kind: "Secret".into(),
            }),
            raw: secret.encode_to_vec(),
        };
        let mut body = MAGIC.to_vec();
        body.extend(unknown.encode_to_vec());
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
                   "metadata": {"name": "sh.helm.release.v1.test.v1", "labels": {"owner": "helm"}},
                   "data": {"release": "SDRzSQ=="}})
        );
        assert!(decode(b"{}").is_err());
    }
}
