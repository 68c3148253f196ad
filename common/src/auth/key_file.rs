//! Keeping a process's cluster key in step with its key file, so that a
//! key rotation needs no restart: everything in a process that loads the
//! same key file shares one [`ClusterKey`], and while a tokio runtime
//! runs, a task reads the file every [`RELOAD_INTERVAL`] and takes its
//! keys when they changed (the kubelet updates a mounted Secret in place
//! the same way, by swapping the file atomically). A file that cannot be
//! read, or holds no valid key, leaves the keys as they were (said in a
//! warning): a half-written or briefly missing file must not lock the
//! process out.

use super::{AuthError, ClusterKey};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// How often a key file is read again.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(10);

struct Shared {
    key: ClusterKey,
    watcher: Option<tokio::task::JoinHandle<()>>,
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Shared>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Shared>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The key in `path` (created when missing and `create`), as the file
/// holds it now, shared with everything else in this process that loads
/// `path`, and reloaded when the file changes.
pub fn shared(path: &Path, create: bool) -> Result<ClusterKey, AuthError> {
    let mut registry = registry().lock().unwrap_or_else(|p| p.into_inner());
    let key = match registry.get(path) {
        Some(shared) => {
            shared.key.reload(path)?;
            shared.key.clone()
        }
        None => {
            let key = match create {
                true => ClusterKey::load_or_create(path)?,
                false => ClusterKey::load(path)?,
            };
            let shared = Shared {
                key: key.clone(),
                watcher: None,
            };
            registry.insert(path.to_path_buf(), shared);
            key
        }
    };
    let shared = registry.get_mut(path).expect("just found or inserted");
    // A watcher dies with the runtime it ran on (tests start many).
    let watching = shared.watcher.as_ref().is_some_and(|w| !w.is_finished());
    if !watching {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (key, path) = (key.clone(), path.to_path_buf());
            shared.watcher = Some(runtime.spawn(watch(key, path, RELOAD_INTERVAL)));
        }
    }
    Ok(key)
}

/// Replaces the key file at `path` with `key`'s keys: a new private file
/// (mode 0600), synced and renamed over the old one, so a reader sees the
/// old keys or the new ones, never half a file.
pub fn replace(path: &Path, key: &ClusterKey) -> Result<(), AuthError> {
    crate::io::replace_private(path, key.to_text().as_bytes()).map_err(|e| AuthError::Key {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Reads `path` every `interval` into `key`, forever.
async fn watch(key: ClusterKey, path: PathBuf, interval: Duration) {
    let mut failing = false;
    loop {
        tokio::time::sleep(interval).await;
        match key.reload(&path) {
            Ok(true) => {
                failing = false;
                tracing::info!(
                    file = %path.display(),
                    signing = key.signing_id(),
                    accepted = key.accepted(),
                    "the cluster key file changed: new keys in use"
                );
            }
            Ok(false) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "cannot read the cluster key file again; keeping the keys in use");
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    const HOUR: Duration = Duration::from_secs(3600);

    fn write_keys(path: &Path, keys: &[&ClusterKey]) {
        let text: String = keys.iter().map(|k| k.to_text()).collect();
        replace(path, &ClusterKey::from_hex(&text).unwrap()).unwrap();
    }

    /// The three steps of a rotation, as loads of one shared key see them:
    /// tokens of the old key stay good until the last step, and tokens of
    /// the new key are good from the first.
    #[test]
    fn a_rotation_in_three_steps_keeps_every_holder_working() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.key");
        let (old, new) = (ClusterKey::generate(), ClusterKey::generate());
        write_keys(&path, &[&old]);
        let held = shared(&path, false).unwrap();
        let old_token = old.issue("bob", &[], Role::User, HOUR);
        let new_token = new.issue("bob", &[], Role::User, HOUR);
        assert!(held.verify(&old_token).is_ok());
        assert!(held.verify(&new_token).is_err());

        // 1. The new key is accepted; the old one still signs.
        write_keys(&path, &[&old, &new]);
        assert!(held.reload(&path).unwrap());
        assert_eq!(held.signing_id(), old.signing_id());
        assert!(held.verify(&old_token).is_ok() && held.verify(&new_token).is_ok());
        // 2. The new key signs; the old one is still accepted.
        write_keys(&path, &[&new, &old]);
        let again = shared(&path, false).unwrap();
        assert_eq!(held.signing_id(), new.signing_id(), "clones share the keys");
        assert!(old
            .verify(&again.issue("bob", &[], Role::User, HOUR))
            .is_err());
        assert!(held.verify(&old_token).is_ok() && held.verify(&new_token).is_ok());
        // 3. The old key is gone.
        write_keys(&path, &[&new]);
        assert!(held.reload(&path).unwrap());
        assert!(held.verify(&old_token).is_err());
        assert!(held.verify(&new_token).is_ok());
        assert!(!held.reload(&path).unwrap(), "unchanged");

        // A broken file changes nothing.
        std::fs::write(&path, "half a ke").unwrap();
        assert!(held.reload(&path).is_err());
        assert!(held.verify(&new_token).is_ok());
        // Nor do too many keys.
        let many: String = (0..5).map(|_| ClusterKey::generate().to_text()).collect();
        std::fs::write(&path, many).unwrap();
        assert!(held
            .reload(&path)
            .unwrap_err()
            .to_string()
            .contains("at most"));
    }

    #[test]
    fn the_rotation_steps_follow_on_one_another_only() {
        use crate::auth::key::RotationStep::{Add, Drop, Sign};
        let old = ClusterKey::generate();
        assert!(old.rotated(Sign).is_err() && old.rotated(Drop).is_err());
        let added = old.rotated(Add).unwrap();
        assert_eq!(added.accepted(), 2);
        assert_eq!(added.signing_id(), old.signing_id());
        assert!(added.rotated(Add).is_err());
        let signing = added.rotated(Sign).unwrap();
        assert_ne!(signing.signing_id(), old.signing_id());
        let token = old.issue("bob", &[], Role::User, HOUR);
        assert!(signing.verify(&token).is_ok());
        let dropped = signing.rotated(Drop).unwrap();
        assert_eq!(dropped.accepted(), 1);
        assert_eq!(dropped.signing_id(), signing.signing_id());
        assert!(dropped.verify(&token).is_err());
        // Written and read back, private.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.key");
        replace(&path, &signing).unwrap();
        let read = ClusterKey::load(&path).unwrap();
        assert_eq!(read.to_text(), signing.to_text());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[tokio::test]
    async fn a_running_process_takes_the_new_keys_by_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.key");
        let (old, new) = (ClusterKey::generate(), ClusterKey::generate());
        write_keys(&path, &[&old]);
        let held = ClusterKey::load(&path).unwrap();
        let watcher = tokio::spawn(watch(held.clone(), path.clone(), Duration::from_millis(20)));
        write_keys(&path, &[&new, &old]);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while held.signing_id() != new.signing_id() {
            assert!(std::time::Instant::now() < deadline, "never reloaded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(held.accepted(), 2);
        // A broken file in between keeps the keys in use.
        std::fs::write(&path, "broken").unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(held.accepted(), 2);
        watcher.abort();
    }
}
