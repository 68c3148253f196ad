//! Read-through: a block that is not cached is fetched from the UFS,
//! streamed to its readers as it arrives, and cached. From an object store
//! the block is fetched as several ranged requests in flight at once
//! (`worker.ufs_fetch_piece`, `worker.ufs_fetch_parallelism`), delivered in
//! order; from a local directory or HDFS with one stream.
//!
//! Concurrent readers of one missing block share one fetch: the first
//! starts it, later ones follow the same list of pieces. A fetch runs to
//! the end even if its reader goes away, so a partial read still caches the
//! whole block. When no tier has room the data still flows to the readers,
//! just without being cached. A fetch holds its block in memory until it
//! ends, so fetches take room from `worker.read_through_memory` first and
//! wait when there is none. A load's fetch (`into_cache`) is written into
//! the cache as it arrives and holds a chunk per piece in flight; readers
//! that find one wait for it and read the cached block.

use crate::block_store::{BlockStore, BlockWriter, StoreError, CHUNK_SIZE};
use crate::into_cache::{fetch_into_cache, BlockPieces};
use crate::metrics::WorkerMetrics;
use crate::piece::{Piece, PieceGatherer};
use alluxio_client::MountResolver;
use alluxio_common::{AlluxioError, Result};
use alluxio_proto::grpc::UfsBlockSource;
use alluxio_ufs::{ByteStream, UnderFileSystem};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Where a block's bytes come from in the UFS.
#[derive(Clone, Debug)]
pub struct BlockSource {
    pub block_id: u64,
    pub block_length: u64,
    pub offset_in_file: u64,
    pub ufs: UfsBlockSource,
}

#[derive(Clone, Debug, PartialEq)]
enum Progress {
    Running,
    Done,
    /// The fetch's own error (a path outside the mount stays
    /// InvalidArgument, an unreachable store Unavailable).
    Failed(AlluxioError),
}

/// One in-flight fetch of a whole block.
pub struct Fetch {
    /// False for a load's fetch, which writes the block into the cache
    /// as it arrives and keeps nothing for readers to follow.
    keeps_pieces: bool,
    pieces: Mutex<Vec<Piece>>,
    progress: watch::Sender<(usize, Progress)>,
}

impl Fetch {
    /// Streams bytes [offset, offset+len) of the block to `send` as the
    /// fetch delivers them. `send` returns false when the reader is gone;
    /// while it waits, so does this reader (the fetch itself goes on).
    pub async fn follow<F: Future<Output = bool>>(
        &self,
        offset: u64,
        len: u64,
        mut send: impl FnMut(Bytes) -> F,
    ) -> Result<()> {
        let end = offset + len;
        let mut rx = self.progress.subscribe();
        let mut next_piece = 0;
        let mut piece_start = 0u64;
        let mut pos = offset;
        loop {
            let (count, state) = rx.borrow_and_update().clone();
            let available: Vec<Piece> = {
                let pieces = self.pieces.lock().unwrap_or_else(|p| p.into_inner());
                pieces[next_piece..count.min(pieces.len())].to_vec()
            };
            for piece in available {
                next_piece += 1;
                let piece_end = piece_start + piece.len() as u64;
                if piece_end > pos && piece_start < end {
                    let from = (pos - piece_start) as usize;
                    let to = (end.min(piece_end) - piece_start) as usize;
                    if !send(piece.slice(from, to)).await {
                        return Ok(());
                    }
                    pos = piece_start + to as u64;
                }
                piece_start = piece_end;
                if pos >= end {
                    return Ok(());
                }
            }
            match state {
                Progress::Done => return Ok(()),
                Progress::Failed(e) => return Err(e),
                Progress::Running => {
                    if rx.changed().await.is_err() {
                        return Err(AlluxioError::Internal(
                            "fetch ended without a result".to_string(),
                        ));
                    }
                }
            }
        }
    }

    /// Whether readers can follow this fetch; a reader that finds a
    /// load's fetch waits for it to end and reads the cached block.
    pub fn keeps_pieces(&self) -> bool {
        self.keeps_pieces
    }

    pub async fn wait(&self) -> Result<()> {
        self.follow(0, u64::MAX / 2, |_| std::future::ready(true))
            .await
    }
}

pub struct ReadThrough {
    store: BlockStore,
    ufs: Arc<MountResolver>,
    metrics: Arc<WorkerMetrics>,
    in_flight: Mutex<HashMap<u64, Arc<Fetch>>>,
    /// Room for fetched bytes, in MiB.
    memory: Arc<tokio::sync::Semaphore>,
    memory_mib: u32,
    fetch: FetchPlan,
}

/// How a cold block is fetched from an object store.
#[derive(Clone, Copy, Debug)]
pub struct FetchPlan {
    /// Bytes per ranged request: for a load, a whole number of
    /// `CHUNK_SIZE`s, since its pieces are written side by side chunk by
    /// chunk (`WorkerServer` rounds the setting up).
    pub piece: u64,
    /// Requests in flight for one block.
    pub parallelism: usize,
}

impl FetchPlan {
    /// The ranges of `range` to fetch, in order: the whole range when it
    /// is read with one stream.
    fn pieces(&self, range: Range<u64>, parallel: bool) -> Vec<Range<u64>> {
        if !parallel || self.parallelism < 2 || range.end - range.start <= self.piece {
            return vec![range];
        }
        let piece = self.piece.max(1);
        (range.start..range.end)
            .step_by(piece as usize)
            .map(|start| start..(start + piece).min(range.end))
            .collect()
    }
}

const MIB: u64 = 1 << 20;

impl ReadThrough {
    /// Fetches may hold `memory` bytes at once (at least one MiB).
    pub fn new(
        store: BlockStore,
        ufs: Arc<MountResolver>,
        metrics: Arc<WorkerMetrics>,
        memory: u64,
        fetch: FetchPlan,
    ) -> Self {
        let memory_mib = (memory / MIB).clamp(1, u32::MAX as u64 >> 4) as u32;
        ReadThrough {
            store,
            ufs,
            metrics,
            in_flight: Mutex::new(HashMap::new()),
            memory: Arc::new(tokio::sync::Semaphore::new(memory_mib as usize)),
            memory_mib,
            fetch,
        }
    }

    /// The fetch of `source`'s block: an existing one, or a new one started
    /// now (which caches the block if there is room). `None` when the block
    /// is already cached: a finished fetch commits the block before it
    /// leaves `in_flight`, and both are checked under the same lock, so a
    /// block is never fetched twice because of a race with its own fetch.
    pub fn fetch(self: &Arc<Self>, source: BlockSource) -> Option<Arc<Fetch>> {
        self.start(source, true)
    }

    /// Like `fetch`, for a load: the block goes into the cache as it
    /// arrives, without being held for readers (`into_cache`), and the
    /// fetch fails when no tier has room. An existing fetch is joined.
    pub fn fetch_into_cache(self: &Arc<Self>, source: BlockSource) -> Option<Arc<Fetch>> {
        self.start(source, false)
    }

    fn start(self: &Arc<Self>, source: BlockSource, keeps_pieces: bool) -> Option<Arc<Fetch>> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = in_flight.get(&source.block_id) {
            return Some(f.clone());
        }
        if self.store.contains(source.block_id) {
            return None;
        }
        let (tx, _) = watch::channel((0, Progress::Running));
        let fetch = Arc::new(Fetch {
            keeps_pieces,
            pieces: Mutex::new(Vec::new()),
            progress: tx,
        });
        in_flight.insert(source.block_id, fetch.clone());
        let this = self.clone();
        let f = fetch.clone();
        tokio::spawn(async move {
            let block_id = source.block_id;
            let result = this.run_fetch(&source, &f).await;
            // Remove before announcing the end, so a reader arriving after
            // the end finds the cached block (or starts a new fetch).
            this.in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&block_id);
            let count = f.pieces.lock().unwrap_or_else(|p| p.into_inner()).len();
            let state = match result {
                Ok(()) => Progress::Done,
                Err(e) => {
                    tracing::warn!(block_id, error = %e, "read-through failed");
                    Progress::Failed(e)
                }
            };
            f.progress.send_replace((count, state));
        });
        Some(fetch)
    }

    async fn run_fetch(&self, source: &BlockSource, fetch: &Fetch) -> Result<()> {
        // Room for the whole block first (a block bigger than the bound
        // takes all of it); a load's fetch holds a chunk per piece in
        // flight.
        let room = match fetch.keeps_pieces {
            true => source.block_length,
            false => (self.fetch.parallelism as u64 * CHUNK_SIZE).min(source.block_length),
        };
        let mib = (room.div_ceil(MIB).max(1)).min(self.memory_mib as u64) as u32;
        let _room = self
            .memory
            .clone()
            .acquire_many_owned(mib)
            .await
            .map_err(|e| AlluxioError::Internal(e.to_string()))?;
        let held = self
            .metrics
            .read_through_bytes
            .inc_by((mib as u64 * MIB) as i64)
            + (mib as u64 * MIB) as i64;
        if held > self.metrics.read_through_bytes_peak.get() {
            self.metrics.read_through_bytes_peak.set(held);
        }
        let result = match fetch.keeps_pieces {
            true => self.fetch_into(source, fetch).await,
            false => self.load(source).await,
        };
        self.metrics
            .read_through_bytes
            .dec_by((mib as u64 * MIB) as i64);
        result
    }

    /// The ranged requests that fetch `range` from `ufs`.
    fn requests(&self, ufs: &dyn UnderFileSystem, range: Range<u64>) -> Vec<Range<u64>> {
        let object_store = matches!(ufs.kind(), "s3" | "gcs" | "azure");
        self.fetch.pieces(range, object_store)
    }

    /// A load's fetch: straight into the cache.
    async fn load(&self, source: &BlockSource) -> Result<()> {
        let (ufs, path) = self
            .ufs
            .resolve(source.ufs.mount_id, &source.ufs.ufs_path)
            .await?;
        let range = source.offset_in_file..source.offset_in_file + source.block_length;
        let pieces = self.requests(&*ufs, range);
        let block = BlockPieces {
            block_id: source.block_id,
            start: source.offset_in_file,
            pieces,
        };
        let parallelism = self.fetch.parallelism;
        fetch_into_cache(&self.store, &self.metrics, ufs, &path, block, parallelism).await
    }

    async fn fetch_into(&self, source: &BlockSource, fetch: &Fetch) -> Result<()> {
        let (ufs, path) = self
            .ufs
            .resolve(source.ufs.mount_id, &source.ufs.ufs_path)
            .await?;
        let range = source.offset_in_file..source.offset_in_file + source.block_length;
        let mut stream = self.block_stream(ufs, path, range).await?;
        let store = self.store.clone();
        let (id, off, len) = (source.block_id, source.offset_in_file, source.block_length);
        let mut writer: Option<BlockWriter> =
            tokio::task::spawn_blocking(move || match store.create_block(id, off, len, 0) {
                Ok(w) => Some(w.refetchable()),
                Err(StoreError::NoSpace { needed }) => {
                    tracing::info!(
                        block_id = id,
                        needed,
                        "no room to cache; serving without caching"
                    );
                    None
                }
                Err(e) => {
                    tracing::warn!(block_id = id, error = %e, "cannot cache block");
                    None
                }
            })
            .await
            .map_err(|e| AlluxioError::Internal(e.to_string()))?;

        let mut gatherer = PieceGatherer::default();
        let mut received = 0u64;
        loop {
            let (ready, ended) = match stream.next().await {
                Some(Ok(bytes)) => {
                    received += bytes.len() as u64;
                    (gatherer.push(bytes), false)
                }
                Some(Err(e)) => return Err(e.into()),
                None => (gatherer.finish().into_iter().collect(), true),
            };
            if !ready.is_empty() {
                let bytes: usize = ready.iter().map(Piece::len).sum();
                self.metrics.bytes_read_ufs.inc_by(bytes as u64);
                {
                    let mut pieces = fetch.pieces.lock().unwrap_or_else(|p| p.into_inner());
                    pieces.extend(ready.iter().cloned());
                    fetch
                        .progress
                        .send_replace((pieces.len(), Progress::Running));
                }
                if let Some(mut w) = writer.take() {
                    writer = tokio::task::spawn_blocking(move || {
                        let chunks: Vec<&Bytes> = ready.iter().flat_map(Piece::chunks).collect();
                        match w.append_all(&chunks) {
                            Ok(()) => Some(w),
                            Err(e) => {
                                tracing::warn!(error = %e, "caching failed; continuing without");
                                None
                            }
                        }
                    })
                    .await
                    .map_err(|e| AlluxioError::Internal(e.to_string()))?;
                }
            }
            if ended {
                break;
            }
        }
        if received != source.block_length {
            return Err(AlluxioError::Unavailable(format!(
                "UFS returned {received} bytes for block {} of {} bytes (did the file change?)",
                source.block_id, source.block_length
            )));
        }
        if let Some(w) = writer {
            let committed = tokio::task::spawn_blocking(move || w.commit())
                .await
                .map_err(|e| AlluxioError::Internal(e.to_string()))?;
            if let Err(e) = committed {
                tracing::warn!(block_id = source.block_id, error = %e, "cannot commit cached block");
            }
        }
        Ok(())
    }

    /// The bytes of `range` in order: one stream, or, from an object store,
    /// pieces fetched `parallelism` at a time (each whole in memory, as
    /// the chunks it arrived in, all within the block's room in
    /// `read_through_memory`).
    async fn block_stream(
        &self,
        ufs: Arc<dyn UnderFileSystem>,
        path: String,
        range: Range<u64>,
    ) -> Result<ByteStream> {
        let pieces = self.requests(&*ufs, range);
        self.metrics.ufs_requests.inc_by(pieces.len() as u64);
        if let [whole] = &pieces[..] {
            return Ok(ufs.read_stream(&path, whole.clone()).await?);
        }
        let stream = futures::stream::iter(pieces)
            .map(move |piece| {
                let (ufs, path) = (ufs.clone(), path.clone());
                async move {
                    let chunks: Vec<Bytes> =
                        ufs.read_stream(&path, piece).await?.try_collect().await?;
                    Ok::<_, alluxio_ufs::UfsError>(futures::stream::iter(chunks).map(Ok))
                }
            })
            .buffered(self.fetch.parallelism)
            .try_flatten();
        Ok(Box::pin(stream))
    }

    /// Reads a range straight from the UFS, without caching (NO_CACHE).
    pub async fn read_uncached<F: Future<Output = bool>>(
        &self,
        source: &BlockSource,
        offset: u64,
        len: u64,
        mut send: impl FnMut(Bytes) -> F,
    ) -> Result<()> {
        let (ufs, path) = self
            .ufs
            .resolve(source.ufs.mount_id, &source.ufs.ufs_path)
            .await?;
        let start = source.offset_in_file + offset;
        self.metrics.ufs_requests.inc();
        let mut stream = ufs.read_stream(&path, start..start + len).await?;
        while let Some(piece) = stream.next().await {
            let piece = piece?;
            self.metrics.bytes_read_ufs.inc_by(piece.len() as u64);
            if !send(piece).await {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::FetchPlan;

    #[test]
    fn object_store_blocks_are_split_into_pieces_in_order() {
        let plan = FetchPlan {
            piece: 8,
            parallelism: 4,
        };
        assert_eq!(
            plan.pieces(100..120, true),
            vec![100..108, 108..116, 116..120]
        );
        assert_eq!(plan.pieces(100..120, false), vec![100..120], "one stream");
        assert_eq!(
            plan.pieces(100..104, true),
            vec![100..104],
            "smaller than a piece"
        );
        let serial = FetchPlan {
            piece: 8,
            parallelism: 1,
        };
        assert_eq!(serial.pieces(0..64, true), vec![0..64]);
    }
}
