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
    pub reader: Arc<FileReader>,
    window: tokio::sync::Mutex<Window>,
}

/// What a sequential reader has fetched: the current window, the one
/// before (the kernel's concurrent read-ahead requests arrive slightly out
/// of order), and the next one, already on its way.
#[derive(Default)]
struct Window {
    current: Piece,
    previous: Piece,
    ahead: Option<(u64, tokio::task::JoinHandle<Result<Bytes>>)>,
    /// Size of the next fetch while the reads stay sequential.
    next: u64,
}

#[derive(Default)]
struct Piece {
    start: u64,
    data: Bytes,
}

impl Piece {
    fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }

    fn slice(&self, offset: u64, end: u64) -> Option<Bytes> {
        (offset >= self.start && end <= self.end() && !self.data.is_empty()).then(|| {
            let from = (offset - self.start) as usize;
            self.data.slice(from..from + (end - offset) as usize)
        })
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        if let Some((_, task)) = self.ahead.take() {
            task.abort();
        }
    }
}

impl ReadHandle {
    pub fn new(reader: FileReader) -> Self {
        ReadHandle {
            reader: Arc::new(reader),
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
        if let Some(hit) = w
            .current
            .slice(offset, end)
            .or_else(|| w.previous.slice(offset, end))
        {
            self.read_ahead(&mut w, offset);
            return Ok(hit);
        }
        // The next window, fetched in the background, is what a
        // sequential reader wants now.
        if let Some((start, _)) = &w.ahead {
            if *start <= offset && offset < *start + w.next {
                let (start, task) = w.ahead.take().expect("checked");
                let data = task
                    .await
                    .map_err(|e| AlluxioError::Internal(format!("read-ahead failed: {e}")))??;
                w.previous = std::mem::replace(&mut w.current, Piece { start, data });
                w.next = (w.next * 2).clamp(FIRST_WINDOW, MAX_WINDOW);
                if let Some(hit) = w.current.slice(offset, end) {
                    self.read_ahead(&mut w, offset);
                    return Ok(hit);
                }
            }
        }
        // A miss: fetch what is asked (and a window more if the reader
        // was going forward).
        let sequential = offset >= w.current.start && offset <= w.current.end() + MAX_WINDOW;
        w.next = if sequential && !w.current.data.is_empty() {
            (w.next * 2).clamp(FIRST_WINDOW, MAX_WINDOW)
        } else {
            0
        };
        if let Some((_, task)) = w.ahead.take() {
            task.abort();
        }
        let data = self
            .reader
            .read_at(offset, (end - offset).max(w.next))
            .await?;
        let got = (data.len() as u64).min(end - offset) as usize;
        let out = data.slice(..got);
        w.previous = std::mem::take(&mut w.current);
        w.current = Piece {
            start: offset,
            data,
        };
        self.read_ahead(&mut w, offset);
        Ok(out)
    }

    /// Once a sequential reader is half-way through the current window,
    /// starts fetching the next one.
    fn read_ahead(&self, w: &mut Window, offset: u64) {
        let c = &w.current;
        if w.next == 0 || w.ahead.is_some() || c.end() >= self.reader.len() {
            return;
        }
        if offset < c.start + c.data.len() as u64 / 2 {
            return;
        }
        let (reader, start, len) = (self.reader.clone(), c.end(), w.next);
        let task = tokio::spawn(async move { reader.read_at(start, len).await });
        w.ahead = Some((start, task));
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
