//! Requests a caller cannot abuse, sent as raw gRPC: `WriteBlock` streams
//! that place a block at another block's offset, write a block that is
//! already cached, or race a writer of the same block, and `ReadBlock`
//! ranges whose end overflows, are refused, and the cached bytes and the
//! reservations stay as they were.

use alluxio_common::auth::Role;
use alluxio_proto::grpc::{
    CreateFileRequest, ReadBlockRequest, WriteBlockChunk, WriteBlockHeader, WriteType,
};
use alluxio_testkit::cluster::{start, MIB};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

fn header(block_id: u64, offset: u64, max_length: u64, capability: &str) -> WriteBlockChunk {
    WriteBlockChunk {
        header: Some(WriteBlockHeader {
            block_id,
            block_offset_in_file: offset,
            max_length,
            pinned: false,
            capability: capability.to_string(),
        }),
        data: Bytes::from(vec![0xEEu8; 1024]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_concurrent_block_writes_are_refused() {
    let c = start(1, 64 * MIB, |cfg| {
        cfg.user.block_size = alluxio_common::units::ByteSize(MIB)
    })
    .await;
    let content: Vec<u8> = (0..2 * MIB as usize).map(|i| (i % 251) as u8).collect();
    let info =
        c.fs.write_file(
            "/two-blocks",
            WriteType::MustCache,
            [Bytes::from(content.clone())],
        )
        .await
        .unwrap();
    let first = info.file_block_infos[0]
        .block_info
        .clone()
        .unwrap()
        .block_id;
    let used = || c.worker(0).store.tier_stats()[0].used;
    let used_before = used();
    let worker = c.raw_worker(0, &c.credentials("alice", Role::User)).await;
    let write_once = |chunk: WriteBlockChunk| {
        let mut worker = worker.clone();
        async move {
            worker
                .write_block(tokio_stream::iter([chunk]))
                .await
                .unwrap_err()
        }
    };

    // A file being written (created, not completed): its blocks are the
    // only ones a client may write.
    let pending = c
        .client
        .create_file(CreateFileRequest {
            path: "/being-written".into(),
            write_type: WriteType::MustCache as i32,
            block_size_bytes: MIB,
            ..Default::default()
        })
        .await
        .unwrap();
    let new_block = pending.file_id << 24;
    // Block 1 placed at offset 0, where block 0 would be.
    let err = write_once(header(new_block | 1, 0, MIB, &pending.capability)).await;
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    // An offset that overflows.
    let err = write_once(header(
        new_block | 0xFF_FFFF,
        0,
        u64::MAX / 2,
        &pending.capability,
    ))
    .await;
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    // A block size other than the file's: a bigger reservation than the
    // master allows, or blocks that overlap.
    let err = write_once(header(new_block, 0, 4 * MIB, &pending.capability)).await;
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    assert!(err.message().contains("block size"), "{err}");
    // A block of no file at all: no capability can name it.
    let stranger = (pending.file_id + 1000) << 24;
    let err = write_once(header(stranger, 0, MIB, &pending.capability)).await;
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
    // A block that is cached already, of a completed file: written once only.
    let err = write_once(header(first, 0, MIB, &info.capability)).await;
    assert_eq!(err.code(), tonic::Code::AlreadyExists, "{err}");
    assert_eq!(used(), used_before, "a refused write kept a reservation");

    // Two writers of one new block: the second is refused while the first
    // holds it; a stream that ends before any data keeps nothing.
    let (tx, rx) = mpsc::channel(4);
    let mut empty = header(new_block, 0, MIB, &pending.capability);
    empty.data = Bytes::new();
    tx.send(empty).await.unwrap();
    let mut holder = worker.clone();
    let first_writer =
        tokio::spawn(async move { holder.write_block(ReceiverStream::new(rx)).await });
    alluxio_testkit::eventually(
        "the first writer's reservation",
        std::time::Duration::from_secs(10),
        || async { (used() > used_before).then_some(()) },
    )
    .await;
    let err = write_once(header(new_block, 0, MIB, &pending.capability)).await;
    assert_eq!(err.code(), tonic::Code::AlreadyExists, "{err}");
    drop(tx);
    let err = first_writer.await.unwrap().unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    assert_eq!(used(), used_before);
    assert!(!c.worker(0).store.contains(new_block));

    // The file's cached bytes are untouched.
    let r = c.fs.open("/two-blocks", None).await.unwrap();
    assert_eq!(&r.read_at(0, 2 * MIB).await.unwrap()[..], &content[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_ranges_that_overflow_are_refused() {
    let c = start(1, 64 * MIB, |_| {}).await;
    let mut worker = c.raw_worker(0, &c.credentials("alice", Role::User)).await;
    for (offset, length, block_length) in
        [(u64::MAX, 2, 0), (u64::MAX - 1, 10, 100), (1, u64::MAX, 0)]
    {
        let err = worker
            .read_block(ReadBlockRequest {
                block_id: 1 << 24,
                offset,
                length,
                block_length,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            tonic::Code::InvalidArgument,
            "{offset}+{length}: {err}"
        );
    }
    // The worker still serves.
    let content = vec![5u8; 1000];
    c.fs.write_file(
        "/after",
        WriteType::MustCache,
        [Bytes::from(content.clone())],
    )
    .await
    .unwrap();
    let r = c.fs.open("/after", None).await.unwrap();
    assert_eq!(&r.read_at(0, 1000).await.unwrap()[..], &content[..]);
}
