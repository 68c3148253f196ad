//! Checkpoints encoded while writers go on.
//!
//! A checkpoint stands for the state at one journal sequence number. The
//! simple way to get that picture is to encode the whole namespace under
//! the state lock, which stalls every writer for as long as a million
//! inodes take to encode (about a second). Instead, [`freeze`] marks the
//! moment under the write lock (cheap: it copies the mount table and jobs,
//! and starts the inode tree's record of pre-images, see
//! `InodeTree::freeze`), and [`encode_frozen`] then encodes the inodes a
//! piece at a time, each piece under a read lock of half a millisecond and
//! followed by a rest twice as long, reading the tree as it was at the
//! freeze. Writers wait at most for one piece. A million inodes take some
//! 8 seconds to encode this way instead of 1.6 at once.
//!
//! The output is the same bytes a stopped world would give: the header,
//! inodes parents first, mounts, jobs, and the `CheckpointEnd` marker.

use super::format::{encode_header, encode_record, FileKind};
use super::seal::JournalKey;
use crate::inode::{NotFrozen, ROOT_ID};
use crate::state::{inode_entry, MasterState};
use alluxio_proto::journal::{self as j, journal_entry::Entry, JournalEntry};
use std::collections::VecDeque;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// How long one piece may hold the read lock (writers wait at most this
/// long, plus the piece's last inode).
const PIECE_TIME: Duration = Duration::from_micros(500);

/// After each piece the encoder rests this many times as long as the piece
/// took (at least [`PIECE_TIME`]): it holds the lock a third of the time at
/// most. Without the rest, every writer had to wait for a piece — one
/// change per piece — and the calls queued behind them stalled for
/// hundreds of milliseconds (measured: `alluxio-bench checkpoint-stall`).
const REST_PER_PIECE: u32 = 2;

/// Inodes encoded between two looks at the clock.
const INODES_PER_CLOCK_CHECK: usize = 64;

/// The state as of a freeze, minus the inodes (read from the frozen tree).
pub(crate) struct FrozenState {
    token: u64,
    sequence: u64,
    /// Mount and job records, captured whole at the freeze (both small).
    tail: Vec<Entry>,
    mount_count: u64,
    next_inode_id: u64,
    next_mount_id: u64,
    next_job_id: u64,
    root_exists: bool,
}

impl FrozenState {
    /// The journal sequence number the checkpoint stands for.
    pub(crate) fn sequence(&self) -> u64 {
        self.sequence
    }
}

/// Marks now as the moment of a checkpoint. Call it under the state's
/// write lock, at the point no entry may slip between the checkpoint and
/// what follows it; then [`encode_frozen`] without the lock.
pub(crate) fn freeze(state: &mut MasterState) -> FrozenState {
    let mut tail = Vec::new();
    for m in state.mounts.iter() {
        tail.push(Entry::AddMountPoint(j::AddMountPointEntry {
            mount_id: m.id,
            alluxio_path: m.alluxio_path.to_string(),
            ufs_uri: m.ufs_uri.clone(),
            read_only: m.read_only,
            shared: m.shared,
            options: m.options.clone().into_iter().collect(),
        }));
    }
    for job in state.jobs.iter() {
        tail.push(Entry::LoadJob(job.clone()));
    }
    FrozenState {
        token: state.tree.freeze(),
        sequence: state.last_sequence,
        tail,
        mount_count: state.mounts.len() as u64,
        next_inode_id: state.next_inode_id,
        next_mount_id: state.next_mount_id,
        next_job_id: state.jobs.next_id(),
        root_exists: state.tree.root().is_some(),
    }
}

/// Encodes the checkpoint frozen by [`freeze`], taking `state`'s read lock
/// for one short piece at a time, with rests in between. The tree is
/// thawed at the end, also on failure. Fails only if the state was
/// replaced meanwhile (a Raft follower's rebuild); the caller may freeze
/// again. Records are sealed with `key` when given.
pub(crate) fn encode_frozen(
    state: &RwLock<MasterState>,
    frozen: FrozenState,
    key: Option<&JournalKey>,
) -> Result<Vec<u8>, NotFrozen> {
    encode_in_pieces(state, frozen, key, PIECE_TIME, &mut || {})
}

/// [`encode_frozen`] with pieces of `piece_time`, calling `between` (a
/// test's writer) without the lock after each piece but the last.
fn encode_in_pieces(
    state: &RwLock<MasterState>,
    frozen: FrozenState,
    key: Option<&JournalKey>,
    piece_time: Duration,
    between: &mut dyn FnMut(),
) -> Result<Vec<u8>, NotFrozen> {
    let thaw = ThawOnDrop {
        state,
        token: frozen.token,
    };
    let sequence = frozen.sequence;
    let mut data = encode_header(FileKind::Checkpoint, sequence, key.is_some()).to_vec();
    let mut emit = |entry: Entry| {
        encode_record(
            &JournalEntry {
                sequence,
                entry: Some(entry),
            },
            key,
            &mut data,
        )
    };
    let mut queue = VecDeque::new();
    if frozen.root_exists {
        queue.push_back(ROOT_ID);
    }
    let mut inode_count = 0u64;
    while !queue.is_empty() {
        if inode_count > 0 {
            between();
        }
        let guard = state.read().unwrap_or_else(|p| p.into_inner());
        let started = Instant::now();
        'piece: loop {
            for _ in 0..INODES_PER_CLOCK_CHECK {
                let Some(id) = queue.pop_front() else {
                    break 'piece;
                };
                // Breadth first: every parent is written before its
                // children, as replaying the checkpoint needs.
                if let Some(inode) = guard.tree.get_frozen(frozen.token, id)? {
                    emit(inode_entry(inode));
                    inode_count += 1;
                    if let Some(dir) = inode.dir() {
                        queue.extend(dir.children.values().copied());
                    }
                }
            }
            if started.elapsed() >= piece_time {
                break;
            }
        }
        let held = started.elapsed();
        drop(guard);
        if !piece_time.is_zero() && !queue.is_empty() {
            std::thread::sleep((held * REST_PER_PIECE).max(piece_time));
        }
    }
    for entry in frozen.tail {
        emit(entry);
    }
    emit(Entry::CheckpointEnd(j::CheckpointEnd {
        inode_count,
        mount_count: frozen.mount_count,
        next_inode_id: frozen.next_inode_id,
        next_mount_id: frozen.next_mount_id,
        next_job_id: frozen.next_job_id,
    }));
    drop(thaw);
    Ok(data)
}

/// Thaws the frozen tree when the encoding ends, however it ends, so a
/// failed checkpoint does not keep pre-images forever.
struct ThawOnDrop<'a> {
    state: &'a RwLock<MasterState>,
    token: u64,
}

impl Drop for ThawOnDrop<'_> {
    fn drop(&mut self) {
        self.state
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .tree
            .thaw(self.token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inode::ROOT_ID;

    /// Applies entries with consecutive sequence numbers.
    struct Writer(u64);

    impl Writer {
        fn apply(&mut self, state: &mut MasterState, entry: Entry) {
            self.0 += 1;
            state
                .apply(&JournalEntry {
                    sequence: self.0,
                    entry: Some(entry),
                })
                .unwrap();
        }
    }

    fn dir(id: u64, parent_id: u64, name: &str) -> Entry {
        Entry::InodeDirectory(j::InodeDirectoryEntry {
            id,
            parent_id,
            name: name.to_string(),
            owner: "alice".to_string(),
            group: "staff".to_string(),
            mode: 0o755,
            ..Default::default()
        })
    }

    fn file(id: u64, parent_id: u64, name: &str) -> Entry {
        Entry::InodeFile(j::InodeFileEntry {
            id,
            parent_id,
            name: name.to_string(),
            owner: "alice".to_string(),
            group: "staff".to_string(),
            mode: 0o644,
            block_size_bytes: 1 << 20,
            length: id,
            completed: true,
            ..Default::default()
        })
    }

    /// A root, `dirs` directories of `files_each` files, and a mount.
    fn populated(dirs: u64, files_each: u64) -> (MasterState, Writer) {
        let mut state = MasterState::default();
        let mut w = Writer(0);
        w.apply(&mut state, dir(ROOT_ID, 0, ""));
        let mut id = ROOT_ID + 1;
        for d in 0..dirs {
            let dir_id = id;
            w.apply(&mut state, dir(dir_id, ROOT_ID, &format!("d{d}")));
            id += 1;
            for f in 0..files_each {
                w.apply(&mut state, file(id, dir_id, &format!("f{f}")));
                id += 1;
            }
        }
        w.apply(
            &mut state,
            Entry::AddMountPoint(j::AddMountPointEntry {
                mount_id: 7,
                alluxio_path: "/d0".to_string(),
                ufs_uri: "file:///tmp/ufs".to_string(),
                ..Default::default()
            }),
        );
        (state, w)
    }

    /// Every kind of change, to ids of a tree made by `populated`.
    fn changes(first_new_id: u64, round: u64) -> Vec<Entry> {
        let new_dir = first_new_id + 2 * round;
        vec![
            dir(new_dir, ROOT_ID, &format!("new{round}")),
            file(new_dir + 1, new_dir, "x"),
            Entry::SetAttribute(j::SetAttributeEntry {
                id: 3 + round,
                mode: Some(0o600),
                owner: Some("bob".to_string()),
                ..Default::default()
            }),
            Entry::Rename(j::RenameEntry {
                id: new_dir + 1,
                new_parent_id: ROOT_ID,
                new_name: format!("moved{round}"),
                op_time_ms: 5,
            }),
            Entry::DeleteInode(j::DeleteInodeEntry {
                id: new_dir,
                op_time_ms: 6,
            }),
        ]
    }

    fn frozen_bytes(state: &RwLock<MasterState>) -> Vec<u8> {
        let frozen = freeze(&mut state.write().unwrap());
        encode_frozen(state, frozen, None).unwrap()
    }

    #[test]
    fn changes_after_the_freeze_are_not_in_the_checkpoint() {
        let (twin, _) = populated(3, 40);
        let expected = frozen_bytes(&RwLock::new(twin));

        let (mut state, mut w) = populated(3, 40);
        let first_new_id = state.next_inode_id;
        let frozen = freeze(&mut state);
        for round in 0..3 {
            for entry in changes(first_new_id, round) {
                w.apply(&mut state, entry);
            }
        }
        // A whole directory goes too, after its files were changed.
        w.apply(
            &mut state,
            Entry::DeleteInode(j::DeleteInodeEntry {
                id: 2,
                op_time_ms: 9,
            }),
        );
        let token = frozen.token;
        assert!(state.tree.frozen_changes(token).unwrap() > 40);
        let state = RwLock::new(state);
        assert_eq!(
            encode_in_pieces(&state, frozen, None, Duration::ZERO, &mut || {}).unwrap(),
            expected
        );
        // Thawed: no more copies are kept, and a new checkpoint shows the changes.
        assert!(state.read().unwrap().tree.frozen_changes(token).is_err());
        assert_ne!(frozen_bytes(&state), expected);
    }

    #[test]
    fn writers_run_between_the_pieces_and_change_nothing_in_it() {
        let (twin, _) = populated(20, 500);
        let expected = frozen_bytes(&RwLock::new(twin));
        let (state, mut w) = populated(20, 500);
        let first_new_id = state.next_inode_id;
        let state = RwLock::new(state);
        let frozen = freeze(&mut state.write().unwrap());
        // A round of every kind of change between every two pieces (one
        // piece: 64 inodes), touching inodes encoded before and after.
        let mut rounds = 0;
        let mut between = || {
            let mut guard = state.write().unwrap();
            for entry in changes(first_new_id, rounds) {
                w.apply(&mut guard, entry);
            }
            let last_dir_file = 2 + 19 * 501 + 1 + rounds;
            w.apply(
                &mut guard,
                Entry::DeleteInode(j::DeleteInodeEntry {
                    id: last_dir_file,
                    op_time_ms: 7,
                }),
            );
            rounds += 1;
        };
        let bytes = encode_in_pieces(&state, frozen, None, Duration::ZERO, &mut between).unwrap();
        assert!(rounds > 100, "{rounds} rounds");
        assert_eq!(bytes, expected);

        // The bytes load back into the state they stand for.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint-1.ckpt");
        std::fs::write(&path, &bytes).unwrap();
        let mut loaded = MasterState::default();
        crate::journal::load_checkpoint(&path, &mut loaded, None).unwrap();
        assert_eq!(loaded.tree.len(), 1 + 20 * 501);
        assert_eq!(frozen_bytes(&RwLock::new(loaded)), expected);
    }

    #[test]
    fn a_replaced_state_is_reported_not_encoded() {
        let (state, _) = populated(1, 10);
        let state = RwLock::new(state);
        let frozen = freeze(&mut state.write().unwrap());
        *state.write().unwrap() = populated(2, 10).0;
        assert!(encode_frozen(&state, frozen, None).is_err());
    }
}
