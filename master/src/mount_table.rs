//! The mount table: which UFS URI backs which Alluxio path.
//!
//! Like the inode tree this is plain data mutated only by
//! `MasterState::apply`. Each mount keeps its constructed UFS client; making
//! one does no I/O, so it is safe during journal replay.

use alluxio_common::AlluxioPath;
use alluxio_ufs::{create_ufs, UnderFileSystem};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone)]
pub struct MountPoint {
    pub id: u64,
    pub alluxio_path: AlluxioPath,
    pub ufs_uri: String,
    pub read_only: bool,
    pub shared: bool,
    /// Credentials included: never log this map, show `masked()` instead.
    pub options: BTreeMap<String, String>,
    /// The `sync_interval` option: metadata sync for paths under this
    /// mount when a request does not choose one.
    pub sync_interval_ms: Option<i64>,
    /// The UFS client, or why it could not be built.
    pub ufs: Result<Arc<dyn UnderFileSystem>, String>,
}

impl std::fmt::Debug for MountPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MountPoint")
            .field("id", &self.id)
            .field("alluxio_path", &self.alluxio_path)
            .field("ufs_uri", &self.ufs_uri)
            .field("read_only", &self.read_only)
            .field("options", &alluxio_ufs::options::masked(&self.options))
            .finish()
    }
}

impl MountPoint {
    pub fn new(
        id: u64,
        alluxio_path: AlluxioPath,
        ufs_uri: String,
        read_only: bool,
        shared: bool,
        options: BTreeMap<String, String>,
    ) -> Self {
        let ufs = create_ufs(&ufs_uri, &options).map_err(|e| e.to_string());
        let sync_interval_ms = alluxio_ufs::options::sync_interval_ms(&options);
        MountPoint {
            sync_interval_ms,
            id,
            alluxio_path,
            ufs_uri,
            read_only,
            shared,
            options,
            ufs,
        }
    }

    pub fn kind(&self) -> &'static str {
        self.ufs.as_ref().map(|u| u.kind()).unwrap_or("unknown")
    }
}

/// A path resolved to its mount.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub mount: MountPoint,
    /// Path inside the UFS, relative to the mount's URI ("" for the mount root).
    pub ufs_relative: String,
}

impl Resolved {
    /// Full UFS URI of the resolved path.
    pub fn ufs_uri(&self) -> String {
        if self.ufs_relative.is_empty() {
            self.mount.ufs_uri.trim_end_matches('/').to_string()
        } else {
            format!(
                "{}/{}",
                self.mount.ufs_uri.trim_end_matches('/'),
                self.ufs_relative
            )
        }
    }
}

#[derive(Default)]
pub struct MountTable {
    mounts: BTreeMap<AlluxioPath, MountPoint>,
}

impl MountTable {
    pub fn insert(&mut self, mount: MountPoint) {
        self.mounts.insert(mount.alluxio_path.clone(), mount);
    }

    pub fn remove(&mut self, path: &AlluxioPath) -> Option<MountPoint> {
        self.mounts.remove(path)
    }

    pub fn get(&self, path: &AlluxioPath) -> Option<&MountPoint> {
        self.mounts.get(path)
    }

    pub fn get_mut(&mut self, path: &AlluxioPath) -> Option<&mut MountPoint> {
        self.mounts.get_mut(path)
    }

    pub fn by_id(&self, id: u64) -> Option<&MountPoint> {
        self.mounts.values().find(|m| m.id == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &MountPoint> {
        self.mounts.values()
    }

    pub fn len(&self) -> usize {
        self.mounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
    }

    /// The deepest mount containing `path`.
    pub fn resolve(&self, path: &AlluxioPath) -> Option<Resolved> {
        let mut candidate = Some(path.clone());
        while let Some(p) = candidate {
            if let Some(mount) = self.mounts.get(&p) {
                let ufs_relative = path.relative_to(&p).unwrap_or("").to_string();
                return Some(Resolved {
                    mount: mount.clone(),
                    ufs_relative,
                });
            }
            candidate = p.parent();
        }
        None
    }

    /// The sync interval the deepest mount containing `path` sets, if any.
    pub fn sync_interval_ms(&self, path: &AlluxioPath) -> Option<i64> {
        let mut candidate = Some(path.clone());
        while let Some(p) = candidate {
            if let Some(mount) = self.mounts.get(&p) {
                return mount.sync_interval_ms;
            }
            candidate = p.parent();
        }
        None
    }

    /// Mount points strictly below `path`.
    pub fn mounts_below(&self, path: &AlluxioPath) -> Vec<&MountPoint> {
        self.mounts
            .values()
            .filter(|m| m.alluxio_path != *path && path.is_prefix_of(&m.alluxio_path))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> AlluxioPath {
        AlluxioPath::new(s).unwrap()
    }

    #[test]
    fn resolves_to_deepest_mount() {
        let mut t = MountTable::default();
        t.insert(MountPoint::new(
            1,
            p("/"),
            "memory://root".into(),
            false,
            false,
            Default::default(),
        ));
        t.insert(MountPoint::new(
            2,
            p("/mnt/s3"),
            "memory://b/pre".into(),
            true,
            false,
            Default::default(),
        ));
        let r = t.resolve(&p("/mnt/s3/x/y")).unwrap();
        assert_eq!(r.mount.id, 2);
        assert_eq!(r.ufs_relative, "x/y");
        assert_eq!(r.ufs_uri(), "memory://b/pre/x/y");
        let r = t.resolve(&p("/mnt/s3x")).unwrap();
        assert_eq!((r.mount.id, r.ufs_relative.as_str()), (1, "mnt/s3x"));
        assert_eq!(t.mounts_below(&p("/mnt")).len(), 1);
        assert_eq!(t.resolve(&p("/mnt/s3")).unwrap().ufs_relative, "");
    }
}
