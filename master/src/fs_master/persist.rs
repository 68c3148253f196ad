//! Asynchronous persistence (ASYNC_THROUGH): handing persist jobs to workers
//! in heartbeat answers, and recording their completion.

use super::*;

impl FileSystemMaster {
    /// ASYNC_THROUGH files for `worker` to write to the UFS: those whose
    /// first block it holds (or that have no cached block at all), not
    /// already given to another worker recently.
    pub fn persist_jobs_for(&self, worker: u64) -> Vec<grpc::PersistFile> {
        let candidates: Vec<(u64, Vec<u64>)> = {
            let state = self.read_state();
            state
                .to_persist
                .iter()
                .filter_map(|id| state.tree.get(*id).map(|i| (*id, i.block_ids())))
                .collect()
        };
        let mut jobs = self.persist_jobs.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (file_id, blocks) in candidates {
            if out.len() >= PERSIST_JOBS_PER_HEARTBEAT {
                break;
            }
            if jobs
                .get(&file_id)
                .is_some_and(|(_, at)| at.elapsed() < PERSIST_RETRY_AFTER)
            {
                continue;
            }
            let here = blocks.first().is_none_or(|b| {
                let holders = self.blocks.locations(*b);
                holders.is_empty() || holders.iter().any(|l| l.worker_id == worker)
            });
            if !here {
                continue;
            }
            let path = {
                let state = self.read_state();
                state.tree.path_of(file_id)
            };
            if let Some(path) = path {
                jobs.insert(file_id, (worker, std::time::Instant::now()));
                out.push(grpc::PersistFile {
                    file_id,
                    path: path.to_string(),
                });
            }
        }
        out
    }

    /// A worker finished writing an ASYNC_THROUGH file to the UFS.
    pub async fn commit_persisted(&self, file_id: u64, ufs_mtime_ms: i64) -> Result<()> {
        self.persist_jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&file_id);
        self.commit(|txn| {
            let inode = txn.state.tree.get(file_id).ok_or_else(|| {
                AlluxioError::NotFound(format!("File {file_id} no longer exists"))
            })?;
            if inode.persistence != Persistence::ToBePersisted {
                return Err(AlluxioError::FailedPrecondition(format!(
                    "File {file_id} is not waiting to be persisted"
                )));
            }
            txn.apply(Entry::SetAttribute(j::SetAttributeEntry {
                id: file_id,
                persistence_state: Some(Persistence::Persisted as u32),
                ufs_mtime_ms: Some(ufs_mtime_ms),
                ..Default::default()
            }))
        })
        .await
    }
}
