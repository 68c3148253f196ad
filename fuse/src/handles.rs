//! Open file and directory handles: what a file handle number stands for
//! between open and release.
//!
//! - [`ReadHandle`]: a completed file read through the daemon. Reads come in
//!   kernel-sized pieces (128 KiB to 1 MiB); the handle fetches a window
//!   ahead of them that doubles while the reads stay sequential, so a
//!   sequential read costs a few large block reads, not one per piece.
//! - [`WriteHandle`]: a new file being written. Alluxio files are written
//!   once, front to back, so a write must start where the last one ended.
//!   The file is completed when the handle is released (its last close:
//!   a shell redirection closes a duplicate right after opening, so the
//!   first flush is too early). Opens of the file wait for that.
//! - [`DirHandle`]: a directory listing, pulled from the master's stream
//!   batch by batch as readdir asks for more.

use alluxio_client::{FileReader, FileWriter};
use alluxio_common::{AlluxioError, Result};
use alluxio_proto::grpc::FileInfo;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Largest read-ahead window of a sequential reader.
const MAX_WINDOW: u64 = 16 << 20;
/// First window of a reader that has just turned sequential.
const FIRST_WINDOW: u64 = 1 << 20;

pub enum Handle {
    Read(Arc<ReadHandle>),
    Write(Arc<WriteHandle>),
    Dir(Arc<DirHandle>),
    /// Read by the kernel straight from the local worker's copy.
    Passthrough {
        ino: u64,
    },
}

#[derive(Default)]
pub struct Handles {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Handle>>,
}

impl Handles {
    pub fn insert(&self, handle: Handle) -> u64 {
        let fh = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.lock().insert(fh, handle);
        fh
    }

    pub fn remove(&self, fh: u64) -> Option<Handle> {
        self.lock().remove(&fh)
    }

    pub fn read(&self, fh: u64) -> Option<Arc<ReadHandle>> {
        match self.lock().get(&fh) {
            Some(Handle::Read(h)) => Some(h.clone()),
            _ => None,
        }
    }

    pub fn write(&self, fh: u64) -> Option<Arc<WriteHandle>> {
        match self.lock().get(&fh) {
            Some(Handle::Write(h)) => Some(h.clone()),
            _ => None,
        }
    }

    pub fn dir(&self, fh: u64) -> Option<Arc<DirHandle>> {
        match self.lock().get(&fh) {
            Some(Handle::Dir(h)) => Some(h.clone()),
            _ => None,
        }
    }

    /// The open writer of the file at `path`, if this mount writes it.
    pub fn writer_of(&self, path: &str) -> Option<Arc<WriteHandle>> {
        self.lock().values().find_map(|h| match h {
            Handle::Write(w) if w.path == path => Some(w.clone()),
            _ => None,
        })
    }

    /// Bytes written so far by an open writer of `ino` (its size as far
    /// as this mount knows, before the file is completed).
    pub fn written_len(&self, ino: u64) -> Option<u64> {
        self.lock().values().find_map(|h| match h {
            Handle::Write(w) if w.ino == ino => Some(w.written.load(Ordering::Relaxed)),
            _ => None,
        })
    }

    pub fn contains(&self, fh: u64) -> bool {
        self.lock().contains_key(&fh)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Handle>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct ReadHandle {
    pub reader: FileReader,
    window: tokio::sync::Mutex<Window>,
}

#[derive(Default)]
struct Window {
    start: u64,
    data: Bytes,
    /// Size of the next fetch if the reads stay sequential.
    next: u64,
}

impl ReadHandle {
    pub fn new(reader: FileReader) -> Self {
        ReadHandle {
            reader,
            window: tokio::sync::Mutex::new(Window::default()),
        }
    }

    /// Bytes `[offset, offset+size)`, shorter at the end of the file.
    pub async fn read(&self, offset: u64, size: u64) -> Result<Bytes> {
        let len = self.reader.len();
        if offset >= len || size == 0 {
            return Ok(Bytes::new());
        }
        let end = (offset + size).min(len);
        let mut w = self.window.lock().await;
        let w_end = w.start + w.data.len() as u64;
        if offset >= w.start && end <= w_end {
            let from = (offset - w.start) as usize;
            return Ok(w.data.slice(from..from + (end - offset) as usize));
        }
        let sequential = w_end > 0 && offset >= w.start && offset <= w_end;
        w.next = if sequential {
            (w.next * 2).clamp(FIRST_WINDOW, MAX_WINDOW)
        } else {
            0
        };
        let fetch = (end - offset).max(w.next);
        let data = self.reader.read_at(offset, fetch).await?;
        let got = (data.len() as u64).min(end - offset) as usize;
        let out = data.slice(..got);
        w.start = offset;
        w.data = data;
        Ok(out)
    }
}

pub struct WriteHandle {
    pub ino: u64,
    pub path: String,
    pub written: AtomicU64,
    writer: tokio::sync::Mutex<Option<FileWriter>>,
    /// Turns true once the file is completed or abandoned.
    finished: tokio::sync::watch::Sender<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("write at offset {offset} of {path}, but {written} bytes were written: Alluxio files are written sequentially")]
    NotSequential {
        path: String,
        offset: u64,
        written: u64,
    },
    #[error("{path} was already completed")]
    Closed { path: String },
    #[error(transparent)]
    Cluster(#[from] AlluxioError),
}

impl WriteHandle {
    pub fn new(ino: u64, writer: FileWriter) -> Self {
        WriteHandle {
            ino,
            path: writer.path().to_string(),
            written: AtomicU64::new(0),
            writer: tokio::sync::Mutex::new(Some(writer)),
            finished: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Resolves once the file is completed or abandoned.
    pub async fn finished(&self) {
        let mut rx = self.finished.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }

    pub async fn write(&self, offset: u64, data: Bytes) -> Result<(), WriteError> {
        let mut guard = self.writer.lock().await;
        let Some(writer) = guard.as_mut() else {
            return Err(WriteError::Closed {
                path: self.path.clone(),
            });
        };
        let written = self.written.load(Ordering::Relaxed);
        if offset != written {
            return Err(WriteError::NotSequential {
                path: self.path.clone(),
                offset,
                written,
            });
        }
        let n = data.len() as u64;
        writer.write(data).await?;
        self.written.store(written + n, Ordering::Relaxed);
        Ok(())
    }

    /// Completes the file (first call); later calls do nothing.
    pub async fn complete(&self) -> Result<Option<FileInfo>> {
        let writer = self.writer.lock().await.take();
        let result = match writer {
            Some(w) => w.close().await.map(Some),
            None => Ok(None),
        };
        self.finished.send_replace(true);
        result
    }

    /// Drops the file (a handle released without a flush, or failed).
    pub async fn abandon(&self) {
        if let Some(mut w) = self.writer.lock().await.take() {
            w.abandon().await;
        }
        self.finished.send_replace(true);
    }
}

pub struct DirHandle {
    pub path: String,
    listing: tokio::sync::Mutex<Listing>,
}

struct Listing {
    entries: Vec<FileInfo>,
    rest: Option<BoxStream<'static, Result<Vec<FileInfo>>>>,
}

impl DirHandle {
    pub fn new(path: String, batches: BoxStream<'static, Result<Vec<FileInfo>>>) -> Self {
        DirHandle {
            path,
            listing: tokio::sync::Mutex::new(Listing {
                entries: Vec::new(),
                rest: Some(batches),
            }),
        }
    }

    /// Up to `max` entries starting at index `from`, pulling more of the
    /// listing from the master as needed.
    pub async fn entries(&self, from: usize, max: usize) -> Result<Vec<FileInfo>> {
        let mut l = self.listing.lock().await;
        while l.entries.len() < from + max {
            let Some(rest) = l.rest.as_mut() else { break };
            match rest.next().await {
                Some(batch) => {
                    let batch = batch?;
                    l.entries.extend(batch);
                }
                None => l.rest = None,
            }
        }
        let end = l.entries.len().min(from + max);
        Ok(l.entries
            .get(from..end)
            .map(<[_]>::to_vec)
            .unwrap_or_default())
    }
}
