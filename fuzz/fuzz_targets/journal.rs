//! Journal files as a master finds them on its disk at a start: the input
//! read as a log segment (replayed into a master state, with and without
//! a torn tail allowed) and as a checkpoint (loaded into an empty state).
//! Recovery answers Ok or an error naming the damage, never a panic.
//! With an encryption key, as a master with `encryption_key_file` reads:
//! plain files as they are, sealed ones opened record by record.
#![no_main]

use alluxio_fuzz::{journal_key, with_record_crcs};
use alluxio_master::journal::decode_checkpoint;
use alluxio_master::journal::format::decode_entries;
use alluxio_master::state::MasterState;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fn recover(data: &[u8]) {
    let path = Path::new("fuzz.log");
    for torn_tail_allowed in [false, true] {
        let mut state = MasterState::default();
        let _ = decode_entries(
            data,
            path,
            torn_tail_allowed,
            Some(journal_key()),
            |_, entry| {
                let _ = state.apply(&entry);
                Ok(())
            },
        );
    }
    let _ = decode_checkpoint(
        data,
        Path::new("fuzz.ckpt"),
        &mut MasterState::default(),
        Some(journal_key()),
    );
}

fuzz_target!(|data: &[u8]| {
    recover(data);
    recover(&with_record_crcs(data));
});
