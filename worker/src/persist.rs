//! Asynchronous persistence (ASYNC_THROUGH): the master hands a worker
//! files to write to the UFS in its heartbeat answers; the worker reads
//! each file through the normal client path (mostly from its own cache),
//! streams it to the UFS, and reports it persisted.

use alluxio_client::MountResolver;
use alluxio_client::{FileSystem, MasterClient};
use alluxio_common::{AlluxioError, Result};
use alluxio_proto::grpc::{PersistFile, ReadType};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

const PIECE: u64 = 8 << 20;

pub struct Persister {
    pub fs: FileSystem,
    pub ufs: Arc<MountResolver>,
    pub master: MasterClient,
    running: Mutex<HashSet<u64>>,
}

impl Persister {
    pub fn new(fs: FileSystem, ufs: Arc<MountResolver>, master: MasterClient) -> Self {
        Persister {
            fs,
            ufs,
            master,
            running: Mutex::new(HashSet::new()),
        }
    }

    /// Starts a task per job not already running.
    pub fn start(self: &Arc<Self>, jobs: Vec<PersistFile>) {
        for job in jobs {
            if !self
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(job.file_id)
            {
                continue;
            }
            let this = self.clone();
            tokio::spawn(async move {
                match this.persist(&job).await {
                    Ok(()) => tracing::info!(path = %job.path, "persisted to the UFS"),
                    // The master hands the job out again later.
                    Err(e) => {
                        tracing::warn!(path = %job.path, error = %e, "asynchronous persist failed")
                    }
                }
                this.running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&job.file_id);
            });
        }
    }

    async fn persist(&self, job: &PersistFile) -> Result<()> {
        let reader = self.fs.open(&job.path, Some(ReadType::NoCache)).await?;
        if reader.info().file_id != job.file_id {
            return Err(AlluxioError::NotFound(format!("{} was replaced", job.path)));
        }
        let info = reader.info().clone();
        let (ufs, path) = self.ufs.resolve(info.mount_id, &info.ufs_path).await?;
        let mut writer = ufs.create(&path).await?;
        let mut offset = 0;
        while offset < reader.len() {
            let piece = match reader.read_at(offset, PIECE).await {
                Ok(p) if !p.is_empty() => p,
                Ok(_) => break,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e);
                }
            };
            offset += piece.len() as u64;
            if let Err(e) = writer.write(piece).await {
                let _ = writer.abort().await;
                return Err(e.into());
            }
        }
        let status = writer.complete().await?;
        self.master
            .commit_persisted(job.file_id, status.mtime_ms)
            .await
    }
}
