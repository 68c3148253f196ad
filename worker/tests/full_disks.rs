//! Full disks under the cache: a tier directory whose disk says ENOSPC
//! below its quota (a disk smaller than configured, or shared) hands the
//! block to another directory or a slower tier, and a worker with no room
//! anywhere hands it to another worker; the write succeeds while any tier
//! anywhere has room. The disks are real size-limited tmpfs mounts (root).

use alluxio_common::config::{EvictorConfig, TierConfig, TierDirConfig};
use alluxio_common::units::ByteSize;
use alluxio_common::AlluxioError;
use alluxio_proto::grpc::WriteType;
use alluxio_testkit::cluster::{data, start, MIB};
use alluxio_testkit::small_disk::SmallDisk;
use alluxio_worker::block_store::BlockStore;
use alluxio_worker::WorkerServer;
use bytes::Bytes;
use std::path::Path;

fn tier(alias: &str, path: &Path, quota: u64) -> TierConfig {
    TierConfig {
        alias: alias.into(),
        dirs: vec![TierDirConfig {
            path: path.to_path_buf(),
            quota: ByteSize(quota),
        }],
    }
}

/// A MEM tier claiming 64 MiB on the small `disk`, and an HDD tier with
/// room in `hdd`.
fn mem_on(disk: &SmallDisk, hdd: &Path) -> [TierConfig; 2] {
    [
        tier("MEM", &disk.path().join("mem"), 64 * MIB),
        tier("HDD", hdd, 64 * MIB),
    ]
}

#[test]
fn a_block_that_fills_its_disk_moves_to_the_next_tier() {
    let Some(disk) = SmallDisk::mount(4 * MIB) else {
        return;
    };
    let hdd = tempfile::tempdir().unwrap();
    let tiers = mem_on(&disk, hdd.path());
    let store = BlockStore::open(&tiers, EvictorConfig::Lru).unwrap();
    let content = data(10 * MIB as usize, 3);
    let block = 7 << 24;
    let mut w = store.create_block(block, 0, 16 * MIB, 0).unwrap();
    for piece in content.chunks(MIB as usize) {
        w.append(piece).unwrap();
    }
    let (length, alias) = w.commit().unwrap();
    assert_eq!((length, alias.as_str()), (10 * MIB, "HDD"));
    assert_eq!(&store.read(block, 0, 10 * MIB).unwrap()[..], &content[..]);
    let stats = store.tier_stats();
    assert_eq!(stats[0].used, 0, "the bytes written to MEM were given back");
    assert_eq!(stats[0].capacity, 0, "a full disk is reported as no room");
    assert_eq!(stats[1].used, 10 * MIB);
    // The full directory is skipped from now on: the next block goes to
    // HDD without trying MEM.
    let mut w = store.create_block(8 << 24, 0, MIB, 0).unwrap();
    w.append(&[1; 1000]).unwrap();
    assert_eq!(w.commit().unwrap().1, "HDD");
    // Both survive a restart where they are.
    drop(store);
    let store = BlockStore::open(&tiers, EvictorConfig::Lru).unwrap();
    assert_eq!(&store.read(block, 0, 10 * MIB).unwrap()[..], &content[..]);
    assert_eq!(store.tier_stats()[1].blocks, 2);
}

#[test]
fn a_block_whose_record_finds_no_room_moves_to_the_next_tier_with_it() {
    let Some(disk) = SmallDisk::mount(4 * MIB) else {
        return;
    };
    let hdd = tempfile::tempdir().unwrap();
    let tiers = mem_on(&disk, hdd.path());
    let store = BlockStore::open(&tiers, EvictorConfig::Lru).unwrap();
    // Room on the disk for the block's bytes and not one page more: the
    // bytes go in, its record does not.
    let filler = disk.fill("filler");
    let len = std::fs::metadata(&filler).unwrap().len();
    let block_len = 64 << 10;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(len - block_len)
        .unwrap();
    let content = data(block_len as usize, 5);
    let block = 9 << 24;
    let mut w = store.create_block(block, 0, MIB, 0).unwrap();
    w.append(&content).unwrap();
    let (length, alias) = w.commit().unwrap();
    assert_eq!((length, alias.as_str()), (block_len, "HDD"));
    assert_eq!(&store.read(block, 0, block_len).unwrap()[..], &content[..]);
    let stats = store.tier_stats();
    assert_eq!((stats[0].used, stats[1].used), (0, block_len));
    // Nothing half-written is left on the full disk.
    let tmp = disk.path().join("mem/alluxio-blocks/tmp");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    drop(store);
    let store = BlockStore::open(&tiers, EvictorConfig::Lru).unwrap();
    assert_eq!(&store.read(block, 0, block_len).unwrap()[..], &content[..]);
}

#[test]
fn a_store_with_no_room_on_any_disk_refuses_the_block_and_keeps_nothing() {
    let Some(disk) = SmallDisk::mount(2 * MIB) else {
        return;
    };
    let tiers = [tier("MEM", &disk.path().join("mem"), 64 * MIB)];
    let store = BlockStore::open(&tiers, EvictorConfig::Lru).unwrap();
    let mut w = store.create_block(9 << 24, 0, 8 * MIB, 0).unwrap();
    let error = (0..8)
        .find_map(|_| w.append(&vec![5; MIB as usize]).err())
        .expect("a 2 MiB disk cannot take 8 MiB");
    assert!(
        matches!(
            error,
            alluxio_worker::block_store::StoreError::NoSpace { .. }
        ),
        "{error}"
    );
    drop(w);
    assert_eq!(store.tier_stats()[0].used, 0);
    assert!(!store.contains(9 << 24));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_without_room_hands_the_block_to_another_worker() {
    let (Some(disk0), Some(disk1)) = (SmallDisk::mount(3 * MIB), SmallDisk::mount(16 * MIB)) else {
        return;
    };
    let mut c = start(0, 0, |_| {}).await;
    let master = c.master().rpc_addr.to_string();
    // Both workers claim far more than their disks hold; worker 0 claims
    // the most, so the location policy (most room first) picks it first
    // for every block.
    for (i, disk, claim) in [(0, &disk0, 2 << 30), (1, &disk1, 1 << 30)] {
        let mut config = c.worker_config(i, 0);
        config.worker.tiers = vec![tier("MEM", &disk.path().join("mem"), claim)];
        let worker = WorkerServer::start(&config, &master).await.unwrap();
        c.workers.push(Some(worker));
    }
    c.wait_for_workers(2).await;

    // 1 MiB blocks: three fit on worker 0, the rest go to worker 1, the
    // block that found the disk full included.
    let content = data(8 * MIB as usize, 11);
    let chunks: Vec<Bytes> = content
        .chunks(256 << 10)
        .map(Bytes::copy_from_slice)
        .collect();
    c.fs.write_file("/big", WriteType::MustCache, chunks)
        .await
        .unwrap();
    let held = |i: usize| -> u64 { c.worker(i).store.tier_stats()[0].blocks };
    assert!(held(0) <= 3, "{} blocks on a 3 MiB disk", held(0));
    assert_eq!(held(0) + held(1), 8);
    let reader = c.fs.open("/big", None).await.unwrap();
    assert_eq!(&reader.read_at(0, 8 * MIB).await.unwrap()[..], &content[..]);

    // With both disks full, the writer is told so, and the file is gone.
    let refused =
        c.fs.write_file(
            "/more",
            WriteType::MustCache,
            [Bytes::from(vec![1u8; 16 * MIB as usize])],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, AlluxioError::ResourceExhausted(_)),
        "{refused:?}"
    );
    assert!(c.fs.master().get_status("/more", None).await.is_err());
    let reader = c.fs.open("/big", None).await.unwrap();
    assert_eq!(&reader.read_at(0, 8 * MIB).await.unwrap()[..], &content[..]);
}
