//! Raft log segments of a fault-tolerant master: each record a bincode
//! openraft entry whose payload is a batch of journal entries, decoded
//! and applied to a master state as a replica does. Never a panic, and no
//! allocation beyond what the input can back.
#![no_main]

use alluxio_fuzz::{journal_key, with_record_crcs};
use alluxio_master::journal::format::decode_frames;
use alluxio_master::raft::log_store::Entry;
use alluxio_master::raft::state_machine::apply_batch;
use alluxio_master::state::MasterState;
use libfuzzer_sys::fuzz_target;
use openraft::EntryPayload;
use std::path::Path;

fn replay(data: &[u8]) {
    let mut state = MasterState::default();
    let path = Path::new("raft-1.log");
    let _ = decode_frames(data, path, true, Some(journal_key()), |_, payload| {
        if let Ok(entry) = bincode::deserialize::<Entry>(payload) {
            if let EntryPayload::Normal(batch) = &entry.payload {
                let _ = apply_batch(&mut state, batch);
            }
        }
        Ok(())
    });
}

fuzz_target!(|data: &[u8]| {
    replay(data);
    replay(&with_record_crcs(data));
});
