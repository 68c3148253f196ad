//! `MasterState`: everything the journal describes (inode tree, mount
//! table, id counters), and [`MasterState::apply`], the one function that
//! changes it. Live operations and journal replay both go through `apply`,
//! so a restarted master rebuilds exactly the state it acknowledged.

use crate::inode::{
    DirectoryData, FileData, Inode, InodeKind, InodeTree, Persistence, TreeError, ROOT_ID,
};
use crate::job::table::JobTable;
use crate::mount_table::{MountPoint, MountTable};
use alluxio_common::AlluxioPath;
use alluxio_proto::journal::{self as j, journal_entry::Entry};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("invalid path in journal entry: {0}")]
    Path(String),
    #[error("mount point {0} does not exist")]
    NoSuchMount(String),
    #[error("empty journal entry")]
    Empty,
}

pub struct MasterState {
    pub tree: InodeTree,
    pub mounts: MountTable,
    pub next_inode_id: u64,
    pub next_mount_id: u64,
    /// Sequence number of the last applied entry.
    pub last_sequence: u64,
    /// Pinned files, kept up to date by `apply` so heartbeats can send them.
    pub pinned_files: std::collections::HashSet<u64>,
    /// Changes of `pinned_files` applied by this process (heartbeats send
    /// the set only to workers that hold an older version).
    pub pinned_changes: u64,
    /// Completed ASYNC_THROUGH files still waiting to be written to the UFS.
    pub to_persist: std::collections::HashSet<u64>,
    /// Load jobs, running and recently finished.
    pub jobs: JobTable,
}

impl Default for MasterState {
    fn default() -> Self {
        MasterState {
            tree: InodeTree::default(),
            mounts: MountTable::default(),
            next_inode_id: ROOT_ID,
            next_mount_id: 1,
            last_sequence: 0,
            pinned_files: Default::default(),
            pinned_changes: 0,
            to_persist: Default::default(),
            jobs: JobTable::default(),
        }
    }
}

impl MasterState {
    /// Applies one journal entry. Returns the inodes an entry removed
    /// (their cached blocks must be freed). On error nothing changed.
    pub fn apply(&mut self, entry: &j::JournalEntry) -> Result<Vec<Inode>, ApplyError> {
        let removed = match entry.entry.as_ref().ok_or(ApplyError::Empty)? {
            Entry::InodeDirectory(e) => {
                let inode = self.directory_from_entry(e);
                self.tree.insert(inode)?;
                // A directory changes when an entry is added, as when one
                // goes (caches of listings compare its modification time).
                self.touch(e.parent_id, e.creation_time_ms);
                self.next_inode_id = self.next_inode_id.max(e.id + 1);
                Vec::new()
            }
            Entry::InodeFile(e) => {
                let inode = self.file_from_entry(e);
                self.tree.insert(inode)?;
                self.touch(e.parent_id, e.creation_time_ms);
                if e.pinned {
                    self.pinned_files.insert(e.id);
                    self.pinned_changes += 1;
                }
                if e.completed
                    && Persistence::from_u32(e.persistence_state) == Persistence::ToBePersisted
                {
                    self.to_persist.insert(e.id);
                }
                self.next_inode_id = self.next_inode_id.max(e.id + 1);
                Vec::new()
            }
            Entry::CompleteFile(e) => {
                let inode = self.tree.get_mut(e.id).ok_or(TreeError::Missing(e.id))?;
                let InodeKind::File(file) = &mut inode.kind else {
                    return Err(TreeError::NotADirectory(e.id).into());
                };
                file.length = e.length;
                file.completed = true;
                file.ufs_mtime_ms = e.ufs_mtime_ms;
                inode.mtime_ms = e.last_modification_time_ms;
                inode.persistence = Persistence::from_u32(e.persistence_state);
                if inode.persistence == Persistence::ToBePersisted {
                    self.to_persist.insert(e.id);
                }
                Vec::new()
            }
            Entry::DeleteInode(e) => {
                let parent = self
                    .tree
                    .get(e.id)
                    .ok_or(TreeError::Missing(e.id))?
                    .parent_id;
                let removed = self.tree.remove_subtree(e.id)?;
                for inode in &removed {
                    if self.pinned_files.remove(&inode.id) {
                        self.pinned_changes += 1;
                    }
                    self.to_persist.remove(&inode.id);
                }
                self.touch(parent, e.op_time_ms);
                removed
            }
            Entry::Rename(e) => {
                let old_parent = self
                    .tree
                    .get(e.id)
                    .ok_or(TreeError::Missing(e.id))?
                    .parent_id;
                self.tree.rename(e.id, e.new_parent_id, &e.new_name)?;
                self.touch(old_parent, e.op_time_ms);
                self.touch(e.new_parent_id, e.op_time_ms);
                Vec::new()
            }
            Entry::SetAttribute(e) => {
                self.set_attribute(e)?;
                Vec::new()
            }
            Entry::AddMountPoint(e) => {
                let path = parse_path(&e.alluxio_path)?;
                let options = e.options.clone().into_iter().collect();
                self.mounts.insert(MountPoint::new(
                    e.mount_id,
                    path,
                    e.ufs_uri.clone(),
                    e.read_only,
                    e.shared,
                    options,
                ));
                self.next_mount_id = self.next_mount_id.max(e.mount_id + 1);
                Vec::new()
            }
            Entry::DeleteMountPoint(e) => {
                let path = parse_path(&e.alluxio_path)?;
                self.mounts
                    .remove(&path)
                    .ok_or_else(|| ApplyError::NoSuchMount(e.alluxio_path.clone()))?;
                Vec::new()
            }
            Entry::UpdateMountPoint(e) => {
                let path = parse_path(&e.alluxio_path)?;
                let old = self
                    .mounts
                    .get(&path)
                    .ok_or_else(|| ApplyError::NoSuchMount(e.alluxio_path.clone()))?;
                let updated = MountPoint::new(
                    old.id,
                    path,
                    old.ufs_uri.clone(),
                    e.read_only,
                    e.shared,
                    e.options.clone().into_iter().collect(),
                );
                self.mounts.insert(updated);
                Vec::new()
            }
            Entry::CheckpointEnd(e) => {
                self.next_inode_id = self.next_inode_id.max(e.next_inode_id);
                self.next_mount_id = self.next_mount_id.max(e.next_mount_id);
                self.jobs.raise_next_id(e.next_job_id);
                Vec::new()
            }
            Entry::LoadJob(e) => {
                self.jobs.apply(e);
                Vec::new()
            }
        };
        if entry.sequence > self.last_sequence {
            self.last_sequence = entry.sequence;
        }
        Ok(removed)
    }

    fn touch(&mut self, id: u64, time_ms: i64) {
        if let Some(inode) = self.tree.get_mut(id) {
            inode.mtime_ms = inode.mtime_ms.max(time_ms);
        }
    }

    fn set_attribute(&mut self, e: &j::SetAttributeEntry) -> Result<(), ApplyError> {
        let owner = e.owner.as_deref().map(|o| self.tree.intern(o));
        let group = e.group.as_deref().map(|g| self.tree.intern(g));
        let inode = self.tree.get_mut(e.id).ok_or(TreeError::Missing(e.id))?;
        if let Some(mode) = e.mode {
            inode.mode = (mode & 0o7777) as u16;
        }
        if let Some(owner) = owner {
            inode.owner = owner;
        }
        if let Some(group) = group {
            inode.group = group;
        }
        if let Some(pinned) = e.pinned {
            inode.pinned = pinned;
            if !inode.is_dir() {
                let changed = if pinned {
                    self.pinned_files.insert(e.id)
                } else {
                    self.pinned_files.remove(&e.id)
                };
                if changed {
                    self.pinned_changes += 1;
                }
            }
        }
        if let Some(ttl) = e.ttl_ms {
            inode.ttl_ms = ttl;
        }
        if let Some(action) = e.ttl_action {
            inode.ttl_action = action as u8;
        }
        if let Some(p) = e.persistence_state {
            inode.persistence = Persistence::from_u32(p);
            if inode.persistence != Persistence::ToBePersisted {
                self.to_persist.remove(&e.id);
            }
        }
        if let (Some(t), InodeKind::File(f)) = (e.ufs_mtime_ms, &mut inode.kind) {
            f.ufs_mtime_ms = t;
        }
        if let Some(t) = e.last_modification_time_ms {
            inode.mtime_ms = t;
        }
        if let (Some(loaded), InodeKind::Directory(dir)) =
            (e.direct_children_loaded, &mut inode.kind)
        {
            dir.children_loaded = loaded;
        }
        Ok(())
    }

    fn directory_from_entry(&mut self, e: &j::InodeDirectoryEntry) -> Inode {
        Inode {
            id: e.id,
            parent_id: e.parent_id,
            name: e.name.as_str().into(),
            owner: self.tree.intern(&e.owner),
            group: self.tree.intern(&e.group),
            mode: (e.mode & 0o7777) as u16,
            persistence: Persistence::from_u32(e.persistence_state),
            pinned: e.pinned,
            ttl_action: e.ttl_action as u8,
            creation_time_ms: e.creation_time_ms,
            mtime_ms: e.last_modification_time_ms,
            ttl_ms: e.ttl_ms,
            kind: InodeKind::Directory(DirectoryData {
                children: Default::default(),
                mount_point: e.mount_point,
                children_loaded: e.direct_children_loaded,
            }),
        }
    }

    fn file_from_entry(&mut self, e: &j::InodeFileEntry) -> Inode {
        Inode {
            id: e.id,
            parent_id: e.parent_id,
            name: e.name.as_str().into(),
            owner: self.tree.intern(&e.owner),
            group: self.tree.intern(&e.group),
            mode: (e.mode & 0o7777) as u16,
            persistence: Persistence::from_u32(e.persistence_state),
            pinned: e.pinned,
            ttl_action: e.ttl_action as u8,
            creation_time_ms: e.creation_time_ms,
            mtime_ms: e.last_modification_time_ms,
            ttl_ms: e.ttl_ms,
            kind: InodeKind::File(FileData {
                length: e.length,
                block_size: e.block_size_bytes,
                completed: e.completed,
                ufs_mtime_ms: e.ufs_mtime_ms,
            }),
        }
    }
}

fn parse_path(raw: &str) -> Result<AlluxioPath, ApplyError> {
    AlluxioPath::new(raw).map_err(|_| ApplyError::Path(raw.to_string()))
}

/// The entry that recreates `inode` (without its children).
pub fn inode_entry(inode: &Inode) -> Entry {
    match &inode.kind {
        InodeKind::Directory(d) => Entry::InodeDirectory(j::InodeDirectoryEntry {
            id: inode.id,
            parent_id: inode.parent_id,
            name: inode.name.to_string(),
            owner: inode.owner.to_string(),
            group: inode.group.to_string(),
            mode: inode.mode as u32,
            creation_time_ms: inode.creation_time_ms,
            last_modification_time_ms: inode.mtime_ms,
            persistence_state: inode.persistence as u32,
            pinned: inode.pinned,
            ttl_ms: inode.ttl_ms,
            ttl_action: inode.ttl_action as u32,
            mount_point: d.mount_point,
            direct_children_loaded: d.children_loaded,
        }),
        InodeKind::File(f) => Entry::InodeFile(j::InodeFileEntry {
            id: inode.id,
            parent_id: inode.parent_id,
            name: inode.name.to_string(),
            owner: inode.owner.to_string(),
            group: inode.group.to_string(),
            mode: inode.mode as u32,
            creation_time_ms: inode.creation_time_ms,
            last_modification_time_ms: inode.mtime_ms,
            persistence_state: inode.persistence as u32,
            pinned: inode.pinned,
            ttl_ms: inode.ttl_ms,
            ttl_action: inode.ttl_action as u32,
            block_size_bytes: f.block_size,
            length: f.length,
            completed: f.completed,
            ufs_mtime_ms: f.ufs_mtime_ms,
        }),
    }
}
