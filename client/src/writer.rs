//! Writing files. Bytes are cut into blocks of the file's block size; with
//! a caching write type each block streams to a worker chosen by the
//! location policy, and with a persisting write type the same bytes stream
//! to the UFS. `close` completes the file; any failure removes the
//! incomplete file and aborts the UFS upload, so nothing half-written is
//! left visible.

use crate::core::ClientCore;
use alluxio_common::{AlluxioError, Result};
use alluxio_proto::grpc::*;
use alluxio_ufs::UfsWriter;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bytes per gRPC message of a block upload.
const MESSAGE_BYTES: usize = 1 << 20;

struct BlockUpload {
    tx: mpsc::Sender<WriteBlockChunk>,
    done: JoinHandle<Result<WriteBlockResponse>>,
    written: u64,
}

pub struct FileWriter {
    core: ClientCore,
    info: FileInfo,
    write_type: WriteType,
    block: Option<BlockUpload>,
    ufs: Option<Box<dyn UfsWriter>>,
    length: u64,
    /// Bytes handed to block uploads so far (decides the next block's index).
    cached: u64,
    failed: bool,
}

impl FileWriter {
    pub(crate) async fn start(
        core: ClientCore,
        info: FileInfo,
        write_type: WriteType,
    ) -> Result<FileWriter> {
        let ufs = if persists(write_type) {
            let (ufs, path) = core.ufs_for(&info).await?;
            Some(ufs.create(&path).await?)
        } else {
            None
        };
        Ok(FileWriter {
            core,
            info,
            write_type,
            block: None,
            ufs,
            length: 0,
            cached: 0,
            failed: false,
        })
    }

    pub fn path(&self) -> &str {
        &self.info.path
    }

    /// The file as the master created it (not yet completed).
    pub fn info(&self) -> &FileInfo {
        &self.info
    }

    pub async fn write(&mut self, data: Bytes) -> Result<()> {
        if self.failed {
            return Err(AlluxioError::FailedPrecondition(format!(
                "writing {} already failed",
                self.info.path
            )));
        }
        let result = self.write_inner(data).await;
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    async fn write_inner(&mut self, data: Bytes) -> Result<()> {
        if let Some(ufs) = self.ufs.as_mut() {
            ufs.write(data.clone()).await?;
        }
        if caches(self.write_type) {
            let block_size = self.info.block_size_bytes;
            let mut rest = data.clone();
            while !rest.is_empty() {
                if self.block.is_none() {
                    self.block = Some(self.open_block().await?);
                }
                let upload = self.block.as_mut().expect("opened above");
                let room = (block_size - upload.written) as usize;
                let take = rest.len().min(room).min(MESSAGE_BYTES);
                let piece = rest.split_to(take);
                upload.written += take as u64;
                self.cached += take as u64;
                if upload
                    .tx
                    .send(WriteBlockChunk {
                        header: None,
                        data: piece,
                    })
                    .await
                    .is_err()
                {
                    // The upload ended early; its result says why (and
                    // the worker may be gone from the list).
                    self.core.live.invalidate();
                    let upload = self.block.take().expect("present");
                    return Err(finish(upload).await.err().unwrap_or_else(|| {
                        AlluxioError::Unavailable("worker closed the block upload".to_string())
                    }));
                }
                if upload.written == block_size {
                    finish(self.block.take().expect("present")).await?;
                }
            }
        }
        self.length += data.len() as u64;
        Ok(())
    }

    // `&mut self`: a shared borrow held across an await would require
    // `FileWriter: Sync`, which the UFS writer is not.
    async fn open_block(&mut self) -> Result<BlockUpload> {
        let index = self.cached / self.info.block_size_bytes;
        let block_id = alluxio_common::block_id::block_id(self.info.file_id, index);
        let workers = self.core.workers.choose(&self.core.live_workers().await);
        let Some(worker) = workers.first() else {
            self.core.live.invalidate();
            return Err(AlluxioError::Unavailable(format!(
                "no worker is available to cache {}",
                self.info.path
            )));
        };
        let mut client = self.core.workers.client(worker)?;
        let (tx, rx) = mpsc::channel(4);
        tx.send(WriteBlockChunk {
            header: Some(WriteBlockHeader {
                block_id,
                block_offset_in_file: index * self.info.block_size_bytes,
                max_length: self.info.block_size_bytes,
                pinned: self.info.pinned,
                capability: self.info.capability.clone(),
            }),
            data: Bytes::new(),
        })
        .await
        .map_err(|_| AlluxioError::Internal("block upload channel closed".to_string()))?;
        let done = tokio::spawn(async move {
            let response = client
                .write_block(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await?;
            Ok(response.into_inner())
        });
        Ok(BlockUpload {
            tx,
            done,
            written: 0,
        })
    }

    /// Finishes the last block and the UFS upload, then completes the file.
    pub async fn close(mut self) -> Result<FileInfo> {
        let result = self.close_inner().await;
        if result.is_err() {
            self.abandon().await;
        }
        result
    }

    async fn close_inner(&mut self) -> Result<FileInfo> {
        if self.failed {
            return Err(AlluxioError::FailedPrecondition(format!(
                "writing {} failed",
                self.info.path
            )));
        }
        if let Some(upload) = self.block.take() {
            finish(upload).await?;
        }
        let mut ufs_mtime_ms = 0;
        if let Some(ufs) = self.ufs.take() {
            ufs_mtime_ms = ufs.complete().await?.mtime_ms;
        }
        self.core
            .master
            .complete_file(CompleteFileRequest {
                path: self.info.path.clone(),
                length: self.length,
                persisted: persists(self.write_type),
                ufs_mtime_ms,
            })
            .await
    }

    /// Gives up: aborts the UFS upload and removes the incomplete file.
    pub async fn abandon(&mut self) {
        if let Some(upload) = self.block.take() {
            upload.done.abort();
        }
        if let Some(ufs) = self.ufs.take() {
            let _ = ufs.abort().await;
        }
        let _ = self.core.master.delete(&self.info.path, false, true).await;
    }
}

async fn finish(upload: BlockUpload) -> Result<WriteBlockResponse> {
    drop(upload.tx);
    upload
        .done
        .await
        .map_err(|e| AlluxioError::Internal(format!("block upload task failed: {e}")))?
}

pub fn caches(w: WriteType) -> bool {
    matches!(
        w,
        WriteType::MustCache | WriteType::CacheThrough | WriteType::AsyncThrough
    )
}

pub fn persists(w: WriteType) -> bool {
    matches!(w, WriteType::CacheThrough | WriteType::Through)
}
