//! Capabilities: the master's signed word that a user may read (and, for
//! a file being written, write) the blocks of one file. A worker cannot
//! check permission bits (it knows no files), so the master attaches a
//! capability to the file infos it hands a caller who may read the file,
//! and workers serve block bytes only to requests that carry one for the
//! block's file. `cap1.<claims>.<mac>`: file id, user and expiry as
//! base64url JSON, HMAC-SHA256 under the cluster key like tokens (a
//! different prefix, so neither passes for the other).

use super::key::now_s;
use super::{AuthError, ClusterKey, MAX_TOKEN_LEN};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Version tag of the capability format.
pub const CAPABILITY_VERSION: &str = "cap1";
/// How long a capability is good for: a reader holds the file info it
/// opened with for as long as it reads.
pub const CAPABILITY_TTL: Duration = Duration::from_secs(12 * 3600);

#[derive(Serialize, Deserialize)]
struct Claims {
    fid: u64,
    sub: String,
    exp: u64,
}

impl ClusterKey {
    /// A capability for `user` on the blocks of file `file_id`.
    pub fn issue_capability(&self, file_id: u64, user: &str) -> String {
        let claims = Claims {
            fid: file_id,
            sub: user.to_string(),
            exp: now_s().saturating_add(CAPABILITY_TTL.as_secs()),
        };
        let json = serde_json::to_vec(&claims).expect("claims serialise");
        self.sign(CAPABILITY_VERSION, &json)
    }

    /// Whether `capability` is this cluster's, valid now, for `file_id`.
    pub fn verify_capability(&self, capability: &str, file_id: u64) -> Result<(), AuthError> {
        if capability.is_empty() {
            return Err(AuthError::NoCapability(file_id));
        }
        if capability.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed("capability too long"));
        }
        let json = self.open(CAPABILITY_VERSION, capability)?;
        let claims: Claims = serde_json::from_slice(&json)
            .map_err(|_| AuthError::Malformed("capability claims are not JSON"))?;
        let now = now_s();
        if claims.exp <= now {
            return Err(AuthError::Expired(now - claims.exp));
        }
        if claims.fid != file_id {
            return Err(AuthError::NoCapability(file_id));
        }
        Ok(())
    }
}

/// Issues capabilities, reusing one for the same file and user while it
/// has most of its life left: signing is the per-call cost a getStatus
/// would otherwise pay every time.
pub struct CapabilityIssuer {
    key: ClusterKey,
    issued:
        std::sync::Mutex<std::collections::HashMap<(u64, String), (String, std::time::Instant)>>,
}

/// A capability younger than this is handed out again.
const REUSE_FOR: Duration = Duration::from_secs(3600);
/// Remembered capabilities before the memory starts afresh.
const REMEMBERED: usize = 65_536;

impl CapabilityIssuer {
    pub fn new(key: ClusterKey) -> Self {
        CapabilityIssuer {
            key,
            issued: Default::default(),
        }
    }

    /// A capability for `user` on file `file_id`.
    pub fn issue(&self, file_id: u64, user: &str) -> String {
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        let id = (file_id, user.to_string());
        if let Some((cap, at)) = issued.get(&id) {
            if at.elapsed() < REUSE_FOR {
                return cap.clone();
            }
        }
        if issued.len() >= REMEMBERED {
            issued.clear();
        }
        let cap = self.key.issue_capability(file_id, user);
        issued.insert(id, (cap.clone(), std::time::Instant::now()));
        cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    #[test]
    fn a_capability_opens_one_file_of_one_cluster() {
        let key = ClusterKey::generate();
        let cap = key.issue_capability(42, "alice");
        assert!(key.verify_capability(&cap, 42).is_ok());
        assert_eq!(
            key.verify_capability(&cap, 43),
            Err(AuthError::NoCapability(43))
        );
        assert_eq!(
            key.verify_capability("", 42),
            Err(AuthError::NoCapability(42))
        );
        let other = ClusterKey::generate();
        assert_eq!(
            other.verify_capability(&cap, 42),
            Err(AuthError::BadSignature)
        );
        // A token is not a capability, nor the other way round.
        let token = key.issue("alice", &[], Role::Admin, Duration::from_secs(60));
        assert!(key.verify_capability(&token, 42).is_err());
        assert!(key.verify(&cap).is_err());
        assert!(key.verify_capability(&cap[..cap.len() - 2], 42).is_err());
    }

    #[test]
    fn the_issuer_reuses_a_capability_per_file_and_user() {
        let key = ClusterKey::generate();
        let issuer = CapabilityIssuer::new(key.clone());
        let first = issuer.issue(7, "alice");
        assert_eq!(issuer.issue(7, "alice"), first);
        assert_ne!(issuer.issue(7, "bob"), first);
        assert_ne!(issuer.issue(8, "alice"), first);
        assert!(key.verify_capability(&first, 7).is_ok());
    }
}
