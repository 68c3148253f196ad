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
use std::collections::{HashMap, VecDeque};
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

    /// Removes `fh` if it is a [`ReadHandle`].
    pub fn remove_reader(&self, fh: u64) -> Option<Arc<ReadHandle>> {
        let mut open = self.lock();
        match open.get(&fh) {
            Some(Handle::Read(_)) => match open.remove(&fh) {
                Some(Handle::Read(h)) => Some(h),
                _ => None,
            },
            _ => None,
        }
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Handle>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Readers of files the kernel opened without asking the daemon
/// (`no_open`): one per inode, shared by everyone reading it. No release
/// ever comes for them, so beyond [`UNOPENED_READERS`] the oldest go (a
/// later read makes a new one).
#[derive(Default)]
pub struct UnopenedReaders {
    inner: Mutex<OldestFirst>,
}

#[derive(Default)]
struct OldestFirst {
    readers: HashMap<u64, Arc<ReadHandle>>,
    order: VecDeque<u64>,
}

pub const UNOPENED_READERS: usize = 1024;

impl UnopenedReaders {
    /// The reader of inode `ino` if it still reads file `file_id` (a sync
    /// that replaced the file gives the path a new Alluxio file).
    pub fn get(&self, ino: u64, file_id: u64) -> Option<Arc<ReadHandle>> {
        let inner = self.lock();
        let handle = inner.readers.get(&ino)?;
        (handle.reader.info().file_id == file_id).then(|| handle.clone())
    }

    pub fn insert(&self, ino: u64, handle: Arc<ReadHandle>) {
        let mut inner = self.lock();
        if inner.readers.insert(ino, handle).is_none() {
            inner.order.push_back(ino);
        }
        while inner.readers.len() > UNOPENED_READERS {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.readers.remove(&oldest);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OldestFirst> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
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
    ahead: Option<(u64, tokio::task::JoinHandle<Result<Piece>>)>,
    /// Size of the next fetch while the reads stay sequential.
    next: u64,
    /// The block whose successor was last asked to be fetched into a
    /// worker ahead of time.
    prefetched_for: Option<usize>,
}

/// Bytes from `start` on, as the messages they arrived in: a kernel
/// request inside one message is answered without a copy.
#[derive(Default)]
pub(crate) struct Piece {
    start: u64,
    pub(crate) len: u64,
    parts: Vec<Bytes>,
}

impl Piece {
    #[cfg(test)]
    pub(crate) fn from_bytes(b: Bytes) -> Piece {
        Piece {
            start: 0,
            len: b.len() as u64,
            parts: vec![b],
        }
    }

    pub(crate) async fn fetch(reader: &FileReader, start: u64, len: u64) -> Result<Piece> {
        let mut piece = Piece {
            start,
            len: 0,
            parts: Vec::new(),
        };
        reader
            .read_range(start, len, |b| {
                piece.len += b.len() as u64;
                piece.parts.push(b);
                Ok(())
            })
            .await?;
        Ok(piece)
    }

    fn end(&self) -> u64 {
        self.start + self.len
    }

    fn slice(&self, offset: u64, end: u64) -> Option<Bytes> {
        if offset < self.start || end > self.end() || self.len == 0 {
            return None;
        }
        let mut out: Option<bytes::BytesMut> = None;
        let mut at = self.start;
        for part in &self.parts {
            let (p_start, p_end) = (at, at + part.len() as u64);
            at = p_end;
            if p_end <= offset || p_start >= end {
                continue;
            }
            let from = (offset.max(p_start) - p_start) as usize;
            let to = (end.min(p_end) - p_start) as usize;
            if p_start <= offset && end <= p_end {
                return Some(part.slice(from..to));
            }
            out.get_or_insert_with(|| bytes::BytesMut::with_capacity((end - offset) as usize))
                .extend_from_slice(&part[from..to]);
        }
        out.map(bytes::BytesMut::freeze)
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

    /// A handle of a file whose bytes are here already (fetched ahead).
    pub(crate) fn with_contents(reader: FileReader, whole: Piece) -> Self {
        ReadHandle {
            reader: Arc::new(reader),
            window: tokio::sync::Mutex::new({
                let mut w = Window::default();
                w.current = whole;
                w
            }),
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
                let (_, task) = w.ahead.take().expect("checked");
                let piece = task
                    .await
                    .map_err(|e| AlluxioError::Internal(format!("read-ahead failed: {e}")))??;
                w.previous = std::mem::replace(&mut w.current, piece);
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
        w.next = if sequential && w.current.len > 0 {
            (w.next * 2).clamp(FIRST_WINDOW, MAX_WINDOW)
        } else {
            0
        };
        if let Some((_, task)) = w.ahead.take() {
            task.abort();
        }
        let piece = Piece::fetch(&self.reader, offset, (end - offset).max(w.next)).await?;
        let out = piece
            .slice(offset, end.min(piece.end()))
            .unwrap_or_default();
        w.previous = std::mem::replace(&mut w.current, piece);
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
        if offset < c.start + c.len / 2 {
            return;
        }
        let (reader, start, len) = (self.reader.clone(), c.end(), w.next);
        // A block of look-ahead at the worker too: the window alone would
        // start the next block's UFS fetch only just before it is needed.
        let block = self.reader.block_index(start);
        if block.is_some() && block != w.prefetched_for {
            w.prefetched_for = block;
            let reader = reader.clone();
            tokio::spawn(async move {
                reader
                    .prefetch_blocks_after(start, alluxio_client::reader::BLOCKS_AHEAD)
                    .await
            });
        }
        let task = tokio::spawn(async move { Piece::fetch(&reader, start, len).await });
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
    /// The rest of the master's listing; `None` before it is asked for
    /// (a lazy handle) and after its end.
    rest: Option<BoxStream<'static, Result<Vec<FileInfo>>>>,
    started: bool,
}

impl DirHandle {
    pub fn new(path: String, batches: BoxStream<'static, Result<Vec<FileInfo>>>) -> Self {
        DirHandle {
            path,
            listing: tokio::sync::Mutex::new(Listing {
                entries: Vec::new(),
                rest: Some(batches),
                started: true,
            }),
        }
    }

    /// A handle whose listing is asked for at the first readdir (with
    /// [`DirHandle::start`]): when the kernel lists a directory from its
    /// own cache, it opens the directory but never reads it.
    pub fn lazy(path: String) -> Self {
        DirHandle {
            path,
            listing: tokio::sync::Mutex::new(Listing {
                entries: Vec::new(),
                rest: None,
                started: false,
            }),
        }
    }

    pub async fn started(&self) -> bool {
        self.listing.lock().await.started
    }

    /// Gives a lazy handle its listing (once; later calls change nothing).
    pub async fn start(&self, batches: BoxStream<'static, Result<Vec<FileInfo>>>) {
        let mut l = self.listing.lock().await;
        if !l.started {
            l.started = true;
            l.rest = Some(batches);
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
