//! Worker registration in pages and heartbeats that carry the pinned set
//! only when it changed: what lets a worker with millions of blocks
//! register, and keeps every heartbeat answer small.

mod common;

use alluxio_common::auth::Role;
use alluxio_common::AlluxioError;
use alluxio_proto::grpc::*;
use common::start;
use std::collections::HashMap;

fn address() -> WorkerAddress {
    WorkerAddress {
        host: "127.0.0.1".into(),
        rpc_port: 29999,
        web_port: 30000,
        data_port: 0,
    }
}

fn page(page: u32, blocks: Vec<u64>) -> RegisterWorkerRequest {
    RegisterWorkerRequest {
        worker_id: 7,
        address: Some(address()),
        tiers: vec![TierUsage {
            tier_alias: "MEM".into(),
            capacity_bytes: 1 << 30,
            used_bytes: 0,
        }],
        blocks_on_tiers: HashMap::from([("MEM".to_string(), BlockIdList { block_ids: blocks })]),
        page,
    }
}

#[tokio::test]
async fn registration_comes_in_pages_and_the_pinned_set_only_when_it_changed() {
    let m = start(|_| {}).await;
    let mut files = Vec::new();
    for path in ["/a", "/b"] {
        m.client
            .create_file(CreateFileRequest {
                path: path.into(),
                write_type: WriteType::MustCache as i32,
                ..Default::default()
            })
            .await
            .unwrap();
        let info = m
            .client
            .complete_file(CompleteFileRequest {
                path: path.into(),
                length: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        files.push(info);
    }
    let worker = m.client_as("worker", Role::Worker).await;

    // A later page before page 0 is refused.
    let err = worker
        .register_worker(page(1, vec![files[1].block_ids[0]]))
        .await
        .unwrap_err();
    assert!(matches!(err, AlluxioError::FailedPrecondition(_)), "{err}");
    // Page 0, then page 1: both blocks are known to be on the worker.
    worker
        .register_worker(page(0, vec![files[0].block_ids[0]]))
        .await
        .unwrap();
    worker
        .register_worker(page(1, vec![files[1].block_ids[0]]))
        .await
        .unwrap();
    for path in ["/a", "/b"] {
        let status = m.client.get_status(path, None).await.unwrap();
        assert_eq!(status.in_alluxio_percentage, 100, "{path}");
    }
    // Page 0 again starts afresh.
    worker.register_worker(page(0, vec![])).await.unwrap();
    let status = m.client.get_status("/b", None).await.unwrap();
    assert_eq!(status.in_alluxio_percentage, 0);

    // The pinned set comes with its version, then not again until it
    // changes.
    let beat = |version: u64| WorkerHeartbeatRequest {
        worker_id: 7,
        pinned_version: version,
        ..Default::default()
    };
    let first = worker.worker_heartbeat(beat(0)).await.unwrap();
    let pinned = first.pinned.expect("the set, the first time");
    assert!(pinned.file_ids.is_empty());
    let again = worker.worker_heartbeat(beat(pinned.version)).await.unwrap();
    assert!(again.pinned.is_none(), "unchanged: not sent");
    m.client
        .set_attribute(SetAttributeRequest {
            path: "/a".into(),
            pinned: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    let changed = worker
        .worker_heartbeat(beat(pinned.version))
        .await
        .unwrap()
        .pinned
        .expect("changed: sent");
    assert_eq!(changed.file_ids, vec![files[0].file_id]);
    assert_ne!(changed.version, pinned.version);
    let after = worker
        .worker_heartbeat(beat(changed.version))
        .await
        .unwrap();
    assert!(after.pinned.is_none());
}
