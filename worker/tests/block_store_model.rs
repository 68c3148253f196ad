//! The block store against a model: seeded random sequences of block
//! writes (committed or abandoned, some past their reservation), reads,
//! short-circuit leases, removals and restarts, on two small tiers so that
//! eviction happens all the time. The store may evict what it likes, but
//! never a leased block, never less than it says it uses, and every block
//! it still has reads back exactly as written, also after a restart.

mod common;

use alluxio_common::config::EvictorConfig;
use alluxio_worker::block_store::{BlockStore, StoreError};
use common::{small_tiers, KIB};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// A block id of one of a few files (blocks of a file share a data file).
fn random_block(rng: &mut StdRng) -> u64 {
    let file: u64 = rng.random_range(1..=4);
    let index: u64 = rng.random_range(0..4);
    (file << 24) | index
}

fn run(seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut store = BlockStore::open(&small_tiers(dir.path()), EvictorConfig::Lru).unwrap();
    // What was committed, and which blocks are leased (open short-circuit).
    let mut written: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut leases: BTreeMap<u64, usize> = BTreeMap::new();
    let mut evictions_seen = 0;
    for step in 0..steps {
        let at = |what: &str| format!("seed {seed}, step {step}: {what}");
        let id = random_block(&mut rng);
        match rng.random_range(0..100) {
            0..=44 => {
                let max_len = rng.random_range(1..=256) * KIB;
                let result = store.create_block(id, (id & 0xff) * 256 * KIB, max_len, 0);
                match (result, store.contains(id)) {
                    (Err(StoreError::AlreadyCached(_)), true) => {}
                    (Err(StoreError::NoSpace { .. }), false) => {}
                    (Ok(mut w), false) => {
                        let len = rng.random_range(0..=max_len);
                        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                        for piece in bytes.chunks(64 * KIB as usize) {
                            w.append(piece)
                                .unwrap_or_else(|e| panic!("{}", at(&e.to_string())));
                        }
                        match rng.random_range(0..10) {
                            // Past the reservation: refused, nothing kept.
                            0 => {
                                let over = vec![0u8; (max_len - len + 1) as usize];
                                assert!(
                                    matches!(w.append(&over), Err(StoreError::TooLong { .. })),
                                    "{}",
                                    at("a write past the reservation")
                                );
                            }
                            // Abandoned: nothing kept.
                            1 => drop(w),
                            _ => {
                                let (length, _) = w.commit().unwrap();
                                assert_eq!(length, len, "{}", at("committed length"));
                                written.insert(id, bytes);
                            }
                        }
                    }
                    (other, cached) => panic!(
                        "{}",
                        at(&format!(
                            "create {id}: {:?} while cached: {cached}",
                            other.err()
                        ))
                    ),
                }
            }
            45..=64 => {
                if let Some(expected) = written.get(&id).filter(|_| store.contains(id)) {
                    let got = store.read(id, 0, expected.len() as u64).unwrap();
                    assert_eq!(&got[..], &expected[..], "{}", at("read"));
                }
            }
            65..=74 => {
                if store.open_local(id).is_ok() {
                    *leases.entry(id).or_default() += 1;
                }
            }
            75..=84 => {
                if let Some(n) = leases.get_mut(&id) {
                    store.close_local(id);
                    *n -= 1;
                    if *n == 0 {
                        leases.remove(&id);
                    }
                }
            }
            85..=94 => {
                if leases.contains_key(&id) {
                    continue;
                }
                store.remove(id);
                written.remove(&id);
                assert!(!store.contains(id), "{}", at("removed"));
            }
            _ => {
                for (id, n) in std::mem::take(&mut leases) {
                    for _ in 0..n {
                        store.close_local(id);
                    }
                }
                drop(store);
                store = BlockStore::open(&small_tiers(dir.path()), EvictorConfig::Lru).unwrap();
            }
        }
        // What holds after every step.
        written.retain(|id, _| store.contains(*id));
        for id in leases.keys() {
            assert!(
                store.contains(*id),
                "{}",
                at(&format!("leased block {id} evicted"))
            );
        }
        let stats = store.tier_stats();
        let used: u64 = stats.iter().map(|t| t.used).sum();
        let kept: u64 = written.values().map(|b| b.len() as u64).sum();
        for t in &stats {
            assert!(
                t.used <= t.capacity,
                "{}",
                at(&format!("{t:?} over its quota"))
            );
        }
        assert_eq!(used, kept, "{}", at("used bytes are the blocks kept"));
        evictions_seen = evictions_seen.max(store.evictions());
    }
    for (id, expected) in &written {
        let got = store.read(*id, 0, expected.len() as u64).unwrap();
        assert_eq!(
            &got[..],
            &expected[..],
            "seed {seed}: block {id} at the end"
        );
    }
    assert!(
        evictions_seen > 0 && !written.is_empty(),
        "seed {seed}: the run never evicted ({evictions_seen}) or kept nothing"
    );
}

#[test]
fn the_block_store_keeps_what_it_says_and_never_evicts_a_leased_block() {
    // MODEL_STEPS and MODEL_SEEDS make longer runs (scripts/fuzz.sh).
    let var = alluxio_testkit::env_number;
    for seed in 1..=var("MODEL_SEEDS", 3) {
        run(seed, var("MODEL_STEPS", 600) as usize);
    }
}
