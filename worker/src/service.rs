//! The `BlockWorker` gRPC service: block reads (from the cache, or through
//! from the UFS), block writes, short-circuit leases and loads.

use crate::block_store::{BlockStore, StoreError, CHUNK_SIZE};
use crate::metrics::WorkerMetrics;
use crate::read_through::{BlockSource, ReadThrough};
use alluxio_client::MasterClient;
use alluxio_common::auth::{caller, Authenticator, Identity, Role};
use alluxio_proto::grpc::block_worker_server::BlockWorker;
use alluxio_proto::grpc::*;
use bytes::Bytes;
use futures::StreamExt;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// Short-circuit leases older than this are closed: their client is gone.
const LEASE_TIMEOUT: Duration = Duration::from_secs(600);

pub struct WorkerService {
    pub store: BlockStore,
    pub read_through: Arc<ReadThrough>,
    pub metrics: Arc<WorkerMetrics>,
    pub master: MasterClient,
    pub worker_id: u64,
    pub cache_whole_block_on_partial_read: bool,
    pub leases: Mutex<HashMap<u64, (u64, Instant)>>,
    /// Checks the capabilities block requests carry.
    pub auth: Authenticator,
}

fn store_status(e: StoreError) -> Status {
    if e.is_no_room() {
        return Status::resource_exhausted(e.to_string());
    }
    match e {
        StoreError::NotCached(_) => Status::not_found(e.to_string()),
        StoreError::AlreadyCached(_) | StoreError::BeingWritten(_) => {
            Status::already_exists(e.to_string())
        }
        StoreError::TooLong { .. } => Status::invalid_argument(e.to_string()),
        StoreError::Incomplete { .. } => Status::internal(e.to_string()),
        StoreError::Corrupt { .. } => Status::data_loss(e.to_string()),
        StoreError::NoSpace { .. } | StoreError::Config(_) | StoreError::Io { .. } => {
            Status::internal(e.to_string())
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(e.to_string()))
}

type ChunkStream = Pin<Box<dyn futures::Stream<Item = Result<ReadBlockChunk, Status>> + Send>>;

impl WorkerService {
    /// Sends `[offset, offset+len)` of a block into `tx`, from the cache
    /// while it verifies, and from the UFS otherwise (also for the rest of a
    /// block found damaged half-way).
    async fn serve_read(
        self: Arc<Self>,
        r: ReadBlockRequest,
        tx: mpsc::Sender<Result<ReadBlockChunk, Status>>,
    ) {
        let chunk = (r.chunk_size as u64).max(CHUNK_SIZE);
        let end = r.offset + r.length;
        let mut pos = r.offset;
        let read_type = ReadType::try_from(r.read_type).unwrap_or(ReadType::Cache);

        if self.store.contains(r.block_id) {
            self.metrics.cache_hits.inc();
            while pos < end {
                let (store, id, n) = (self.store.clone(), r.block_id, chunk.min(end - pos));
                let p = pos;
                match blocking(move || store.read(id, p, n)).await {
                    Ok(Ok(data)) if data.is_empty() => break,
                    Ok(Ok(data)) => {
                        pos += data.len() as u64;
                        self.metrics.bytes_read_cache.inc_by(data.len() as u64);
                        if tx.send(Ok(ReadBlockChunk { data })).await.is_err() {
                            return;
                        }
                    }
                    Ok(Err(StoreError::Corrupt { block_id, reason })) if r.ufs.is_some() => {
                        tracing::warn!(
                            block_id,
                            reason,
                            "damaged cached block; reading it again from the UFS"
                        );
                        break;
                    }
                    Ok(Err(e)) => {
                        let _ = tx.send(Err(store_status(e))).await;
                        return;
                    }
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                }
            }
            if pos >= end || r.ufs.is_none() {
                if read_type == ReadType::CachePromote {
                    let (store, id) = (self.store.clone(), r.block_id);
                    tokio::task::spawn_blocking(move || store.promote(id));
                }
                return;
            }
        } else {
            self.metrics.cache_misses.inc();
        }

        let Some(ufs) = r.ufs.clone() else {
            let _ = tx
                .send(Err(Status::not_found(format!(
                    "block {} is not cached here and no UFS source was given",
                    r.block_id
                ))))
                .await;
            return;
        };
        let source = match self
            .vouched_source(r.block_id, r.block_length, r.block_offset_in_file, &ufs)
            .await
        {
            Ok(source) => source,
            Err(status) => {
                let _ = tx.send(Err(status)).await;
                return;
            }
        };
        let partial = r.offset > 0 || end < r.block_length;
        let cache =
            read_type != ReadType::NoCache && (!partial || self.cache_whole_block_on_partial_read);
        // Straight into the bounded answer stream: a slow reader slows
        // only its own forwarding (a shared fetch goes on, bounded by the
        // block), so no reader's bytes pile up here.
        let send = |data: Bytes| {
            let tx = tx.clone();
            async move { tx.send(Ok(ReadBlockChunk { data })).await.is_ok() }
        };
        let result = if cache {
            let rest = ReadBlockRequest {
                offset: pos,
                length: end - pos,
                ..r
            };
            match self.read_through.fetch(source) {
                // Cached meanwhile (by a read-ahead or another reader).
                None => return Box::pin(self.clone().serve_read(rest, tx)).await,
                // A load is writing the block into the cache: read it
                // there once it is in (or fetch it for this reader if the
                // load failed, say for want of room).
                Some(fetch) if !fetch.keeps_pieces() => {
                    let _ = fetch.wait().await;
                    return Box::pin(self.clone().serve_read(rest, tx)).await;
                }
                Some(fetch) => fetch.follow(pos, end - pos, send).await,
            }
        } else {
            self.read_through
                .read_uncached(&source, pos, end - pos, send)
                .await
        };
        if let Err(e) = result {
            let _ = tx.send(Err(e.into())).await;
        }
    }

    /// The UFS source of `block_id` as the master knows it; the
    /// request's claims (length, offset, mount and path) must agree, so a
    /// client can neither point the worker at another UFS path nor make it
    /// cache a different range under this block's id.
    async fn vouched_source(
        &self,
        block_id: u64,
        block_length: u64,
        offset_in_file: u64,
        claimed: &UfsBlockSource,
    ) -> Result<BlockSource, Status> {
        let layout = self
            .master
            .block_layout(block_id)
            .await
            .map_err(Status::from)?;
        let ufs = layout.ufs.ok_or_else(|| {
            Status::failed_precondition(format!(
                "block {block_id} is not in the UFS (its file is not persisted)"
            ))
        })?;
        let agrees = block_length == layout.block_length
            && offset_in_file == layout.offset_in_file
            && claimed.offset_in_file == ufs.offset_in_file
            && claimed.mount_id == ufs.mount_id
            && claimed.ufs_path == ufs.ufs_path;
        if !agrees {
            return Err(Status::invalid_argument(format!(
                "block {block_id} is {} bytes at offset {} of {} (mount {}), not what the request says",
                layout.block_length, layout.offset_in_file, ufs.ufs_path, ufs.mount_id
            )));
        }
        Ok(BlockSource {
            block_id,
            block_length: layout.block_length,
            offset_in_file: layout.offset_in_file,
            ufs,
        })
    }

    /// A block write must be of a file the master has being written, at
    /// the file's block size; a block of a completed file exists already.
    async fn check_write_layout(&self, header: &WriteBlockHeader) -> Result<(), Status> {
        let layout = self
            .master
            .block_layout(header.block_id)
            .await
            .map_err(Status::from)?;
        if layout.completed {
            return Err(Status::already_exists(format!(
                "block {} belongs to a completed file; blocks are written once",
                header.block_id
            )));
        }
        if header.max_length != layout.block_size
            || header.block_offset_in_file != layout.offset_in_file
        {
            return Err(Status::invalid_argument(format!(
                "block {} is at offset {} with the file's block size {}, not {} with {}",
                header.block_id,
                layout.offset_in_file,
                layout.block_size,
                header.block_offset_in_file,
                header.max_length
            )));
        }
        Ok(())
    }

    /// Whether the caller of a request for `block_id` may have its bytes:
    /// services may; everyone else needs the capability the master gave
    /// for the block's file (with authentication off, nobody does).
    /// The answer to CacheBlock for a block in the store.
    fn cached_block(&self, block_id: u64, fetched: bool) -> CacheBlockResponse {
        CacheBlockResponse {
            fetched,
            tier_alias: self.store.tier_of(block_id).unwrap_or_default(),
            length: self.store.length(block_id).unwrap_or_default(),
        }
    }

    fn check_capability(
        &self,
        who: &Identity,
        block_id: u64,
        capability: &str,
    ) -> Result<(), Status> {
        let Some(key) = self.auth.key() else {
            return Ok(());
        };
        if matches!(who.role, Role::Worker | Role::Admin) {
            return Ok(());
        }
        let file_id = alluxio_common::block_id::file_id_of_block(block_id);
        key.verify_capability(capability, file_id)
            .map_err(|e| Status::permission_denied(e.to_string()))
    }

    fn sweep_leases(&self) {
        let expired: Vec<(u64, u64)> = {
            let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
            let old: Vec<u64> = leases
                .iter()
                .filter(|(_, (_, at))| at.elapsed() > LEASE_TIMEOUT)
                .map(|(id, _)| *id)
                .collect();
            old.into_iter()
                .filter_map(|l| leases.remove(&l).map(|(b, _)| (l, b)))
                .collect()
        };
        for (lease, block) in expired {
            tracing::warn!(lease, block, "short-circuit lease expired; closing it");
            self.store.close_local(block);
        }
    }
}

/// Wrapper so the service can hand `Arc<Self>` to spawned tasks.
pub struct WorkerGrpc(pub Arc<WorkerService>);

#[tonic::async_trait]
impl BlockWorker for WorkerGrpc {
    type ReadBlockStream = ChunkStream;

    async fn read_block(
        &self,
        req: Request<ReadBlockRequest>,
    ) -> Result<Response<Self::ReadBlockStream>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        if r.length == 0 {
            return Err(Status::invalid_argument("length must be positive"));
        }
        let end = r.offset.checked_add(r.length).ok_or_else(|| {
            Status::invalid_argument(format!("range {}+{} overflows", r.offset, r.length))
        })?;
        if r.block_length > 0 && end > r.block_length {
            return Err(Status::invalid_argument(format!(
                "range {}+{} is outside block {} of {} bytes",
                r.offset, r.length, r.block_id, r.block_length
            )));
        }
        self.0.check_capability(&who, r.block_id, &r.capability)?;
        let (tx, rx) = mpsc::channel(4);
        let svc = self.0.clone();
        tokio::spawn(async move { svc.serve_read(r, tx).await });
        Ok(Response::new(
            Box::pin(ReceiverStream::new(rx)) as ChunkStream
        ))
    }

    async fn write_block(
        &self,
        req: Request<Streaming<WriteBlockChunk>>,
    ) -> Result<Response<WriteBlockResponse>, Status> {
        let who = caller(&req)?;
        let mut stream = req.into_inner();
        let first = stream
            .next()
            .await
            .ok_or_else(|| Status::invalid_argument("empty write stream"))??;
        let header = first
            .header
            .ok_or_else(|| Status::invalid_argument("the first message must carry a header"))?;
        self.0
            .check_capability(&who, header.block_id, &header.capability)?;
        if header.max_length == 0 {
            return Err(Status::invalid_argument("max_length must be positive"));
        }
        // Block `index` of a file starts at `index * block size`: a header
        // that places it elsewhere would write over another block's bytes
        // in the file's data file.
        let index = alluxio_common::block_id::index_of_block(header.block_id);
        if index.checked_mul(header.max_length) != Some(header.block_offset_in_file) {
            return Err(Status::invalid_argument(format!(
                "block {} is block {index} of its file, so it starts at {index} x {} bytes, not at {}",
                header.block_id, header.max_length, header.block_offset_in_file
            )));
        }
        // The master's word on the file: it must be being written, with
        // this block size; nothing else is a client's to choose.
        self.0.check_write_layout(&header).await?;
        let store = self.0.store.clone();
        let (id, off, max) = (
            header.block_id,
            header.block_offset_in_file,
            header.max_length,
        );
        let mut writer = blocking(move || store.create_block(id, off, max, 0))
            .await?
            .map_err(store_status)?;
        let mut pending = first.data;
        loop {
            if !pending.is_empty() {
                let data = std::mem::take(&mut pending);
                writer = blocking(move || writer.append(&data).map(|()| writer))
                    .await?
                    .map_err(store_status)?;
            }
            match stream.next().await {
                Some(Ok(msg)) => pending = msg.data,
                Some(Err(status)) => return Err(status),
                None => break,
            }
        }
        if writer.written() == 0 {
            // A stream that ends before any byte: nothing to keep (an empty
            // file has no blocks).
            drop(writer);
            return Err(Status::invalid_argument(format!(
                "block {id}: the write ended before any data"
            )));
        }
        let (length, tier_alias) = blocking(move || writer.commit())
            .await?
            .map_err(store_status)?;
        self.0.metrics.bytes_written.inc_by(length);
        let commit = self
            .0
            .master
            .commit_block(CommitBlockRequest {
                worker_id: self.0.worker_id,
                block_id: id,
                length,
                tier_alias: tier_alias.clone(),
            })
            .await;
        if let Err(e) = commit {
            // The master does not know the block: do not keep it.
            let store = self.0.store.clone();
            let _ = blocking(move || store.remove(id)).await;
            return Err(Status::from(e));
        }
        Ok(Response::new(WriteBlockResponse { length, tier_alias }))
    }

    async fn open_local_block(
        &self,
        req: Request<OpenLocalBlockRequest>,
    ) -> Result<Response<OpenLocalBlockResponse>, Status> {
        let (who, r) = (caller(&req)?, req.get_ref());
        self.0.check_capability(&who, r.block_id, &r.capability)?;
        let id = req.into_inner().block_id;
        self.0.sweep_leases();
        let store = self.0.store.clone();
        let local = blocking(move || store.open_local(id))
            .await?
            .map_err(store_status)?;
        self.0
            .leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(local.lease_id, (id, Instant::now()));
        self.0.metrics.cache_hits.inc();
        self.0.metrics.bytes_read_cache.inc_by(local.length);
        Ok(Response::new(OpenLocalBlockResponse {
            path: local.path.display().to_string(),
            offset: local.offset,
            length: local.length,
            chunk_size: CHUNK_SIZE as u32,
            chunk_crcs: local.chunk_crcs,
            lease_id: local.lease_id,
        }))
    }

    async fn close_local_block(
        &self,
        req: Request<CloseLocalBlockRequest>,
    ) -> Result<Response<CloseLocalBlockResponse>, Status> {
        let r = req.into_inner();
        let lease = self
            .0
            .leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&r.lease_id);
        match lease {
            Some((block, _)) if block == r.block_id => {
                self.0.store.close_local(block);
                Ok(Response::new(CloseLocalBlockResponse {}))
            }
            _ => Err(Status::not_found(format!(
                "no open lease {} for block {}",
                r.lease_id, r.block_id
            ))),
        }
    }

    async fn renew_local_blocks(
        &self,
        req: Request<RenewLocalBlocksRequest>,
    ) -> Result<Response<RenewLocalBlocksResponse>, Status> {
        let now = Instant::now();
        let mut leases = self.0.leases.lock().unwrap_or_else(|p| p.into_inner());
        let unknown_lease_ids = req
            .into_inner()
            .lease_ids
            .into_iter()
            .filter(|id| match leases.get_mut(id) {
                Some((_, at)) => {
                    *at = now;
                    false
                }
                None => true,
            })
            .collect();
        Ok(Response::new(RenewLocalBlocksResponse {
            unknown_lease_ids,
        }))
    }

    async fn cache_block(
        &self,
        req: Request<CacheBlockRequest>,
    ) -> Result<Response<CacheBlockResponse>, Status> {
        let (who, r) = (caller(&req)?, req.get_ref());
        self.0.check_capability(&who, r.block_id, &r.capability)?;
        let r = req.into_inner();
        if self.0.store.contains(r.block_id) {
            return Ok(Response::new(self.0.cached_block(r.block_id, false)));
        }
        let ufs = r
            .ufs
            .ok_or_else(|| Status::invalid_argument("missing UFS source"))?;
        let source = self
            .0
            .vouched_source(r.block_id, r.block_length, r.block_offset_in_file, &ufs)
            .await?;
        let fetched = match self.0.read_through.fetch_into_cache(source) {
            Some(fetch) => {
                fetch.wait().await.map_err(Status::from)?;
                true
            }
            // Cached meanwhile by another request.
            None => false,
        };
        if !self.0.store.contains(r.block_id) {
            return Err(Status::resource_exhausted(format!(
                "block {} was read but there is no room to cache it",
                r.block_id
            )));
        }
        Ok(Response::new(self.0.cached_block(r.block_id, fetched)))
    }

    async fn report_corrupt_block(
        &self,
        req: Request<ReportCorruptBlockRequest>,
    ) -> Result<Response<ReportCorruptBlockResponse>, Status> {
        let id = req.into_inner().block_id;
        tracing::warn!(
            block_id = id,
            "a short-circuit reader found this block damaged; dropping it"
        );
        let store = self.0.store.clone();
        blocking(move || store.remove(id)).await?;
        Ok(Response::new(ReportCorruptBlockResponse {}))
    }
}
