//! Inode numbers and the paths behind them.
//!
//! The kernel names files by inode number; the master by path. An Alluxio
//! file id never changes while the file exists and is never reused, so the
//! inode number is derived from it: the mount's root is 1 and every other
//! file is `file_id + 2`. The table maps each number the kernel knows (it
//! was returned by a lookup and not yet forgotten) to its current path,
//! follows renames, and notices when a file's content changed (a different
//! length or modification time for the same id), so its cached pages can
//! be dropped.

use alluxio_proto::grpc::FileInfo;
use std::collections::HashMap;

pub const ROOT_INO: u64 = 1;

struct Node {
    path: String,
    /// Lookups the kernel has not forgotten yet.
    lookups: u64,
    /// (length, modification time) of a completed file when last seen.
    content: Option<(u64, i64)>,
}

pub struct InodeTable {
    root_id: u64,
    nodes: HashMap<u64, Node>,
}

impl InodeTable {
    pub fn new(root: &FileInfo) -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT_INO,
            Node {
                path: root.path.clone(),
                lookups: 1,
                content: None,
            },
        );
        InodeTable {
            root_id: root.file_id,
            nodes,
        }
    }

    pub fn ino_of(&self, info: &FileInfo) -> u64 {
        if info.file_id == self.root_id {
            ROOT_INO
        } else {
            info.file_id + 2
        }
    }

    pub fn path(&self, ino: u64) -> Option<String> {
        self.nodes.get(&ino).map(|n| n.path.clone())
    }

    /// The path of `name` inside directory `parent`.
    pub fn child_path(&self, parent: u64, name: &str) -> Option<String> {
        let dir = &self.nodes.get(&parent)?.path;
        Some(if dir == "/" {
            format!("/{name}")
        } else {
            format!("{dir}/{name}")
        })
    }

    /// Records `info` as seen by the kernel (`lookup`: the kernel now holds
    /// one more reference). Returns its inode number and whether the
    /// content of that inode changed since it was last seen.
    pub fn remember(&mut self, info: &FileInfo, lookup: bool) -> (u64, bool) {
        let ino = self.ino_of(info);
        let content = (info.completed && !info.folder)
            .then_some((info.length, info.last_modification_time_ms));
        let node = self.nodes.entry(ino).or_insert_with(|| Node {
            path: info.path.clone(),
            lookups: 0,
            content,
        });
        node.path = info.path.clone();
        if lookup {
            node.lookups += 1;
        }
        let changed = matches!((node.content, content), (Some(old), Some(new)) if old != new);
        if content.is_some() {
            node.content = content;
        }
        (ino, changed)
    }

    /// The kernel dropped `n` references to `ino`.
    pub fn forget(&mut self, ino: u64, n: u64) {
        if ino == ROOT_INO {
            return;
        }
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.lookups = node.lookups.saturating_sub(n);
            if node.lookups == 0 {
                self.nodes.remove(&ino);
            }
        }
    }

    /// `from` (and everything below it) is now at `to`.
    pub fn renamed(&mut self, from: &str, to: &str) {
        let prefix = format!("{from}/");
        for node in self.nodes.values_mut() {
            if node.path == from {
                node.path = to.to_string();
            } else if let Some(rest) = node.path.strip_prefix(&prefix) {
                node.path = format!("{to}/{rest}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: u64, path: &str, len: u64, mtime: i64) -> FileInfo {
        FileInfo {
            file_id: id,
            path: path.to_string(),
            length: len,
            last_modification_time_ms: mtime,
            completed: true,
            ..Default::default()
        }
    }

    fn dir(id: u64, path: &str) -> FileInfo {
        FileInfo {
            file_id: id,
            path: path.to_string(),
            folder: true,
            completed: true,
            ..Default::default()
        }
    }

    #[test]
    fn root_is_one_and_children_are_id_plus_two() {
        let mut t = InodeTable::new(&dir(7, "/data"));
        assert_eq!(t.path(ROOT_INO).unwrap(), "/data");
        assert_eq!(t.child_path(ROOT_INO, "a").unwrap(), "/data/a");
        let (ino, _) = t.remember(&info(0, "/data/a", 1, 1), true);
        assert_eq!(ino, 2);
        assert_eq!(t.path(2).unwrap(), "/data/a");
        let root = InodeTable::new(&dir(0, "/"));
        assert_eq!(root.child_path(ROOT_INO, "x").unwrap(), "/x");
    }

    #[test]
    fn forgotten_inodes_leave_but_the_root_stays() {
        let mut t = InodeTable::new(&dir(1, "/"));
        let (ino, _) = t.remember(&info(5, "/f", 1, 1), true);
        t.remember(&info(5, "/f", 1, 1), true);
        t.forget(ino, 1);
        assert!(t.path(ino).is_some());
        t.forget(ino, 1);
        assert!(t.path(ino).is_none());
        t.forget(ROOT_INO, 100);
        assert!(t.path(ROOT_INO).is_some());
    }

    #[test]
    fn renames_move_descendants() {
        let mut t = InodeTable::new(&dir(1, "/"));
        let (d, _) = t.remember(&dir(3, "/a"), true);
        let (f, _) = t.remember(&info(4, "/a/b/c", 1, 1), true);
        let (other, _) = t.remember(&info(5, "/ab", 1, 1), true);
        t.renamed("/a", "/z");
        assert_eq!(t.path(d).unwrap(), "/z");
        assert_eq!(t.path(f).unwrap(), "/z/b/c");
        assert_eq!(t.path(other).unwrap(), "/ab");
    }

    #[test]
    fn a_changed_length_or_mtime_is_reported_once() {
        let mut t = InodeTable::new(&dir(1, "/"));
        assert!(!t.remember(&info(9, "/f", 10, 100), true).1);
        assert!(!t.remember(&info(9, "/f", 10, 100), false).1);
        assert!(t.remember(&info(9, "/f", 11, 100), false).1);
        assert!(!t.remember(&info(9, "/f", 11, 100), false).1);
        assert!(t.remember(&info(9, "/f", 11, 200), false).1);
        // A file still being written has no content to compare yet.
        let mut open = info(10, "/g", 0, 1);
        open.completed = false;
        assert!(!t.remember(&open, true).1);
        assert!(!t.remember(&info(10, "/g", 5, 2), true).1);
    }
}
