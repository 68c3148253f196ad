//! The listing a load job follows: the files under a path in depth-first
//! name order, a batch at a time, resuming after a cursor (the last file
//! handled). Pure over a `MasterState`, so the caller holds the read lock
//! for one batch only, and a directory whose children were never listed
//! from the UFS stops the batch there: the caller syncs it without any
//! lock and asks again with the same cursor.

use crate::inode::{Inode, Persistence};
use crate::state::MasterState;
use alluxio_common::{AlluxioError, AlluxioPath, Result};
use std::ops::Bound;

/// One batch of a listing.
#[derive(Debug, Default)]
pub struct Batch {
    /// File ids and paths, in listing order, all after the cursor.
    pub files: Vec<(u64, AlluxioPath)>,
    /// A directory to load from the UFS before the listing can go on.
    pub needs_sync: Option<AlluxioPath>,
    /// Nothing is left after the last file of `files`.
    pub done: bool,
}

/// Whether a directory's children still have to be listed from the UFS
/// (persisted directories and mount points only: nothing else is there).
pub fn children_unknown(inode: &Inode) -> bool {
    inode.dir().is_some_and(|d| {
        !d.children_loaded && (inode.persistence == Persistence::Persisted || d.mount_point)
    })
}

/// Up to `limit` files under `root` after `cursor` (everything when
/// `cursor` is `None`). `unsynced` says which directories must be synced
/// first (normally [`children_unknown`], minus those already tried).
pub fn next_batch(
    state: &MasterState,
    root: &AlluxioPath,
    cursor: Option<&AlluxioPath>,
    limit: usize,
    unsynced: &dyn Fn(&Inode) -> bool,
) -> Result<Batch> {
    let missing = || AlluxioError::NotFound(format!("{root} does not exist"));
    let root_inode = state
        .tree
        .lookup(root)
        .and_then(|id| state.tree.get(id))
        .ok_or_else(missing)?;
    let mut batch = Batch::default();
    if !root_inode.is_dir() {
        if cursor.is_none() {
            batch.files.push((root_inode.id, root.clone()));
        }
        batch.done = true;
        return Ok(batch);
    }
    let after: Vec<&str> = match cursor {
        None => Vec::new(),
        Some(c) => match c.relative_to(root) {
            Some(rel) if !rel.is_empty() => rel.split('/').collect(),
            // A cursor outside the root (never written so): start over.
            _ => Vec::new(),
        },
    };
    if after.is_empty() && unsynced(root_inode) {
        batch.needs_sync = Some(root.clone());
        return Ok(batch);
    }
    let walk = Walk {
        state,
        limit: limit.max(1),
        unsynced,
    };
    batch.done = !walk.directory(root_inode, root, &after, &mut batch);
    Ok(batch)
}

struct Walk<'a> {
    state: &'a MasterState,
    limit: usize,
    unsynced: &'a dyn Fn(&Inode) -> bool,
}

impl Walk<'_> {
    /// Adds the files of `dir` after `after` (a path relative to it) to
    /// `batch`; true when the batch stopped early (full, or a sync needed).
    fn directory(
        &self,
        dir: &Inode,
        path: &AlluxioPath,
        after: &[&str],
        batch: &mut Batch,
    ) -> bool {
        let Some(data) = dir.dir() else {
            return false;
        };
        let start = after
            .first()
            .map_or(Bound::Unbounded, |n| Bound::Included(*n));
        for (name, id) in data.children.range::<str, _>((start, Bound::Unbounded)) {
            let Some(child) = self.state.tree.get(*id) else {
                continue;
            };
            let Ok(child_path) = path.join(name) else {
                continue;
            };
            let on_cursor = after.first() == Some(&name.as_ref());
            if child.is_dir() {
                // The cursor runs through this directory: continue inside
                // it after the cursor's remainder.
                let rest: &[&str] = if on_cursor { &after[1..] } else { &[] };
                if on_cursor && rest.is_empty() {
                    continue;
                }
                if rest.is_empty() && (self.unsynced)(child) {
                    batch.needs_sync = Some(child_path);
                    return true;
                }
                if self.directory(child, &child_path, rest, batch) {
                    return true;
                }
            } else if !on_cursor {
                batch.files.push((child.id, child_path));
                if batch.files.len() >= self.limit {
                    return true;
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inode::{DirectoryData, FileData, InodeKind, ROOT_ID};

    fn inode(id: u64, parent: u64, name: &str, dir: bool, loaded: bool) -> Inode {
        Inode {
            id,
            parent_id: parent,
            name: name.into(),
            owner: "u".into(),
            group: "g".into(),
            mode: 0o755,
            persistence: Persistence::Persisted,
            pinned: false,
            ttl_action: 0,
            creation_time_ms: 0,
            mtime_ms: 0,
            ttl_ms: -1,
            kind: if dir {
                InodeKind::Directory(DirectoryData {
                    children: Default::default(),
                    mount_point: false,
                    children_loaded: loaded,
                })
            } else {
                InodeKind::File(FileData {
                    length: 1,
                    block_size: 1,
                    completed: true,
                    ufs_mtime_ms: 0,
                })
            },
        }
    }

    /// /a/{x, y/{1, 2}, z}, /b (file); /c is a directory never listed.
    fn tree() -> MasterState {
        let mut s = MasterState::default();
        let mut add = |i| s.tree.insert(i).unwrap();
        add(inode(ROOT_ID, 0, "", true, true));
        add(inode(2, ROOT_ID, "a", true, true));
        add(inode(3, 2, "x", false, true));
        add(inode(4, 2, "y", true, true));
        add(inode(5, 4, "1", false, true));
        add(inode(6, 4, "2", false, true));
        add(inode(7, 2, "z", false, true));
        add(inode(8, ROOT_ID, "b", false, true));
        add(inode(9, ROOT_ID, "c", true, false));
        s
    }

    fn p(s: &str) -> AlluxioPath {
        AlluxioPath::new(s).unwrap()
    }

    fn names(b: &Batch) -> Vec<&str> {
        b.files.iter().map(|(_, p)| p.as_str()).collect()
    }

    fn all_files(state: &MasterState, root: &str, limit: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut cursor: Option<AlluxioPath> = None;
        loop {
            let b = next_batch(state, &p(root), cursor.as_ref(), limit, &|_| false).unwrap();
            out.extend(b.files.iter().map(|(_, p)| p.to_string()));
            cursor = b.files.last().map(|(_, p)| p.clone()).or(cursor);
            if b.done {
                return out;
            }
        }
    }

    #[test]
    fn lists_depth_first_in_name_order_in_batches_of_any_size() {
        let s = tree();
        let expected = ["/a/x", "/a/y/1", "/a/y/2", "/a/z", "/b"];
        for limit in 1..7 {
            assert_eq!(all_files(&s, "/", limit), expected, "limit {limit}");
        }
        assert_eq!(all_files(&s, "/a/y", 1), ["/a/y/1", "/a/y/2"]);
    }

    #[test]
    fn resumes_after_a_cursor_even_when_the_cursor_was_deleted() {
        let mut s = tree();
        let b = next_batch(&s, &p("/"), Some(&p("/a/y/1")), 10, &|_| false).unwrap();
        assert_eq!(names(&b), ["/a/y/2", "/a/z", "/b"]);
        assert!(b.done);
        s.tree.remove_subtree(4).unwrap();
        let b = next_batch(&s, &p("/"), Some(&p("/a/y/1")), 10, &|_| false).unwrap();
        assert_eq!(names(&b), ["/a/z", "/b"]);
    }

    #[test]
    fn stops_at_a_directory_that_must_be_synced_first() {
        let s = tree();
        let b = next_batch(&s, &p("/"), None, 100, &children_unknown).unwrap();
        assert_eq!(names(&b), ["/a/x", "/a/y/1", "/a/y/2", "/a/z", "/b"]);
        assert_eq!(b.needs_sync, Some(p("/c")));
        assert!(!b.done);
        let b = next_batch(&s, &p("/c"), None, 100, &children_unknown).unwrap();
        assert_eq!(b.needs_sync, Some(p("/c")), "the root itself first");
    }

    #[test]
    fn a_file_root_is_its_own_listing_and_a_missing_root_an_error() {
        let s = tree();
        let b = next_batch(&s, &p("/b"), None, 10, &|_| false).unwrap();
        assert_eq!(names(&b), ["/b"]);
        assert!(b.done);
        let b = next_batch(&s, &p("/b"), Some(&p("/b")), 10, &|_| false).unwrap();
        assert!(b.files.is_empty() && b.done);
        assert!(matches!(
            next_batch(&s, &p("/nope"), None, 10, &|_| false),
            Err(AlluxioError::NotFound(_))
        ));
    }
}
