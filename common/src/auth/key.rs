//! The cluster key and the tokens it signs.
//!
//! A cluster has one secret key (32 random bytes, hex in a file readable
//! by its owner only). A token is `alx1.<claims>.<mac>`: the claims (user,
//! groups, role, issued-at, expiry) as base64url JSON, and an HMAC-SHA256
//! of `alx1.<claims>` under the cluster key. Whoever holds the key (the
//! masters, workers, the operator) can issue tokens and check them without
//! asking anyone; users hold tokens only. HMAC rather than ed25519: every
//! checker is also trusted to issue, so one symmetric key is enough, and
//! checking costs a hash, not a signature verification.
//!
//! During a rotation the key file holds several keys, one per line: the
//! first signs, every one is accepted. Clones of a `ClusterKey` share its
//! keys, and [`ClusterKey::reload`] (which `key_file::watch` calls when
//! the file changes) replaces them for every clone at once.

use super::{AuthError, Identity, Role};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Version tag of the token format.
pub const TOKEN_VERSION: &str = "alx1";
/// Longest token accepted: anything longer is refused before any work.
pub const MAX_TOKEN_LEN: usize = 4096;
/// Tokens issued for the future are refused beyond this clock skew.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);
/// Most keys a key file may hold (a rotation needs two).
pub const MAX_KEYS: usize = 4;

/// The steps of a key rotation, in order (see [`ClusterKey::rotated`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotationStep {
    Add,
    Sign,
    Drop,
}

impl std::str::FromStr for RotationStep {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "add" => Ok(RotationStep::Add),
            "sign" => Ok(RotationStep::Sign),
            "drop" => Ok(RotationStep::Drop),
            _ => Err(format!("unknown step {s:?}: add, sign or drop")),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    grp: Vec<String>,
    role: Role,
    iat: u64,
    exp: u64,
}

/// The cluster's secret keys: the first signs, every one verifies.
#[derive(Clone)]
pub struct ClusterKey(Arc<RwLock<Vec<[u8; 32]>>>);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(******)")
    }
}

pub(crate) fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl ClusterKey {
    fn of(keys: Vec<[u8; 32]>) -> Self {
        ClusterKey(Arc::new(RwLock::new(keys)))
    }

    fn keys(&self) -> std::sync::RwLockReadGuard<'_, Vec<[u8; 32]>> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    /// A new random key.
    pub fn generate() -> Self {
        Self::of(vec![rand::random()])
    }

    /// Reads a key file (one key of 64 hex digits per line). A file that
    /// others may read, or its group write, is refused: the key would be
    /// as good as public. Its group may read it only when root owns it
    /// (PostgreSQL's rule for key files): that is how the kubelet projects
    /// a Secret for a pod with an `fsGroup`, root:fsGroup and mode 0440.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        Ok(Self::of(read_keys(path)?))
    }

    /// Keys from their text: one key of 64 hex digits per line (blank
    /// lines and surrounding whitespace ignored), the signing key first.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        Ok(Self::of(parse_keys(text)?))
    }

    /// The signing key as 64 hex digits.
    pub fn to_hex(&self) -> String {
        hex(&self.keys()[0])
    }

    /// Every key, one per line, the signing key first (what key files and
    /// Secrets hold).
    pub fn to_text(&self) -> String {
        self.keys()
            .iter()
            .map(|k| format!("{}\n", hex(k)))
            .collect()
    }

    /// A short name of the signing key (not secret: the first bytes of
    /// its SHA-256), for logs and for noticing that it changed.
    pub fn signing_id(&self) -> String {
        hex(&sha2::Sha256::digest(self.keys()[0])[..4])
    }

    /// A key for another `purpose` from each key (HMAC-SHA256 of the
    /// purpose's name), the signing key's first: one secret in a file, and
    /// keys for different uses that reveal nothing of each other.
    pub fn derived(&self, purpose: &str) -> Vec<[u8; 32]> {
        self.keys()
            .iter()
            .map(|key| {
                let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
                mac.update(purpose.as_bytes());
                mac.finalize().into_bytes().into()
            })
            .collect()
    }

    /// How many keys are accepted.
    pub fn accepted(&self) -> usize {
        self.keys().len()
    }

    /// Reads `path` again; returns whether the keys changed (then every
    /// clone signs and verifies with the new ones).
    pub fn reload(&self, path: &Path) -> Result<bool, AuthError> {
        let keys = read_keys(path)?;
        let mut current = self.0.write().unwrap_or_else(|p| p.into_inner());
        if *current == keys {
            return Ok(false);
        }
        *current = keys;
        Ok(true)
    }

    /// The keys after one step of a rotation: `Add` a new key (accepted,
    /// not yet signing), make it `Sign` (the old one still accepted),
    /// `Drop` every key but the signing one. Each step is refused when the
    /// keys are not where it follows on.
    pub fn rotated(&self, step: RotationStep) -> Result<ClusterKey, String> {
        let keys = self.keys().clone();
        let next = match (step, keys.len()) {
            (RotationStep::Add, 1) => vec![keys[0], rand::random()],
            (RotationStep::Sign, 2) => vec![keys[1], keys[0]],
            (RotationStep::Drop, n) if n >= 2 => vec![keys[0]],
            (step, n) => {
                return Err(format!(
                    "{step:?} follows on {}, and the key file holds {n} key(s)",
                    match step {
                        RotationStep::Add => "one key",
                        RotationStep::Sign => "two keys (after add)",
                        RotationStep::Drop => "two keys (after sign)",
                    }
                ))
            }
        };
        Ok(Self::of(next))
    }

    /// The key in `path`, created (mode 0600) when the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, AuthError> {
        if path.exists() {
            return Self::load(path);
        }
        let key = Self::generate();
        let text = key.to_text();
        let written = (|| -> std::io::Result<()> {
            use std::io::Write;
            if let Some(dir) = path.parent() {
                crate::io::create_dir_all_durable(dir)?;
            }
            let mut f = crate::io::create_private(path)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            // Tokens are minted from it: it must outlive a power loss.
            crate::io::sync_parent(path)
        })();
        written.map_err(|e| AuthError::Key {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(key)
    }

    /// The MAC of `signed` under the signing key.
    fn mac(&self, signed: &str) -> HmacSha256 {
        mac_with(&self.keys()[0], signed)
    }

    /// A token for `user` with `groups` and `role`, valid for `valid_for`.
    pub fn issue(&self, user: &str, groups: &[String], role: Role, valid_for: Duration) -> String {
        let iat = now_s();
        let claims = Claims {
            sub: user.to_string(),
            grp: groups.to_vec(),
            role,
            iat,
            exp: iat.saturating_add(valid_for.as_secs()),
        };
        let json = serde_json::to_vec(&claims).expect("claims serialise");
        self.sign(TOKEN_VERSION, &json)
    }

    /// `<version>.<claims>.<mac>` for `claims` (JSON bytes).
    pub(super) fn sign(&self, version: &str, claims: &[u8]) -> String {
        let signed = format!("{version}.{}", URL_SAFE_NO_PAD.encode(claims));
        let tag = self.mac(&signed).finalize().into_bytes();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The claims of `text` if it is a `version` message this key signed.
    pub(super) fn open(&self, version: &str, text: &str) -> Result<Vec<u8>, AuthError> {
        if text.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed("too long"));
        }
        let (signed, tag) = text
            .rsplit_once('.')
            .ok_or(AuthError::Malformed("no signature"))?;
        let (found, claims) = signed
            .split_once('.')
            .ok_or(AuthError::Malformed("no claims"))?;
        if found != version {
            return Err(AuthError::Malformed("unknown version"));
        }
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| AuthError::Malformed("signature is not base64url"))?;
        // Constant time: a mismatch says nothing about where it is.
        let signed_by_one = self
            .keys()
            .iter()
            .any(|key| mac_with(key, signed).verify_slice(&tag).is_ok());
        if !signed_by_one {
            return Err(AuthError::BadSignature);
        }
        URL_SAFE_NO_PAD
            .decode(claims)
            .map_err(|_| AuthError::Malformed("claims are not base64url"))
    }

    /// The identity a token carries, if this key signed it and it is
    /// valid now.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        self.verify_at(token, now_s())
    }

    fn verify_at(&self, token: &str, now: u64) -> Result<Identity, AuthError> {
        let json = self.open(TOKEN_VERSION, token)?;
        let claims: Claims = serde_json::from_slice(&json)
            .map_err(|_| AuthError::Malformed("claims are not JSON"))?;
        if claims.exp <= now {
            return Err(AuthError::Expired(now - claims.exp));
        }
        if claims.iat > now + MAX_CLOCK_SKEW.as_secs() {
            return Err(AuthError::NotYetValid(claims.iat - now));
        }
        if claims.sub.is_empty() {
            return Err(AuthError::Malformed("no user"));
        }
        Ok(Identity {
            user: claims.sub,
            groups: claims.grp,
            role: claims.role,
            expires_at: claims.exp,
            via: None,
        })
    }
}

fn mac_with(key: &[u8; 32], signed: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(signed.as_bytes());
    mac
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The keys of a key file, checking who may read it (see
/// [`ClusterKey::load`]).
fn read_keys(path: &Path) -> Result<Vec<[u8; 32]>, AuthError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let fail = |reason: String| AuthError::Key {
        path: path.display().to_string(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    let mode = meta.permissions().mode() & 0o777;
    let allowed = if meta.uid() == 0 { 0o640 } else { 0o600 };
    if mode & !allowed != 0 {
        return Err(fail(format!(
            "mode {mode:o} lets others read it; chmod 600 it (640 is allowed when root owns it)"
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    parse_keys(&text).map_err(fail)
}

fn parse_keys(text: &str) -> Result<Vec<[u8; 32]>, String> {
    let mut keys = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.len() != 64 || !line.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("expected 64 hexadecimal digits per line".to_string());
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&line[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
        }
        keys.push(key);
    }
    if keys.is_empty() {
        return Err("expected 64 hexadecimal digits (no key in it)".to_string());
    }
    if keys.len() > MAX_KEYS {
        return Err(format!("{} keys; at most {MAX_KEYS}", keys.len()));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_token_carries_its_identity() {
        let key = ClusterKey::generate();
        let token = key.issue("alice", &["staff".into()], Role::User, HOUR);
        let who = key.verify(&token).unwrap();
        assert_eq!(who.user, "alice");
        assert_eq!(who.groups, ["staff"]);
        assert_eq!(who.role, Role::User);
        assert!(who.expires_at >= now_s() + 3599);
    }

    #[test]
    fn forged_expired_and_truncated_tokens_are_refused() {
        let key = ClusterKey::generate();
        let token = key.issue("alice", &[], Role::User, HOUR);
        let (signed, tag) = token.rsplit_once('.').unwrap();

        // Another cluster's key.
        let other = ClusterKey::generate();
        assert_eq!(other.verify(&token), Err(AuthError::BadSignature));
        // Claims rewritten to make alice an admin, signature kept.
        let admin = serde_json::json!({"sub": "alice", "grp": [], "role": "admin",
            "iat": now_s(), "exp": now_s() + 3600});
        let forged = format!(
            "{TOKEN_VERSION}.{}.{tag}",
            URL_SAFE_NO_PAD.encode(admin.to_string())
        );
        assert_eq!(key.verify(&forged), Err(AuthError::BadSignature));
        // A signature changed by one character (the first: every one of
        // its bits counts, unlike the last one's padding bits).
        let mut bad_tag = tag.to_string();
        let first = if bad_tag.starts_with('A') { "B" } else { "A" };
        bad_tag.replace_range(..1, first);
        assert_eq!(
            key.verify(&format!("{signed}.{bad_tag}")),
            Err(AuthError::BadSignature)
        );
        // Truncated anywhere.
        for cut in [0, 4, 5, token.len() / 2, token.len() - 1] {
            assert!(key.verify(&token[..cut]).is_err(), "cut at {cut}");
        }
        // Expired, and issued in the far future.
        let issued = key.verify(&token).unwrap();
        assert!(matches!(
            key.verify_at(&token, issued.expires_at),
            Err(AuthError::Expired(0))
        ));
        assert!(matches!(
            key.verify_at(&token, now_s() - 3600),
            Err(AuthError::NotYetValid(_))
        ));
        // Oversized and of another version.
        let huge = format!("{TOKEN_VERSION}.{}.x", "a".repeat(MAX_TOKEN_LEN));
        assert_eq!(key.verify(&huge), Err(AuthError::Malformed("too long")));
        let v2 = token.replacen(TOKEN_VERSION, "alx2", 1);
        assert_eq!(
            key.verify(&v2),
            Err(AuthError::Malformed("unknown version"))
        );
    }

    #[test]
    fn key_files_are_created_private_and_others_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/cluster.key");
        let key = ClusterKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // The same key the next time.
        let again = ClusterKey::load_or_create(&path).unwrap();
        let token = key.issue("bob", &[], Role::Worker, HOUR);
        assert_eq!(again.verify(&token).unwrap().role, Role::Worker);
        // Readable by others: refused, saying how to fix it.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = ClusterKey::load(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        // Group-readable: only when root owns it (a projected Secret).
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o440)).unwrap();
        let owned_by_root =
            std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&path).unwrap()) == 0;
        assert_eq!(ClusterKey::load(&path).is_ok(), owned_by_root);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o460)).unwrap();
        assert!(ClusterKey::load(&path).is_err(), "group-writable");
        // Not a key.
        std::fs::write(&path, "not hex").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = ClusterKey::load(&path).unwrap_err().to_string();
        assert!(err.contains("64 hexadecimal digits"), "{err}");
        // And the key never shows in logs.
        assert_eq!(format!("{key:?}"), "ClusterKey(******)");
    }
}
