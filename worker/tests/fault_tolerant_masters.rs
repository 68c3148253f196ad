//! Workers of a fault-tolerant cluster: they register with the leader of
//! three masters, and after the leader's loss they find the new one by
//! themselves and report their blocks again, so the new leader knows where
//! every cached block is and reads are served from the cache again; a
//! load job goes on with the new leader.

use alluxio_client::FileSystem;
use alluxio_common::config::{TierConfig, TierDirConfig};
use alluxio_common::units::ByteSize;
use alluxio_proto::grpc::{JobState, LoadOptions, WriteType};
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

/// Three masters and two workers of `quota` bytes each, all live.
async fn quorum_with_workers(quota: u64) -> (Quorum, Vec<WorkerServer>, FileSystem) {
    alluxio_common::rpc::set_failover_timeout(Duration::from_secs(20));
    let q = Quorum::start(3, |_| {}).await;
    let config = q.client_config();
    let mut workers = Vec::new();
    for i in 0..2 {
        let mut c = config.clone();
        c.worker.data_dir = q.dir.path().join(format!("worker-{i}"));
        c.worker.tiers = vec![TierConfig {
            alias: "MEM".into(),
            dirs: vec![TierDirConfig {
                path: c.worker.data_dir.join("mem"),
                quota: ByteSize(quota),
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
    (q, workers, fs)
}

async fn shut_down(q: Quorum, workers: Vec<WorkerServer>) {
    for w in workers {
        w.shutdown().await;
    }
    for m in q.masters.into_iter().flatten() {
        m.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_report_their_blocks_to_a_new_leader() {
    let (mut q, workers, fs) = quorum_with_workers(64 * MIB).await;
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
    shut_down(q, workers).await;
}

/// A load job is journaled through Raft: when its leader goes, the new
/// leader resumes it after the last file handled, and the workers answer
/// "cached already" for what they finished, so no block is fetched twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_load_job_goes_on_after_a_failover() {
    let (mut q, workers, fs) = quorum_with_workers(256 * MIB).await;
    let ufs = q.dir.path().join("ufs/warm");
    std::fs::create_dir_all(&ufs).unwrap();
    let mut total = 0;
    for i in 0..12 {
        let bytes = data((5 * MIB / 2) as usize, i as u8);
        std::fs::write(ufs.join(format!("f{i:02}")), &bytes).unwrap();
        total += bytes.len() as u64;
    }
    // Paced, so that the leader goes in the middle of it.
    let options = LoadOptions {
        replicas: 1,
        bandwidth_bytes_per_sec: 8 * MIB,
        ..Default::default()
    };
    let job = fs
        .master()
        .submit_load("/warm", options)
        .await
        .unwrap()
        .job
        .unwrap();
    alluxio_testkit::eventually("a few files loaded", Duration::from_secs(30), || async {
        let job = fs.master().get_job(job.job_id).await.ok()?;
        (job.files_done >= 3).then_some(())
    })
    .await;
    let leader = q.wait_for_leader().await;
    q.stop(leader).await;
    assert_ne!(q.wait_for_leader().await, leader);
    let done = alluxio_testkit::eventually("the job to end", Duration::from_secs(60), || async {
        let job = fs.master().get_job(job.job_id).await.ok()?;
        (job.state() != JobState::Running).then_some(job)
    })
    .await;
    assert_eq!(done.state(), JobState::Succeeded, "{done:?}");
    assert_eq!((done.files_done, done.files_failed), (12, 0));
    assert_eq!(done.bytes_done, total);
    let fetched: u64 = workers.iter().map(|w| w.metrics.bytes_read_ufs.get()).sum();
    assert_eq!(fetched, total, "no block was fetched twice");
    for f in fs.master().list_status("/warm", false, None).await.unwrap() {
        assert_eq!(f.in_alluxio_percentage, 100, "{}", f.path);
    }
    shut_down(q, workers).await;
}
