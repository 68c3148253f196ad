//! Reading files: block by block, from the best source that works.
//!
//! For each block, in order: the workers that hold it (local first; a
//! worker on this host is read straight from its block file, verifying the
//! chunk checksums, when short-circuit is on; others over their raw TCP
//! data port, with gRPC as the fallback), then a worker chosen by the
//! location policy, which reads the block through from the UFS (caching it
//! unless the read type is NO_CACHE), and finally the UFS itself. A source
//! that fails half-way is left for the next one, which continues from the
//! first byte not yet delivered, so a worker dying mid-read does not fail
//! the reader.

use crate::block::{cache_block_request, check_chunk, ufs_block_source, Stop};
use crate::core::ClientCore;
use crate::master_client::deadline;
use crate::workers::WorkerRef;
use alluxio_common::auth::AuthChannel;
use alluxio_common::data_protocol::ReadRequest;
use alluxio_common::{AlluxioError, Result};
use alluxio_proto::grpc::block_worker_client::BlockWorkerClient;
use alluxio_proto::grpc::*;
use bytes::Bytes;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Blocks a sequential reader has workers fetch from the UFS ahead of the
/// one it reads, so that the UFS always has a request in flight (measured:
/// one block ahead leaves the UFS idle at block boundaries).
pub const BLOCKS_AHEAD: usize = 2;

pub struct FileReader {
    core: ClientCore,
    info: FileInfo,
    read_type: ReadType,
    /// The worker each block was handed to for read-ahead: each block is
    /// prefetched once, and read from that worker, which shares its fetch.
    prefetched: Mutex<HashMap<u64, WorkerRef>>,
    /// The signed URL of the file's UFS object and when it expires (ms),
    /// for direct UFS reads of a mount whose credentials this client does
    /// not see.
    signed_url: Mutex<Option<(String, i64)>>,
}

/// A signed URL is asked for again this long before it expires.
const SIGNED_URL_MARGIN_MS: i64 = 60_000;

impl FileReader {
    pub(crate) fn new(core: ClientCore, info: FileInfo, read_type: ReadType) -> Self {
        FileReader {
            core,
            info,
            read_type,
            prefetched: Mutex::new(HashMap::new()),
            signed_url: Mutex::new(None),
        }
    }

    pub fn info(&self) -> &FileInfo {
        &self.info
    }

    /// How this reader caches what it reads from the UFS.
    pub fn read_type(&self) -> ReadType {
        self.read_type
    }

    pub fn len(&self) -> u64 {
        self.info.length
    }

    pub fn is_empty(&self) -> bool {
        self.info.length == 0
    }

    /// Bytes `[offset, offset+len)` (shorter at the end of the file).
    pub async fn read_at(&self, offset: u64, len: u64) -> Result<Bytes> {
        let mut out = Vec::with_capacity(len.min(self.len().saturating_sub(offset)) as usize);
        self.read_range(offset, len, |b| {
            out.extend_from_slice(&b);
            Ok(())
        })
        .await?;
        Ok(Bytes::from(out))
    }

    /// Streams bytes `[offset, offset+len)` to `sink`, in order.
    pub async fn read_range(
        &self,
        offset: u64,
        len: u64,
        mut sink: impl FnMut(Bytes) -> Result<()>,
    ) -> Result<()> {
        let end = (offset + len).min(self.info.length);
        let mut pos = offset;
        let blocks = &self.info.file_block_infos;
        for (i, fbi) in blocks.iter().enumerate() {
            let block = fbi.block_info.clone().unwrap_or_default();
            let (b_start, b_end) = (fbi.offset, fbi.offset + block.length);
            if b_end <= pos || b_start >= end {
                continue;
            }
            for next in blocks.iter().skip(i + 1).take(BLOCKS_AHEAD) {
                if next.offset < end {
                    self.prefetch(next).await;
                }
            }
            let from = pos - b_start;
            let n = end.min(b_end) - pos;
            self.read_block(fbi, &block, from, n, &mut sink).await?;
            pos += n;
        }
        Ok(())
    }

    /// Starts fetching the `count` blocks after the one holding `offset`
    /// into workers' caches (see `prefetch`), for readers that come in
    /// pieces smaller than a block and will want them soon.
    pub async fn prefetch_blocks_after(&self, offset: u64, count: usize) {
        let Some(i) = self.block_index(offset) else {
            return;
        };
        for next in self.info.file_block_infos.iter().skip(i + 1).take(count) {
            self.prefetch(next).await;
        }
    }

    /// Index of the block holding byte `offset`.
    pub fn block_index(&self, offset: u64) -> Option<usize> {
        self.info.file_block_infos.iter().position(|fbi| {
            let len = fbi.block_info.as_ref().map_or(0, |b| b.length);
            fbi.offset <= offset && offset < fbi.offset + len
        })
    }

    /// Read-ahead: while one block is read, a worker starts fetching the
    /// next uncached one from the UFS, so the two GETs overlap. The worker
    /// shares that fetch with the read that follows.
    async fn prefetch(&self, next: &FileBlockInfo) {
        let block = next.block_info.clone().unwrap_or_default();
        if !block.locations.is_empty() || !self.persisted() || self.read_type == ReadType::NoCache {
            return;
        }
        if self.prefetched_to(block.block_id).is_some() {
            return;
        }
        let Some(worker) = self
            .core
            .workers
            .choose(&self.core.live_workers().await)
            .into_iter()
            .next()
        else {
            return;
        };
        let Ok(mut client) = self.core.workers.client(&worker) else {
            return;
        };
        self.prefetched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(block.block_id, worker);
        let request = cache_block_request(&self.info, next);
        tokio::spawn(async move {
            let _ = client.cache_block(deadline(request)).await;
        });
    }

    fn prefetched_to(&self, block_id: u64) -> Option<WorkerRef> {
        self.prefetched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&block_id)
            .cloned()
    }

    fn persisted(&self) -> bool {
        self.info.persistence_state == PersistenceState::Persisted as i32
    }

    async fn read_block(
        &self,
        fbi: &FileBlockInfo,
        block: &BlockInfo,
        from: u64,
        len: u64,
        sink: &mut impl FnMut(Bytes) -> Result<()>,
    ) -> Result<()> {
        let pool = &self.core.workers;
        let holders = pool.order_locations(&block.locations);
        let mut candidates: Vec<(WorkerRef, bool)> =
            holders.iter().map(|w| (w.clone(), true)).collect();
        if self.persisted() {
            let fetching = self.prefetched_to(block.block_id);
            for w in fetching
                .into_iter()
                .chain(pool.choose(&self.core.live_workers().await))
            {
                if !candidates.iter().any(|(c, _)| *c == w) {
                    candidates.push((w, false));
                }
            }
        }
        // Bytes of this range already handed to `sink`: the next source
        // continues from there.
        let delivered = AtomicU64::new(0);
        let mut last_error = None;
        for (worker, holds) in candidates {
            let mut counting = |b: Bytes| {
                delivered.fetch_add(b.len() as u64, Ordering::Relaxed);
                sink(b)
            };
            let remaining = (
                from + delivered.load(Ordering::Relaxed),
                len - delivered.load(Ordering::Relaxed),
            );
            let direct = if holds {
                self.direct_read(
                    &worker,
                    block.block_id,
                    remaining.0,
                    remaining.1,
                    &mut counting,
                )
                .await
            } else {
                None
            };
            let result = match direct {
                Some(Err(Stop::Source(e))) => {
                    tracing::debug!(block_id = block.block_id, error = %e, "direct read failed; using gRPC");
                    let remaining = (
                        from + delivered.load(Ordering::Relaxed),
                        len - delivered.load(Ordering::Relaxed),
                    );
                    self.grpc_read(&worker, fbi, block, remaining.0, remaining.1, &mut counting)
                        .await
                }
                Some(other) => other,
                None => {
                    self.grpc_read(&worker, fbi, block, remaining.0, remaining.1, &mut counting)
                        .await
                }
            };
            match result {
                Ok(()) => return Ok(()),
                Err(Stop::Sink(e)) => return Err(e),
                Err(Stop::Source(e)) => {
                    tracing::debug!(block_id = block.block_id, worker = %worker.address(), error = %e, "worker read failed; trying the next source");
                    // The list may name a worker that is gone.
                    self.core.live.invalidate();
                    last_error = Some(e);
                }
            }
        }
        if self.persisted() {
            let start = fbi.offset + from + delivered.load(Ordering::Relaxed);
            let left = len - delivered.load(Ordering::Relaxed);
            let mut counting = |b: Bytes| {
                delivered.fetch_add(b.len() as u64, Ordering::Relaxed);
                sink(b)
            };
            return match self.ufs_read(start, left, &mut counting).await {
                Ok(()) => Ok(()),
                Err(Stop::Sink(e)) | Err(Stop::Source(e)) => Err(e),
            };
        }
        Err(last_error.unwrap_or_else(|| {
            AlluxioError::Unavailable(format!(
                "block {} of {} is on no live worker and the file is not persisted",
                block.block_id, self.info.path
            ))
        }))
    }

    /// Reads from a worker that holds the block without gRPC when it can:
    /// from its block file when it is on this host (short-circuit), else
    /// over its data port. `None` when neither is possible or switched off.
    async fn direct_read(
        &self,
        worker: &WorkerRef,
        block_id: u64,
        offset: u64,
        len: u64,
        sink: &mut impl FnMut(Bytes) -> Result<()>,
    ) -> Option<Result<(), Stop>> {
        if self.core.settings.short_circuit && self.core.workers.is_local(worker) {
            return Some(
                self.short_circuit(worker, block_id, offset, len, sink)
                    .await,
            );
        }
        let address = worker
            .data_address()
            .filter(|_| self.core.settings.data_port_reads)?;
        let request = ReadRequest {
            block_id,
            offset,
            length: len,
        };
        let capability = &self.info.capability;
        Some(
            self.core
                .workers
                .data
                .read(&address, request, capability, sink)
                .await,
        )
    }

    async fn grpc_read(
        &self,
        worker: &WorkerRef,
        fbi: &FileBlockInfo,
        block: &BlockInfo,
        offset: u64,
        len: u64,
        sink: &mut impl FnMut(Bytes) -> Result<()>,
    ) -> Result<(), Stop> {
        let mut client = self.core.workers.client(worker).map_err(Stop::Source)?;
        let ufs = self.persisted().then(|| ufs_block_source(&self.info, fbi));
        let request = ReadBlockRequest {
            block_id: block.block_id,
            offset,
            length: len,
            block_length: block.length,
            block_offset_in_file: fbi.offset,
            ufs,
            read_type: self.read_type as i32,
            chunk_size: 1 << 20,
            capability: self.info.capability.clone(),
        };
        let mut stream = client
            .read_block(request)
            .await
            .map_err(|s| Stop::Source(s.into()))?
            .into_inner();
        let mut got = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|s| Stop::Source(s.into()))?;
            got += chunk.data.len() as u64;
            sink(chunk.data).map_err(Stop::Sink)?;
        }
        if got != len {
            return Err(Stop::Source(AlluxioError::Unavailable(format!(
                "worker {} sent {got} of {len} bytes of block {}",
                worker.address(),
                block.block_id
            ))));
        }
        Ok(())
    }

    async fn short_circuit(
        &self,
        worker: &WorkerRef,
        block_id: u64,
        offset: u64,
        len: u64,
        sink: &mut impl FnMut(Bytes) -> Result<()>,
    ) -> Result<(), Stop> {
        let mut client = self.core.workers.client(worker).map_err(Stop::Source)?;
        let open = client
            .open_local_block(deadline(OpenLocalBlockRequest {
                block_id,
                capability: self.info.capability.clone(),
            }))
            .await
            .map_err(|s| Stop::Source(s.into()))?
            .into_inner();
        let lease = Arc::new(BlockLease {
            client: Some(client.clone()),
            block_id,
            lease_id: open.lease_id,
            runtime: tokio::runtime::Handle::current(),
        });
        let result = read_local(block_id, open, offset, len, &lease, sink).await;
        // When the sink kept none of the bytes, give the lease back now;
        // otherwise it goes when the last of them is dropped.
        if let Some(lease) = Arc::into_inner(lease) {
            lease.close().await;
        }
        if let Err(Stop::Source(AlluxioError::Internal(reason))) = &result {
            if reason.starts_with("damaged") {
                let _ = client
                    .report_corrupt_block(deadline(ReportCorruptBlockRequest { block_id }))
                    .await;
            }
        }
        result
    }

    async fn ufs_read(
        &self,
        start: u64,
        len: u64,
        sink: &mut impl FnMut(Bytes) -> Result<()>,
    ) -> Result<(), Stop> {
        let (ufs, path) = self.core.ufs_for(&self.info).await.map_err(Stop::Source)?;
        let result = async {
            let mut stream = match self.signed_read(start, len).await.map_err(Stop::Source)? {
                Some(stream) => stream,
                None => ufs
                    .read_stream(&path, start..start + len)
                    .await
                    .map_err(|e| Stop::Source(e.into()))?,
            };
            while let Some(piece) = stream.next().await {
                let piece = piece.map_err(|e| Stop::Source(e.into()))?;
                sink(piece).map_err(Stop::Sink)?;
            }
            Ok(())
        }
        .await;
        if let Err(Stop::Source(_)) = &result {
            // The mount may have changed (new credentials): build its UFS
            // client (and ask for a signed URL) again next time.
            self.core.mounts.invalidate(self.info.mount_id);
            *self.signed_url.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        result
    }
}

impl FileReader {
    /// Bytes `start..start + len` of the file's UFS object through a URL
    /// the master signed, when this client got the file's mount without
    /// its credentials; `None` to read the UFS as configured (a mount with
    /// no secrets, or a store that cannot sign URLs).
    async fn signed_read(&self, start: u64, len: u64) -> Result<Option<alluxio_ufs::ByteStream>> {
        if !self
            .core
            .mounts
            .secrets_withheld(self.info.mount_id)
            .await?
        {
            return Ok(None);
        }
        let now = alluxio_common::now_ms();
        let cached = self
            .signed_url
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .filter(|(_, expires)| *expires - SIGNED_URL_MARGIN_MS > now);
        let url = match cached {
            Some((url, _)) => url,
            None => match self.core.master.ufs_read_url(&self.info.path).await {
                Ok(signed) => {
                    *self.signed_url.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some((signed.url.clone(), signed.expires_at_ms));
                    signed.url
                }
                Err(AlluxioError::FailedPrecondition(_)) => return Ok(None),
                Err(e) => return Err(e),
            },
        };
        let stream = alluxio_ufs::signed_url::read_stream(&url, start..start + len).await?;
        Ok(Some(stream))
    }
}

/// A short-circuit lease on a block: the worker does not evict the block
/// while it is held. Bytes read from the block file are mappings of it, so
/// they hold the lease too, and a block cannot change under a reader that
/// keeps them (a read-ahead cache, say).
struct BlockLease {
    client: Option<BlockWorkerClient<AuthChannel>>,
    block_id: u64,
    lease_id: u64,
    /// Where to send the close from when the last bytes are dropped on a
    /// thread outside the runtime (a FUSE thread, say).
    runtime: tokio::runtime::Handle,
}

impl BlockLease {
    fn request(&self) -> CloseLocalBlockRequest {
        CloseLocalBlockRequest {
            block_id: self.block_id,
            lease_id: self.lease_id,
        }
    }

    async fn close(mut self) {
        if let Some(mut client) = self.client.take() {
            let _ = client.close_local_block(deadline(self.request())).await;
        }
    }
}

impl Drop for BlockLease {
    fn drop(&mut self) {
        // Closed from a task; if the runtime is gone, the worker's lease
        // timeout ends it instead.
        if let Some(mut client) = self.client.take() {
            let request = self.request();
            self.runtime.spawn(async move {
                let _ = client.close_local_block(deadline(request)).await;
            });
        }
    }
}

/// Reads a range of a local block file, verifying every chunk it touches.
async fn read_local(
    block_id: u64,
    open: OpenLocalBlockResponse,
    offset: u64,
    len: u64,
    lease: &Arc<BlockLease>,
    sink: &mut impl FnMut(Bytes) -> Result<()>,
) -> Result<(), Stop> {
    let cs = (open.chunk_size as u64).max(1);
    let end = (offset + len).min(open.length);
    let file = Arc::new(std::fs::File::open(&open.path).map_err(|e| Stop::Source(e.into()))?);
    let open = Arc::new(open);
    // Windows of up to 16 MiB of whole chunks, mapped and verified on a
    // blocking thread while the window before is handed on.
    let window = |pos: u64| {
        let first = pos / cs;
        let last = ((pos + (16 << 20)).min(end) - 1) / cs;
        (first * cs, ((last + 1) * cs).min(open.length))
    };
    let map_and_verify = |start: u64, stop: u64| {
        let (file, open, lease) = (file.clone(), open.clone(), lease.clone());
        tokio::task::spawn_blocking(move || -> Result<Bytes> {
            let bytes = alluxio_common::mapped::read_range(
                &file,
                open.offset + start,
                (stop - start) as usize,
                lease,
            )
            .map_err(|e| AlluxioError::Internal(format!("damaged block file: {e}")))?;
            let first = (start / cs) as usize;
            for (i, chunk) in bytes.chunks(cs as usize).enumerate() {
                check_chunk(block_id, &open.chunk_crcs, first + i, chunk)?;
            }
            Ok(bytes)
        })
    };
    let mut pos = offset;
    let mut next = (pos < end).then(|| {
        let (start, stop) = window(pos);
        (start, stop, map_and_verify(start, stop))
    });
    while let Some((start, stop, pending)) = next.take() {
        let bytes = pending
            .await
            .map_err(|e| Stop::Source(AlluxioError::Internal(e.to_string())))?
            .map_err(Stop::Source)?;
        if stop < end {
            let (start, stop) = window(stop);
            next = Some((start, stop, map_and_verify(start, stop)));
        }
        let from = (pos - start) as usize;
        let to = (end.min(stop) - start) as usize;
        sink(bytes.slice(from..to)).map_err(Stop::Sink)?;
        pos = start + to as u64;
    }
    Ok(())
}
