//! Master round trips of the data path: a client reading a cached file
//! again and again asks the master for the live-worker list at most once
//! per `user.worker_list_refresh`, not before every block, and asks again
//! at once after a worker on its list failed it. Counted with the
//! master's own RPC metrics.

use alluxio_proto::grpc::WriteType;
use alluxio_testkit::cluster::{data, start, Cluster, MIB};
use bytes::Bytes;

async fn worker_list_calls(c: &Cluster) -> u64 {
    c.master_rpc_calls("GetWorkerInfoList").await
}

#[tokio::test]
async fn repeated_reads_ask_the_master_for_workers_once_and_again_after_a_failure() {
    let mut c = start(1, 64 * MIB, |_| {}).await;
    let content = data((2 * MIB + 7) as usize, 3);
    c.fs.write_file(
        "/f",
        WriteType::CacheThrough,
        [Bytes::from(content.clone())],
    )
    .await
    .unwrap();

    let before = worker_list_calls(&c).await;
    for _ in 0..20 {
        let reader = c.fs.open("/f", None).await.unwrap();
        assert_eq!(
            &reader.read_at(0, u64::MAX / 2).await.unwrap()[..],
            &content[..]
        );
    }
    let after = worker_list_calls(&c).await;
    assert!(
        after - before <= 1,
        "20 reads asked for the worker list {} times",
        after - before
    );

    // The worker that holds the blocks goes: the read falls back to the
    // UFS, and the failure sends the next read back to the master.
    c.workers[0].take().unwrap().shutdown().await;
    let reader = c.fs.open("/f", None).await.unwrap();
    assert_eq!(
        &reader.read_at(0, u64::MAX / 2).await.unwrap()[..],
        &content[..]
    );
    let reader = c.fs.open("/f", None).await.unwrap();
    assert_eq!(&reader.read_at(0, 100).await.unwrap()[..], &content[..100]);
    assert!(
        worker_list_calls(&c).await > after,
        "the failed worker did not invalidate the client's list"
    );
}
