//! The master's journal: a write-ahead log with group commit, periodic
//! checkpoints, and recovery (latest checkpoint + replay of the log).
//!
//! Entries are applied to the in-memory state first (under the state's write
//! lock, which also fixes their order), handed to the writer thread in that
//! same order, and the operation is acknowledged to its client only once the
//! writer has fsynced them. See `format.rs` for the bytes on disk.

pub(crate) mod checkpoint;
pub mod format;
mod health;
pub mod seal;
mod writer;

pub use health::JournalHealth;

use crate::state::{ApplyError, MasterState};
use alluxio_proto::journal::{journal_entry::Entry, JournalEntry};
use format::{encode_record, read_file, FileKind};
use seal::JournalKey;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::oneshot;
use writer::WriterMessage;

use writer::open_segment;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("journal file {path} is corrupt at offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error(
        "journal file {path} has format version {version}; this master reads versions {} and {}",
        format::FORMAT_VERSION,
        format::SEALED_VERSION
    )]
    UnsupportedVersion { path: PathBuf, version: u16 },
    #[error(
        "journal file {path} is encrypted: set master.journal.encryption_key_file to the key file it was written with"
    )]
    Sealed { path: PathBuf },
    #[error("journal file {path} at offset {offset}: expected entry {expected}, found {found}")]
    SequenceGap {
        path: PathBuf,
        offset: u64,
        expected: u64,
        found: u64,
    },
    #[error("journal file {path} at offset {offset}: entry does not apply: {source}")]
    Apply {
        path: PathBuf,
        offset: u64,
        source: ApplyError,
    },
    #[error("{0}")]
    Failed(String),
}

impl JournalError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        JournalError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

pub fn segment_path(dir: &Path, start_sequence: u64) -> PathBuf {
    dir.join(format!("log-{start_sequence:020}.log"))
}

fn checkpoint_path(dir: &Path, sequence: u64) -> PathBuf {
    dir.join(format!("checkpoint-{sequence:020}.ckpt"))
}

/// Journal files by sequence number (checkpoint's, or segment start's).
type FilesBySequence = Vec<(u64, PathBuf)>;

/// Journal files in `dir`: (checkpoints, log segments), each sorted by
/// sequence.
fn list_files(dir: &Path) -> Result<(FilesBySequence, FilesBySequence), JournalError> {
    let mut checkpoints = Vec::new();
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| JournalError::io(dir, e))? {
        let entry = entry.map_err(|e| JournalError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let seq = |prefix: &str, suffix: &str| {
            name.strip_prefix(prefix)?
                .strip_suffix(suffix)?
                .parse::<u64>()
                .ok()
        };
        if let Some(s) = seq("checkpoint-", ".ckpt") {
            checkpoints.push((s, entry.path()));
        } else if let Some(s) = seq("log-", ".log") {
            logs.push((s, entry.path()));
        } else if name.ends_with(".tmp") {
            // An unfinished checkpoint from a crash.
            let _ = std::fs::remove_file(entry.path());
        }
    }
    checkpoints.sort();
    logs.sort();
    Ok((checkpoints, logs))
}

/// What recovery did, for logs and `fsadmin report`.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    pub checkpoint_sequence: u64,
    pub replayed_entries: u64,
    pub torn_tail_dropped: bool,
}

/// Counters the master exports as metrics.
#[derive(Default)]
pub struct JournalCounters {
    pub flushes: AtomicU64,
    pub entries_written: AtomicU64,
}

struct Observer(Arc<JournalCounters>);

impl writer::FlushObserver for Observer {
    fn flushed(&self, appends: usize, _bytes: usize) {
        self.0.flushes.fetch_add(1, Ordering::Relaxed);
        self.0
            .entries_written
            .fetch_add(appends as u64, Ordering::Relaxed);
    }
}

pub struct Journal {
    dir: PathBuf,
    writer: Mutex<Sender<WriterMessage>>,
    /// Sequence of the newest entry handed to the writer.
    appended_sequence: AtomicU64,
    checkpoint_sequence: AtomicU64,
    checkpoint_time_ms: AtomicI64,
    checkpoint_period: u64,
    checkpoint_running: Mutex<()>,
    /// Seals every record written when encryption at rest is on.
    key: Option<Arc<JournalKey>>,
    pub counters: Arc<JournalCounters>,
}

/// Waits for an append to be durable.
pub struct PendingFlush(Option<oneshot::Receiver<Result<(), String>>>);

impl PendingFlush {
    pub fn none() -> Self {
        PendingFlush(None)
    }

    /// Done when `rx` reports (the replicated journal's commit).
    pub fn from_receiver(rx: oneshot::Receiver<Result<(), String>>) -> Self {
        PendingFlush(Some(rx))
    }

    pub async fn wait(self) -> Result<(), JournalError> {
        match self.0 {
            None => Ok(()),
            Some(rx) => match rx.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(JournalError::Failed(e)),
                Err(_) => Err(JournalError::Failed("journal writer stopped".to_string())),
            },
        }
    }
}

impl Journal {
    /// Recovers `state` from `dir` (latest checkpoint, then the log) and
    /// starts a fresh log segment for new entries, sealed with `key` when
    /// given (sealed files need it to be read; plain ones are read either
    /// way).
    pub fn open(
        dir: &Path,
        state: &mut MasterState,
        checkpoint_period: u64,
        fsync: bool,
        key: Option<Arc<JournalKey>>,
    ) -> Result<(Journal, RecoveryReport), JournalError> {
        // Mount options (credentials) are in the journal: owner only. A
        // volume root the master does not own (a claim mounted with an
        // fsGroup) cannot be changed; its files are 0600 all the same.
        if let Err(e) = alluxio_common::io::create_private_dir(dir) {
            if !dir.is_dir() {
                return Err(JournalError::io(dir, e));
            }
            tracing::warn!(dir = %dir.display(), error = %e, "cannot make the journal directory 0700");
        }
        let report = recover(dir, state, key.as_deref())?;
        let next = state.last_sequence + 1;
        let sealed = key.is_some();
        let file = open_segment(dir, next, sealed)
            .map_err(|e| JournalError::io(&segment_path(dir, next), e))?;
        let counters = Arc::new(JournalCounters::default());
        let observer = Observer(counters.clone());
        let tx = writer::spawn(dir.to_path_buf(), file, fsync, sealed, observer)
            .map_err(|e| JournalError::io(dir, e))?;
        let journal = Journal {
            dir: dir.to_path_buf(),
            writer: Mutex::new(tx),
            appended_sequence: AtomicU64::new(state.last_sequence),
            checkpoint_sequence: AtomicU64::new(report.checkpoint_sequence),
            checkpoint_time_ms: AtomicI64::new(0),
            checkpoint_period,
            checkpoint_running: Mutex::new(()),
            key,
            counters,
        };
        Ok((journal, report))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Hands entries (already applied, in order) to the writer. Must be
    /// called while holding the state's write lock, so that log order is
    /// apply order.
    pub fn append(&self, entries: &[JournalEntry]) -> PendingFlush {
        if entries.is_empty() {
            return PendingFlush::none();
        }
        let mut records = Vec::with_capacity(entries.len() * 96);
        for e in entries {
            encode_record(e, self.key.as_deref(), &mut records);
        }
        let last = entries.last().map(|e| e.sequence).unwrap_or(0);
        self.appended_sequence.fetch_max(last, Ordering::AcqRel);
        let (done, rx) = oneshot::channel();
        let sent = self
            .writer
            .lock()
            .map(|w| w.send(WriterMessage::Append { records, done }).is_ok())
            .unwrap_or(false);
        if sent {
            PendingFlush(Some(rx))
        } else {
            let (tx, rx) = oneshot::channel();
            let _ = tx.send(Err("journal writer stopped".to_string()));
            PendingFlush(Some(rx))
        }
    }

    pub fn last_sequence(&self) -> u64 {
        self.appended_sequence.load(Ordering::Acquire)
    }

    pub fn entries_since_checkpoint(&self) -> u64 {
        self.last_sequence()
            .saturating_sub(self.checkpoint_sequence.load(Ordering::Acquire))
    }

    pub fn checkpoint_sequence(&self) -> u64 {
        self.checkpoint_sequence.load(Ordering::Acquire)
    }

    pub fn checkpoint_time_ms(&self) -> i64 {
        self.checkpoint_time_ms.load(Ordering::Acquire)
    }

    pub fn checkpoint_due(&self) -> bool {
        self.entries_since_checkpoint() >= self.checkpoint_period
    }

    /// Writes a checkpoint of `state` and deletes the log it replaces.
    /// Blocking: run it on a blocking thread. Writers wait only for the
    /// freeze and for one small piece of the encoding at a time
    /// (`checkpoint::encode_frozen`), never for the whole of it.
    pub fn checkpoint(&self, state: &RwLock<MasterState>) -> Result<u64, JournalError> {
        let _one_at_a_time = self
            .checkpoint_running
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (frozen, rotated) = {
            let mut guard = state.write().unwrap_or_else(|p| p.into_inner());
            // Under the write lock, so no entry can slip in between the
            // checkpoint and the first entry of the new segment.
            let (done, rx) = oneshot::channel();
            let sent = self
                .writer
                .lock()
                .map(|w| {
                    w.send(WriterMessage::Rotate {
                        start_sequence: guard.last_sequence + 1,
                        done,
                    })
                    .is_ok()
                })
                .unwrap_or(false);
            if !sent {
                return Err(JournalError::Failed("journal writer stopped".to_string()));
            }
            (checkpoint::freeze(&mut guard), rx)
        };
        let sequence = frozen.sequence();
        let data = checkpoint::encode_frozen(state, frozen, self.key.as_deref())
            .map_err(|e| JournalError::Failed(e.to_string()))?;
        match rotated.blocking_recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(JournalError::Failed(e)),
            Err(_) => return Err(JournalError::Failed("journal writer stopped".to_string())),
        }

        let final_path = checkpoint_path(&self.dir, sequence);
        let tmp = final_path.with_extension("ckpt.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = alluxio_common::io::create_private(&tmp)?;
            alluxio_common::io::write_with_early_writeback(&mut f, &data)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &final_path)?;
            std::fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| JournalError::io(&final_path, e))?;

        // The checkpoint covers everything up to `sequence`: older
        // checkpoints and segments that end before it can go.
        let (checkpoints, logs) = list_files(&self.dir)?;
        for (s, path) in checkpoints {
            if s < sequence {
                let _ = std::fs::remove_file(path);
            }
        }
        for (start, path) in logs {
            if start <= sequence {
                let _ = std::fs::remove_file(path);
            }
        }
        self.checkpoint_sequence.store(sequence, Ordering::Release);
        self.checkpoint_time_ms
            .store(alluxio_common::now_ms(), Ordering::Release);
        tracing::info!(sequence, bytes = data.len(), "journal checkpoint written");
        Ok(sequence)
    }
}

/// Loads the checkpoint at `path` into `state` (which must be empty) and
/// returns its sequence.
pub(crate) fn load_checkpoint(
    path: &Path,
    state: &mut MasterState,
    key: Option<&JournalKey>,
) -> Result<u64, JournalError> {
    let data = std::fs::read(path).map_err(|e| JournalError::io(path, e))?;
    decode_checkpoint(&data, path, state, key)
}

/// [`load_checkpoint`] of a checkpoint's bytes already in memory (`path`
/// only names it in errors): what the fuzz targets feed.
pub fn decode_checkpoint(
    data: &[u8],
    path: &Path,
    state: &mut MasterState,
    key: Option<&JournalKey>,
) -> Result<u64, JournalError> {
    let mut complete = false;
    let summary = format::decode_entries(data, path, false, key, |offset, entry| {
        if complete {
            return Err(JournalError::Corrupt {
                path: path.to_path_buf(),
                offset,
                reason: "records after the checkpoint end".to_string(),
            });
        }
        complete = matches!(entry.entry, Some(Entry::CheckpointEnd(_)));
        state
            .apply(&entry)
            .map(|_| ())
            .map_err(|source| JournalError::Apply {
                path: path.to_path_buf(),
                offset,
                source,
            })
    })?;
    if summary.header.kind != FileKind::Checkpoint || !complete {
        return Err(JournalError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason: "not a complete checkpoint (no end record)".to_string(),
        });
    }
    state.last_sequence = summary.header.start_sequence;
    Ok(summary.header.start_sequence)
}

pub(crate) fn recover(
    dir: &Path,
    state: &mut MasterState,
    key: Option<&JournalKey>,
) -> Result<RecoveryReport, JournalError> {
    let (checkpoints, logs) = list_files(dir)?;
    let mut report = RecoveryReport::default();

    if let Some((_, path)) = checkpoints.last() {
        report.checkpoint_sequence = load_checkpoint(path, state, key)?;
    }

    // Segments after the last one that holds a record are empty (rotated
    // to, never written): a torn record before them is still the end of
    // the log.
    let holds_records =
        |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.len() > format::HEADER_LEN as u64);
    let last_written = logs
        .iter()
        .rposition(|(_, p)| holds_records(p))
        .unwrap_or(logs.len().saturating_sub(1));
    for (i, (_, path)) in logs.iter().enumerate() {
        let is_last = i >= last_written;
        let summary = read_file(path, is_last, key, |offset, entry| {
            if entry.sequence <= state.last_sequence {
                return Ok(()); // Already in the checkpoint.
            }
            if entry.sequence != state.last_sequence + 1 {
                return Err(JournalError::SequenceGap {
                    path: path.clone(),
                    offset,
                    expected: state.last_sequence + 1,
                    found: entry.sequence,
                });
            }
            state.apply(&entry).map_err(|source| JournalError::Apply {
                path: path.clone(),
                offset,
                source,
            })?;
            report.replayed_entries += 1;
            Ok(())
        })?;
        if let Some(at) = summary.torn_at {
            tracing::warn!(file = %path.display(), offset = at, "dropping a torn record at the end of the journal");
            report.torn_tail_dropped = true;
            // Cut it off, so that this segment is clean when it is no
            // longer the last one.
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| JournalError::io(path, e))?;
            f.set_len(summary.valid_len)
                .map_err(|e| JournalError::io(path, e))?;
            f.sync_all().map_err(|e| JournalError::io(path, e))?;
            // Empty segments after it were named for sequences past the
            // dropped record; new entries continue this one instead.
            for (_, later) in &logs[i + 1..] {
                std::fs::remove_file(later).map_err(|e| JournalError::io(later, e))?;
            }
            break;
        }
    }
    Ok(report)
}
