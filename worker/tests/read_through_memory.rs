//! Blocks fetched from the UFS take room from `worker.read_through_memory`
//! first: with room for one block, concurrent cold readers of four blocks
//! all get their bytes, one fetch at a time.

use alluxio_common::units::ByteSize;
use alluxio_proto::grpc::WriteType;
use alluxio_testkit::cluster::{data, start, MIB};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cold_reads_stay_within_the_read_through_memory() {
    let c = start(1, 64 * MIB, |cfg| {
        cfg.user.block_size = ByteSize(4 * MIB);
        cfg.user.short_circuit = false;
        cfg.worker.read_through_memory = ByteSize(4 * MIB);
    })
    .await;
    let content = data(16 * MIB as usize, 3);
    // THROUGH: in the UFS only, so every block is a cold fetch.
    c.fs.write_file(
        "/cold",
        WriteType::Through,
        [bytes::Bytes::from(content.clone())],
    )
    .await
    .unwrap();
    let readers: Vec<_> = (0..4u64)
        .map(|i| {
            let fs = c.fs.clone();
            tokio::spawn(async move {
                let r = fs.open("/cold", None).await.unwrap();
                r.read_at(i * 4 * MIB, 4 * MIB).await.unwrap()
            })
        })
        .collect();
    for (i, reader) in readers.into_iter().enumerate() {
        let got = reader.await.unwrap();
        let at = i * 4 * MIB as usize;
        assert_eq!(&got[..], &content[at..at + 4 * MIB as usize], "block {i}");
    }
    let metrics = &c.worker(0).metrics;
    assert!(
        metrics.read_through_bytes_peak.get() > 0,
        "nothing was fetched"
    );
    assert!(
        metrics.read_through_bytes_peak.get() <= (4 * MIB) as i64,
        "fetches held {} bytes at once",
        metrics.read_through_bytes_peak.get()
    );
    // Read-ahead may still be fetching; its room comes back when it ends.
    alluxio_testkit::eventually(
        "the room back",
        std::time::Duration::from_secs(20),
        || async { (metrics.read_through_bytes.get() == 0).then_some(()) },
    )
    .await;
}
