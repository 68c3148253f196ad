//! Unit tests of the store (see `store.rs`).
use super::*;

fn mounts() -> Resource {
    Resource {
        group: "alluxio.rs".into(),
        version: "v1alpha1".into(),
        plural: "mounts".into(),
        kind: "Mount".into(),
        namespaced: true,
        status_subresource: true,
        short_names: Vec::new(),
    }
}

fn config_maps() -> Resource {
    Resource {
        group: String::new(),
        version: "v1".into(),
        plural: "configmaps".into(),
        kind: "ConfigMap".into(),
        namespaced: true,
        status_subresource: false,
        short_names: Vec::new(),
    }
}

fn rv(o: &Value) -> String {
    meta(o, "resourceVersion").unwrap()
}

fn generation(o: &Value) -> i64 {
    o["metadata"]["generation"].as_i64().unwrap()
}

#[test]
fn versions_grow_and_stale_updates_conflict() {
    let mut s = Store::default();
    let r = mounts();
    let a = s
        .create(
            &r,
            "ns",
            json!({"metadata": {"name": "a"}, "spec": {"x": 1}}),
        )
        .unwrap();
    assert_eq!(a["apiVersion"], "alluxio.rs/v1alpha1");
    assert_eq!(generation(&a), 1);
    assert!(meta(&a, "uid").is_some());
    let mut b = a.clone();
    b["spec"]["x"] = json!(2);
    let b = s.update(&r, "ns", "a", b, false).unwrap();
    assert!(rv(&b).parse::<u64>().unwrap() > rv(&a).parse::<u64>().unwrap());
    // `a` still carries the old version.
    let mut stale = a.clone();
    stale["spec"]["x"] = json!(3);
    assert!(matches!(
        s.update(&r, "ns", "a", stale, false),
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        s.create(&r, "ns", json!({"metadata": {"name": "a"}})),
        Err(StoreError::AlreadyExists { .. })
    ));
    // Same name in another namespace is another object.
    s.create(&r, "other", json!({"metadata": {"name": "a"}}))
        .unwrap();
}

#[test]
fn generation_counts_spec_changes_only_and_status_is_a_subresource() {
    let mut s = Store::default();
    let r = mounts();
    s.create(
        &r,
        "ns",
        json!({"metadata": {"name": "a"}, "spec": {"x": 1}}),
    )
    .unwrap();
    // Status through the main resource is ignored...
    let o = s
        .patch(&r, "ns", "a", &json!({"status": {"mounted": true}}), false)
        .unwrap();
    assert!(o.get("status").is_none());
    // ...and through the subresource it does not bump generation.
    let o = s
        .patch(&r, "ns", "a", &json!({"status": {"mounted": true}}), true)
        .unwrap();
    assert_eq!(o["status"]["mounted"], true);
    assert_eq!(generation(&o), 1);
    let o = s
        .patch(
            &r,
            "ns",
            "a",
            &json!({"metadata": {"labels": {"l": "v"}}}),
            false,
        )
        .unwrap();
    assert_eq!(generation(&o), 1);
    let o = s
        .patch(&r, "ns", "a", &json!({"spec": {"x": 2}}), false)
        .unwrap();
    assert_eq!(generation(&o), 2);
    assert_eq!(o["status"]["mounted"], true, "status survives spec updates");
    // The status endpoint changes nothing but status.
    let o = s
        .patch(
            &r,
            "ns",
            "a",
            &json!({"spec": {"x": 9}, "status": {"mounted": false}}),
            true,
        )
        .unwrap();
    assert_eq!(o["spec"]["x"], 2);
    assert_eq!(o["status"]["mounted"], false);
    // A no-op update keeps the version.
    let same = s
        .patch(&r, "ns", "a", &json!({"spec": {"x": 2}}), false)
        .unwrap();
    assert_eq!(rv(&same), rv(&o));
}

#[test]
fn finalizers_hold_deletion_until_removed() {
    let mut s = Store::default();
    let r = mounts();
    s.create(
        &r,
        "ns",
        json!({"metadata": {"name": "a", "finalizers": ["alluxio.rs/unmount"]}}),
    )
    .unwrap();
    let o = s.delete(&r, "ns", "a").unwrap();
    assert!(meta(&o, "deletionTimestamp").is_some());
    assert_eq!(generation(&o), 2);
    assert!(s.get(&r, "ns", "a").is_ok(), "still there while finalized");
    s.patch(
        &r,
        "ns",
        "a",
        &json!({"metadata": {"finalizers": null}}),
        false,
    )
    .unwrap();
    assert!(matches!(
        s.get(&r, "ns", "a"),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn deleting_an_owner_deletes_its_dependents() {
    let mut s = Store::default();
    let owner = s
        .create(&mounts(), "ns", json!({"metadata": {"name": "owner"}}))
        .unwrap();
    let uid = meta(&owner, "uid").unwrap();
    s.create(
        &config_maps(),
        "ns",
        json!({"metadata": {"name": "dep", "ownerReferences": [{"uid": uid, "kind": "Mount", "name": "owner", "apiVersion": "alluxio.rs/v1alpha1"}]}}),
    )
    .unwrap();
    s.create(&config_maps(), "ns", json!({"metadata": {"name": "free"}}))
        .unwrap();
    s.delete(&mounts(), "ns", "owner").unwrap();
    assert!(s.get(&config_maps(), "ns", "dep").is_err());
    assert!(s.get(&config_maps(), "ns", "free").is_ok());
}

#[test]
fn an_object_created_after_its_owner_went_is_collected() {
    let mut s = Store::default();
    let owner = s
        .create(&mounts(), "ns", json!({"metadata": {"name": "owner"}}))
        .unwrap();
    let uid = meta(&owner, "uid").unwrap();
    s.delete(&mounts(), "ns", "owner").unwrap();
    // A controller working from a list taken before the delete.
    s.create(
        &config_maps(),
        "ns",
        json!({"metadata": {"name": "late", "ownerReferences": [{"uid": uid, "kind": "Mount", "name": "owner", "apiVersion": "alluxio.rs/v1alpha1"}]}}),
    )
    .unwrap();
    assert!(s.get(&config_maps(), "ns", "late").is_err());
}

#[test]
fn lists_filter_by_namespace_and_labels() {
    let mut s = Store::default();
    let r = config_maps();
    s.create(
        &r,
        "a",
        json!({"metadata": {"name": "x", "labels": {"app": "alluxio"}}}),
    )
    .unwrap();
    s.create(
        &r,
        "b",
        json!({"metadata": {"name": "y", "labels": {"app": "other"}}}),
    )
    .unwrap();
    let all = Selector::default();
    assert_eq!(s.list(&r, None, &all).0.len(), 2);
    assert_eq!(s.list(&r, Some("a"), &all).0.len(), 1);
    let sel = Selector::parse("app=alluxio").unwrap();
    let (items, _) = s.list(&r, None, &sel);
    assert_eq!(items.len(), 1);
    assert_eq!(meta(&items[0], "name").unwrap(), "x");
}

#[test]
fn watches_replay_history_and_too_old_versions_are_gone() {
    let mut s = Store::new(3);
    let r = config_maps();
    for i in 0..5 {
        s.create(&r, "ns", json!({"metadata": {"name": format!("c{i}")}}))
            .unwrap();
    }
    // Versions 1..=5 were made; only 3, 4 and 5 are kept.
    let events = s.events_since(&r, None, 3).unwrap();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.kind == EventType::Added));
    assert!(s.events_since(&r, None, 2).is_ok());
    assert!(matches!(
        s.events_since(&r, None, 1),
        Err(StoreError::Gone { .. })
    ));
    s.delete(&r, "ns", "c4").unwrap();
    let events = s.events_since(&r, Some("ns"), 5).unwrap();
    assert_eq!(events[0].kind, EventType::Deleted);
    assert_eq!(meta(&events[0].object, "name").unwrap(), "c4");
}

#[test]
fn secrets_keep_string_data_as_base64_data() {
    let mut s = Store::default();
    let secrets = super::super::resources::builtin_resources()
        .into_iter()
        .find(|r| r.plural == "secrets")
        .unwrap();
    let o = s
        .create(
            &secrets,
            "ns",
            json!({"metadata": {"name": "s"}, "data": {"a": "eA=="}, "stringData": {"b": "hi"}}),
        )
        .unwrap();
    assert_eq!(o["data"], json!({"a": "eA==", "b": "aGk="}));
    assert!(o.get("stringData").is_none());
}

#[test]
fn json_patches_apply_atomically() {
    let mut s = Store::default();
    s.create(
        &mounts(),
        "ns",
        json!({"metadata": {"name": "m"}, "spec": {"a": 1}}),
    )
    .unwrap();
    let patched = s
        .json_patch(
            &mounts(),
            "ns",
            "m",
            &json!([{"op": "replace", "path": "/spec/a", "value": 2},
                    {"op": "add", "path": "/spec/b", "value": [1]}]),
            false,
        )
        .unwrap();
    assert_eq!(patched["spec"], json!({"a": 2, "b": [1]}));
    let failed = s.json_patch(
        &mounts(),
        "ns",
        "m",
        &json!([{"op": "replace", "path": "/spec/a", "value": 3},
                {"op": "test", "path": "/spec/a", "value": 9}]),
        false,
    );
    assert!(matches!(failed, Err(StoreError::Invalid(_))));
    assert_eq!(s.get(&mounts(), "ns", "m").unwrap()["spec"]["a"], 2);
}

#[test]
fn a_json_patch_test_that_a_missing_field_is_null_passes() {
    let mut s = Store::default();
    s.create(&mounts(), "ns", json!({"metadata": {"name": "m"}}))
        .unwrap();
    // kube's finalizer helper on an object without finalizers.
    let patched = s
        .json_patch(
            &mounts(),
            "ns",
            "m",
            &json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
                    {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}]),
            false,
        )
        .unwrap();
    assert_eq!(patched["metadata"]["finalizers"], json!(["f"]));
    // Present now: the same test fails, and nothing changes.
    let again = s.json_patch(
        &mounts(),
        "ns",
        "m",
        &json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": ["g"]}]),
        false,
    );
    assert!(matches!(again, Err(StoreError::Invalid(_))));
    let kept = s.get(&mounts(), "ns", "m").unwrap();
    assert_eq!(kept["metadata"]["finalizers"], json!(["f"]));
}

#[test]
fn merge_patch_follows_rfc_7386() {
    let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}});
    merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}}));
    assert_eq!(t, json!({"a": "z", "c": {"d": "e"}}));
    let mut t = json!({"a": [1, 2]});
    merge_patch(&mut t, &json!({"a": [3]}));
    assert_eq!(t, json!({"a": [3]}));
}
