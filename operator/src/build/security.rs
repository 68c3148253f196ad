//! The cluster's Secret: the cluster key that its masters and workers
//! check tokens with and mint their own from (see `alluxio_common::auth`),
//! and the key the masters encrypt their journal with when
//! `spec.master.journal.encrypted` (`journal.key`, never rotated by the
//! operator: records sealed with a dropped key could not be read).
//! The operator creates it once with a fresh random key and never
//! overwrites it (a key replaced at once would lock out every running
//! pod; a rotation edits it in three steps, see the README); it is owned
//! by the cluster, so it goes with it. The pods mount it read-only for
//! their own user (mode 0400), and read it again when the kubelet updates
//! it.

use super::names::Names;
use crate::crd::cluster::AlluxioClusterSpec;
use alluxio_common::auth::ClusterKey;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::ByteString;
use std::collections::BTreeMap;

/// The Secret's key holding the cluster key, and the file name it gets in
/// the pods.
pub const KEY_FILE: &str = "cluster.key";
/// The Secret's key holding the journal's encryption key (masters only).
pub const JOURNAL_KEY_FILE: &str = "journal.key";

pub fn security_secret_name(names: &Names) -> String {
    format!("{}-security", names.cluster)
}

/// A Secret holding `key` and a new journal key.
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
        data: Some(BTreeMap::from([
            (KEY_FILE.to_string(), ByteString(key.to_text().into_bytes())),
            new_journal_key(),
        ])),
        ..Default::default()
    }
}

/// A fresh journal key, as the Secret's entry.
pub fn new_journal_key() -> (String, ByteString) {
    let text = ClusterKey::generate().to_text();
    (JOURNAL_KEY_FILE.to_string(), ByteString(text.into_bytes()))
}

/// The Secret's keys that carry a TLS cluster's CA and server name to
/// the CSI plugin (which gets this Secret with its requests).
pub const CA_FILE: &str = "ca.crt";
pub const SERVER_NAME: &str = "tls-server-name";

/// What the cluster's Secret should hold under [`CA_FILE`] and
/// [`SERVER_NAME`]: with `spec.tls`, `ca` (its Secret's `ca.crt`) and the
/// server name; without, nothing (None: the key removed).
pub fn tls_entries(
    names: &Names,
    spec: &AlluxioClusterSpec,
    ca: Option<&ByteString>,
) -> [(&'static str, Option<ByteString>); 2] {
    let server_name = spec
        .tls
        .as_ref()
        .map(|tls| ByteString(names.tls_server_name(tls).into_bytes()));
    let ca = spec.tls.as_ref().and(ca.cloned());
    [(CA_FILE, ca), (SERVER_NAME, server_name)]
}

/// Whether a Secret holds a journal key (Secrets of older operators do
/// not: one is added).
pub fn has_journal_key(secret: &Secret) -> bool {
    secret
        .data
        .as_ref()
        .is_some_and(|d| d.contains_key(JOURNAL_KEY_FILE))
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
        assert!(has_journal_key(&secret));
        let journal = &secret.data.as_ref().unwrap()[JOURNAL_KEY_FILE];
        let journal = ClusterKey::from_hex(std::str::from_utf8(&journal.0).unwrap()).unwrap();
        assert_ne!(journal.to_hex(), key.to_hex(), "two different secrets");
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

    #[test]
    fn a_tls_cluster_hands_its_ca_and_server_name_to_csi() {
        let names = Names::new("demo", "data");
        let mut spec = AlluxioClusterSpec::default();
        let ca = ByteString(b"-----BEGIN CERTIFICATE-----".to_vec());
        assert_eq!(
            tls_entries(&names, &spec, Some(&ca)),
            [(CA_FILE, None), (SERVER_NAME, None)]
        );
        spec.tls = Some(crate::crd::cluster::TlsSpec {
            secret_name: "demo-tls".into(),
            server_name: None,
        });
        assert_eq!(
            tls_entries(&names, &spec, Some(&ca)),
            [
                (CA_FILE, Some(ca)),
                (SERVER_NAME, Some(ByteString(b"demo.data.alluxio".to_vec())))
            ]
        );
    }
}
