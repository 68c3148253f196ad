//! The journal's group-commit writer: one thread owns the open log segment.
//!
//! Operations hand it already-encoded records in journal order. It takes
//! everything that is waiting, writes it in one go, fsyncs once, and then
//! acknowledges every operation in the batch, so concurrent operations share
//! one fsync. A failed write or fsync is permanent: the in-memory state is
//! ahead of the disk, so every later append fails too and the master must
//! restart from the journal.

use crate::journal::format::{encode_header, FileKind};
use crate::journal::segment_path;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use tokio::sync::oneshot;

pub(crate) enum WriterMessage {
    Append {
        records: Vec<u8>,
        done: oneshot::Sender<Result<(), String>>,
    },
    /// Start a new segment whose first entry is `start_sequence`.
    Rotate {
        start_sequence: u64,
        done: oneshot::Sender<Result<(), String>>,
    },
}

/// Counters the writer reports after each batch.
pub(crate) trait FlushObserver: Send + 'static {
    fn flushed(&self, appends: usize, bytes: usize);
}

/// Starts the writer thread on `file`; the segments it rotates to say
/// their records are sealed when `sealed` (the records come sealed).
pub(crate) fn spawn(
    dir: PathBuf,
    file: File,
    fsync: bool,
    sealed: bool,
    observer: impl FlushObserver,
) -> std::io::Result<Sender<WriterMessage>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("journal-writer".to_string())
        .spawn(move || run(dir, file, fsync, sealed, rx, observer))?;
    Ok(tx)
}

fn run(
    dir: PathBuf,
    mut file: File,
    fsync: bool,
    sealed: bool,
    rx: Receiver<WriterMessage>,
    observer: impl FlushObserver,
) {
    let mut failure: Option<String> = None;
    let mut buf = Vec::with_capacity(1 << 20);
    let mut waiting: Vec<oneshot::Sender<Result<(), String>>> = Vec::new();
    // recv() fails once every sender is gone: the master shut down.
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        for message in batch {
            match message {
                WriterMessage::Append { records, done } => {
                    if let Some(f) = &failure {
                        let _ = done.send(Err(f.clone()));
                        continue;
                    }
                    buf.extend_from_slice(&records);
                    waiting.push(done);
                }
                WriterMessage::Rotate {
                    start_sequence,
                    done,
                } => {
                    flush(
                        &mut file,
                        &mut buf,
                        &mut waiting,
                        fsync,
                        &mut failure,
                        &observer,
                    );
                    if let Some(f) = &failure {
                        let _ = done.send(Err(f.clone()));
                        continue;
                    }
                    match open_segment(&dir, start_sequence, sealed) {
                        Ok(new_file) => {
                            file = new_file;
                            let _ = done.send(Ok(()));
                        }
                        Err(e) => {
                            let msg = format!("cannot start journal segment: {e}");
                            failure = Some(msg.clone());
                            let _ = done.send(Err(msg));
                        }
                    }
                }
            }
        }
        flush(
            &mut file,
            &mut buf,
            &mut waiting,
            fsync,
            &mut failure,
            &observer,
        );
    }
}

fn flush(
    file: &mut File,
    buf: &mut Vec<u8>,
    waiting: &mut Vec<oneshot::Sender<Result<(), String>>>,
    fsync: bool,
    failure: &mut Option<String>,
    observer: &impl FlushObserver,
) {
    if waiting.is_empty() {
        return;
    }
    let result = file
        .write_all(buf)
        .and_then(|()| if fsync { file.sync_data() } else { Ok(()) });
    if let Err(e) = result {
        let msg = format!("journal write failed: {e}");
        tracing::error!(error = %e, "journal write failed; the master must restart from its journal");
        *failure = Some(msg);
    }
    observer.flushed(waiting.len(), buf.len());
    for done in waiting.drain(..) {
        let _ = done.send(match failure {
            Some(f) => Err(f.clone()),
            None => Ok(()),
        });
    }
    buf.clear();
}

/// Creates (or replaces) the segment starting at `start_sequence`, with its
/// header durable and the directory entry synced.
pub(crate) fn open_segment(dir: &Path, start_sequence: u64, sealed: bool) -> std::io::Result<File> {
    let path = segment_path(dir, start_sequence);
    let mut file = alluxio_common::io::create_private(&path)?;
    file.write_all(&encode_header(FileKind::Log, start_sequence, sealed))?;
    file.sync_all()?;
    File::open(dir)?.sync_all()?;
    Ok(file)
}
