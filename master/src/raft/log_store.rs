//! The Raft log of a fault-tolerant master, on disk in the journal's own
//! framing (`journal/format.rs`, file kind `RaftLog`): segments
//! `raft-<first index>.log` of bincode-encoded openraft entries, each record
//! length-prefixed and CRC-checked, plus two small files written atomically:
//! `raft-vote` (the durable vote) and `raft-purged` (the last purged log id).
//!
//! Every disk change goes through one writer thread, in the order openraft
//! asked for it. An append is written and fsynced before openraft hears it
//! is durable; openraft hands over everything waiting in one `append`, so
//! many client operations share one fsync. The entries after the last
//! purge are also kept in memory: followers are fed from there, and a
//! master that lost leadership rebuilds its state from the snapshot plus
//! these entries.

use super::TypeConfig;
use crate::journal::format::{encode_frame, encode_header, read_frames, FileKind, HEADER_LEN};
use crate::journal::seal::JournalKey;
use crate::journal::{JournalCounters, JournalError, JournalHealth};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogState, RaftLogReader, StorageError, StorageIOError};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::File;
use std::io::Write;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<u64>;
pub type Vote = openraft::Vote<u64>;

/// A new segment is started once the current one is this large, so that
/// purging the log can delete whole files.
const SEGMENT_BYTES: u64 = 64 << 20;

fn segment_path(dir: &Path, first_index: u64) -> PathBuf {
    dir.join(format!("raft-{first_index:020}.log"))
}

fn io_error(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::write_logs(AnyError::error(e)).into()
}

/// What a reader sees: the entries after the last purge, and the vote.
#[derive(Default)]
struct Cache {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
}

/// Cloned into openraft's log reader, the state machine (for rebuilds)
/// and the replication metrics.
#[derive(Clone)]
pub struct LogStore {
    dir: PathBuf,
    cache: Arc<Mutex<Cache>>,
    writer: Sender<WriteOp>,
    health: Arc<JournalHealth>,
    /// Seals entries (and the state machine's snapshots) when encryption
    /// at rest is on.
    key: Option<Arc<JournalKey>>,
}

enum WriteOp {
    Append {
        first_index: u64,
        frames: Vec<u8>,
        ends: Vec<u64>,
        done: LogFlushed<TypeConfig>,
    },
    /// Delete entries from `since` on.
    Truncate {
        since: u64,
        done: oneshot::Sender<std::io::Result<()>>,
    },
    /// Delete segments that hold only entries up to `upto`.
    Purge {
        upto: u64,
        done: oneshot::Sender<std::io::Result<()>>,
    },
}

impl LogStore {
    /// Reads the log in `dir` (a torn record at the very end, from a crash
    /// during an append that was never acknowledged, is cut off).
    /// Opens the log in `dir`; a failed write later is recorded in
    /// `health` (the master then stops serving until it is restarted).
    pub fn open(
        dir: &Path,
        fsync: bool,
        key: Option<Arc<JournalKey>>,
        counters: Arc<JournalCounters>,
        health: Arc<JournalHealth>,
    ) -> Result<LogStore, JournalError> {
        let mut cache = Cache {
            vote: read_small_file(&dir.join("raft-vote"))?,
            last_purged: read_small_file(&dir.join("raft-purged"))?,
            entries: BTreeMap::new(),
        };
        let segments = recover_segments(dir, &mut cache, key.as_deref())?;
        let purged = cache.last_purged.map(|l| l.index);
        if let Some(upto) = purged {
            cache.entries = cache.entries.split_off(&(upto + 1));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = SegmentWriter {
            dir: dir.to_path_buf(),
            segments,
            sealed: key.is_some(),
            fsync,
            counters,
            health: health.clone(),
        };
        std::thread::Builder::new()
            .name("raft-log-writer".to_string())
            .spawn(move || writer.run(rx))
            .map_err(|e| JournalError::io(dir, e))?;
        Ok(LogStore {
            dir: dir.to_path_buf(),
            cache: Arc::new(Mutex::new(cache)),
            writer: tx,
            health,
            key,
        })
    }

    /// The key that seals this journal's files, if any.
    pub fn journal_key(&self) -> Option<&JournalKey> {
        self.key.as_deref()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Entries in `range` that are still in the log (for rebuilding state).
    pub fn entries(&self, range: impl RangeBounds<u64>) -> Vec<Entry> {
        self.cache()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect()
    }

    pub fn last_index(&self) -> Option<u64> {
        let cache = self.cache();
        cache
            .entries
            .keys()
            .next_back()
            .copied()
            .or(cache.last_purged.map(|l| l.index))
    }

    async fn submit(
        &self,
        op: impl FnOnce(oneshot::Sender<std::io::Result<()>>) -> WriteOp,
    ) -> Result<(), StorageError<u64>> {
        let (done, rx) = oneshot::channel();
        self.writer
            .send(op(done))
            .map_err(|_| io_error("the Raft log writer stopped"))?;
        rx.await
            .map_err(|_| io_error("the Raft log writer stopped"))?
            .map_err(io_error)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<u64>> {
        Ok(self.entries(range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<u64>> {
        let cache = self.cache();
        let last_log_id = cache
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(cache.last_purged);
        Ok(LogState {
            last_purged_log_id: cache.last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError<u64>> {
        let (dir, vote) = (self.dir.clone(), *vote);
        tokio::task::spawn_blocking(move || write_small_file(&dir.join("raft-vote"), &vote))
            .await
            .map_err(io_error)?
            .map_err(|e| {
                self.health.fail(format!(
                    "the master cannot record its Raft vote ({e}); it answers nothing until it is restarted (free space on the journal's disk first)"
                ));
                StorageIOError::write_vote(AnyError::new(&e))
            })?;
        self.cache().vote = Some(vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError<u64>> {
        Ok(self.cache().vote)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut frames = Vec::new();
        let mut ends = Vec::new();
        let mut first_index = None;
        {
            let mut cache = self.cache();
            for entry in entries {
                let payload = bincode::serialize(&entry).map_err(io_error)?;
                encode_frame(&payload, self.key.as_deref(), &mut frames);
                ends.push(frames.len() as u64);
                first_index.get_or_insert(entry.log_id.index);
                cache.entries.insert(entry.log_id.index, entry);
            }
        }
        let Some(first_index) = first_index else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        self.writer
            .send(WriteOp::Append {
                first_index,
                frames,
                ends,
                done: callback,
            })
            .map_err(|_| io_error("the Raft log writer stopped"))
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError<u64>> {
        self.cache().entries.split_off(&log_id.index);
        self.submit(|done| WriteOp::Truncate {
            since: log_id.index,
            done,
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError<u64>> {
        // The purge point first: once it is durable, the files behind it
        // are garbage whatever happens next.
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || write_small_file(&dir.join("raft-purged"), &log_id))
            .await
            .map_err(io_error)?
            .map_err(io_error)?;
        {
            let mut cache = self.cache();
            cache.last_purged = Some(log_id);
            cache.entries = cache.entries.split_off(&(log_id.index + 1));
        }
        self.submit(|done| WriteOp::Purge {
            upto: log_id.index,
            done,
        })
        .await
    }
}

/// One log segment as the writer knows it.
struct Segment {
    first_index: u64,
    path: PathBuf,
    /// End offset of each entry in the file, from `first_index` on.
    ends: Vec<u64>,
    /// Whether its records are sealed (format version 2).
    sealed: bool,
}

impl Segment {
    fn len(&self) -> u64 {
        self.ends.last().copied().unwrap_or(HEADER_LEN as u64)
    }

    fn next_index(&self) -> u64 {
        self.first_index + self.ends.len() as u64
    }
}

struct SegmentWriter {
    dir: PathBuf,
    segments: Vec<Segment>,
    /// New segments say their records are sealed (the records come
    /// sealed).
    sealed: bool,
    fsync: bool,
    counters: Arc<JournalCounters>,
    health: Arc<JournalHealth>,
}

impl SegmentWriter {
    fn run(mut self, rx: Receiver<WriteOp>) {
        // Once a write failed, the disk no longer holds what openraft was
        // told; every later operation fails too and the master must restart.
        let mut failure: Option<String> = None;
        let mut open: Option<File> = None;
        while let Ok(op) = rx.recv() {
            match op {
                WriteOp::Append {
                    first_index,
                    frames,
                    ends,
                    done,
                } => {
                    let result = match &failure {
                        Some(f) => Err(std::io::Error::other(f.clone())),
                        None => self.append(&mut open, first_index, &frames, &ends),
                    };
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "Raft log write failed; the master must restart");
                        failure.get_or_insert(e.to_string());
                        self.health.fail(format!(
                            "the master's Raft log failed ({e}); it answers nothing until it is restarted (free space on the journal's disk first); the other masters go on without it"
                        ));
                    }
                    done.log_io_completed(result);
                }
                WriteOp::Truncate { since, done } => {
                    open = None;
                    let _ = done.send(self.truncate(since));
                }
                WriteOp::Purge { upto, done } => {
                    let _ = done.send(self.purge(upto));
                }
            }
        }
    }

    fn append(
        &mut self,
        open: &mut Option<File>,
        first_index: u64,
        frames: &[u8],
        ends: &[u64],
    ) -> std::io::Result<()> {
        let continues = self.segments.last().is_some_and(|s| {
            s.next_index() == first_index && s.len() < SEGMENT_BYTES && s.sealed == self.sealed
        });
        if !continues {
            // A new segment: the first one, a full one, after a gap (a
            // snapshot installed past the end of the log), or the first
            // since encryption was turned on or off.
            let path = segment_path(&self.dir, first_index);
            let mut file = alluxio_common::io::create_private(&path)?;
            file.write_all(&encode_header(FileKind::RaftLog, first_index, self.sealed))?;
            file.sync_all()?;
            File::open(&self.dir)?.sync_all()?;
            self.segments.push(Segment {
                first_index,
                path,
                ends: Vec::new(),
                sealed: self.sealed,
            });
            *open = Some(file);
        }
        let segment = self.segments.last_mut().expect("just ensured");
        if open.is_none() {
            *open = Some(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&segment.path)?,
            );
        }
        let file = open.as_mut().expect("just opened");
        file.write_all(frames)?;
        if self.fsync {
            file.sync_data()?;
        }
        let base = segment.len();
        segment.ends.extend(ends.iter().map(|e| base + e));
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        self.counters
            .entries_written
            .fetch_add(ends.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn truncate(&mut self, since: u64) -> std::io::Result<()> {
        while let Some(last) = self.segments.last_mut() {
            if last.first_index >= since {
                std::fs::remove_file(&last.path)?;
                self.segments.pop();
                continue;
            }
            let keep = (since - last.first_index) as usize;
            if keep < last.ends.len() {
                last.ends.truncate(keep);
                let f = std::fs::OpenOptions::new().write(true).open(&last.path)?;
                f.set_len(last.len())?;
                f.sync_all()?;
            }
            break;
        }
        File::open(&self.dir)?.sync_all()
    }

    fn purge(&mut self, upto: u64) -> std::io::Result<()> {
        // A segment can go when the next one starts at or before upto + 1.
        while self.segments.len() > 1 && self.segments[1].first_index <= upto + 1 {
            let gone = self.segments.remove(0);
            std::fs::remove_file(&gone.path)?;
        }
        File::open(&self.dir)?.sync_all()
    }
}

/// Reads every segment into `cache`, cutting a torn record off the last.
fn recover_segments(
    dir: &Path,
    cache: &mut Cache,
    key: Option<&JournalKey>,
) -> Result<Vec<Segment>, JournalError> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| JournalError::io(dir, e))? {
        let entry = entry.map_err(|e| JournalError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(first) = name
            .strip_prefix("raft-")
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            paths.push((first, entry.path()));
        }
    }
    paths.sort();
    let mut segments = Vec::new();
    let count = paths.len();
    for (i, (first_index, path)) in paths.into_iter().enumerate() {
        let is_last = i + 1 == count;
        // Where each record starts; each ends where the next starts, the
        // last where the intact part of the file does.
        let mut starts = Vec::new();
        let summary = read_frames(&path, is_last, key, |offset, payload| {
            let entry: Entry =
                bincode::deserialize(payload).map_err(|e| JournalError::Corrupt {
                    path: path.clone(),
                    offset,
                    reason: format!("undecodable Raft entry: {e}"),
                })?;
            let expected = first_index + starts.len() as u64;
            if entry.log_id.index != expected {
                return Err(JournalError::SequenceGap {
                    path: path.clone(),
                    offset,
                    expected,
                    found: entry.log_id.index,
                });
            }
            starts.push(offset);
            cache.entries.insert(entry.log_id.index, entry);
            Ok(())
        })?;
        let ends: Vec<u64> = starts
            .iter()
            .skip(1)
            .copied()
            .chain(starts.first().map(|_| summary.valid_len))
            .collect();
        if summary.header.kind != FileKind::RaftLog && summary.valid_len > 0 {
            return Err(JournalError::Corrupt {
                path,
                offset: 0,
                reason: "not a Raft log segment".to_string(),
            });
        }
        if let Some(at) = summary.torn_at {
            tracing::warn!(file = %path.display(), offset = at, "dropping a torn record at the end of the Raft log");
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| JournalError::io(&path, e))?;
            f.set_len(summary.valid_len.max(HEADER_LEN as u64))
                .map_err(|e| JournalError::io(&path, e))?;
            f.sync_all().map_err(|e| JournalError::io(&path, e))?;
        }
        segments.push(Segment {
            first_index,
            path,
            ends,
            sealed: summary.header.sealed,
        });
    }
    Ok(segments)
}

/// A small file (vote, purge point) written atomically: length, CRC and a
/// bincode payload, through a temporary file, fsynced with its directory.
pub(crate) fn write_small_file<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let payload = bincode::serialize(value).map_err(std::io::Error::other)?;
    // Votes and purge points: nothing of the namespace, never sealed.
    let mut data = encode_header(FileKind::RaftLog, 0, false).to_vec();
    encode_frame(&payload, None, &mut data);
    let tmp = path.with_extension("tmp");
    let mut f = alluxio_common::io::create_private(&tmp)?;
    f.write_all(&data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

pub(crate) fn read_small_file<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, JournalError> {
    if !path.exists() {
        return Ok(None);
    }
    let mut value = None;
    read_frames(path, false, None, |offset, payload| {
        value = Some(
            bincode::deserialize(payload).map_err(|e| JournalError::Corrupt {
                path: path.to_path_buf(),
                offset,
                reason: format!("undecodable: {e}"),
            })?,
        );
        Ok(())
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn entry(term: u64, index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    async fn append(store: &mut LogStore, entries: Vec<Entry>) {
        use openraft::storage::RaftLogStorageExt;
        store.blocking_append(entries).await.unwrap();
    }

    fn open(dir: &Path, key: Option<Arc<JournalKey>>) -> Result<LogStore, JournalError> {
        LogStore::open(dir, true, key, Default::default(), Default::default())
    }

    fn indexes(store: &LogStore) -> Vec<u64> {
        store.entries(..).iter().map(|e| e.log_id.index).collect()
    }

    #[tokio::test]
    async fn appends_truncates_and_purges_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path(), None).unwrap();
        append(&mut store, (1..=5).map(|i| entry(1, i)).collect()).await;
        append(&mut store, (6..=8).map(|i| entry(1, i)).collect()).await;
        store.truncate(entry(1, 7).log_id).await.unwrap();
        append(&mut store, vec![entry(2, 7)]).await;
        store.purge(entry(1, 2).log_id).await.unwrap();
        store.save_vote(&Vote::new(2, 3)).await.unwrap();
        assert_eq!(indexes(&store), vec![3, 4, 5, 6, 7]);
        drop(store);

        let mut store = open(dir.path(), None).unwrap();
        assert_eq!(indexes(&store), vec![3, 4, 5, 6, 7]);
        assert_eq!(store.entries(7..)[0].log_id.leader_id.term, 2);
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(2));
        assert_eq!(state.last_log_id.map(|l| l.index), Some(7));
        assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(2, 3)));
    }

    #[tokio::test]
    async fn entries_sealed_after_plain_ones_start_a_segment_and_both_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path(), None).unwrap();
        append(&mut store, (1..=3).map(|i| entry(1, i)).collect()).await;
        drop(store);
        let key = Arc::new(JournalKey::from_file_key(
            &alluxio_common::auth::ClusterKey::generate(),
        ));
        let mut store = open(dir.path(), Some(key.clone())).unwrap();
        append(&mut store, (4..=5).map(|i| entry(1, i)).collect()).await;
        drop(store);
        let versions: Vec<(String, u8)> = {
            let mut files: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with("raft-0") && n.ends_with(".log"))
                .collect();
            files.sort();
            files
                .into_iter()
                .map(|n| {
                    let version = std::fs::read(dir.path().join(&n)).unwrap()[4];
                    (n, version)
                })
                .collect()
        };
        assert_eq!(
            versions.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
            vec![1, 2],
            "{versions:?}"
        );
        let store = open(dir.path(), Some(key)).unwrap();
        assert_eq!(indexes(&store), vec![1, 2, 3, 4, 5]);
        let err = open(dir.path(), None).err().unwrap().to_string();
        assert!(err.contains("encrypted"), "{err}");
    }

    #[tokio::test]
    async fn a_torn_last_record_is_dropped_and_damage_before_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path(), None).unwrap();
        append(&mut store, (1..=3).map(|i| entry(1, i)).collect()).await;
        drop(store);
        let path = segment_path(dir.path(), 1);
        let full = std::fs::read(&path).unwrap();
        std::fs::write(&path, &full[..full.len() - 3]).unwrap();
        let store = open(dir.path(), None).unwrap();
        assert_eq!(indexes(&store), vec![1, 2]);
        drop(store);

        let mut damaged = std::fs::read(&path).unwrap();
        damaged[HEADER_LEN + 10] ^= 0xff;
        std::fs::write(&path, &damaged).unwrap();
        let err = open(dir.path(), None).err().unwrap().to_string();
        assert!(err.contains("raft-"), "{err}");
    }
}
