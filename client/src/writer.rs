//! Writing files. Bytes are cut into blocks of the file's block size; with
//! a caching write type each block streams to a worker chosen by the
//! location policy, and with a persisting write type the same bytes stream
//! to the UFS. `close` completes the file; any failure removes the
//! incomplete file and aborts the UFS upload, so nothing half-written is
//! left visible. A worker with no room in any tier refuses a block when it
//! starts (ResourceExhausted); the block then goes to the next worker the
//! location policy chose, replayed from the bytes the writer kept of it.

use crate::core::ClientCore;
use crate::workers::WorkerRef;
use alluxio_common::{AlluxioError, Result};
use alluxio_proto::grpc::*;
use alluxio_ufs::UfsWriter;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bytes per gRPC message of a block upload.
const MESSAGE_BYTES: usize = 1 << 20;

/// Bytes of a block kept to replay it on another worker. A worker refuses
/// a block at its header (where it reserves the space), so a refusal
/// comes while the first messages are on their way.
const REPLAY_BYTES: u64 = 8 << 20;

struct BlockUpload {
    tx: mpsc::Sender<WriteBlockChunk>,
    done: JoinHandle<Result<WriteBlockResponse>>,
    /// Which block of the file.
    index: u64,
    written: u64,
    /// The block's bytes sent so far, while they are at most
    /// [`REPLAY_BYTES`].
    replay: Option<Vec<Bytes>>,
    /// Workers that refused this block for want of room, this one last.
    tried: Vec<WorkerRef>,
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
                self.cached += take as u64;
                if !upload.send(piece).await {
                    // The upload ended early; its result says why (and
                    // the worker may be gone from the list).
                    let ended = self.block.take().expect("present").end().await;
                    let error = ended.result.err().unwrap_or_else(|| {
                        AlluxioError::Unavailable("worker closed the block upload".to_string())
                    });
                    self.block = Some(self.elsewhere(ended.upload, error).await?);
                }
                if self.block.as_ref().is_some_and(|b| b.written == block_size) {
                    self.finish_block().await?;
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
        self.open_block_avoiding(index, Vec::new()).await
    }

    /// Starts block `index` on the first worker the location policy
    /// chooses that is not in `tried`.
    async fn open_block_avoiding(
        &mut self,
        index: u64,
        tried: Vec<WorkerRef>,
    ) -> Result<BlockUpload> {
        let block_id = alluxio_common::block_id::block_id(self.info.file_id, index);
        let workers = self.core.workers.choose(&self.core.live_workers().await);
        let Some(worker) = workers.into_iter().find(|w| !tried.contains(w)) else {
            self.core.live.invalidate();
            return Err(AlluxioError::Unavailable(format!(
                "no worker is available to cache {}",
                self.info.path
            )));
        };
        let mut client = self.core.workers.client(&worker)?;
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
        let mut tried = tried;
        tried.push(worker);
        Ok(BlockUpload {
            tx,
            done,
            index,
            written: 0,
            replay: Some(Vec::new()),
            tried,
        })
    }

    /// Ends the current block; a worker that had no room for it hands it
    /// on to another.
    async fn finish_block(&mut self) -> Result<()> {
        let Some(mut upload) = self.block.take() else {
            return Ok(());
        };
        loop {
            let ended = upload.end().await;
            match ended.result {
                Ok(_) => return Ok(()),
                Err(error) => upload = self.elsewhere(ended.upload, error).await?,
            }
        }
    }

    /// After `error` ended the upload of a block: if it was a lack of room
    /// and the block's bytes were kept, the block started again (and its
    /// bytes sent) on a worker that has not refused it; otherwise `error`.
    async fn elsewhere(
        &mut self,
        mut ended: EndedUpload,
        mut error: AlluxioError,
    ) -> Result<BlockUpload> {
        self.core.live.invalidate();
        'worker: loop {
            let (AlluxioError::ResourceExhausted(why), Some(replay)) = (&error, ended.replay)
            else {
                return Err(error);
            };
            tracing::info!(path = %self.info.path, worker = %ended.tried.last().map(|w| w.address()).unwrap_or_default(), reason = %why, "a worker has no room for a block; trying another");
            let mut upload = match self.open_block_avoiding(ended.index, ended.tried).await {
                Ok(upload) => upload,
                // No other worker: the refusal is the answer.
                Err(AlluxioError::Unavailable(_)) => return Err(error),
                Err(e) => return Err(e),
            };
            for piece in replay {
                if !upload.send(piece).await {
                    let next = upload.end().await;
                    error = next.result.err().unwrap_or_else(|| {
                        AlluxioError::Unavailable("worker closed the block upload".to_string())
                    });
                    ended = next.upload;
                    continue 'worker;
                }
            }
            return Ok(upload);
        }
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
        self.finish_block().await?;
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

/// What is left of a block upload once it has ended.
struct EndedUpload {
    index: u64,
    replay: Option<Vec<Bytes>>,
    tried: Vec<WorkerRef>,
}

struct Ended {
    result: Result<WriteBlockResponse>,
    upload: EndedUpload,
}

impl BlockUpload {
    /// Sends the next piece of the block; false if the upload has ended
    /// (its task says why).
    async fn send(&mut self, piece: Bytes) -> bool {
        self.written += piece.len() as u64;
        self.replay = self
            .replay
            .take()
            .filter(|_| self.written <= REPLAY_BYTES)
            .map(|mut kept| {
                kept.push(piece.clone());
                kept
            });
        self.tx
            .send(WriteBlockChunk {
                header: None,
                data: piece,
            })
            .await
            .is_ok()
    }

    /// Ends the stream and waits for the worker's answer.
    async fn end(self) -> Ended {
        let BlockUpload {
            tx,
            done,
            index,
            replay,
            tried,
            ..
        } = self;
        drop(tx);
        let result = match done.await {
            Ok(result) => result,
            Err(e) => Err(AlluxioError::Internal(format!(
                "block upload task failed: {e}"
            ))),
        };
        Ended {
            result,
            upload: EndedUpload {
                index,
                replay,
                tried,
            },
        }
    }
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
