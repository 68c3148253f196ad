//! The block store under concurrent interleavings: several threads write,
//! read, lease, promote and remove the same few blocks at once on two
//! small tiers that evict all the time, while a heartbeat thread takes the
//! store's changes and applies them as the master does (removals, then
//! additions; a failed heartbeat puts them back). What must hold whatever
//! the interleaving:
//!
//! - a block has one writer at a time;
//! - every read and every leased block file shows the block's own bytes
//!   (a leased block is never evicted or overwritten under its reader);
//! - no tier is ever over its quota;
//! - once the threads are done, the bytes the store says it uses are those
//!   of the blocks it holds (no reservation leaks), the master's view built
//!   from the heartbeats is exactly the set of blocks held, and after a
//!   restart every block reads back.
//!
//! A block's bytes are a function of its id (as in a cluster, where a
//! block of a completed file never changes), so a check never depends on
//! which writer won. Seeded per thread; a failure names the seed.

mod common;

use alluxio_common::config::EvictorConfig;
use alluxio_worker::block_store::{BlockStore, StoreError};
use common::{small_tiers, KIB};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const BLOCK: u64 = 256 * KIB;
const THREADS: u64 = 4;

/// Sixteen blocks of four files, so threads meet on them all the time.
fn block_ids() -> Vec<u64> {
    (1..=4u64)
        .flat_map(|file| (0..4u64).map(move |index| (file << 24) | index))
        .collect()
}

/// Byte `i` of block `id`.
fn byte_of(id: u64, i: u64) -> u8 {
    (id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8 ^ (i as u8) ^ ((i >> 8) as u8)
}

fn bytes_of(id: u64, len: u64) -> Vec<u8> {
    (0..len).map(|i| byte_of(id, i)).collect()
}

fn check_bytes(id: u64, offset: u64, got: &[u8], what: &str) {
    if let Some(i) = (0..got.len()).find(|&i| got[i] != byte_of(id, offset + i as u64)) {
        panic!(
            "{what}: block {id} has a foreign byte at {} ({} bytes checked)",
            offset + i as u64,
            got.len()
        );
    }
}

/// What the threads share: the store, which thread writes each block, and
/// the master's view of which blocks the worker holds.
struct Shared {
    store: BlockStore,
    writing: HashMap<u64, AtomicBool>,
    master_view: Mutex<BTreeSet<u64>>,
}

impl Shared {
    /// One heartbeat: the changes since the last one, applied the way the
    /// master's block master does; a failed one puts them back.
    fn heartbeat(&self, fail: bool) {
        let (added, removed) = self.store.take_changes();
        if fail {
            self.store.restore_changes(added, removed);
            return;
        }
        let mut view = self.master_view.lock().unwrap();
        for id in removed {
            view.remove(&id);
        }
        for block in added {
            view.insert(block.block_id);
        }
    }

    fn check_quotas(&self, seed: u64) {
        for t in self.store.tier_stats() {
            assert!(t.used <= t.capacity, "seed {seed}: {t:?} over its quota");
        }
    }
}

/// Writes `id` whole (or abandons it, or writes past its reservation).
fn write(shared: &Shared, rng: &mut StdRng, id: u64, seed: u64) {
    let min_tier = rng.random_range(0..2);
    let mut writer = match shared
        .store
        .create_block(id, (id & 0xff) * BLOCK, BLOCK, min_tier)
    {
        Ok(w) => w,
        Err(
            StoreError::AlreadyCached(_) | StoreError::BeingWritten(_) | StoreError::NoSpace { .. },
        ) => return,
        Err(e) => panic!("seed {seed}: create {id}: {e}"),
    };
    let flag = &shared.writing[&id];
    assert!(
        !flag.swap(true, Ordering::SeqCst),
        "seed {seed}: block {id} given to a second writer while the first one writes"
    );
    let len = rng.random_range(1..=BLOCK / (16 * KIB)) * 16 * KIB;
    for piece in bytes_of(id, len).chunks(32 * KIB as usize) {
        writer
            .append(piece)
            .unwrap_or_else(|e| panic!("seed {seed}: append to {id}: {e}"));
        if rng.random_bool(0.2) {
            std::thread::yield_now();
        }
    }
    let ending = rng.random_range(0..20);
    // Cleared before the writer lets go of the block, so another thread
    // that gets it next never finds the flag still set.
    flag.store(false, Ordering::SeqCst);
    match ending {
        0 => drop(writer),
        1 => {
            let over = vec![0u8; (BLOCK - len + 1) as usize];
            assert!(
                matches!(writer.append(&over), Err(StoreError::TooLong { .. })),
                "seed {seed}: a write of {id} past its reservation"
            );
        }
        _ => {
            let (length, _) = writer
                .commit()
                .unwrap_or_else(|e| panic!("seed {seed}: commit {id}: {e}"));
            assert_eq!(length, len, "seed {seed}: committed length of {id}");
        }
    }
}

/// One thread's random operations, holding a few short-circuit leases.
fn worker_thread(shared: Arc<Shared>, seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let ids = block_ids();
    // Open leases: block id and the file region the lease pins.
    let mut leases: Vec<(u64, std::path::PathBuf, u64, u64)> = Vec::new();
    for step in 0..steps {
        let id = ids[rng.random_range(0..ids.len())];
        match rng.random_range(0..100) {
            0..=39 => write(&shared, &mut rng, id, seed),
            40..=59 => match shared.store.read(id, 0, BLOCK) {
                Ok(bytes) => check_bytes(id, 0, &bytes, &format!("seed {seed} step {step}: read")),
                Err(StoreError::NotCached(_)) => {}
                Err(e) => panic!("seed {seed} step {step}: read {id}: {e}"),
            },
            60..=69 => {
                if let Ok(local) = shared.store.open_local(id) {
                    leases.push((id, local.path, local.offset, local.length));
                }
            }
            70..=79 => {
                if !leases.is_empty() {
                    let (id, ..) = leases.swap_remove(rng.random_range(0..leases.len()));
                    shared.store.close_local(id);
                }
            }
            80..=89 => shared.store.remove(id),
            _ => match shared.store.promote(id) {
                Ok(()) | Err(StoreError::NotCached(_)) => {}
                Err(
                    StoreError::AlreadyCached(_)
                    | StoreError::BeingWritten(_)
                    | StoreError::NoSpace { .. },
                ) => {}
                Err(e) => panic!("seed {seed} step {step}: promote {id}: {e}"),
            },
        }
        // Every leased block's file still holds its bytes, whatever the
        // others did meanwhile (evictions punch or delete block files).
        for (id, path, offset, length) in &leases {
            let file = std::fs::File::open(path).unwrap_or_else(|e| {
                panic!("seed {seed} step {step}: leased block {id}: {path:?}: {e}")
            });
            let mut buf = vec![0u8; *length as usize];
            file.read_exact_at(&mut buf, *offset).unwrap_or_else(|e| {
                panic!("seed {seed} step {step}: leased block {id} cut short: {e}")
            });
            check_bytes(*id, 0, &buf, &format!("seed {seed} step {step}: leased"));
        }
        shared.check_quotas(seed);
    }
    for (id, ..) in leases {
        shared.store.close_local(id);
    }
}

fn run(seed: u64, steps: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(&small_tiers(dir.path()), EvictorConfig::Lru).unwrap();
    let shared = Arc::new(Shared {
        store,
        writing: block_ids()
            .into_iter()
            .map(|id| (id, AtomicBool::new(false)))
            .collect(),
        master_view: Mutex::default(),
    });
    let done = Arc::new(AtomicBool::new(false));
    let heartbeats = {
        let (shared, done) = (shared.clone(), done.clone());
        std::thread::spawn(move || {
            let mut rng = StdRng::seed_from_u64(seed);
            while !done.load(Ordering::SeqCst) {
                shared.heartbeat(rng.random_bool(0.2));
                std::thread::sleep(std::time::Duration::from_micros(rng.random_range(0..500)));
            }
        })
    };
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let shared = shared.clone();
            std::thread::spawn(move || worker_thread(shared, seed * 100 + t, steps))
        })
        .collect();
    for t in threads {
        if let Err(panic) = t.join() {
            done.store(true, Ordering::SeqCst);
            std::panic::resume_unwind(panic);
        }
    }
    done.store(true, Ordering::SeqCst);
    heartbeats.join().unwrap();
    shared.heartbeat(false);
    let store = &shared.store;
    assert!(store.evictions() > 0, "seed {seed}: the run never evicted");

    // Quiet now: what the store says is what it holds.
    let held: BTreeSet<u64> = block_ids()
        .into_iter()
        .filter(|id| store.contains(*id))
        .collect();
    let used: u64 = store.tier_stats().iter().map(|t| t.used).sum();
    let lengths: u64 = held.iter().map(|id| store.length(*id).unwrap()).sum();
    assert_eq!(
        used, lengths,
        "seed {seed}: used bytes are not the blocks held {held:?}"
    );
    assert_eq!(
        *shared.master_view.lock().unwrap(),
        held,
        "seed {seed}: the master's view from the heartbeats is not what the worker holds"
    );
    let lengths_before: Vec<(u64, u64)> = held
        .iter()
        .map(|id| (*id, store.length(*id).unwrap()))
        .collect();
    drop(shared);
    let store = BlockStore::open(&small_tiers(dir.path()), EvictorConfig::Lru).unwrap();
    for (id, len) in lengths_before {
        let got = store
            .read(id, 0, len)
            .unwrap_or_else(|e| panic!("seed {seed}: block {id} after a restart: {e}"));
        assert_eq!(
            got.len() as u64,
            len,
            "seed {seed}: block {id} after a restart"
        );
        check_bytes(id, 0, &got, &format!("seed {seed}: after a restart"));
    }
}

#[test]
fn concurrent_writers_readers_and_evictions_keep_the_store_consistent() {
    // MODEL_STEPS and MODEL_SEEDS make longer runs (scripts/fuzz.sh).
    let var = alluxio_testkit::env_number;
    for seed in 1..=var("MODEL_SEEDS", 3) {
        run(seed, var("MODEL_STEPS", 400) as usize);
    }
}
