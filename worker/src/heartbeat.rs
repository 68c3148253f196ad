//! The worker's conversation with the master: a persistent identity,
//! registration with everything cached, and heartbeats that report changes
//! and carry back commands (free blocks, register again) and the pinned
//! files.

use crate::block_store::BlockStore;
use alluxio_client::MasterClient;
use alluxio_proto::grpc::{
    BlockIdList, CommandType, RegisterWorkerRequest, WorkerAddress, WorkerHeartbeatRequest,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// Block ids per registration message (8 bytes each: 2 MiB, far below the
/// master's message limit however many blocks a worker holds).
pub const REGISTER_PAGE_BLOCKS: usize = 256 * 1024;

/// `blocks` by tier, cut into registration pages of at most `page_size`
/// ids (at least one page, empty when there are no blocks).
pub fn register_pages(
    blocks: HashMap<String, Vec<u64>>,
    page_size: usize,
) -> Vec<HashMap<String, BlockIdList>> {
    let page_size = page_size.max(1);
    let mut pages = vec![HashMap::new()];
    let mut in_page = 0;
    for (tier, ids) in blocks {
        let mut rest = &ids[..];
        while !rest.is_empty() {
            if in_page == page_size {
                pages.push(HashMap::new());
                in_page = 0;
            }
            let take = (page_size - in_page).min(rest.len());
            let page: &mut HashMap<String, BlockIdList> = pages.last_mut().expect("one page");
            page.entry(tier.clone())
                .or_default()
                .block_ids
                .extend_from_slice(&rest[..take]);
            in_page += take;
            rest = &rest[take..];
        }
    }
    pages
}

/// This worker's id, created once and kept in `data_dir/worker-id`, so a
/// restarted worker keeps its place and its cache.
pub fn load_or_create_id(data_dir: &Path) -> std::io::Result<u64> {
    alluxio_common::io::create_dir_all_durable(data_dir)?;
    let path = data_dir.join("worker-id");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Ok(id) = text.trim().parse::<u64>() {
            if id != 0 {
                return Ok(id);
            }
        }
        tracing::warn!(file = %path.display(), "unreadable worker id; making a new one");
    }
    let id = loop {
        let candidate = rand::random::<u64>() >> 1;
        if candidate != 0 {
            break candidate;
        }
    };
    let tmp = data_dir.join("worker-id.tmp");
    std::fs::write(&tmp, format!("{id}\n"))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    alluxio_common::io::sync_parent(&path)?;
    Ok(id)
}

pub struct Heartbeat {
    pub master: MasterClient,
    pub persister: std::sync::Arc<crate::persist::Persister>,
    pub store: BlockStore,
    pub worker_id: u64,
    pub address: WorkerAddress,
    pub interval: Duration,
    /// Version of the pinned set this worker holds (0: none yet).
    pub pinned_version: AtomicU64,
}

impl Heartbeat {
    async fn register(&self) -> alluxio_common::Result<()> {
        let store = self.store.clone();
        let (blocks, tiers) = tokio::task::spawn_blocking(move || {
            // Changes so far are covered by the full report.
            let _ = store.take_changes();
            (store.blocks_by_tier(), store.tier_usage())
        })
        .await
        .map_err(|e| alluxio_common::AlluxioError::Internal(e.to_string()))?;
        // Page 0 registers afresh; the others add to it.
        let pages = register_pages(blocks, REGISTER_PAGE_BLOCKS);
        let count = pages.len();
        for (page, blocks_on_tiers) in pages.into_iter().enumerate() {
            self.master
                .register_worker(RegisterWorkerRequest {
                    worker_id: self.worker_id,
                    address: Some(self.address.clone()),
                    tiers: tiers.clone(),
                    blocks_on_tiers,
                    page: page as u32,
                })
                .await?;
        }
        tracing::info!(
            worker_id = self.worker_id,
            pages = count,
            "registered with the master"
        );
        Ok(())
    }

    async fn beat(&self) -> alluxio_common::Result<bool> {
        let (added, removed) = self.store.take_changes();
        let request = WorkerHeartbeatRequest {
            worker_id: self.worker_id,
            tiers: self.store.tier_usage(),
            added_blocks: added.clone(),
            removed_block_ids: removed.clone(),
            pinned_version: self.pinned_version.load(Ordering::Relaxed),
        };
        let response = match self.master.worker_heartbeat(request).await {
            Ok(r) => r,
            Err(e) => {
                self.store.restore_changes(added, removed);
                return Err(e);
            }
        };
        if let Some(pinned) = response.pinned {
            self.store
                .set_pinned_files(pinned.file_ids.into_iter().collect());
            self.pinned_version.store(pinned.version, Ordering::Relaxed);
        }
        self.persister.start(response.persist_files);
        let command = response.command.unwrap_or_default();
        match CommandType::try_from(command.command_type).unwrap_or(CommandType::Nothing) {
            CommandType::Nothing => Ok(true),
            CommandType::Register => Ok(false),
            CommandType::Free => {
                let store = self.store.clone();
                let ids = command.block_ids;
                tracing::debug!(blocks = ids.len(), "freeing blocks on the master's command");
                let _ = tokio::task::spawn_blocking(move || {
                    ids.iter().for_each(|id| store.remove(*id))
                })
                .await;
                Ok(true)
            }
        }
    }

    /// Registers, then heartbeats until shutdown; survives master restarts
    /// and outages by registering again.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut registered = false;
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = ticker.tick() => {}
            }
            if *shutdown.borrow() {
                return;
            }
            if !registered {
                match self.register().await {
                    Ok(()) => registered = true,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot register with the master; retrying");
                        continue;
                    }
                }
            }
            match self.beat().await {
                Ok(still_known) => registered = still_known,
                Err(e) => tracing::warn!(error = %e, "heartbeat failed; retrying"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_pages_hold_every_block_once_and_none_too_many() {
        let blocks = HashMap::from([
            ("MEM".to_string(), vec![1, 2, 3]),
            ("SSD".to_string(), vec![4, 5]),
        ]);
        let pages = register_pages(blocks, 2);
        let sizes: Vec<usize> = pages
            .iter()
            .map(|p| p.values().map(|l| l.block_ids.len()).sum())
            .collect();
        assert_eq!(sizes, [2, 2, 1]);
        let mut all: Vec<u64> = pages
            .iter()
            .flat_map(|p| p.values().flat_map(|l| l.block_ids.clone()))
            .collect();
        all.sort_unstable();
        assert_eq!(all, [1, 2, 3, 4, 5]);
        // No blocks: one empty page (the registration itself).
        assert_eq!(register_pages(HashMap::new(), 2).len(), 1);
    }
}
