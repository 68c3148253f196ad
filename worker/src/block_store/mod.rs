//! The tiered block store: cached blocks in MEM/SSD/HDD directories with
//! quotas, space reserved before writing, eviction (LRU or LRFU) that never
//! touches pinned or open blocks, per-chunk checksums checked on every read,
//! and a scan of what is on disk at startup. See `meta.rs` for the layout,
//! `space.rs` for reservations and eviction, `writer.rs` for block writes.
//!
//! All methods do blocking file I/O: call them from blocking threads.

mod changes;
pub mod meta;
mod space;
mod writer;

pub use writer::BlockWriter;

use alluxio_common::config::{EvictorConfig, TierConfig};
use alluxio_proto::grpc::{BlockAdded, TierUsage};
use bytes::Bytes;
use changes::PendingChanges;
use meta::BlockMeta;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Checksum granularity and the unit of verification on reads.
pub const CHUNK_SIZE: u64 = 1 << 20;
const LAYOUT_DIR: &str = "alluxio-blocks";

pub use alluxio_common::block_id::file_id_of_block as file_id_of;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("block {0} is not cached here")]
    NotCached(u64),
    #[error("block {0} is already cached here")]
    AlreadyCached(u64),
    #[error("block {0} is being written or removed here already")]
    BeingWritten(u64),
    #[error("no tier has room for {needed} more bytes (everything else is pinned or in use)")]
    NoSpace { needed: u64 },
    #[error("block {block_id} is damaged ({reason}); it was dropped from the cache")]
    Corrupt { block_id: u64, reason: String },
    #[error("block {block_id}: write of {written} bytes exceeds its {max} byte reservation")]
    TooLong {
        block_id: u64,
        written: u64,
        max: u64,
    },
    /// A block written in chunks (`BlockWriter::place_chunk`) got a
    /// chunk that does not fit it, or is committed with chunks missing.
    #[error("block {block_id}: {reason}")]
    Incomplete { block_id: u64, reason: String },
    #[error("invalid tier configuration: {0}")]
    Config(String),
    #[error("block store I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl StoreError {
    /// No tier had room, or a disk filled up where no other directory
    /// could take over: another worker may have room.
    pub fn is_no_room(&self) -> bool {
        matches!(self, StoreError::NoSpace { .. }) || is_out_of_space(self)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

struct TierDir {
    tier: usize,
    alias: String,
    root: PathBuf,
    quota: u64,
}

impl TierDir {
    fn data_path(&self, file_id: u64) -> PathBuf {
        self.root.join("data").join(file_id.to_string())
    }
    fn meta_path(&self, block_id: u64) -> PathBuf {
        self.root.join("meta").join(block_id.to_string())
    }
}

struct Entry {
    dir: usize,
    meta: Arc<BlockMeta>,
    last_access: u64,
    /// LRFU's combined recency and frequency.
    crf: f64,
    leases: u32,
    /// Remove when the last lease is closed.
    doomed: bool,
}

#[derive(Default)]
struct Inner {
    blocks: HashMap<u64, Entry>,
    /// Bytes committed or reserved, per directory.
    used: Vec<u64>,
    pinned_files: HashSet<u64>,
    clock: u64,
    next_lease: u64,
    /// What the next heartbeat tells the master.
    changes: PendingChanges,
    evictions: u64,
    /// Blocks being written, by (directory, file): their data file must
    /// not be deleted under them.
    writing: HashMap<(usize, u64), u32>,
    /// The blocks being written: a block has one writer at a time (a
    /// second one would overwrite the first one's bytes and leak its
    /// reservation).
    blocks_being_written: HashSet<u64>,
    /// Directories whose disk said ENOSPC below their quota (a disk
    /// shared with others, or smaller than configured): no new block goes
    /// there until a block's files in it are deleted.
    out_of_disk: Vec<bool>,
}

impl Inner {
    /// Whether the block is cached and not on its way out.
    fn is_cached(&self, block_id: u64) -> bool {
        self.blocks.get(&block_id).is_some_and(|e| !e.doomed)
    }
}

pub struct StoreInner {
    dirs: Vec<TierDir>,
    tiers: Vec<String>,
    evictor: EvictorConfig,
    inner: Mutex<Inner>,
}

/// A cheap handle to the store.
#[derive(Clone)]
pub struct BlockStore(Arc<StoreInner>);

/// What a short-circuit reader needs to read a block file itself.
#[derive(Clone, Debug)]
pub struct LocalBlock {
    pub path: PathBuf,
    pub offset: u64,
    pub length: u64,
    pub chunk_crcs: Vec<u32>,
    pub lease_id: u64,
}

/// Snapshot of one tier for heartbeats and metrics.
#[derive(Clone, Debug)]
pub struct TierStats {
    pub alias: String,
    pub capacity: u64,
    pub used: u64,
    pub blocks: u64,
}

impl BlockStore {
    /// Opens (creating) the tier directories and loads the blocks already
    /// there. Damaged or half-written blocks are discarded.
    pub fn open(tiers: &[TierConfig], evictor: EvictorConfig) -> Result<BlockStore, StoreError> {
        if tiers.is_empty() {
            return Err(StoreError::Config(
                "at least one tier is needed".to_string(),
            ));
        }
        let mut dirs = Vec::new();
        let mut aliases = Vec::new();
        for (t, tier) in tiers.iter().enumerate() {
            if !["MEM", "SSD", "HDD"].contains(&tier.alias.as_str()) {
                return Err(StoreError::Config(format!(
                    "unknown tier alias {:?} (MEM, SSD or HDD)",
                    tier.alias
                )));
            }
            if aliases.contains(&tier.alias) {
                return Err(StoreError::Config(format!(
                    "tier {} is listed twice",
                    tier.alias
                )));
            }
            if tier.dirs.is_empty() {
                return Err(StoreError::Config(format!(
                    "tier {} has no directories",
                    tier.alias
                )));
            }
            aliases.push(tier.alias.clone());
            for d in &tier.dirs {
                let root = d.path.join(LAYOUT_DIR);
                for sub in ["data", "meta", "tmp"] {
                    let p = root.join(sub);
                    alluxio_common::io::create_dir_all_durable(&p).map_err(io(&p))?;
                }
                dirs.push(TierDir {
                    tier: t,
                    alias: tier.alias.clone(),
                    root,
                    quota: d.quota.0,
                });
            }
        }
        let store = BlockStore(Arc::new(StoreInner {
            inner: Mutex::new(Inner {
                used: vec![0; dirs.len()],
                out_of_disk: vec![false; dirs.len()],
                ..Inner::default()
            }),
            dirs,
            tiers: aliases,
            evictor,
        }));
        store.scan()?;
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn scan(&self) -> Result<(), StoreError> {
        for (d, dir) in self.0.dirs.iter().enumerate() {
            let tmp = dir.root.join("tmp");
            for e in std::fs::read_dir(&tmp).map_err(io(&tmp))?.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
            let meta_dir = dir.root.join("meta");
            for e in std::fs::read_dir(&meta_dir)
                .map_err(io(&meta_dir))?
                .flatten()
            {
                let path = e.path();
                let loaded = std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| BlockMeta::decode(&bytes))
                    .and_then(|m| {
                        let data_len = std::fs::metadata(dir.data_path(file_id_of(m.block_id)))
                            .map(|md| md.len())
                            .unwrap_or(0);
                        if data_len < m.offset + m.length {
                            Err(format!(
                                "data file holds {data_len} bytes, block ends at {}",
                                m.offset + m.length
                            ))
                        } else {
                            Ok(m)
                        }
                    });
                match loaded {
                    Ok(m) => {
                        let mut inner = self.lock();
                        inner.used[d] += m.length;
                        inner.blocks.insert(
                            m.block_id,
                            Entry {
                                dir: d,
                                meta: Arc::new(m),
                                last_access: 0,
                                crf: 0.0,
                                leases: 0,
                                doomed: false,
                            },
                        );
                    }
                    Err(reason) => {
                        tracing::warn!(file = %path.display(), reason, "discarding a damaged cached block");
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
        }
        let inner = self.lock();
        tracing::info!(blocks = inner.blocks.len(), "block store loaded");
        Ok(())
    }

    pub fn tier_aliases(&self) -> &[String] {
        &self.0.tiers
    }

    pub fn contains(&self, block_id: u64) -> bool {
        self.lock().is_cached(block_id)
    }

    /// Length of a cached block.
    pub fn length(&self, block_id: u64) -> Option<u64> {
        self.lock()
            .blocks
            .get(&block_id)
            .filter(|e| !e.doomed)
            .map(|e| e.meta.length)
    }

    /// Tier alias of a cached block.
    pub fn tier_of(&self, block_id: u64) -> Option<String> {
        let inner = self.lock();
        inner
            .blocks
            .get(&block_id)
            .map(|e| self.0.dirs[e.dir].alias.clone())
    }

    pub fn set_pinned_files(&self, pinned: HashSet<u64>) {
        self.lock().pinned_files = pinned;
    }

    pub fn evictions(&self) -> u64 {
        self.lock().evictions
    }

    pub fn tier_stats(&self) -> Vec<TierStats> {
        let inner = self.lock();
        let mut stats: Vec<TierStats> = self
            .0
            .tiers
            .iter()
            .map(|a| TierStats {
                alias: a.clone(),
                capacity: 0,
                used: 0,
                blocks: 0,
            })
            .collect();
        for (d, dir) in self.0.dirs.iter().enumerate() {
            // A directory whose disk is full has no more room than it
            // uses, whatever its quota says: reported so, clients' location
            // policies send new blocks elsewhere.
            stats[dir.tier].capacity += if inner.out_of_disk[d] {
                inner.used[d].min(dir.quota)
            } else {
                dir.quota
            };
            stats[dir.tier].used += inner.used[d];
        }
        for e in inner.blocks.values() {
            stats[self.0.dirs[e.dir].tier].blocks += 1;
        }
        stats
    }

    pub fn tier_usage(&self) -> Vec<TierUsage> {
        self.tier_stats()
            .into_iter()
            .map(|s| TierUsage {
                tier_alias: s.alias,
                capacity_bytes: s.capacity,
                used_bytes: s.used,
            })
            .collect()
    }

    /// Every cached block by tier alias (for registration).
    pub fn blocks_by_tier(&self) -> HashMap<String, Vec<u64>> {
        let inner = self.lock();
        let mut out: HashMap<String, Vec<u64>> = HashMap::new();
        for (id, e) in &inner.blocks {
            out.entry(self.0.dirs[e.dir].alias.clone())
                .or_default()
                .push(*id);
        }
        out
    }

    /// Blocks added and removed since the last call (for heartbeats).
    pub fn take_changes(&self) -> (Vec<BlockAdded>, Vec<u64>) {
        self.lock().changes.take()
    }

    /// Puts changes back after a failed heartbeat, so none is lost.
    pub fn restore_changes(&self, added: Vec<BlockAdded>, removed: Vec<u64>) {
        self.lock().changes.restore(added, removed);
    }

    /// Reserves room for a new block of at most `max_len` bytes in the
    /// fastest tier at or below `min_tier` that has (or can evict) room.
    pub fn create_block(
        &self,
        block_id: u64,
        offset_in_file: u64,
        max_len: u64,
        min_tier: usize,
    ) -> Result<BlockWriter, StoreError> {
        {
            let mut inner = self.lock();
            if inner.is_cached(block_id) {
                return Err(StoreError::AlreadyCached(block_id));
            }
            // A removed block still open by a short-circuit reader stays
            // in the index until its last lease closes; a new copy would
            // replace its entry (losing the lease and its room).
            if inner.blocks.contains_key(&block_id) || !inner.blocks_being_written.insert(block_id)
            {
                return Err(StoreError::BeingWritten(block_id));
            }
        }
        let mut dir = self.reserve(max_len, min_tier).inspect_err(|_| {
            self.lock().blocks_being_written.remove(&block_id);
        })?;
        // A disk too full to create the data file on: another directory.
        let (file, path) = loop {
            let error = match self.open_data_file(dir, block_id) {
                Ok(opened) => break opened,
                Err(e) => e,
            };
            self.release(dir, max_len);
            let elsewhere = if is_out_of_space(&error) {
                self.reserve_instead_of(dir, max_len)
            } else {
                Err(error)
            };
            match elsewhere {
                Ok(other) => dir = other,
                Err(e) => {
                    self.lock().blocks_being_written.remove(&block_id);
                    return Err(e);
                }
            }
        };
        Ok(BlockWriter {
            store: self.clone(),
            block_id,
            dir,
            offset_in_file,
            max_len,
            written: 0,
            file,
            path,
            chunk_crcs: Vec::new(),
            chunk_hasher: crc32fast::Hasher::new(),
            chunk_fill: 0,
            placed: Vec::new(),
            extent: 0,
            done: false,
            durable: true,
        })
    }

    /// Opens (creating it if needed) the data file in directory `dir` of
    /// the file block `block_id` belongs to, and counts a writer of it
    /// there (so that it is not deleted under the writer).
    fn open_data_file(&self, dir: usize, block_id: u64) -> Result<(File, PathBuf), StoreError> {
        let file_id = file_id_of(block_id);
        *self.lock().writing.entry((dir, file_id)).or_default() += 1;
        let path = self.0.dirs[dir].data_path(file_id);
        let is_new = !path.exists();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .read(true)
            .open(&path)
            .map_err(|e| {
                self.not_writing(dir, file_id);
                StoreError::Io {
                    path: path.clone(),
                    source: e,
                }
            })?;
        if is_new {
            // The new data file's name must survive a power loss as its
            // bytes and the block record do.
            if let Err(e) = alluxio_common::io::sync_parent(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot fsync a new data file's directory");
            }
        }
        Ok((file, path))
    }

    fn writer_done(&self, dir: usize, block_id: u64) {
        self.lock().blocks_being_written.remove(&block_id);
        self.not_writing(dir, file_id_of(block_id));
    }

    /// One writer fewer of file `file_id`'s data file in `dir`.
    fn not_writing(&self, dir: usize, file_id: u64) {
        let mut inner = self.lock();
        let key = (dir, file_id);
        if let Some(n) = inner.writing.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                inner.writing.remove(&key);
            }
        }
    }

    fn touch(&self, inner: &mut Inner, id: u64) {
        inner.clock += 1;
        let now = inner.clock;
        if let Some(e) = inner.blocks.get_mut(&id) {
            e.crf = e.crf * lrfu_decay(now - e.last_access) + 1.0;
            e.last_access = now;
        }
    }

    /// Takes a block out of the index (the caller holds the lock) and
    /// keeps new writers of its id away until [`Self::delete_files`] has
    /// reclaimed its bytes: a new copy written meanwhile at the same place
    /// in the data file would be punched out with the old one.
    fn take_out(inner: &mut Inner, block_id: u64) -> Option<Entry> {
        let e = inner.blocks.remove(&block_id)?;
        inner.used[e.dir] = inner.used[e.dir].saturating_sub(e.meta.length);
        inner.blocks_being_written.insert(block_id);
        inner.changes.removed(block_id);
        Some(e)
    }

    /// Removes the record and reclaims the bytes of a block taken out of
    /// the index. Under the lock: whether the data file still holds other
    /// blocks, and its deletion, must be one step, or a writer opening it
    /// meanwhile would write into a deleted file.
    fn delete_files(&self, dir: usize, meta: &BlockMeta) {
        let mut inner = self.lock();
        // Space is freed on that disk: let new blocks try it again.
        inner.out_of_disk[dir] = false;
        let d = &self.0.dirs[dir];
        let _ = std::fs::remove_file(d.meta_path(meta.block_id));
        let file_id = file_id_of(meta.block_id);
        let others = inner.writing.get(&(dir, file_id)).is_some_and(|n| *n > 0)
            || inner
                .blocks
                .iter()
                .any(|(id, e)| e.dir == dir && file_id_of(*id) == file_id);
        let data = d.data_path(file_id);
        if others {
            if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&data) {
                punch_hole(&f, meta.offset, meta.length);
            }
        } else {
            let _ = std::fs::remove_file(data);
        }
        inner.blocks_being_written.remove(&meta.block_id);
    }

    /// Drops a block (free command, damage). Open leases delay the removal.
    pub fn remove(&self, block_id: u64) {
        let victim = {
            let mut inner = self.lock();
            match inner.blocks.get_mut(&block_id) {
                None => return,
                Some(e) if e.leases > 0 => {
                    e.doomed = true;
                    return;
                }
                Some(_) => {}
            }
            let e = Self::take_out(&mut inner, block_id).expect("checked above");
            (e.dir, e.meta)
        };
        self.delete_files(victim.0, &victim.1);
    }

    /// Reads `len` bytes at `offset` of a cached block, verifying the
    /// checksum of every chunk touched. A damaged block is dropped. The
    /// bytes are a mapping of the block file and hold a lease on the block
    /// until they are dropped, so it is not evicted (which would change
    /// them) while they are being sent.
    pub fn read(&self, block_id: u64, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        let (dir, meta) = self.acquire(block_id)?;
        let lease = ReadLease {
            store: self.clone(),
            block_id,
        };
        let result = self.read_verified(dir, &meta, offset, len, lease);
        if let Err(StoreError::Corrupt { .. }) = &result {
            self.remove(block_id);
        }
        result
    }

    fn acquire(&self, block_id: u64) -> Result<(usize, Arc<BlockMeta>), StoreError> {
        let mut inner = self.lock();
        self.touch(&mut inner, block_id);
        match inner.blocks.get_mut(&block_id) {
            Some(e) if !e.doomed => {
                e.leases += 1;
                Ok((e.dir, e.meta.clone()))
            }
            _ => Err(StoreError::NotCached(block_id)),
        }
    }

    fn release_lease(&self, block_id: u64) {
        let doomed = {
            let mut inner = self.lock();
            match inner.blocks.get_mut(&block_id) {
                Some(e) => {
                    e.leases = e.leases.saturating_sub(1);
                    e.leases == 0 && e.doomed
                }
                None => false,
            }
        };
        if doomed {
            self.remove(block_id);
        }
    }

    fn read_verified(
        &self,
        dir: usize,
        meta: &BlockMeta,
        offset: u64,
        len: u64,
        lease: ReadLease,
    ) -> Result<Bytes, StoreError> {
        let len = len.min(meta.length.saturating_sub(offset));
        if len == 0 {
            return Ok(Bytes::new());
        }
        let cs = meta.chunk_size as u64;
        let first = offset / cs;
        let last = (offset + len - 1) / cs;
        let start = first * cs;
        let end = ((last + 1) * cs).min(meta.length);
        let path = self.0.dirs[dir].data_path(file_id_of(meta.block_id));
        let corrupt = |reason: String| StoreError::Corrupt {
            block_id: meta.block_id,
            reason,
        };
        let file = File::open(&path)
            .map_err(|e| corrupt(format!("cannot open {}: {e}", path.display())))?;
        let buf = alluxio_common::mapped::read_range(
            &file,
            meta.offset + start,
            (end - start) as usize,
            lease,
        )
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                corrupt(format!("file truncated: {e}"))
            } else {
                StoreError::Io {
                    path: path.clone(),
                    source: e,
                }
            }
        })?;
        for (i, chunk) in buf.chunks(cs as usize).enumerate() {
            let index = first as usize + i;
            if meta.chunk_crcs.get(index) != Some(&crc32fast::hash(chunk)) {
                return Err(corrupt(format!("checksum mismatch in chunk {index}")));
            }
        }
        let from = (offset - start) as usize;
        Ok(buf.slice(from..from + len as usize))
    }

    /// Opens a block for a short-circuit reader: it cannot be evicted until
    /// `close_local`.
    pub fn open_local(&self, block_id: u64) -> Result<LocalBlock, StoreError> {
        let (dir, meta) = self.acquire(block_id)?;
        let lease_id = {
            let mut inner = self.lock();
            inner.next_lease += 1;
            inner.next_lease
        };
        Ok(LocalBlock {
            path: self.0.dirs[dir].data_path(file_id_of(block_id)),
            offset: meta.offset,
            length: meta.length,
            chunk_crcs: meta.chunk_crcs.clone(),
            lease_id,
        })
    }

    pub fn close_local(&self, block_id: u64) {
        self.release_lease(block_id);
    }

    /// Moves a block to the fastest tier (CACHE_PROMOTE). Best effort.
    pub fn promote(&self, block_id: u64) -> Result<(), StoreError> {
        let current_tier = {
            let inner = self.lock();
            match inner.blocks.get(&block_id) {
                Some(e) => self.0.dirs[e.dir].tier,
                None => return Err(StoreError::NotCached(block_id)),
            }
        };
        if current_tier == 0 {
            return Ok(());
        }
        let (_, meta) = self.acquire(block_id)?;
        // A copy: the block's files are deleted below, and the mapped bytes
        // `read` returns would hold a lease that keeps the block in use.
        let data = self
            .read(block_id, 0, meta.length)
            .map(|mapped| Bytes::from(mapped.to_vec()));
        self.release_lease(block_id);
        let data = data?;
        let new_tier = {
            // Take it out of the index first, so the new copy can be added.
            let mut inner = self.lock();
            let Some(e) = inner.blocks.get(&block_id) else {
                return Ok(());
            };
            if e.leases > 0 {
                return Ok(()); // In use; try another time.
            }
            let e = Self::take_out(&mut inner, block_id).expect("checked");
            drop(inner);
            self.delete_files(e.dir, &e.meta);
            self.create_block(block_id, meta.offset, meta.length, 0)
        };
        // `take_out` told the next heartbeat the block is gone; the copy,
        // if it is made, tells it the block is back (the last word wins).
        new_tier.and_then(|mut writer| {
            writer.append(&data)?;
            writer.commit().map(|_| ())
        })
    }
}

/// LRFU's weighting of an access `age` ticks ago: (1/2)^(age/4).
fn lrfu_decay(age: u64) -> f64 {
    0.5f64.powf(age as f64 * 0.25)
}

/// Whether an error is the disk saying it is full (ENOSPC, or EDQUOT of
/// a user quota).
fn is_out_of_space(e: &StoreError) -> bool {
    matches!(e, StoreError::Io { source, .. }
        if matches!(source.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)))
}

fn punch_hole(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: fallocate on a valid descriptor with in-range arguments;
    // failure (unsupported file system) only means the space stays used.
    unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset as libc::off_t,
            len as libc::off_t,
        );
    }
}

/// A lease taken for one read, given back when the bytes read are dropped.
struct ReadLease {
    store: BlockStore,
    block_id: u64,
}

impl Drop for ReadLease {
    fn drop(&mut self) {
        self.store.release_lease(self.block_id);
    }
}

#[cfg(test)]
mod tests;
