//! Fault-tolerant masters and block locations: after the leader's loss,
//! how soon the new leader knows where every cached block is (the workers'
//! re-registrations), against how soon it takes its first write.

use crate::report::{write, Bar};
use alluxio_client::FileSystem;
use alluxio_common::config::{TierConfig, TierDirConfig};
use alluxio_common::units::ByteSize;
use alluxio_proto::grpc::{CreateDirectoryRequest, WriteType};
use alluxio_testkit::quorum::Quorum;
use alluxio_worker::WorkerServer;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

const BLOCK: u64 = 4096;
const BLOCKS_PER_FILE: u64 = 1000;

/// Blocks the master at the other end of `fs` knows a live worker holds.
async fn known_blocks(fs: &FileSystem) -> u64 {
    match fs.master().worker_infos().await {
        Ok(workers) => workers
            .iter()
            .filter(|w| w.state == "LIVE")
            .map(|w| w.block_count)
            .sum(),
        Err(_) => 0,
    }
}

pub async fn block_locations(out: &Path, blocks: u64) {
    alluxio_common::rpc::set_failover_timeout(Duration::from_secs(60));
    let mut quorum = Quorum::start(3, |c| c.user.block_size = ByteSize(BLOCK)).await;
    let config = quorum.client_config();
    let mut workers = Vec::new();
    for i in 0..3 {
        let mut c = config.clone();
        c.worker.heartbeat_interval.0 = Duration::from_secs(1);
        c.worker.data_dir = quorum.dir.path().join(format!("worker-{i}"));
        c.worker.tiers = vec![TierConfig {
            alias: "MEM".into(),
            dirs: vec![TierDirConfig {
                path: c.worker.data_dir.join("mem"),
                quota: ByteSize(blocks * BLOCK),
            }],
        }];
        workers.push(
            WorkerServer::start(&c, &config.master_address())
                .await
                .expect("worker"),
        );
    }
    let fs = FileSystem::with_config(quorum.client().await, &config);
    fs.master()
        .create_directory(CreateDirectoryRequest {
            path: "/blocks".into(),
            ..Default::default()
        })
        .await
        .expect("mkdir");
    let files = blocks.div_ceil(BLOCKS_PER_FILE);
    let content = Bytes::from(vec![7u8; (BLOCK * BLOCKS_PER_FILE) as usize]);
    let started = Instant::now();
    futures::stream::iter(0..files)
        .map(|i| {
            let (fs, content) = (fs.clone(), content.clone());
            async move {
                fs.write_file(&format!("/blocks/f{i}"), WriteType::MustCache, [content])
                    .await
                    .expect("write");
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    let total = files * BLOCKS_PER_FILE;
    let write_secs = started.elapsed().as_secs_f64();
    alluxio_testkit::eventually("every block known", Duration::from_secs(120), || async {
        (known_blocks(&fs).await == total).then_some(())
    })
    .await;

    let leader = quorum.wait_for_leader().await;
    quorum.stop(leader).await;
    let killed = Instant::now();
    let new_leader = quorum.wait_for_leader().await;
    let serving_secs = killed.elapsed().as_secs_f64();
    let mut known_at = None;
    while killed.elapsed() < Duration::from_secs(120) {
        if known_blocks(&fs).await == total {
            known_at = Some(killed.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let known_secs = known_at.expect("the new leader never learnt every block");
    let after_takeover = known_secs - serving_secs;
    for w in workers {
        w.shutdown().await;
    }
    for m in quorum.masters.into_iter().flatten() {
        m.shutdown().await;
    }
    write(
        out,
        "ha_block_locations",
        "seconds after the leader's loss",
        &[
            Bar {
                label: format!("every one of {total} blocks located"),
                value: known_secs,
            },
            Bar {
                label: "new leader serving".into(),
                value: serving_secs,
            },
        ],
        json!({
            "blocks": total,
            "workers": 3,
            "new_leader": new_leader,
            "serving_after_s": serving_secs,
            "all_blocks_known_after_s": known_secs,
            "all_blocks_known_after_takeover_s": after_takeover,
            "write_secs": write_secs,
            "target_after_takeover_s": 5.0,
            "meets_target": after_takeover < 5.0,
        }),
    );
}
