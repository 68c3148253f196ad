//! Block store behaviour: commit visibility, restart scans, damage
//! detection, eviction order and exemptions, tiers, the sparse layout.

use super::*;
use alluxio_common::config::{TierConfig, TierDirConfig};
use alluxio_common::units::ByteSize;
use std::os::unix::fs::FileExt;

fn tiers(root: &Path, quotas: &[(&str, u64)]) -> Vec<TierConfig> {
    quotas
        .iter()
        .map(|(alias, q)| TierConfig {
            alias: alias.to_string(),
            dirs: vec![TierDirConfig {
                path: root.join(alias),
                quota: ByteSize(*q),
            }],
        })
        .collect()
}

fn put(store: &BlockStore, file: u64, index: u64, len: usize, fill: u8) -> String {
    let id = (file << 24) | index;
    let mut w = store
        .create_block(id, index * (4 << 20), len as u64, 0)
        .unwrap();
    w.append(&vec![fill; len]).unwrap();
    w.commit().unwrap().1
}

#[test]
fn written_blocks_read_back_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiers(dir.path(), &[("MEM", 16 << 20)]);
    let store = BlockStore::open(&t, EvictorConfig::Lru).unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut w = store.create_block(5 << 24, 0, 4 << 20, 0).unwrap();
    w.append(&data[..1000]).unwrap();
    w.append(&data[1000..]).unwrap();
    assert!(!store.contains(5 << 24), "invisible before commit");
    w.commit().unwrap();
    assert_eq!(&store.read(5 << 24, 0, 3_000_000).unwrap()[..], &data[..]);
    assert_eq!(
        &store.read(5 << 24, 1_048_570, 20).unwrap()[..],
        &data[1_048_570..1_048_590]
    );
    drop(store);
    let store = BlockStore::open(&t, EvictorConfig::Lru).unwrap();
    assert_eq!(
        &store.read(5 << 24, 2_000_000, 1000).unwrap()[..],
        &data[2_000_000..2_001_000]
    );
    assert_eq!(store.tier_stats()[0].used, 3_000_000);
}

#[test]
fn many_buffers_are_appended_in_order_with_their_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiers(dir.path(), &[("MEM", 16 << 20)]);
    let store = BlockStore::open(&t, EvictorConfig::Lru).unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    // More buffers than one vectored write takes, of uneven sizes, some
    // empty, none aligned to a checksum chunk.
    let mut chunks: Vec<&[u8]> = Vec::new();
    let mut at = 0;
    for i in 0.. {
        let len = [0, 1, 777, 4096, 1500][i % 5];
        let end = (at + len).min(data.len());
        chunks.push(&data[at..end]);
        at = end;
        if at == data.len() {
            break;
        }
    }
    assert!(chunks.len() > 2048, "{} buffers", chunks.len());
    let mut w = store.create_block(6 << 24, 0, 4 << 20, 0).unwrap();
    let (first, rest) = chunks.split_at(1500);
    w.append_all(first).unwrap();
    w.append_all(rest).unwrap();
    assert!(
        matches!(
            w.append_all(&[&[0u8; 2 << 20][..]]),
            Err(StoreError::TooLong { .. })
        ),
        "past the block's length"
    );
    w.commit().unwrap();
    drop(store);
    // Reopened, the block reads back whole: its checksums were right.
    let store = BlockStore::open(&t, EvictorConfig::Lru).unwrap();
    assert_eq!(&store.read(6 << 24, 0, 3_000_000).unwrap()[..], &data[..]);
}

#[test]
fn chunks_placed_out_of_order_make_a_whole_verified_block() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiers(dir.path(), &[("MEM", 16 << 20)]);
    let store = BlockStore::open(&t, EvictorConfig::Lru).unwrap();
    let len = 2 * CHUNK_SIZE as usize + 12345;
    let data: Vec<u8> = (0..len as u32).map(|i| (i % 253) as u8).collect();
    let chunk = |i: usize| &data[i * CHUNK_SIZE as usize..((i + 1) * CHUNK_SIZE as usize).min(len)];
    let crc = |i: usize| crc32fast::hash(chunk(i));
    let id = 7 << 24;
    let mut w = store.create_block(id, 0, len as u64, 0).unwrap();
    let refused = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Incomplete { .. }));
    // Chunk 2 (the short last one) first, chunk 0 in two buffers.
    w.place_chunk(2, &[chunk(2)], crc(2)).unwrap();
    let (a, b) = chunk(0).split_at(1000);
    w.place_chunk(0, &[a, b], crc(0)).unwrap();
    assert!(refused(w.place_chunk(0, &[chunk(0)], crc(0))), "twice");
    assert!(refused(w.place_chunk(1, &[chunk(2)], crc(1))), "short");
    assert!(
        refused(w.place_chunk(3, &[chunk(2)], crc(2))),
        "past the end"
    );
    assert!(refused(w.append(chunk(1))), "mixed with appends");
    w.place_chunk(1, &[chunk(1)], crc(1)).unwrap();
    w.commit().unwrap();
    drop(store);
    // Reopened, the block reads back whole: its checksums were right.
    let store = BlockStore::open(&t, EvictorConfig::Lru).unwrap();
    assert_eq!(&store.read(id, 0, len as u64).unwrap()[..], &data[..]);
    assert_eq!(store.tier_stats()[0].used, len as u64);
}

#[test]
fn a_block_with_a_chunk_missing_or_a_wrong_checksum_is_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiers(dir.path(), &[("MEM", 16 << 20)]);
    let store = BlockStore::open(&t, EvictorConfig::Lru).unwrap();
    let data = vec![9u8; 2 * CHUNK_SIZE as usize];
    let half = &data[..CHUNK_SIZE as usize];
    let mut w = store
        .create_block(8 << 24, 0, data.len() as u64, 0)
        .unwrap();
    w.place_chunk(1, &[half], crc32fast::hash(half)).unwrap();
    assert!(matches!(w.commit(), Err(StoreError::Incomplete { .. })));
    assert!(!store.contains(8 << 24));
    assert_eq!(store.tier_stats()[0].used, 0, "its room is given back");
    // A checksum that does not match its bytes is caught on read.
    let mut w = store
        .create_block(8 << 24, 0, data.len() as u64, 0)
        .unwrap();
    w.place_chunk(0, &[half], crc32fast::hash(half)).unwrap();
    w.place_chunk(1, &[half], 12345).unwrap();
    w.commit().unwrap();
    assert!(matches!(
        store.read(8 << 24, 0, data.len() as u64),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn uncommitted_blocks_vanish_and_free_their_space() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiers(dir.path(), &[("MEM", 8 << 20)]);
    let store = BlockStore::open(&t, EvictorConfig::Lru).unwrap();
    let mut w = store.create_block(9 << 24, 0, 8 << 20, 0).unwrap();
    w.append(&[1; 100]).unwrap();
    assert!(
        matches!(
            store.create_block(10 << 24, 0, 1, 0),
            Err(StoreError::NoSpace { .. })
        ),
        "reservation counts"
    );
    drop(w);
    assert!(!store.contains(9 << 24));
    assert_eq!(store.tier_stats()[0].used, 0);
    drop(store);
    assert!(!BlockStore::open(&t, EvictorConfig::Lru)
        .unwrap()
        .contains(9 << 24));
}

#[test]
fn damaged_blocks_are_detected_and_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiers(dir.path(), &[("MEM", 16 << 20)]);
    let store = BlockStore::open(&t, EvictorConfig::Lru).unwrap();
    put(&store, 1, 0, 2 << 20, 7);
    put(&store, 2, 0, 2 << 20, 8);
    let data1 = dir.path().join("MEM/alluxio-blocks/data/1");
    // Alter one byte: the read that touches it fails and drops the block.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&data1)
        .unwrap();
    f.write_at(&[0], 1_500_000).unwrap();
    assert!(
        store.read(1 << 24, 0, 100).is_ok(),
        "untouched chunk still verifies"
    );
    assert!(matches!(
        store.read(1 << 24, 1_400_000, 200_000),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(!store.contains(1 << 24));
    let (_, removed) = store.take_changes();
    assert!(removed.contains(&(1 << 24)));
    // Truncated data file: found at startup.
    let data2 = dir.path().join("MEM/alluxio-blocks/data/2");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data2)
        .unwrap()
        .set_len(1000)
        .unwrap();
    drop(store);
    let store = BlockStore::open(&t, EvictorConfig::Lru).unwrap();
    assert!(!store.contains(2 << 24));
}

#[test]
fn eviction_takes_least_recently_used_and_spares_pinned_and_open_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiers(dir.path(), &[("MEM", 4 << 20)]);
    let store = BlockStore::open(&t, EvictorConfig::Lru).unwrap();
    for f in 1..=4 {
        put(&store, f, 0, 1 << 20, f as u8);
    }
    store.set_pinned_files([1].into_iter().collect());
    store.read(2 << 24, 0, 10).unwrap(); // 2 is now recent; 3 is the oldest unpinned.
    let lease = store.open_local(4 << 24).unwrap();
    put(&store, 5, 0, 1 << 20, 5);
    assert!(store.contains(1 << 24), "pinned");
    assert!(store.contains(2 << 24), "recently used");
    assert!(!store.contains(3 << 24), "least recently used goes first");
    assert!(store.contains(4 << 24));
    put(&store, 6, 0, 1 << 20, 6);
    assert!(store.contains(4 << 24), "open for short-circuit reading");
    assert!(!store.contains(2 << 24));
    store.close_local(4 << 24);
    assert_eq!(lease.length, 1 << 20);
    assert_eq!(store.evictions(), 2);
}

#[test]
fn a_full_tier_falls_through_to_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiers(dir.path(), &[("MEM", 2 << 20), ("SSD", 8 << 20)]);
    let store = BlockStore::open(&t, EvictorConfig::Lrfu).unwrap();
    store.set_pinned_files([1, 2, 3].into_iter().collect());
    assert_eq!(put(&store, 1, 0, 1 << 20, 1), "MEM");
    assert_eq!(put(&store, 2, 0, 1 << 20, 2), "MEM");
    assert_eq!(
        put(&store, 3, 0, 1 << 20, 3),
        "SSD",
        "MEM is full of pinned blocks"
    );
    store.set_pinned_files(HashSet::new());
    store.promote(3 << 24).unwrap();
    assert_eq!(store.tier_of(3 << 24).as_deref(), Some("MEM"));
    assert_eq!(&store.read(3 << 24, 0, 4).unwrap()[..], &[3, 3, 3, 3]);
    let stats = store.tier_stats();
    assert_eq!((stats[0].blocks, stats[1].blocks), (2, 0));
}

#[test]
fn blocks_of_one_file_share_a_sparse_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiers(dir.path(), &[("MEM", 32 << 20)]);
    let store = BlockStore::open(&t, EvictorConfig::Lru).unwrap();
    put(&store, 8, 0, 4 << 20, 1);
    put(&store, 8, 1, 4 << 20, 2);
    let data = std::fs::read(dir.path().join("MEM/alluxio-blocks/data/8")).unwrap();
    assert_eq!(data.len(), 8 << 20);
    assert_eq!((data[0], data[(4 << 20) + 1]), (1, 2));
    store.remove(8 << 24);
    assert!(
        dir.path().join("MEM/alluxio-blocks/data/8").exists(),
        "block 1 is still there"
    );
    store.remove((8 << 24) | 1);
    assert!(!dir.path().join("MEM/alluxio-blocks/data/8").exists());
}

#[test]
fn bad_tier_configurations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(BlockStore::open(&tiers(dir.path(), &[("RAM", 1)]), EvictorConfig::Lru).is_err());
    assert!(BlockStore::open(
        &tiers(dir.path(), &[("MEM", 1), ("MEM", 1)]),
        EvictorConfig::Lru
    )
    .is_err());
    assert!(BlockStore::open(&[], EvictorConfig::Lru).is_err());
}

#[test]
fn bytes_being_sent_keep_their_block_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiers(dir.path(), &[("MEM", 16 << 20)]);
    let store = BlockStore::open(&t, EvictorConfig::Lru).unwrap();
    put(&store, 1, 0, 2_000_000, 9);
    let sending = store.read(1 << 24, 0, 2_000_000).unwrap();
    // A free command while the bytes are still in flight waits for them.
    store.remove(1 << 24);
    assert!(sending.iter().all(|&b| b == 9));
    assert_eq!(store.tier_stats()[0].used, 2_000_000);
    drop(sending);
    assert!(!store.contains(1 << 24));
    assert_eq!(store.tier_stats()[0].used, 0);
}
