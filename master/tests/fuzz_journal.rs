//! Journal segments, mutated and random (`alluxio_testkit::fuzz`), with the
//! record checksums repaired half the time so the protobuf decoding and
//! `MasterState::apply` behind them are reached: recovery must answer Ok
//! or an error naming the damage, never panic. The same files (a log
//! segment, a checkpoint, a Raft log segment) seed the cargo-fuzz targets
//! `journal` and `raft_log`.

use alluxio_common::auth::ClusterKey;
use alluxio_master::journal::format::{
    encode_frame, encode_header, encode_record, read_file, FileKind, RECORD_HEADER_LEN,
};
use alluxio_master::journal::seal::JournalKey;
use alluxio_master::raft::{JournalBatch, TypeConfig};
use alluxio_master::state::MasterState;
use alluxio_proto::journal::journal_entry::Entry;
use alluxio_proto::journal::{
    CheckpointEnd, DeleteInodeEntry, InodeDirectoryEntry, InodeFileEntry, JournalEntry,
    JournalEntryBatch, RenameEntry,
};
use alluxio_testkit::fuzz;
use prost::Message;

fn entries() -> Vec<Entry> {
    vec![
        Entry::InodeDirectory(InodeDirectoryEntry {
            id: 1,
            name: String::new(),
            mode: 0o755,
            mount_point: true,
            ..Default::default()
        }),
        Entry::InodeDirectory(InodeDirectoryEntry {
            id: 2,
            parent_id: 1,
            name: "d".into(),
            mode: 0o755,
            ..Default::default()
        }),
        Entry::InodeFile(InodeFileEntry {
            id: 3,
            parent_id: 2,
            name: "f".into(),
            mode: 0o644,
            block_size_bytes: 1 << 20,
            length: 3 << 20,
            completed: true,
            ..Default::default()
        }),
        Entry::Rename(RenameEntry {
            id: 3,
            new_parent_id: 1,
            new_name: "g".into(),
            ..Default::default()
        }),
        Entry::DeleteInode(DeleteInodeEntry {
            id: 2,
            op_time_ms: 0,
        }),
    ]
}

fn journal_entries(entries: Vec<Entry>) -> Vec<JournalEntry> {
    entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| JournalEntry {
            sequence: i as u64 + 1,
            entry: Some(entry),
        })
        .collect()
}

/// The key `fuzz/src/lib.rs` `journal_key` reads with: seeds sealed with
/// it reach the decoding behind the seal.
fn fuzz_key() -> JournalKey {
    JournalKey::from_file_key(&ClusterKey::from_hex(&"5e".repeat(32)).unwrap())
}

/// A journal file of `kind` holding `entries`, sealed with `key` if given.
fn journal_file(kind: FileKind, entries: Vec<Entry>, key: Option<&JournalKey>) -> Vec<u8> {
    let mut out = encode_header(kind, 1, key.is_some()).to_vec();
    for record in journal_entries(entries) {
        encode_record(&record, key, &mut out);
    }
    out
}

fn segment(key: Option<&JournalKey>) -> Vec<u8> {
    journal_file(FileKind::Log, entries(), key)
}

fn checkpoint(key: Option<&JournalKey>) -> Vec<u8> {
    let mut entries = entries();
    entries.truncate(3);
    entries.push(Entry::CheckpointEnd(CheckpointEnd {
        inode_count: 3,
        ..Default::default()
    }));
    journal_file(FileKind::Checkpoint, entries, key)
}

/// A Raft log segment: one openraft entry per journal entry, each a batch
/// of one (bincode, as `raft/log_store.rs` writes them).
fn raft_segment(key: Option<&JournalKey>) -> Vec<u8> {
    let mut out = encode_header(FileKind::RaftLog, 1, key.is_some()).to_vec();
    for record in journal_entries(entries()) {
        let batch = JournalBatch {
            proposer: 1,
            epoch: 1,
            last_sequence: record.sequence,
            entries: JournalEntryBatch {
                entries: vec![record.clone()],
            }
            .encode_to_vec(),
        };
        let entry = openraft::Entry::<TypeConfig> {
            log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), record.sequence),
            payload: openraft::EntryPayload::Normal(batch),
        };
        encode_frame(&bincode::serialize(&entry).unwrap(), key, &mut out);
    }
    out
}

/// Recomputes every whole record's checksum.
fn fix_records(b: &mut [u8]) {
    let mut at = alluxio_master::journal::format::HEADER_LEN;
    while at + RECORD_HEADER_LEN <= b.len() {
        let len = u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        let end = at + RECORD_HEADER_LEN + len;
        if end > b.len() {
            return;
        }
        let crc = crc32fast::hash(&b[at + RECORD_HEADER_LEN..end]);
        b[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

#[test]
fn damaged_segments_are_refused_or_read_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log-1.log");
    let key = fuzz_key();
    let sealed = Some(&key);
    fuzz::save_seeds(
        "journal",
        &[
            segment(None),
            checkpoint(None),
            segment(sealed),
            checkpoint(sealed),
        ],
    );
    fuzz::save_seeds("raft_log", &[raft_segment(None), raft_segment(sealed)]);
    let seeds = [segment(None), segment(sealed)];
    fuzz::run("journal segments", &seeds, fix_records, |b| {
        std::fs::write(&path, b).unwrap();
        for torn_tail_allowed in [false, true] {
            let mut state = MasterState::default();
            let _ = read_file(&path, torn_tail_allowed, sealed, |_, entry| {
                let _ = state.apply(&entry);
                Ok(())
            });
        }
    });
}
