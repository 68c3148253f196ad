//! The data port's bounds: connections beyond `worker.data_port_max_connections`
//! are answered BUSY, and a reader that stops taking bytes is dropped after
//! `worker.data_port_write_timeout` instead of holding its connection.

use alluxio_common::auth::Role;
use alluxio_common::data_protocol::{
    AnswerHeader, ReadRequest, Request, Status, ANSWER_HEADER_LEN,
};
use alluxio_common::units::ByteSize;
use alluxio_proto::grpc::WriteType;
use alluxio_testkit::cluster::{data, start, Cluster, MIB};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BLOCK: usize = 48 << 20;

/// A connection authenticated as a worker (which needs no capability),
/// with `recv_buffer` bytes of receive buffer; the status of the answer.
async fn connect(c: &Cluster, recv_buffer: u32) -> (TcpStream, Status) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(recv_buffer).unwrap();
    let mut s = socket.connect(c.worker(0).data_addr).await.unwrap();
    let token = c.token("worker", Role::Worker);
    let mut message = Request::Authenticate {
        token_len: token.len() as u64,
    }
    .encode()
    .to_vec();
    message.extend_from_slice(token.as_bytes());
    s.write_all(&message).await.unwrap();
    let mut header = [0u8; ANSWER_HEADER_LEN];
    s.read_exact(&mut header).await.unwrap();
    let status = AnswerHeader::decode(&header).unwrap().status;
    (s, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_bounded_and_stalled_readers_dropped() {
    let c = start(1, 128 * MIB, |cfg| {
        cfg.user.block_size = ByteSize(64 * MIB);
        cfg.worker.data_port_max_connections = 2;
        cfg.worker.data_port_write_timeout.0 = Duration::from_millis(300);
    })
    .await;
    let content = data(BLOCK, 9);
    let info =
        c.fs.write_file("/big", WriteType::MustCache, [bytes::Bytes::from(content)])
            .await
            .unwrap();
    let block_id = info.block_ids[0];

    // Two connections held: the third is answered BUSY.
    let (a, status_a) = connect(&c, 1 << 20).await;
    let (b, status_b) = connect(&c, 1 << 20).await;
    assert_eq!((status_a, status_b), (Status::Ok, Status::Ok));
    let (_, third) = connect(&c, 1 << 20).await;
    assert_eq!(third, Status::Busy);
    drop((a, b));

    // A reader with a tiny receive buffer asks for the whole block and
    // takes nothing: the worker gives up on it and closes the connection.
    let (mut stalled, status) =
        alluxio_testkit::eventually("a free connection", Duration::from_secs(20), || async {
            let (s, status) = connect(&c, 4096).await;
            (status != Status::Busy).then_some((s, status))
        })
        .await;
    assert_eq!(status, Status::Ok);
    let read = ReadRequest {
        block_id,
        offset: 0,
        length: BLOCK as u64,
    };
    stalled.write_all(&read.encode()).await.unwrap();
    // Give the write timeout time to pass (nothing is asserted of time).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut got = Vec::new();
    // Had the worker kept the connection, this would wait forever.
    let closed = tokio::time::timeout(Duration::from_secs(60), stalled.read_to_end(&mut got)).await;
    assert!(closed.is_ok(), "the worker kept serving a stalled reader");
    assert!(
        got.len() < ANSWER_HEADER_LEN + BLOCK,
        "the stalled reader got the whole block ({} bytes)",
        got.len()
    );

    // The port still serves readers that read.
    let (mut reader, status) =
        alluxio_testkit::eventually("a free connection", Duration::from_secs(20), || async {
            let (s, status) = connect(&c, 1 << 20).await;
            (status != Status::Busy).then_some((s, status))
        })
        .await;
    assert_eq!(status, Status::Ok);
    let small = ReadRequest {
        block_id,
        offset: 0,
        length: 4096,
    };
    reader.write_all(&small.encode()).await.unwrap();
    let mut header = [0u8; ANSWER_HEADER_LEN];
    reader.read_exact(&mut header).await.unwrap();
    let answer = AnswerHeader::decode(&header).unwrap();
    assert_eq!((answer.status, answer.length), (Status::Ok, 4096));
}
