//! The test API server's object store: what a real kube-apiserver (with
//! etcd) guarantees to the operator and kubectl, in memory.
//!
//! - one global, increasing `resourceVersion`, stamped on every change;
//!   an update naming an older version fails with a conflict;
//! - `metadata.generation` starts at 1 and grows only when something other
//!   than metadata and status changes (or when deletion starts);
//! - with the status subresource, the main resource ignores status changes
//!   and the status endpoint changes nothing else;
//! - deleting an object with finalizers only sets `deletionTimestamp`; it
//!   goes when the last finalizer is removed;
//! - deleting an object deletes the objects that name it in their
//!   `ownerReferences` (garbage collection, background propagation), and
//!   an object created when none of its owners exists any more is deleted;
//! - every change is an event; watches replay the events after a version,
//!   or fail with `410 Gone` when that version is older than the history.

use super::selector::Selector;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};

/// A kind of object the server stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// `""` for the core group.
    pub group: String,
    pub version: String,
    pub plural: String,
    pub kind: String,
    pub namespaced: bool,
    pub status_subresource: bool,
    pub short_names: Vec<String>,
}

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Clone, Debug)]
pub struct WatchEvent {
    pub resource_version: u64,
    pub kind: EventType,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub object: Value,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StoreError {
    #[error("{plural} \"{name}\" not found")]
    NotFound { plural: String, name: String },
    #[error("{plural} \"{name}\" already exists")]
    AlreadyExists { plural: String, name: String },
    #[error("Operation cannot be fulfilled on {plural} \"{name}\": the object has been modified; please apply your changes to the latest version and try again")]
    Conflict { plural: String, name: String },
    #[error("{0}")]
    Invalid(String),
    #[error("too old resource version: {requested} ({oldest})")]
    Gone { requested: u64, oldest: u64 },
}

type Key = (String, String, String, String);

pub struct Store {
    resource_version: u64,
    next_uid: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<WatchEvent>,
    history_limit: usize,
    /// `openAPIV3Schema` of custom resources, by (group, plural).
    schemas: BTreeMap<(String, String), Value>,
}

/// A Secret's `stringData` is write-only: the API server folds it into
/// `data` (base64) and drops it.
fn fold_string_data(secret: &mut Value) {
    use base64::Engine;
    let Some(strings) = secret.as_object_mut().and_then(|o| o.remove("stringData")) else {
        return;
    };
    let Some(strings) = strings.as_object() else {
        return;
    };
    let data = secret
        .as_object_mut()
        .map(|o| o.entry("data").or_insert_with(|| json!({})));
    if let Some(Value::Object(data)) = data {
        for (k, v) in strings {
            let text = v.as_str().unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(text);
            data.insert(k.clone(), json!(encoded));
        }
    }
}

/// Seconds since the epoch as RFC 3339, as Kubernetes writes times.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

fn key(r: &Resource, namespace: &str, name: &str) -> Key {
    (
        r.group.clone(),
        r.plural.clone(),
        if r.namespaced {
            namespace.to_string()
        } else {
            String::new()
        },
        name.to_string(),
    )
}

fn meta(o: &Value, field: &str) -> Option<String> {
    o.pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn meta_mut(o: &mut Value) -> &mut Map<String, Value> {
    if !o.get("metadata").is_some_and(Value::is_object) {
        o["metadata"] = json!({});
    }
    o["metadata"].as_object_mut().expect("an object")
}

/// Everything of an object that counts for `generation`.
fn generation_content(o: &Value) -> Value {
    let mut c = o.clone();
    if let Some(m) = c.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
    }
    c
}

fn finalizers(o: &Value) -> usize {
    o.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("an object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

impl Default for Store {
    fn default() -> Self {
        Store::new(1000)
    }
}

impl Store {
    /// A store keeping the last `history_limit` events for watches.
    pub fn new(history_limit: usize) -> Self {
        Store {
            resource_version: 0,
            next_uid: 0,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit,
            schemas: BTreeMap::new(),
        }
    }

    /// Writes of `group`/`plural` are defaulted, pruned and validated
    /// with `schema` from now on.
    pub fn set_schema(&mut self, group: &str, plural: &str, schema: Value) {
        self.schemas
            .insert((group.to_string(), plural.to_string()), schema);
    }

    fn admit(
        &self,
        r: &Resource,
        object: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), StoreError> {
        if r.group.is_empty() && r.plural == "secrets" {
            fold_string_data(object);
        }
        match self.schemas.get(&(r.group.clone(), r.plural.clone())) {
            Some(schema) => super::schema::admit(schema, object, old).map_err(|e| {
                StoreError::Invalid(format!(
                    "{} \"{}\" is invalid: {e}",
                    r.kind,
                    meta(object, "name").unwrap_or_default()
                ))
            }),
            None => Ok(()),
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    fn record(&mut self, r: &Resource, namespace: &str, kind: EventType, object: &Value) {
        self.history.push_back(WatchEvent {
            resource_version: self.resource_version,
            kind,
            group: r.group.clone(),
            plural: r.plural.clone(),
            namespace: namespace.to_string(),
            object: object.clone(),
        });
        while self.history.len() > self.history_limit {
            self.history.pop_front();
        }
    }

    fn stamp(&mut self, o: &mut Value) {
        self.resource_version += 1;
        meta_mut(o).insert(
            "resourceVersion".into(),
            json!(self.resource_version.to_string()),
        );
    }

    pub fn create(
        &mut self,
        r: &Resource,
        namespace: &str,
        mut object: Value,
    ) -> Result<Value, StoreError> {
        if !object.is_object() {
            return Err(StoreError::Invalid("the body must be a JSON object".into()));
        }
        let name = match (meta(&object, "name"), meta(&object, "generateName")) {
            (Some(n), _) if !n.is_empty() => n,
            (_, Some(prefix)) => format!("{prefix}{:05x}", self.next_uid + 1),
            _ => return Err(StoreError::Invalid("metadata.name: Required value".into())),
        };
        let k = key(r, namespace, &name);
        if self.objects.contains_key(&k) {
            return Err(StoreError::AlreadyExists {
                plural: r.plural.clone(),
                name,
            });
        }
        self.next_uid += 1;
        object["apiVersion"] = json!(r.api_version());
        object["kind"] = json!(r.kind);
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.next_uid);
        let m = meta_mut(&mut object);
        m.insert("name".into(), json!(name));
        if r.namespaced {
            m.insert("namespace".into(), json!(namespace));
        }
        m.insert("uid".into(), json!(uid));
        m.insert("generation".into(), json!(1));
        m.insert("creationTimestamp".into(), json!(now_rfc3339()));
        m.remove("deletionTimestamp");
        if r.status_subresource {
            if let Some(o) = object.as_object_mut() {
                o.remove("status");
            }
        }
        self.admit(r, &mut object, None)?;
        self.stamp(&mut object);
        self.record(r, namespace, EventType::Added, &object);
        self.objects.insert(k, object.clone());
        // The real garbage collector also deletes an object created after
        // all of its owners were gone (a controller acting on a stale list
        // does this); it does so moments later, here at once.
        if self.every_owner_is_gone(&object) {
            let _ = self.delete(r, namespace, &name);
        }
        Ok(object)
    }

    /// True when `object` names owners and none of them exists (by uid).
    fn every_owner_is_gone(&self, object: &Value) -> bool {
        let Some(refs) = object
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .filter(|refs| !refs.is_empty())
        else {
            return false;
        };
        !refs.iter().any(|owner| {
            self.objects
                .values()
                .any(|o| o.pointer("/metadata/uid") == Some(&owner["uid"]))
        })
    }

    pub fn get(&self, r: &Resource, namespace: &str, name: &str) -> Result<Value, StoreError> {
        self.objects
            .get(&key(r, namespace, name))
            .cloned()
            .ok_or_else(|| StoreError::NotFound {
                plural: r.plural.clone(),
                name: name.to_string(),
            })
    }

    /// Objects of `r` (in `namespace`, or all namespaces) that match, and
    /// the store's resource version at that moment.
    pub fn list(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        selector: &Selector,
    ) -> (Vec<Value>, u64) {
        let items = self
            .objects
            .iter()
            .filter(|((g, p, ns, _), o)| {
                *g == r.group
                    && *p == r.plural
                    && namespace.is_none_or(|want| !r.namespaced || ns == want)
                    && selector.matches(o)
            })
            .map(|(_, o)| o.clone())
            .collect();
        (items, self.resource_version)
    }

    /// Replaces an object (PUT), or its status with `status_only`.
    pub fn update(
        &mut self,
        r: &Resource,
        namespace: &str,
        name: &str,
        object: Value,
        status_only: bool,
    ) -> Result<Value, StoreError> {
        let k = key(r, namespace, name);
        let old = self.get(r, namespace, name)?;
        if let Some(rv) = meta(&object, "resourceVersion") {
            if Some(rv) != meta(&old, "resourceVersion") {
                return Err(StoreError::Conflict {
                    plural: r.plural.clone(),
                    name: name.to_string(),
                });
            }
        }
        if meta(&object, "name").is_some_and(|n| n != name) {
            return Err(StoreError::Invalid(format!(
                "metadata.name: the name of the object ({}) does not match the name in the URL ({name})",
                meta(&object, "name").unwrap_or_default()
            )));
        }
        let mut new = if status_only {
            let mut n = old.clone();
            match object.get("status") {
                Some(s) => n["status"] = s.clone(),
                None => {
                    if let Some(o) = n.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            n
        } else {
            let mut n = object;
            if r.status_subresource {
                match old.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        if let Some(o) = n.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            // The server owns these.
            let (old_meta, m) = (old["metadata"].clone(), meta_mut(&mut n));
            for f in [
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "namespace",
            ] {
                match old_meta.get(f) {
                    Some(v) => {
                        m.insert(f.into(), v.clone());
                    }
                    None => {
                        m.remove(f);
                    }
                }
            }
            m.insert("name".into(), json!(name));
            n["apiVersion"] = json!(r.api_version());
            n["kind"] = json!(r.kind);
            n
        };
        self.admit(r, &mut new, Some(&old))?;
        if generation_content(&new) != generation_content(&old) {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            meta_mut(&mut new).insert("generation".into(), json!(g + 1));
        }
        if let Some(v) = old.pointer("/metadata/resourceVersion") {
            meta_mut(&mut new).insert("resourceVersion".into(), v.clone());
        }
        if new == old {
            return Ok(old); // No change, no new version (as the real server does).
        }
        self.stamp(&mut new);
        if meta(&new, "deletionTimestamp").is_some() && finalizers(&new) == 0 {
            self.objects.remove(&k);
            self.record(r, namespace, EventType::Deleted, &new);
            self.collect_garbage(&new);
            return Ok(new);
        }
        self.record(r, namespace, EventType::Modified, &new);
        self.objects.insert(k, new.clone());
        Ok(new)
    }

    /// Applies a JSON merge patch (RFC 7386), to the object or its status.
    pub fn patch(
        &mut self,
        r: &Resource,
        namespace: &str,
        name: &str,
        patch: &Value,
        status_only: bool,
    ) -> Result<Value, StoreError> {
        let mut target = self.get(r, namespace, name)?;
        merge_patch(&mut target, patch);
        // A patch only conflicts when it names a resourceVersion itself.
        if patch.pointer("/metadata/resourceVersion").is_none() {
            if let Some(m) = target.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
        }
        self.update(r, namespace, name, target, status_only)
    }

    /// Applies a JSON patch (RFC 6902), to the object or its status; a
    /// failing `test` operation or a bad path refuses the whole patch.
    pub fn json_patch(
        &mut self,
        r: &Resource,
        namespace: &str,
        name: &str,
        operations: &Value,
        status_only: bool,
    ) -> Result<Value, StoreError> {
        let mut ops: json_patch::Patch = serde_json::from_value(operations.clone())
            .map_err(|e| StoreError::Invalid(format!("invalid JSON patch: {e}")))?;
        let mut target = self.get(r, namespace, name)?;
        // As the real API server's patcher does, a `test` that a missing
        // field is null passes (kube's finalizer helper relies on it when
        // an object has no finalizers yet).
        ops.0.retain(|op| match op {
            json_patch::PatchOperation::Test(t) => {
                !(t.value.is_null() && target.pointer(t.path.as_str()).is_none())
            }
            _ => true,
        });
        let version_before = target.pointer("/metadata/resourceVersion").cloned();
        json_patch::patch(&mut target, &ops)
            .map_err(|e| StoreError::Invalid(format!("the JSON patch failed: {e}")))?;
        // As with merge patches, only a patch that sets the resourceVersion
        // itself can conflict.
        if target.pointer("/metadata/resourceVersion").cloned() == version_before {
            if let Some(m) = target.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
        }
        self.update(r, namespace, name, target, status_only)
    }

    /// Deletes an object: at once without finalizers (and then its
    /// dependents), else it is marked for deletion.
    pub fn delete(
        &mut self,
        r: &Resource,
        namespace: &str,
        name: &str,
    ) -> Result<Value, StoreError> {
        let k = key(r, namespace, name);
        let mut o = self.get(r, namespace, name)?;
        if finalizers(&o) > 0 {
            if meta(&o, "deletionTimestamp").is_none() {
                let g = o
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                let m = meta_mut(&mut o);
                m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
                m.insert("generation".into(), json!(g + 1));
                self.stamp(&mut o);
                self.record(r, namespace, EventType::Modified, &o);
                self.objects.insert(k, o.clone());
            }
            return Ok(o);
        }
        self.objects.remove(&k);
        self.stamp(&mut o);
        self.record(r, namespace, EventType::Deleted, &o);
        self.collect_garbage(&o);
        Ok(o)
    }

    /// Deletes every object owned by `owner` (by uid), recursively.
    fn collect_garbage(&mut self, owner: &Value) {
        let Some(uid) = meta(owner, "uid") else {
            return;
        };
        let dependents: Vec<(Key, Value)> = self
            .objects
            .iter()
            .filter(|(_, o)| {
                o.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == json!(uid)))
            })
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect();
        for ((group, plural, namespace, name), o) in dependents {
            let r = Resource {
                group,
                plural,
                version: String::new(),
                kind: o["kind"].as_str().unwrap_or_default().to_string(),
                namespaced: !namespace.is_empty(),
                status_subresource: false,
                short_names: Vec::new(),
            };
            let _ = self.delete(&r, &namespace, &name);
        }
    }

    /// Events of `r` (optionally in one namespace) after `since`; `Gone`
    /// when events after `since` have already been dropped.
    pub fn events_since(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        since: u64,
    ) -> Result<Vec<WatchEvent>, StoreError> {
        if let Some(oldest) = self.history.front() {
            if since + 1 < oldest.resource_version {
                return Err(StoreError::Gone {
                    requested: since,
                    oldest: oldest.resource_version,
                });
            }
        }
        Ok(self
            .history
            .iter()
            .filter(|e| {
                e.resource_version > since
                    && e.group == r.group
                    && e.plural == r.plural
                    && namespace.is_none_or(|ns| e.namespace == ns)
            })
            .cloned()
            .collect())
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
