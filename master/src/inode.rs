//! The in-memory inode tree: files and directories by id, children by name.
//!
//! This is a plain data structure. It does not know about the journal; the
//! only caller that mutates it is `state::MasterState::apply`. Memory per
//! inode is kept small (names once per inode plus once in the parent's
//! child map, owner/group interned, block ids derived instead of stored),
//! because a master holds millions of them.

use alluxio_common::AlluxioPath;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Id of the root directory; `0` means "no parent".
pub const ROOT_ID: u64 = 1;

pub use alluxio_common::block_id::{block_id, file_id_of_block, BLOCK_INDEX_BITS};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Persistence {
    NotPersisted = 0,
    ToBePersisted = 1,
    Persisted = 2,
}

impl Persistence {
    pub fn from_u32(v: u32) -> Persistence {
        match v {
            1 => Persistence::ToBePersisted,
            2 => Persistence::Persisted,
            _ => Persistence::NotPersisted,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Inode {
    pub id: u64,
    pub parent_id: u64,
    pub name: Box<str>,
    pub owner: Arc<str>,
    pub group: Arc<str>,
    pub mode: u16,
    pub persistence: Persistence,
    pub pinned: bool,
    /// A `TtlAction` value.
    pub ttl_action: u8,
    pub creation_time_ms: i64,
    pub mtime_ms: i64,
    /// Milliseconds after creation; -1 when unset.
    pub ttl_ms: i64,
    pub kind: InodeKind,
}

#[derive(Clone, Debug)]
pub enum InodeKind {
    Directory(DirectoryData),
    File(FileData),
}

#[derive(Clone, Debug, Default)]
pub struct DirectoryData {
    pub children: BTreeMap<Box<str>, u64>,
    pub mount_point: bool,
    /// The UFS listing of this directory has been loaded at least once.
    pub children_loaded: bool,
}

#[derive(Clone, Debug)]
pub struct FileData {
    pub length: u64,
    pub block_size: u64,
    pub completed: bool,
    pub ufs_mtime_ms: i64,
}

impl FileData {
    pub fn block_count(&self) -> u64 {
        if self.block_size == 0 {
            0
        } else {
            self.length.div_ceil(self.block_size)
        }
    }
}

impl Inode {
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, InodeKind::Directory(_))
    }

    pub fn dir(&self) -> Option<&DirectoryData> {
        match &self.kind {
            InodeKind::Directory(d) => Some(d),
            InodeKind::File(_) => None,
        }
    }

    pub fn file(&self) -> Option<&FileData> {
        match &self.kind {
            InodeKind::File(f) => Some(f),
            InodeKind::Directory(_) => None,
        }
    }

    pub fn is_mount_point(&self) -> bool {
        self.dir().is_some_and(|d| d.mount_point)
    }

    /// Block ids of a file (empty for a directory).
    pub fn block_ids(&self) -> Vec<u64> {
        match &self.kind {
            InodeKind::File(f) => (0..f.block_count()).map(|i| block_id(self.id, i)).collect(),
            InodeKind::Directory(_) => Vec::new(),
        }
    }
}

/// Why a tree mutation was refused. Only reachable with a journal that
/// does not match the state (a bug or a corrupt journal).
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("inode {0} does not exist")]
    Missing(u64),
    #[error("inode {0} is not a directory")]
    NotADirectory(u64),
    #[error("inode {0} already exists")]
    IdTaken(u64),
    #[error("directory {parent} already has a child named {name:?}")]
    NameTaken { parent: u64, name: String },
    #[error("cannot move inode {0} into its own subtree")]
    Cycle(u64),
}

#[derive(Default)]
pub struct InodeTree {
    inodes: HashMap<u64, Inode>,
    /// Interned owner and group names.
    names: HashSet<Arc<str>>,
    files: u64,
    directories: u64,
    /// Set while a checkpoint reads the tree as of one moment (see
    /// [`InodeTree::freeze`]).
    frozen: Option<Frozen>,
}

/// The tree as of the moment it was frozen, kept cheaply: only the inodes
/// changed since then keep a copy of what they were (`None` for inodes
/// created since). Everything else is read from the live tree, which is
/// unchanged for them. This lets a checkpoint encode a consistent picture
/// in small pieces, releasing the state lock in between, instead of
/// holding it for the whole encoding.
struct Frozen {
    token: u64,
    before: HashMap<u64, Option<Inode>>,
}

/// A checkpoint asked for a frozen picture that is gone: the tree was
/// thawed, or replaced (a rebuild), since it froze.
#[derive(Debug, thiserror::Error)]
#[error("the frozen picture of the inode tree is gone (the state was rebuilt meanwhile)")]
pub struct NotFrozen;

impl InodeTree {
    pub fn get(&self, id: u64) -> Option<&Inode> {
        self.inodes.get(&id)
    }

    /// The inode, to change it (a frozen tree keeps what it was first).
    pub fn get_mut(&mut self, id: u64) -> Option<&mut Inode> {
        self.keep_before_change(id);
        self.inodes.get_mut(&id)
    }

    /// Records what inode `id` is (or that it does not exist) before its
    /// first change since the tree froze. Every change goes through here.
    fn keep_before_change(&mut self, id: u64) {
        if let Some(frozen) = &mut self.frozen {
            frozen
                .before
                .entry(id)
                .or_insert_with(|| self.inodes.get(&id).cloned());
        }
    }

    /// Starts keeping the tree as of now for a reader that works in pieces
    /// (a checkpoint); returns the token that names this picture. Changes
    /// go on as usual and cost one copy of each inode at its first change.
    /// Freezing again replaces an earlier picture (whose reader then gets
    /// [`NotFrozen`]).
    pub fn freeze(&mut self) -> u64 {
        // Unique in the process, so that no reader of an earlier picture
        // (of this tree or of one it replaced) can mistake this one for it.
        static NEXT_TOKEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let token = NEXT_TOKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.frozen = Some(Frozen {
            token,
            before: HashMap::new(),
        });
        token
    }

    /// Drops the picture named `token` (a no-op if it is gone already).
    pub fn thaw(&mut self, token: u64) {
        if self.frozen.as_ref().is_some_and(|f| f.token == token) {
            self.frozen = None;
        }
    }

    /// Inodes changed since the picture `token` was taken (their old
    /// copies are what a frozen tree costs).
    pub fn frozen_changes(&self, token: u64) -> Result<usize, NotFrozen> {
        match &self.frozen {
            Some(f) if f.token == token => Ok(f.before.len()),
            _ => Err(NotFrozen),
        }
    }

    /// Inode `id` as it was when the picture `token` was taken.
    pub fn get_frozen(&self, token: u64, id: u64) -> Result<Option<&Inode>, NotFrozen> {
        match &self.frozen {
            Some(f) if f.token == token => Ok(match f.before.get(&id) {
                Some(before) => before.as_ref(),
                None => self.inodes.get(&id),
            }),
            _ => Err(NotFrozen),
        }
    }

    pub fn root(&self) -> Option<&Inode> {
        self.inodes.get(&ROOT_ID)
    }

    pub fn file_count(&self) -> u64 {
        self.files
    }

    pub fn directory_count(&self) -> u64 {
        self.directories
    }

    pub fn len(&self) -> usize {
        self.inodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inodes.is_empty()
    }

    pub fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(existing) = self.names.get(s) {
            return existing.clone();
        }
        let arc: Arc<str> = Arc::from(s);
        self.names.insert(arc.clone());
        arc
    }

    pub fn child(&self, parent: u64, name: &str) -> Option<u64> {
        self.inodes.get(&parent)?.dir()?.children.get(name).copied()
    }

    /// Walks `path` from the root. Returns the ids of every existing prefix
    /// (root first); the path exists when the result has `depth + 1` ids.
    pub fn resolve_prefix(&self, path: &AlluxioPath) -> Vec<u64> {
        let mut ids = Vec::with_capacity(path.depth() + 1);
        if self.root().is_none() {
            return ids;
        }
        ids.push(ROOT_ID);
        let mut current = ROOT_ID;
        for name in path.components() {
            match self.child(current, name) {
                Some(id) => {
                    ids.push(id);
                    current = id;
                }
                None => break,
            }
        }
        ids
    }

    pub fn lookup(&self, path: &AlluxioPath) -> Option<u64> {
        let ids = self.resolve_prefix(path);
        (ids.len() == path.depth() + 1).then(|| *ids.last().expect("non-empty"))
    }

    /// Full path of an inode, built from its ancestors.
    pub fn path_of(&self, id: u64) -> Option<AlluxioPath> {
        let mut names = Vec::new();
        let mut current = self.inodes.get(&id)?;
        while current.parent_id != 0 {
            names.push(current.name.as_ref());
            current = self.inodes.get(&current.parent_id)?;
        }
        if names.is_empty() {
            return Some(AlluxioPath::root());
        }
        names.reverse();
        AlluxioPath::new(&format!("/{}", names.join("/"))).ok()
    }

    /// Adds an inode under its parent (the root has parent 0).
    pub fn insert(&mut self, inode: Inode) -> Result<(), TreeError> {
        if self.inodes.contains_key(&inode.id) {
            return Err(TreeError::IdTaken(inode.id));
        }
        if inode.parent_id != 0 {
            let parent = self
                .get_mut(inode.parent_id)
                .ok_or(TreeError::Missing(inode.parent_id))?;
            let InodeKind::Directory(dir) = &mut parent.kind else {
                return Err(TreeError::NotADirectory(inode.parent_id));
            };
            if dir.children.contains_key(inode.name.as_ref()) {
                return Err(TreeError::NameTaken {
                    parent: inode.parent_id,
                    name: inode.name.to_string(),
                });
            }
            dir.children.insert(inode.name.clone(), inode.id);
        }
        if inode.is_dir() {
            self.directories += 1;
        } else {
            self.files += 1;
        }
        self.keep_before_change(inode.id);
        self.inodes.insert(inode.id, inode);
        Ok(())
    }

    /// Removes an inode and everything below it; returns the removed inodes.
    pub fn remove_subtree(&mut self, id: u64) -> Result<Vec<Inode>, TreeError> {
        let inode = self.inodes.get(&id).ok_or(TreeError::Missing(id))?;
        let (parent_id, name) = (inode.parent_id, inode.name.clone());
        if let Some(InodeKind::Directory(dir)) = self.get_mut(parent_id).map(|p| &mut p.kind) {
            dir.children.remove(name.as_ref());
        }
        let mut removed = Vec::new();
        let mut stack = vec![id];
        while let Some(next) = stack.pop() {
            self.keep_before_change(next);
            if let Some(inode) = self.inodes.remove(&next) {
                if let Some(dir) = inode.dir() {
                    stack.extend(dir.children.values().copied());
                    self.directories -= 1;
                } else {
                    self.files -= 1;
                }
                removed.push(inode);
            }
        }
        Ok(removed)
    }

    /// Moves `id` under `new_parent` with `new_name`.
    pub fn rename(&mut self, id: u64, new_parent: u64, new_name: &str) -> Result<(), TreeError> {
        let inode = self.inodes.get(&id).ok_or(TreeError::Missing(id))?;
        let old_parent = inode.parent_id;
        let old_name = inode.name.clone();
        // Refuse moving a directory below itself.
        let mut cursor = new_parent;
        while cursor != 0 {
            if cursor == id {
                return Err(TreeError::Cycle(id));
            }
            cursor = self
                .inodes
                .get(&cursor)
                .ok_or(TreeError::Missing(cursor))?
                .parent_id;
        }
        let target = self
            .inodes
            .get(&new_parent)
            .ok_or(TreeError::Missing(new_parent))?;
        let dir = target.dir().ok_or(TreeError::NotADirectory(new_parent))?;
        if dir.children.contains_key(new_name) {
            return Err(TreeError::NameTaken {
                parent: new_parent,
                name: new_name.to_string(),
            });
        }
        if let Some(InodeKind::Directory(d)) = self.get_mut(old_parent).map(|p| &mut p.kind) {
            d.children.remove(old_name.as_ref());
        }
        let new_name: Box<str> = new_name.into();
        if let Some(InodeKind::Directory(d)) = self.get_mut(new_parent).map(|p| &mut p.kind) {
            d.children.insert(new_name.clone(), id);
        }
        let inode = self.get_mut(id).ok_or(TreeError::Missing(id))?;
        inode.parent_id = new_parent;
        inode.name = new_name;
        Ok(())
    }

    /// Ids of `id` and everything below it, parents before children.
    pub fn subtree_ids(&self, id: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut queue = std::collections::VecDeque::from([id]);
        while let Some(next) = queue.pop_front() {
            if let Some(inode) = self.inodes.get(&next) {
                out.push(next);
                if let Some(dir) = inode.dir() {
                    queue.extend(dir.children.values().copied());
                }
            }
        }
        out
    }

    pub fn iter(&self) -> impl Iterator<Item = &Inode> {
        self.inodes.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tree: &mut InodeTree, id: u64, parent: u64, name: &str) -> Inode {
        Inode {
            id,
            parent_id: parent,
            name: name.into(),
            owner: tree.intern("root"),
            group: tree.intern("root"),
            mode: 0o755,
            persistence: Persistence::Persisted,
            pinned: false,
            ttl_action: 0,
            creation_time_ms: 0,
            mtime_ms: 0,
            ttl_ms: -1,
            kind: InodeKind::Directory(DirectoryData::default()),
        }
    }

    fn sample() -> InodeTree {
        let mut t = InodeTree::default();
        let root = dir(&mut t, ROOT_ID, 0, "");
        t.insert(root).unwrap();
        let a = dir(&mut t, 2, ROOT_ID, "a");
        t.insert(a).unwrap();
        let b = dir(&mut t, 3, 2, "b");
        t.insert(b).unwrap();
        t
    }

    #[test]
    fn lookup_and_paths() {
        let t = sample();
        let p = AlluxioPath::new("/a/b").unwrap();
        assert_eq!(t.lookup(&p), Some(3));
        assert_eq!(t.path_of(3).unwrap(), p);
        assert_eq!(
            t.resolve_prefix(&AlluxioPath::new("/a/x/y").unwrap()),
            vec![1, 2]
        );
        assert_eq!(t.path_of(ROOT_ID).unwrap(), AlluxioPath::root());
    }

    #[test]
    fn refuses_duplicates_and_cycles() {
        let mut t = sample();
        let dup = dir(&mut t, 9, ROOT_ID, "a");
        assert!(matches!(t.insert(dup), Err(TreeError::NameTaken { .. })));
        assert!(matches!(t.rename(2, 3, "z"), Err(TreeError::Cycle(2))));
        assert!(matches!(t.rename(2, 2, "z"), Err(TreeError::Cycle(2))));
        assert_eq!(t.lookup(&AlluxioPath::new("/a/b").unwrap()), Some(3));
    }

    #[test]
    fn rename_and_remove_keep_counts() {
        let mut t = sample();
        t.rename(3, ROOT_ID, "c").unwrap();
        assert_eq!(t.lookup(&AlluxioPath::new("/c").unwrap()), Some(3));
        assert!(t.lookup(&AlluxioPath::new("/a/b").unwrap()).is_none());
        t.rename(3, 2, "b").unwrap();
        assert_eq!(t.directory_count(), 3);
        let removed = t.remove_subtree(2).unwrap();
        assert_eq!(removed.len(), 2);
        assert_eq!(t.directory_count(), 1);
        assert!(t.root().unwrap().dir().unwrap().children.is_empty());
    }

    #[test]
    fn block_ids_are_derived() {
        assert_eq!(file_id_of_block(block_id(77, 5)), 77);
        let f = FileData {
            length: 130,
            block_size: 64,
            completed: true,
            ufs_mtime_ms: 0,
        };
        assert_eq!(f.block_count(), 3);
    }
}
