//! Metadata of completed files that the daemon already holds, so that a
//! lookup, getattr or open of a file it saw a moment ago costs no call to
//! the master. A completed Alluxio file never changes (a sync that finds
//! the UFS file changed makes a new inode), so an entry stays valid for
//! the mount's `metadata_cache_ttl` (default: `attr_timeout`); whatever
//! this mount changes (create, replace, delete, rename, chmod) is dropped
//! from the cache at once. Files being written are never kept.
//! Directories are, for their attributes only (a listing always asks the
//! master): another client's change to them shows after the TTL, as it
//! does through the kernel's attribute cache. Entries are per calling
//! user: the master checked that user's permissions, and the capability
//! in the file info is that user's. Not per group set: the daemon learns a
//! process's supplementary groups from `/proc`, which a short-lived process
//! (an `ls`) may have left, so the same user's processes share entries.

use alluxio_proto::grpc::FileInfo;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept at most; the cache starts afresh beyond that.
const MAX_ENTRIES: usize = 100_000;

/// (caller, path) -> when seen, what was seen.
type Entries = HashMap<(String, String), (Instant, FileInfo)>;

pub struct MetadataCache {
    ttl: Duration,
    entries: Mutex<Entries>,
}

impl MetadataCache {
    pub fn new(ttl: Duration) -> Self {
        MetadataCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The file at `path` as `caller` saw it, if completed, within the TTL.
    pub fn get(&self, caller: &str, path: &str) -> Option<FileInfo> {
        let entries = self.lock();
        let (seen, info) = entries.get(&(caller.to_string(), path.to_string()))?;
        (seen.elapsed() < self.ttl).then(|| info.clone())
    }

    /// Keeps what `caller` was told about `path`, unless it is a file
    /// still being written.
    pub fn put(&self, caller: &str, path: &str, info: &FileInfo) {
        if self.ttl.is_zero() || (!info.folder && !info.completed) {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            (caller.to_string(), path.to_string()),
            (Instant::now(), info.clone()),
        );
    }

    /// Drops `path` and everything below it (a directory renamed or
    /// deleted takes its files along).
    pub fn forget_tree(&self, path: &str) {
        let mut entries = self.lock();
        let below = format!("{}/", path.trim_end_matches('/'));
        entries.retain(|(_, p), _| p != path && !p.starts_with(&below));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, completed: bool) -> FileInfo {
        FileInfo {
            path: path.into(),
            completed,
            ..Default::default()
        }
    }

    #[test]
    fn completed_files_are_kept_per_caller_for_the_ttl_and_forgotten_with_their_tree() {
        let cache = MetadataCache::new(Duration::from_secs(60));
        cache.put("alice", "/d/a", &file("/d/a", true));
        cache.put("alice", "/d/b", &file("/d/b", false));
        cache.put("alice", "/da", &file("/da", true));
        assert!(cache.get("alice", "/d/a").is_some());
        assert!(
            cache.get("bob", "/d/a").is_none(),
            "another caller asks the master"
        );
        assert!(
            cache.get("alice", "/d/b").is_none(),
            "files being written are not kept"
        );
        cache.forget_tree("/d");
        assert!(cache.get("alice", "/d/a").is_none());
        assert!(
            cache.get("alice", "/da").is_some(),
            "a sibling with the same prefix stays"
        );

        let expired = MetadataCache::new(Duration::from_millis(1));
        expired.put("alice", "/x", &file("/x", true));
        std::thread::sleep(Duration::from_millis(5));
        assert!(expired.get("alice", "/x").is_none());
        let off = MetadataCache::new(Duration::ZERO);
        off.put("alice", "/x", &file("/x", true));
        assert!(off.get("alice", "/x").is_none());
    }
}
