//! Room in the tier directories: reservations before a block is written,
//! eviction (LRU or LRFU) to make room, and directories whose disk is full
//! below their quota.

use super::{file_id_of, lrfu_decay, BlockStore, Entry, StoreError};
use alluxio_common::config::EvictorConfig;

impl BlockStore {
    /// Reserves `need` bytes in a directory other than `full` (whose disk
    /// just said ENOSPC): another one of its tier, else a slower tier.
    /// The caller moves its block there.
    pub(super) fn reserve_instead_of(&self, full: usize, need: u64) -> Result<usize, StoreError> {
        {
            let mut inner = self.lock();
            inner.out_of_disk[full] = true;
        }
        tracing::warn!(
            dir = %self.0.dirs[full].root.display(),
            "the disk of this cache directory is full below its quota; new blocks go elsewhere until space is freed"
        );
        self.reserve(need, self.0.dirs[full].tier)
    }

    pub(super) fn reserve(&self, need: u64, min_tier: usize) -> Result<usize, StoreError> {
        for tier in min_tier..self.0.tiers.len() {
            let candidates: Vec<usize> = {
                let inner = self.lock();
                (0..self.0.dirs.len())
                    .filter(|d| self.0.dirs[*d].tier == tier && !inner.out_of_disk[*d])
                    .collect()
            };
            // First a directory with free room, then one where eviction helps.
            {
                let mut inner = self.lock();
                if let Some(&d) = candidates
                    .iter()
                    .filter(|d| self.0.dirs[**d].quota.saturating_sub(inner.used[**d]) >= need)
                    .max_by_key(|d| self.0.dirs[**d].quota - inner.used[**d])
                {
                    inner.used[d] += need;
                    return Ok(d);
                }
            }
            for d in candidates {
                if self.evict_until_free(d, need) {
                    return Ok(d);
                }
            }
        }
        Err(StoreError::NoSpace { needed: need })
    }

    pub(super) fn release(&self, dir: usize, bytes: u64) {
        let mut inner = self.lock();
        inner.used[dir] = inner.used[dir].saturating_sub(bytes);
    }

    /// Evicts unpinned, unopened blocks of directory `dir` (least valuable
    /// first) until `need` bytes are free, and reserves them. False if even
    /// evicting everything evictable is not enough; then nothing is evicted.
    pub fn evict_until_free(&self, dir: usize, need: u64) -> bool {
        let quota = self.0.dirs[dir].quota;
        if need > quota {
            return false;
        }
        let victims = {
            let mut inner = self.lock();
            let now = inner.clock;
            let mut candidates: Vec<(f64, u64, u64)> = inner
                .blocks
                .iter()
                .filter(|(id, e)| {
                    e.dir == dir
                        && e.leases == 0
                        && !e.doomed
                        && !inner.pinned_files.contains(&file_id_of(**id))
                })
                .map(|(id, e)| (self.score(e, now), *id, e.meta.length))
                .collect();
            candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
            let free = quota.saturating_sub(inner.used[dir]);
            let evictable: u64 = candidates.iter().map(|c| c.2).sum();
            if free + evictable < need {
                return false;
            }
            let mut freed = free;
            let mut victims = Vec::new();
            for (_, id, len) in candidates {
                if freed >= need {
                    break;
                }
                freed += len;
                if let Some(e) = Self::take_out(&mut inner, id) {
                    victims.push(e.meta);
                }
                inner.evictions += 1;
            }
            // take_out gave back the victims' room; it is the new block's.
            inner.used[dir] += need;
            victims
        };
        for meta in victims {
            tracing::debug!(block_id = meta.block_id, "evicted");
            self.delete_files(dir, &meta);
        }
        true
    }

    fn score(&self, e: &Entry, now: u64) -> f64 {
        match self.0.evictor {
            EvictorConfig::Lru => e.last_access as f64,
            EvictorConfig::Lrfu => e.crf * lrfu_decay(now - e.last_access),
        }
    }
}
