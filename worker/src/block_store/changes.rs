//! The block changes the master has not heard of yet, for the next
//! heartbeat. Only a block's last change counts: the master applies a
//! heartbeat's removals before its additions, so a block cached and
//! evicted between two heartbeats must reach it as removed only (sent as
//! both, the master would go on believing the worker holds it), and
//! changes put back after a failed heartbeat must not override newer ones.

use alluxio_proto::grpc::BlockAdded;
use std::collections::HashMap;

/// Each changed block's last change: added (with what the master records)
/// or removed.
#[derive(Default)]
pub(super) struct PendingChanges(HashMap<u64, Option<BlockAdded>>);

impl PendingChanges {
    pub(super) fn added(&mut self, block: BlockAdded) {
        self.0.insert(block.block_id, Some(block));
    }

    pub(super) fn removed(&mut self, block_id: u64) {
        self.0.insert(block_id, None);
    }

    /// Everything pending, as the heartbeat sends it; none is left.
    pub(super) fn take(&mut self) -> (Vec<BlockAdded>, Vec<u64>) {
        let mut added = Vec::new();
        let mut removed = Vec::new();
        for (block_id, change) in self.0.drain() {
            match change {
                Some(block) => added.push(block),
                None => removed.push(block_id),
            }
        }
        (added, removed)
    }

    /// Puts back what a failed heartbeat took, under the changes made
    /// since (which are newer, so they win).
    pub(super) fn restore(&mut self, added: Vec<BlockAdded>, removed: Vec<u64>) {
        for block in added {
            self.0.entry(block.block_id).or_insert(Some(block));
        }
        for block_id in removed {
            self.0.entry(block_id).or_insert(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(id: u64) -> BlockAdded {
        BlockAdded {
            block_id: id,
            length: 1,
            tier_alias: "MEM".to_string(),
        }
    }

    #[test]
    fn only_the_last_change_of_a_block_is_sent() {
        let mut pending = PendingChanges::default();
        pending.added(block(1));
        pending.removed(1);
        pending.removed(2);
        pending.added(block(2));
        let (added, removed) = pending.take();
        assert_eq!(added, vec![block(2)]);
        assert_eq!(removed, vec![1]);
        assert_eq!(pending.take(), (vec![], vec![]));
    }

    #[test]
    fn changes_put_back_lose_to_newer_ones() {
        let mut pending = PendingChanges::default();
        pending.added(block(1));
        pending.added(block(2));
        let (added, removed) = pending.take();
        pending.removed(1);
        pending.restore(added, removed);
        let (mut added, removed) = pending.take();
        added.sort_by_key(|b| b.block_id);
        assert_eq!(added, vec![block(2)]);
        assert_eq!(removed, vec![1]);
    }
}
