//! A whole file read from the local worker's cache as one local file.
//!
//! A worker keeps a file's cached blocks in one sparse data file at their
//! offsets in the file, so when every block of a file is cached by the
//! worker on this host, that data file is a byte-for-byte copy of the file.
//! FUSE passthrough hands it to the kernel. [`LocalFile`] holds a
//! short-circuit lease on every block, so none of them is evicted (which
//! would punch a hole in the copy) while the file is open, and renews the
//! leases while it stays open.

use crate::block::check_chunk;
use crate::core::ClientCore;
use crate::master_client::deadline;
use crate::workers::WorkerRef;
use alluxio_common::auth::AuthChannel;
use alluxio_common::{AlluxioError, Result};
use alluxio_proto::grpc::block_worker_client::BlockWorkerClient;
use alluxio_proto::grpc::*;
use std::path::PathBuf;
use tokio::sync::Mutex;

pub struct LocalFile {
    /// The worker's data file holding every block of the file.
    pub path: PathBuf,
    pub length: u64,
    /// Each block's id and how the worker described it (offset, length,
    /// checksums).
    pub blocks: Vec<(u64, OpenLocalBlockResponse)>,
    worker: WorkerRef,
    client: BlockWorkerClient<AuthChannel>,
    /// (block id, lease id) per block; leases change when renewed after a
    /// worker restart.
    leases: Mutex<Vec<(u64, u64)>>,
    /// The file's capability, for reopening blocks.
    capability: String,
}

impl LocalFile {
    /// The local copy of a completed file, when one worker on this host
    /// caches all of its blocks in one data file; `None` otherwise (some
    /// block elsewhere or nowhere, an empty file, no local worker).
    pub(crate) async fn open(core: &ClientCore, info: &FileInfo) -> Result<Option<LocalFile>> {
        if !info.completed || info.length == 0 || info.file_block_infos.is_empty() {
            return Ok(None);
        }
        let first = info.file_block_infos[0]
            .block_info
            .clone()
            .unwrap_or_default();
        let Some(worker) = first
            .locations
            .iter()
            .map(WorkerRef::from)
            .find(|w| core.workers.is_local(w))
        else {
            return Ok(None);
        };
        let mut client = core.workers.client(&worker)?;
        let mut file = LocalFile {
            path: PathBuf::new(),
            length: info.length,
            blocks: Vec::with_capacity(info.file_block_infos.len()),
            worker: worker.clone(),
            client: client.clone(),
            leases: Mutex::new(Vec::new()),
            capability: info.capability.clone(),
        };
        for fbi in &info.file_block_infos {
            let block = fbi.block_info.clone().unwrap_or_default();
            if !block
                .locations
                .iter()
                .any(|l| l.worker_id == worker.worker_id)
            {
                file.close().await;
                return Ok(None);
            }
            let open = match client
                .open_local_block(deadline(OpenLocalBlockRequest {
                    block_id: block.block_id,
                    capability: info.capability.clone(),
                }))
                .await
            {
                Ok(r) => r.into_inner(),
                Err(_) => {
                    // Evicted since the master's answer, or the worker is gone.
                    file.close().await;
                    return Ok(None);
                }
            };
            file.leases.get_mut().push((block.block_id, open.lease_id));
            let same_file = file.blocks.is_empty() || file.path.as_os_str() == open.path.as_str();
            if !same_file || open.offset != fbi.offset || open.length != block.length {
                file.close().await;
                return Ok(None);
            }
            file.path = PathBuf::from(&open.path);
            file.blocks.push((block.block_id, open));
        }
        Ok(Some(file))
    }

    pub fn worker_address(&self) -> String {
        self.worker.address()
    }

    /// Checks every chunk of every block against its CRC32, skipping the
    /// blocks `skip` says were checked before. Returns the blocks checked.
    /// Blocking file I/O: call it from a blocking thread.
    pub fn verify(&self, skip: impl Fn(u64) -> bool) -> Result<Vec<u64>> {
        let file = std::fs::File::open(&self.path)
            .map_err(|e| AlluxioError::Internal(format!("{}: {e}", self.path.display())))?;
        let mut checked = Vec::new();
        for (block_id, block) in &self.blocks {
            if skip(*block_id) {
                continue;
            }
            let bytes =
                alluxio_common::mapped::read_range(&file, block.offset, block.length as usize, ())
                    .map_err(|e| {
                        AlluxioError::Internal(format!("damaged block {block_id}: {e}"))
                    })?;
            let cs = block.chunk_size.max(1) as usize;
            for (index, chunk) in bytes.chunks(cs).enumerate() {
                check_chunk(*block_id, &block.chunk_crcs, index, chunk)?;
            }
            checked.push(*block_id);
        }
        Ok(checked)
    }

    /// Keeps the leases alive. Leases the worker no longer knows (it
    /// restarted) are taken again; an error means a block is gone.
    pub async fn renew(&self) -> Result<()> {
        let mut leases = self.leases.lock().await;
        let ids = leases.iter().map(|(_, l)| *l).collect();
        let unknown = self
            .client
            .clone()
            .renew_local_blocks(deadline(RenewLocalBlocksRequest { lease_ids: ids }))
            .await?
            .into_inner()
            .unknown_lease_ids;
        for (block_id, lease_id) in leases.iter_mut() {
            if unknown.contains(lease_id) {
                let open = self
                    .client
                    .clone()
                    .open_local_block(deadline(OpenLocalBlockRequest {
                        block_id: *block_id,
                        capability: self.capability.clone(),
                    }))
                    .await?
                    .into_inner();
                *lease_id = open.lease_id;
            }
        }
        Ok(())
    }

    /// Gives the leases back (best effort: a worker that is gone has
    /// dropped them anyway).
    pub async fn close(&self) {
        let leases = std::mem::take(&mut *self.leases.lock().await);
        for (block_id, lease_id) in leases {
            let _ = self
                .client
                .clone()
                .close_local_block(deadline(CloseLocalBlockRequest { block_id, lease_id }))
                .await;
        }
    }
}
