//! Workers of a fault-tolerant cluster: they register with the leader of
//! three masters, and after the leader's loss they find the new one by
//! themselves and report their blocks again, so the new leader knows where
//! every cached block is and reads are served from the cache again.

use alluxio_client::FileSystem;
use alluxio_common::config::{TierConfig, TierDirConfig};
use alluxio_common::units::ByteSize;
use alluxio_proto::grpc::WriteType;
use alluxio_testkit::cluster::{data, MIB};
use alluxio_testkit::quorum::Quorum;
use alluxio_worker::WorkerServer;
use bytes::Bytes;
use std::time::Duration;

/// Blocks of `path` that the master knows a cached copy of.
async fn located_blocks(fs: &FileSystem, path: &str) -> usize {
    let Ok(info) = fs.master().get_status(path, Some(-1)).await else {
        return 0;
    };
    info.file_block_infos
        .iter()
        .filter(|b| {
            b.block_info
                .as_ref()
                .is_some_and(|i| !i.locations.is_empty())
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_report_their_blocks_to_a_new_leader() {
    alluxio_common::rpc::set_failover_timeout(Duration::from_secs(20));
    let mut q = Quorum::start(3, |_| {}).await;
    let config = q.client_config();
    let mut workers = Vec::new();
    for i in 0..2 {
        let mut c = config.clone();
        c.worker.data_dir = q.dir.path().join(format!("worker-{i}"));
        c.worker.tiers = vec![TierConfig {
            alias: "MEM".into(),
            dirs: vec![TierDirConfig {
                path: c.worker.data_dir.join("mem"),
                quota: ByteSize(64 * MIB),
            }],
        }];
        workers.push(
            WorkerServer::start(&c, &config.master_address())
                .await
                .unwrap(),
        );
    }
    let fs = FileSystem::with_config(q.client().await, &config);
    alluxio_testkit::eventually("two live workers", Duration::from_secs(20), || async {
        let live = fs.master().worker_infos().await.ok()?;
        (live.iter().filter(|w| w.state == "LIVE").count() == 2).then_some(())
    })
    .await;
    let content = data((5 * MIB + 3) as usize, 7);
    fs.write_file(
        "/f",
        WriteType::CacheThrough,
        [Bytes::from(content.clone())],
    )
    .await
    .unwrap();
    assert_eq!(located_blocks(&fs, "/f").await, 6);

    let leader = q.wait_for_leader().await;
    q.stop(leader).await;
    let new_leader = q.wait_for_leader().await;
    assert_ne!(new_leader, leader);
    // Block locations are soft state: the new leader learns them only from
    // the workers' new registrations.
    alluxio_testkit::eventually(
        "the new leader to know every block",
        Duration::from_secs(20),
        || async { (located_blocks(&fs, "/f").await == 6).then_some(()) },
    )
    .await;
    let reader = fs.open("/f", None).await.unwrap();
    assert_eq!(
        &reader.read_at(0, u64::MAX / 2).await.unwrap()[..],
        &content[..]
    );

    for w in workers {
        w.shutdown().await;
    }
    for m in q.masters.into_iter().flatten() {
        m.shutdown().await;
    }
}
