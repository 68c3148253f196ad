//! The cluster's Secret: the cluster key that its masters and workers
//! check tokens with and mint their own from (see `alluxio_common::auth`).
//! The operator creates it once with a fresh random key and never
//! overwrites it (a key replaced at once would lock out every running
//! pod; a rotation edits it in three steps, see the README); it is owned
//! by the cluster, so it goes with it. The pods mount it read-only for
//! their own user (mode 0400), and read it again when the kubelet updates
//! it.

use super::names::Names;
use alluxio_common::auth::ClusterKey;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::ByteString;
use std::collections::BTreeMap;

/// The Secret's key holding the cluster key, and the file name it gets in
/// the pods.
pub const KEY_FILE: &str = "cluster.key";

pub fn security_secret_name(names: &Names) -> String {
    format!("{}-security", names.cluster)
}

/// A Secret holding `key`.
pub fn security_secret(names: &Names, owner: OwnerReference, key: &ClusterKey) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(security_secret_name(names)),
            namespace: Some(names.namespace.clone()),
            labels: Some(names.labels("security")),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            KEY_FILE.to_string(),
            ByteString(key.to_text().into_bytes()),
        )])),
        ..Default::default()
    }
}

/// The cluster key a Secret holds, if it holds a valid one.
pub fn key_of(secret: &Secret) -> Result<ClusterKey, String> {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(KEY_FILE))
        .ok_or_else(|| format!("has no {KEY_FILE}"))?;
    let text = std::str::from_utf8(&bytes.0).map_err(|_| format!("{KEY_FILE} is not text"))?;
    ClusterKey::from_hex(text).map_err(|e| format!("{KEY_FILE}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_holds_the_key_and_gives_it_back() {
        let names = Names::new("demo", "data");
        let key = ClusterKey::generate();
        let secret = security_secret(&names, crate::build::test_owner(), &key);
        assert_eq!(secret.metadata.name.as_deref(), Some("demo-security"));
        assert_eq!(secret.metadata.namespace.as_deref(), Some("data"));
        assert_eq!(key_of(&secret).unwrap().to_hex(), key.to_hex());
        let mut broken = secret.clone();
        broken.data = Some(BTreeMap::from([(
            KEY_FILE.into(),
            ByteString(b"xyz".to_vec()),
        )]));
        assert!(key_of(&broken)
            .unwrap_err()
            .contains("64 hexadecimal digits"));
        broken.data = None;
        assert!(key_of(&broken).is_err());
    }
}
