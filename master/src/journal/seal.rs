//! Encryption of the journal at rest (`master.journal.encryption_key_file`).
//!
//! Every record of a sealed file (format version 2: log segments,
//! checkpoints, Raft log segments and snapshots) holds, in place of its
//! plain payload,
//!
//! ```text
//! sealed := key_id (4) | nonce (12) | AES-256-GCM(payload) | tag (16)
//! ```
//!
//! The framing around it (length, CRC32 of the sealed bytes) is unchanged,
//! so torn tails and damage are found exactly as in plain files, before
//! anything is decrypted. Nonces are random (a record rewritten at the same
//! offset after a torn tail must not reuse one), and the tag makes a
//! record changed by anyone without the key fail to open.
//!
//! The key file has the cluster key's format (one key of 64 hex digits per
//! line, mode 0600; created when missing): the first key seals, every one
//! opens, and each record names its key by `key_id`, so a new key can be
//! put first while files sealed with the old one are still read (they go
//! away at the next checkpoint). The AES key is derived from the file's
//! key, so the same file could serve other purposes without the two uses
//! sharing a key. Plain files (version 1) are still read with a key
//! configured: turning encryption on needs no migration.

use super::JournalError;
use alluxio_common::auth::ClusterKey;
use alluxio_common::config::AlluxioConfig;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use std::path::Path;
use std::sync::Arc;

const KEY_ID_LEN: usize = 4;
const TAG_LEN: usize = 16;
/// Bytes a sealed record has beyond its payload.
pub const SEAL_OVERHEAD: usize = KEY_ID_LEN + NONCE_LEN + TAG_LEN;
/// What the AES keys are derived for (never change: it would lock every
/// sealed journal out).
const PURPOSE: &str = "alluxio-rs journal encryption v1";
const ID_PURPOSE: &str = "alluxio-rs journal encryption key id v1";
/// Bound into every tag: a sealed record of something else (made with the
/// same key for another purpose) does not open as a journal record.
const AAD: &[u8] = b"alluxio-rs journal record";

/// The keys of a journal: the first seals, every one opens.
pub struct JournalKey {
    keys: Vec<([u8; KEY_ID_LEN], LessSafeKey)>,
}

impl std::fmt::Debug for JournalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JournalKey(sealing with {})", hex(&self.keys[0].0))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl JournalKey {
    /// The key of `master.journal.encryption_key_file`; None when it is
    /// not set (the journal is written plain).
    pub fn from_config(config: &AlluxioConfig) -> Result<Option<Arc<JournalKey>>, JournalError> {
        match &config.master.journal.encryption_key_file {
            None => Ok(None),
            Some(path) => Ok(Some(Arc::new(JournalKey::load_or_create(path)?))),
        }
    }

    /// The keys in `path`, created (mode 0600) when the file is missing.
    pub fn load_or_create(path: &Path) -> Result<JournalKey, JournalError> {
        let file_key = ClusterKey::load_or_create(path)
            .map_err(|e| JournalError::Failed(format!("journal encryption key: {e}")))?;
        Ok(JournalKey::from_file_key(&file_key))
    }

    /// The journal keys derived from the keys of a key file.
    pub fn from_file_key(file_key: &ClusterKey) -> JournalKey {
        // An id names a key without revealing it: the first bytes of
        // another derivation.
        let ids = file_key.derived(ID_PURPOSE);
        let keys = file_key
            .derived(PURPOSE)
            .into_iter()
            .zip(ids)
            .map(|(aes, id)| {
                let unbound = UnboundKey::new(&AES_256_GCM, &aes).expect("a 32-byte AES key");
                (
                    id[..KEY_ID_LEN].try_into().expect("4 bytes"),
                    LessSafeKey::new(unbound),
                )
            })
            .collect();
        JournalKey { keys }
    }

    /// Appends `payload` sealed with the first key to `out`.
    pub fn seal(&self, payload: &[u8], out: &mut Vec<u8>) {
        let (id, key) = &self.keys[0];
        let nonce: [u8; NONCE_LEN] = rand::random();
        out.reserve(payload.len() + SEAL_OVERHEAD);
        out.extend_from_slice(id);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(payload);
        let mut body = out.split_off(start);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(AAD),
            &mut body,
        )
        .expect("sealing into a Vec cannot fail");
        out.extend_from_slice(&body);
    }

    /// The payload of a sealed record; an error when no key of ours sealed
    /// it or it was changed since.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, String> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(format!(
                "sealed record of {} bytes is too short",
                sealed.len()
            ));
        }
        let (id, rest) = sealed.split_at(KEY_ID_LEN);
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let Some((_, key)) = self.keys.iter().find(|(ours, _)| ours[..] == *id) else {
            return Err(format!(
                "sealed with key {} which the encryption key file does not hold",
                hex(id)
            ));
        };
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "bad nonce")?;
        let mut body = body.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(AAD), &mut body)
            .map_err(|_| "does not decrypt: changed, or sealed with another key".to_string())?;
        let len = plain.len();
        body.truncate(len);
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_records_open_with_any_key_of_the_file_and_nothing_else() {
        let old = ClusterKey::generate();
        let sealer = JournalKey::from_file_key(&old);
        let mut sealed = Vec::new();
        sealer.seal(b"inode 7 renamed to /secret-plans", &mut sealed);
        assert_eq!(sealed.len(), 32 + SEAL_OVERHEAD);
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            sealer.open(&sealed).unwrap(),
            b"inode 7 renamed to /secret-plans"
        );

        // Two seals of the same payload differ (random nonces).
        let mut again = Vec::new();
        sealer.seal(b"inode 7 renamed to /secret-plans", &mut again);
        assert_ne!(sealed, again);

        // A new key first, the old one second: old records still open,
        // new ones are sealed with the new key.
        let rotated = old
            .rotated(alluxio_common::auth::RotationStep::Add)
            .unwrap();
        let rotated = rotated
            .rotated(alluxio_common::auth::RotationStep::Sign)
            .unwrap();
        let both = JournalKey::from_file_key(&rotated);
        assert!(both.open(&sealed).is_ok());
        let mut newer = Vec::new();
        both.seal(b"x", &mut newer);
        assert!(sealer.open(&newer).unwrap_err().contains("does not hold"));

        // Any changed byte is refused; so is a stranger's key.
        for i in 0..sealed.len() {
            let mut changed = sealed.clone();
            changed[i] ^= 1;
            assert!(sealer.open(&changed).is_err(), "byte {i}");
        }
        let stranger = JournalKey::from_file_key(&ClusterKey::generate());
        assert!(stranger.open(&sealed).is_err());
        assert!(sealer.open(&sealed[..10]).is_err());
    }
}
