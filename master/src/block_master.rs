//! The block master: registered workers, their capacity, and which worker
//! holds which block.
//!
//! This is soft state, as in Alluxio: it is not journaled, because workers
//! report it again when they register (a restarted master answers every
//! heartbeat from an unknown worker with a REGISTER command).

use alluxio_proto::grpc::{
    BlockLocation, CommandType, TierUsage, WorkerAddress, WorkerCommand, WorkerInfo,
};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerState {
    Live,
    Lost,
}

struct Worker {
    id: u64,
    address: WorkerAddress,
    tiers: Vec<TierUsage>,
    state: WorkerState,
    last_heartbeat: Instant,
    last_heartbeat_ms: i64,
    start_time_ms: i64,
    /// Block id -> tier alias.
    blocks: HashMap<u64, String>,
    /// Blocks to tell the worker to remove at its next heartbeat.
    to_free: HashSet<u64>,
}

#[derive(Default)]
struct Inner {
    workers: HashMap<u64, Worker>,
    /// Block id -> workers holding it.
    locations: HashMap<u64, Vec<u64>>,
    /// Block id -> length reported by the worker that committed it.
    lengths: HashMap<u64, u64>,
}

#[derive(Default)]
pub struct BlockMaster {
    inner: Mutex<Inner>,
}

impl Inner {
    fn add_location(&mut self, worker: u64, block: u64, tier: &str, length: Option<u64>) {
        if let Some(w) = self.workers.get_mut(&worker) {
            w.blocks.insert(block, tier.to_string());
            let holders = self.locations.entry(block).or_default();
            if !holders.contains(&worker) {
                holders.push(worker);
            }
            if let Some(len) = length {
                self.lengths.insert(block, len);
            }
        }
    }

    fn remove_location(&mut self, worker: u64, block: u64) {
        if let Some(w) = self.workers.get_mut(&worker) {
            w.blocks.remove(&block);
            w.to_free.remove(&block);
        }
        if let Some(holders) = self.locations.get_mut(&block) {
            holders.retain(|w| *w != worker);
            if holders.is_empty() {
                self.locations.remove(&block);
                self.lengths.remove(&block);
            }
        }
    }

    /// Records the blocks a worker reports holding: valid ones as its
    /// locations, stale ones queued for it to free.
    fn record_reported(&mut self, worker: u64, blocks: Vec<(u64, String, bool)>) {
        for (block, tier, valid) in blocks {
            if valid {
                self.add_location(worker, block, &tier, None);
            } else if let Some(w) = self.workers.get_mut(&worker) {
                w.to_free.insert(block);
            }
        }
    }

    fn drop_worker_blocks(&mut self, worker: u64) {
        let blocks: Vec<u64> = self
            .workers
            .get(&worker)
            .map(|w| w.blocks.keys().copied().collect())
            .unwrap_or_default();
        for b in blocks {
            self.remove_location(worker, b);
        }
    }
}

/// `blocks` with whether each still belongs to a file. Checked before our
/// lock is taken: the check reads the namespace, and the namespace lock is
/// never taken inside ours.
fn with_validity(
    blocks: Vec<(u64, String)>,
    is_valid_block: impl Fn(u64) -> bool,
) -> Vec<(u64, String, bool)> {
    blocks
        .into_iter()
        .map(|(b, tier)| {
            let valid = is_valid_block(b);
            (b, tier, valid)
        })
        .collect()
}

impl BlockMaster {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// (Re-)registers a worker with everything it holds. `is_valid_block`
    /// says whether a block still belongs to a file; stale ones are queued
    /// for removal instead of being recorded.
    ///
    /// Lock order: callers may hold the namespace lock and then take this
    /// one (building file infos), never the reverse.
    pub fn register(
        &self,
        id: u64,
        address: WorkerAddress,
        tiers: Vec<TierUsage>,
        blocks: Vec<(u64, String)>,
        is_valid_block: impl Fn(u64) -> bool,
    ) {
        let blocks = with_validity(blocks, is_valid_block);
        let mut inner = self.lock();
        inner.drop_worker_blocks(id);
        let now = alluxio_common::now_ms();
        inner.workers.insert(
            id,
            Worker {
                id,
                address,
                tiers,
                state: WorkerState::Live,
                last_heartbeat: Instant::now(),
                last_heartbeat_ms: now,
                start_time_ms: now,
                blocks: HashMap::new(),
                to_free: HashSet::new(),
            },
        );
        inner.record_reported(id, blocks);
    }

    /// Adds a further page of a registering worker's blocks. False when
    /// the worker has not registered (page 0) or is not live.
    pub fn add_registered_blocks(
        &self,
        id: u64,
        blocks: Vec<(u64, String)>,
        is_valid_block: impl Fn(u64) -> bool,
    ) -> bool {
        let blocks = with_validity(blocks, is_valid_block);
        let mut inner = self.lock();
        if !inner
            .workers
            .get(&id)
            .is_some_and(|w| w.state == WorkerState::Live)
        {
            return false;
        }
        inner.record_reported(id, blocks);
        true
    }

    /// Records a heartbeat and returns the command for the worker.
    pub fn heartbeat(
        &self,
        id: u64,
        tiers: Vec<TierUsage>,
        added: Vec<(u64, u64, String)>,
        removed: Vec<u64>,
        is_valid_block: impl Fn(u64) -> bool,
    ) -> WorkerCommand {
        let added: Vec<(u64, u64, String, bool)> = added
            .into_iter()
            .map(|(b, len, tier)| {
                let valid = is_valid_block(b);
                (b, len, tier, valid)
            })
            .collect();
        let mut inner = self.lock();
        let known_live = inner
            .workers
            .get(&id)
            .is_some_and(|w| w.state == WorkerState::Live);
        if !known_live {
            return WorkerCommand {
                command_type: CommandType::Register as i32,
                block_ids: Vec::new(),
            };
        }
        for block in removed {
            inner.remove_location(id, block);
        }
        let mut stale = Vec::new();
        for (block, length, tier, valid) in added {
            if valid {
                inner.add_location(id, block, &tier, Some(length));
            } else {
                stale.push(block);
            }
        }
        let worker = inner.workers.get_mut(&id).expect("checked live above");
        worker.tiers = tiers;
        worker.last_heartbeat = Instant::now();
        worker.last_heartbeat_ms = alluxio_common::now_ms();
        worker.to_free.extend(stale);
        if worker.to_free.is_empty() {
            WorkerCommand {
                command_type: CommandType::Nothing as i32,
                block_ids: Vec::new(),
            }
        } else {
            let mut ids: Vec<u64> = worker.to_free.drain().collect();
            ids.sort_unstable();
            WorkerCommand {
                command_type: CommandType::Free as i32,
                block_ids: ids,
            }
        }
    }

    /// A worker finished writing a block. False if the worker is unknown.
    pub fn commit_block(&self, worker: u64, block: u64, length: u64, tier: &str) -> bool {
        let mut inner = self.lock();
        if !inner
            .workers
            .get(&worker)
            .is_some_and(|w| w.state == WorkerState::Live)
        {
            return false;
        }
        inner.add_location(worker, block, tier, Some(length));
        true
    }

    /// Marks workers silent for longer than `timeout` as lost and forgets
    /// their blocks. Returns the ids newly marked lost.
    pub fn mark_lost_workers(&self, timeout: Duration) -> Vec<u64> {
        let mut inner = self.lock();
        let lost: Vec<u64> = inner
            .workers
            .values()
            .filter(|w| w.state == WorkerState::Live && w.last_heartbeat.elapsed() > timeout)
            .map(|w| w.id)
            .collect();
        for id in &lost {
            inner.drop_worker_blocks(*id);
            if let Some(w) = inner.workers.get_mut(id) {
                w.state = WorkerState::Lost;
                w.to_free.clear();
            }
            tracing::warn!(worker_id = id, "worker missed heartbeats; marked lost");
        }
        lost
    }

    /// Forgets workers lost for longer than `after` (silent that long
    /// since their last heartbeat): a worker whose identity lived on an
    /// emptyDir comes back under a new id, and the old entries would pile
    /// up with every pod restart. Returns the ids forgotten.
    pub fn forget_lost_workers(&self, after: Duration) -> Vec<u64> {
        let mut inner = self.lock();
        let gone: Vec<u64> = inner
            .workers
            .values()
            .filter(|w| w.state == WorkerState::Lost && w.last_heartbeat.elapsed() > after)
            .map(|w| w.id)
            .collect();
        for id in &gone {
            inner.workers.remove(id);
            tracing::info!(worker_id = id, "forgot a worker lost for {after:?}");
        }
        gone
    }

    /// Queues removal of `blocks` on every worker holding them (free,
    /// delete). Returns how many block copies were queued.
    pub fn free_blocks(&self, blocks: impl IntoIterator<Item = u64>) -> u64 {
        let mut inner = self.lock();
        let mut queued = 0;
        for block in blocks {
            let holders = inner.locations.get(&block).cloned().unwrap_or_default();
            for worker in holders {
                if let Some(w) = inner.workers.get_mut(&worker) {
                    w.to_free.insert(block);
                    queued += 1;
                }
            }
        }
        queued
    }

    /// Forgets blocks of deleted files right away (their workers are told
    /// to remove them too).
    pub fn forget_blocks(&self, blocks: impl IntoIterator<Item = u64>) {
        let blocks: Vec<u64> = blocks.into_iter().collect();
        self.free_blocks(blocks.iter().copied());
        let mut inner = self.lock();
        for block in blocks {
            let holders = inner.locations.get(&block).cloned().unwrap_or_default();
            for worker in holders {
                if let Some(w) = inner.workers.get_mut(&worker) {
                    w.blocks.remove(&block);
                }
            }
            inner.locations.remove(&block);
            inner.lengths.remove(&block);
        }
    }

    pub fn locations(&self, block: u64) -> Vec<BlockLocation> {
        let inner = self.lock();
        inner
            .locations
            .get(&block)
            .map(|holders| {
                holders
                    .iter()
                    .filter_map(|id| inner.workers.get(id))
                    .map(|w| BlockLocation {
                        worker_id: w.id,
                        host: w.address.host.clone(),
                        rpc_port: w.address.rpc_port,
                        data_port: w.address.data_port,
                        tier_alias: w.blocks.get(&block).cloned().unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn is_cached(&self, block: u64) -> bool {
        self.lock().locations.contains_key(&block)
    }

    pub fn worker_infos(&self) -> Vec<WorkerInfo> {
        let inner = self.lock();
        let mut out: Vec<WorkerInfo> = inner
            .workers
            .values()
            .map(|w| WorkerInfo {
                worker_id: w.id,
                address: Some(w.address.clone()),
                state: match w.state {
                    WorkerState::Live => "LIVE".to_string(),
                    WorkerState::Lost => "LOST".to_string(),
                },
                last_heartbeat_ms: w.last_heartbeat_ms,
                start_time_ms: w.start_time_ms,
                tiers: w.tiers.clone(),
                block_count: w.blocks.len() as u64,
            })
            .collect();
        out.sort_by_key(|w| w.worker_id);
        out
    }

    /// (live, lost) worker counts.
    pub fn worker_counts(&self) -> (u32, u32) {
        let inner = self.lock();
        let live = inner
            .workers
            .values()
            .filter(|w| w.state == WorkerState::Live)
            .count();
        (live as u32, (inner.workers.len() - live) as u32)
    }

    /// Capacity and usage per tier summed over live workers.
    pub fn capacity_by_tier(&self) -> Vec<TierUsage> {
        let inner = self.lock();
        let mut totals: Vec<TierUsage> = Vec::new();
        for w in inner
            .workers
            .values()
            .filter(|w| w.state == WorkerState::Live)
        {
            for t in &w.tiers {
                match totals.iter_mut().find(|x| x.tier_alias == t.tier_alias) {
                    Some(x) => {
                        x.capacity_bytes += t.capacity_bytes;
                        x.used_bytes += t.used_bytes;
                    }
                    None => totals.push(t.clone()),
                }
            }
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> WorkerAddress {
        WorkerAddress {
            host: "127.0.0.1".into(),
            rpc_port: 29999,
            web_port: 30000,
            data_port: 29998,
        }
    }

    fn tiers() -> Vec<TierUsage> {
        vec![TierUsage {
            tier_alias: "MEM".into(),
            capacity_bytes: 100,
            used_bytes: 10,
        }]
    }

    #[test]
    fn unknown_workers_are_asked_to_register() {
        let bm = BlockMaster::default();
        let cmd = bm.heartbeat(7, tiers(), vec![], vec![], |_| true);
        assert_eq!(cmd.command_type, CommandType::Register as i32);
    }

    #[test]
    fn locations_follow_registration_heartbeats_and_loss() {
        let bm = BlockMaster::default();
        bm.register(
            7,
            addr(),
            tiers(),
            vec![(100, "MEM".into()), (666, "MEM".into())],
            |b| b != 666,
        );
        assert_eq!(bm.locations(100).len(), 1);
        assert!(bm.locations(666).is_empty());
        // The stale block is freed at the next heartbeat.
        let cmd = bm.heartbeat(7, tiers(), vec![(200, 5, "SSD".into())], vec![100], |_| {
            true
        });
        assert_eq!(cmd.command_type, CommandType::Free as i32);
        assert_eq!(cmd.block_ids, vec![666]);
        assert!(bm.locations(100).is_empty());
        assert_eq!(bm.locations(200)[0].tier_alias, "SSD");

        assert_eq!(bm.free_blocks([200]), 1);
        let cmd = bm.heartbeat(7, tiers(), vec![], vec![], |_| true);
        assert_eq!(cmd.block_ids, vec![200]);

        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(bm.mark_lost_workers(Duration::from_millis(1)), vec![7]);
        assert!(bm.locations(200).is_empty());
        assert_eq!(bm.worker_counts(), (0, 1));
        let cmd = bm.heartbeat(7, tiers(), vec![], vec![], |_| true);
        assert_eq!(cmd.command_type, CommandType::Register as i32);

        // Lost for a while: forgotten, not before.
        assert!(bm.forget_lost_workers(Duration::from_secs(3600)).is_empty());
        assert_eq!(bm.worker_counts(), (0, 1));
        assert_eq!(bm.forget_lost_workers(Duration::from_millis(1)), vec![7]);
        assert_eq!(bm.worker_counts(), (0, 0));
    }
}
