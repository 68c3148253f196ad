//! The data path over real gRPC: every write type and read type, cache hits
//! (by metrics), eviction, pinning, restarts, damage, shared fetches.

use alluxio_common::data_protocol;
use alluxio_proto::grpc::{PersistenceState, ReadType, WriteType};
use alluxio_testkit::cluster::{data, start, MIB};
use bytes::Bytes;

fn chunks(v: &[u8]) -> Vec<Bytes> {
    v.chunks(300_000).map(Bytes::copy_from_slice).collect()
}

#[tokio::test]
async fn every_write_type_and_read_type_round_trips_on_a_local_ufs() {
    let c = start(2, 64 * MIB, |_| {}).await;
    let content = data((3 * MIB + 12345) as usize, 1);
    for (i, wt) in [
        WriteType::MustCache,
        WriteType::CacheThrough,
        WriteType::Through,
        WriteType::AsyncThrough,
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("/w{i}");
        let info = c.fs.write_file(&path, wt, chunks(&content)).await.unwrap();
        assert_eq!(info.length, content.len() as u64);
        let expected_state = match wt {
            WriteType::MustCache => PersistenceState::NotPersisted,
            WriteType::AsyncThrough => PersistenceState::ToBePersisted,
            _ => PersistenceState::Persisted,
        };
        assert_eq!(info.persistence_state, expected_state as i32, "{wt:?}");
        let in_ufs = c.ufs.join(format!("w{i}"));
        assert_eq!(
            in_ufs.exists(),
            matches!(wt, WriteType::CacheThrough | WriteType::Through),
            "{wt:?}"
        );
        if in_ufs.exists() {
            assert_eq!(std::fs::read(&in_ufs).unwrap(), content);
        }
        for rt in [ReadType::Cache, ReadType::CachePromote, ReadType::NoCache] {
            let reader = c.fs.open(&path, Some(rt)).await.unwrap();
            assert_eq!(
                &reader.read_at(0, u64::MAX / 2).await.unwrap()[..],
                &content[..],
                "{wt:?} {rt:?}"
            );
            let mid = reader.read_at(MIB - 10, 20).await.unwrap();
            assert_eq!(&mid[..], &content[(MIB - 10) as usize..(MIB + 10) as usize]);
        }
    }
}

#[tokio::test]
async fn async_through_files_are_persisted_by_a_worker() {
    let c = start(1, 64 * MIB, |_| {}).await;
    let content = data((2 * MIB + 5) as usize, 6);
    let info =
        c.fs.write_file("/later/a.bin", WriteType::AsyncThrough, chunks(&content))
            .await
            .unwrap();
    assert_eq!(
        info.persistence_state,
        PersistenceState::ToBePersisted as i32
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let info = c.client.get_status("/later/a.bin", None).await.unwrap();
        if info.persistence_state == PersistenceState::Persisted as i32 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never persisted");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(std::fs::read(c.ufs.join("later/a.bin")).unwrap(), content);
}

#[tokio::test]
async fn second_reads_hit_the_cache() {
    let c = start(1, 64 * MIB, |cfg| cfg.user.short_circuit = false).await;
    let content = data((2 * MIB + 7) as usize, 2);
    std::fs::create_dir_all(&c.ufs).unwrap();
    std::fs::write(c.ufs.join("cold.bin"), &content).unwrap();
    let w = c.worker(0);
    let fs = &c.fs;
    let read = |rt| async move {
        let r = fs.open("/cold.bin", Some(rt)).await.unwrap();
        r.read_at(0, r.len()).await.unwrap()
    };
    // NO_CACHE reads go to the UFS and leave nothing behind.
    assert_eq!(&read(ReadType::NoCache).await[..], &content[..]);
    assert_eq!(w.metrics.cache_hits.get(), 0);
    let ufs_after_first = w.metrics.bytes_read_ufs.get();
    assert_eq!(ufs_after_first, content.len() as u64);
    assert_eq!(w.store.tier_stats()[0].blocks, 0);

    assert_eq!(&read(ReadType::Cache).await[..], &content[..]);
    // 3 blocks missed by the NO_CACHE read; the CACHE read misses some or
    // all of them again (read-ahead may have cached the later ones already).
    assert!(w.metrics.cache_misses.get() >= 4);
    c.wait_cached("/cold.bin", 100).await;
    let hits_before = w.metrics.cache_hits.get();
    let cache_bytes_before = w.metrics.bytes_read_cache.get();
    assert_eq!(&read(ReadType::Cache).await[..], &content[..]);
    assert_eq!(
        w.metrics.cache_hits.get() - hits_before,
        3,
        "the second read hits the cache for all 3 blocks"
    );
    assert_eq!(
        w.metrics.bytes_read_ufs.get(),
        2 * content.len() as u64,
        "and reads nothing from the UFS"
    );
    assert_eq!(
        w.metrics.bytes_read_cache.get() - cache_bytes_before,
        content.len() as u64
    );
}

#[tokio::test]
async fn small_quota_evicts_but_never_pinned_blocks() {
    let c = start(1, 3 * MIB, |_| {}).await;
    std::fs::create_dir_all(&c.ufs).unwrap();
    for name in ["pinned", "a", "b"] {
        std::fs::write(c.ufs.join(name), data((2 * MIB) as usize, name.len() as u8)).unwrap();
    }
    let pinned = c.client.get_status("/pinned", None).await.unwrap();
    c.client
        .set_attribute(alluxio_proto::grpc::SetAttributeRequest {
            path: "/pinned".into(),
            pinned: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    c.fs.load(&pinned, false, |_| {}).await.unwrap();
    // Let a heartbeat tell the worker about the pin.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for name in ["/a", "/b"] {
        let r = c.fs.open(name, None).await.unwrap();
        assert_eq!(r.read_at(0, r.len()).await.unwrap().len() as u64, 2 * MIB);
    }
    let w = c.worker(0);
    assert!(w.store.evictions() >= 1, "a 3 MiB quota must evict");
    for b in pinned.block_ids {
        assert!(w.store.contains(b), "pinned block {b} was evicted");
    }
    assert!(w.store.tier_stats()[0].used <= 3 * MIB);
}

#[tokio::test]
async fn with_every_tier_full_reads_still_succeed() {
    let c = start(1, MIB, |_| {}).await;
    std::fs::create_dir_all(&c.ufs).unwrap();
    std::fs::write(c.ufs.join("keep"), data(MIB as usize, 1)).unwrap();
    std::fs::write(c.ufs.join("big"), data((3 * MIB) as usize, 2)).unwrap();
    let keep = c.client.get_status("/keep", None).await.unwrap();
    c.client
        .set_attribute(alluxio_proto::grpc::SetAttributeRequest {
            path: "/keep".into(),
            pinned: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    c.fs.load(&keep, false, |_| {}).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = c.fs.open("/big", None).await.unwrap();
    assert_eq!(
        &r.read_at(0, r.len()).await.unwrap()[..],
        &data((3 * MIB) as usize, 2)[..]
    );
    assert_eq!(
        c.worker(0).store.tier_stats()[0].blocks,
        1,
        "nothing new could be cached"
    );
}

#[tokio::test]
async fn a_restarted_worker_keeps_its_identity_and_serves_its_blocks() {
    let mut c = start(1, 64 * MIB, |cfg| cfg.user.short_circuit = false).await;
    let content = data((2 * MIB) as usize, 9);
    c.fs.write_file("/kept", WriteType::MustCache, chunks(&content))
        .await
        .unwrap();
    let id = c.worker(0).worker_id;
    c.workers[0].take().unwrap().shutdown().await;
    let w = c.start_worker(0, 64 * MIB).await;
    assert_eq!(w.worker_id, id);
    let port = w.rpc_addr.port() as u32;
    c.workers[0] = Some(w);
    // Wait for the re-registration (the restarted worker has a new port).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !c
        .client
        .worker_infos()
        .await
        .unwrap()
        .iter()
        .any(|w| w.worker_id == id && w.address.as_ref().unwrap().rpc_port == port)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "restarted worker never registered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    c.wait_cached("/kept", 100).await;
    let r = c.fs.open("/kept", None).await.unwrap();
    assert_eq!(&r.read_at(0, r.len()).await.unwrap()[..], &content[..]);
    assert_eq!(c.worker(0).metrics.cache_hits.get(), 2);
}

#[tokio::test]
async fn damaged_block_files_are_read_again_from_the_ufs() {
    for (short_circuit, truncate) in [(false, false), (true, false), (false, true), (true, true)] {
        let c = start(1, 64 * MIB, |cfg| cfg.user.short_circuit = short_circuit).await;
        let content = data((2 * MIB) as usize, 4);
        let info =
            c.fs.write_file("/d", WriteType::CacheThrough, chunks(&content))
                .await
                .unwrap();
        c.wait_cached("/d", 100).await;
        // Alter a byte of the cached copy of block 0, or cut it short.
        let data_file = c
            .dir
            .path()
            .join(format!("worker-0/mem/alluxio-blocks/data/{}", info.file_id));
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&data_file)
            .unwrap();
        if truncate {
            f.set_len(MIB + 17).unwrap();
        } else {
            std::os::unix::fs::FileExt::write_at(&f, &[0xff ^ content[1000]], 1000).unwrap();
        }
        let r = c.fs.open("/d", None).await.unwrap();
        assert_eq!(
            &r.read_at(0, r.len()).await.unwrap()[..],
            &content[..],
            "short_circuit={short_circuit} truncate={truncate}"
        );
        // The damaged copy was dropped; a fresh one replaces it.
        c.wait_cached("/d", 100).await;
        let r = c.fs.open("/d", None).await.unwrap();
        assert_eq!(&r.read_at(0, r.len()).await.unwrap()[..], &content[..]);
    }
}

#[tokio::test]
async fn concurrent_readers_of_a_cold_block_share_one_ufs_request() {
    let c = start(1, 256 * MIB, |cfg| {
        cfg.user.short_circuit = false;
        cfg.user.block_size = alluxio_common::units::ByteSize(64 * MIB);
    })
    .await;
    let content = data((64 * MIB) as usize, 5);
    std::fs::create_dir_all(&c.ufs).unwrap();
    std::fs::write(c.ufs.join("shared"), &content).unwrap();
    let mut readers = Vec::new();
    for _ in 0..8 {
        let fs = c.fs.clone();
        readers.push(tokio::spawn(async move {
            let r = fs.open("/shared", None).await.unwrap();
            r.read_at(0, r.len()).await.unwrap()
        }));
    }
    for r in readers {
        assert!(r.await.unwrap()[..] == content[..]);
    }
    assert_eq!(
        c.worker(0).metrics.ufs_requests.get(),
        1,
        "exactly one UFS GET"
    );
}

#[tokio::test]
async fn garbage_on_the_data_port_does_not_take_the_worker_down() {
    use tokio::io::AsyncWriteExt;
    let c = start(1, 64 * MIB, |cfg| cfg.user.short_circuit = false).await;
    for garbage in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        &[0u8; 4096][..],
        &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff"[..],
    ] {
        let mut s = tokio::net::TcpStream::connect(c.worker(0).rpc_addr)
            .await
            .unwrap();
        let _ = s.write_all(garbage).await;
        drop(s);
    }
    // On the raw data port: a BAD_REQUEST answer that says why, then the
    // connection closes.
    for garbage in [
        &b"GET /blocks/1 HTTP/1.1\r\nHost: worker\r\n\r\n"[..],
        &[0xffu8; 4096][..],
    ] {
        use tokio::io::AsyncReadExt;
        let mut s = tokio::net::TcpStream::connect(c.worker(0).data_addr)
            .await
            .unwrap();
        s.write_all(garbage).await.unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer).await;
        let header: [u8; data_protocol::ANSWER_HEADER_LEN] = answer
            [..data_protocol::ANSWER_HEADER_LEN]
            .try_into()
            .unwrap();
        let header = data_protocol::AnswerHeader::decode(&header).unwrap();
        assert_eq!(header.status, data_protocol::Status::BadRequest);
        let reason = String::from_utf8_lossy(&answer[data_protocol::ANSWER_HEADER_LEN..]);
        assert!(reason.contains("bad magic"), "{reason}");
    }
    // A well-formed request for a block the worker does not have, after
    // authenticating as a service (which needs no capability).
    {
        use tokio::io::AsyncReadExt;
        let mut s = tokio::net::TcpStream::connect(c.worker(0).data_addr)
            .await
            .unwrap();
        let token = c.token("worker", alluxio_common::auth::Role::Worker);
        let auth = data_protocol::Request::Authenticate {
            token_len: token.len() as u64,
        };
        s.write_all(&auth.encode()).await.unwrap();
        s.write_all(token.as_bytes()).await.unwrap();
        let mut header = [0u8; data_protocol::ANSWER_HEADER_LEN];
        s.read_exact(&mut header).await.unwrap();
        let header = data_protocol::AnswerHeader::decode(&header).unwrap();
        assert_eq!(header.status, data_protocol::Status::Ok);
        let request = data_protocol::ReadRequest {
            block_id: 12345 << 24,
            offset: 0,
            length: 10,
        };
        s.write_all(&request.encode()).await.unwrap();
        let mut header = [0u8; data_protocol::ANSWER_HEADER_LEN];
        s.read_exact(&mut header).await.unwrap();
        let header = data_protocol::AnswerHeader::decode(&header).unwrap();
        assert_eq!(header.status, data_protocol::Status::NotCached);
    }
    // A malformed request through gRPC: an error, not a crash.
    let mut client = c
        .raw_worker(0, &c.credentials("alice", alluxio_common::auth::Role::User))
        .await;
    let err = client
        .read_block(alluxio_proto::grpc::ReadBlockRequest {
            block_id: 1,
            length: 0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let content = data(1000, 1);
    c.fs.write_file("/still-works", WriteType::MustCache, chunks(&content))
        .await
        .unwrap();
    let r = c.fs.open("/still-works", None).await.unwrap();
    assert_eq!(&r.read_at(0, 1000).await.unwrap()[..], &content[..]);
    // That read went over the data port.
    assert_eq!(c.worker(0).metrics.bytes_read_data_port.get(), 1000);
}

#[tokio::test]
async fn an_unreachable_ufs_names_the_mount() {
    let c = start(1, 64 * MIB, |cfg| cfg.user.short_circuit = false).await;
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("f"), data(1000, 1)).unwrap();
    c.client
        .create_directory(alluxio_proto::grpc::CreateDirectoryRequest {
            path: "/m".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    c.client
        .mount(alluxio_proto::grpc::MountRequest {
            alluxio_path: "/m/other".into(),
            ufs_uri: format!("file://{}", other.path().display()),
            ..Default::default()
        })
        .await
        .unwrap();
    let r = c.fs.open("/m/other/f", None).await.unwrap();
    drop(other); // The directory behind the mount disappears.
    let err = r.read_at(0, 1000).await.unwrap_err().to_string();
    assert!(err.contains("file:///"), "{err}");
}

#[tokio::test]
async fn every_write_type_and_read_type_round_trips_on_s3() {
    let Some(s3) = alluxio_testkit::s3::S3Server::start() else {
        return;
    };
    s3.create_bucket("data");
    let c = start(2, 64 * MIB, |_| {}).await;
    c.client
        .mount(alluxio_proto::grpc::MountRequest {
            alluxio_path: "/s3".into(),
            ufs_uri: "s3://data/warehouse".into(),
            options: s3.options().into_iter().collect(),
            ..Default::default()
        })
        .await
        .unwrap();
    let content = data((2 * MIB + 99) as usize, 3);
    for (i, wt) in [
        WriteType::MustCache,
        WriteType::CacheThrough,
        WriteType::Through,
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("/s3/t{i}.bin");
        c.fs.write_file(&path, wt, chunks(&content)).await.unwrap();
        for rt in [
            ReadType::NoCache,
            ReadType::Cache,
            ReadType::CachePromote,
            ReadType::Cache,
        ] {
            let r = c.fs.open(&path, Some(rt)).await.unwrap();
            assert_eq!(
                &r.read_at(0, r.len()).await.unwrap()[..],
                &content[..],
                "{wt:?} {rt:?}"
            );
        }
    }
    // Data that was in S3 first: read through once, then from the cache.
    let ufs = alluxio_ufs::create_ufs("s3://data/warehouse", &s3.options().into_iter().collect())
        .unwrap();
    let mut w = ufs.create("preexisting.bin").await.unwrap();
    w.write(Bytes::from(content.clone())).await.unwrap();
    w.complete().await.unwrap();
    let ufs_before = c.total(|w| w.metrics.bytes_read_ufs.get());
    for _ in 0..2 {
        let r = c.fs.open("/s3/preexisting.bin", None).await.unwrap();
        assert_eq!(&r.read_at(0, r.len()).await.unwrap()[..], &content[..]);
        c.wait_cached("/s3/preexisting.bin", 100).await;
    }
    assert_eq!(
        c.total(|w| w.metrics.bytes_read_ufs.get()) - ufs_before,
        content.len() as u64,
        "S3 was read once"
    );
}

#[tokio::test]
async fn workers_register_again_after_a_master_restart() {
    // Fixed master ports, so the worker can find the restarted master.
    let port = alluxio_testkit::free_port().expect("a free port");
    let mut c = start(1, 64 * MIB, |cfg| {
        cfg.master.rpc_port = port;
        cfg.user.short_circuit = false;
    })
    .await;
    let content = data((2 * MIB) as usize, 8);
    c.fs.write_file("/survives", WriteType::MustCache, chunks(&content))
        .await
        .unwrap();
    c.wait_cached("/survives", 100).await;

    c.restart_master().await;

    // The master forgot the block locations; the worker's next heartbeat
    // is answered with REGISTER and it reports its blocks again.
    c.wait_cached("/survives", 100).await;
    let r = c.fs.open("/survives", None).await.unwrap();
    assert_eq!(&r.read_at(0, r.len()).await.unwrap()[..], &content[..]);
}

#[tokio::test]
async fn bytes_a_short_circuit_reader_keeps_stay_valid_until_dropped() {
    let c = start(1, 64 * MIB, |cfg| cfg.user.short_circuit = true).await;
    let content = data((2 * MIB) as usize, 6);
    let info =
        c.fs.write_file("/kept", WriteType::MustCache, chunks(&content))
            .await
            .unwrap();
    c.wait_cached("/kept", 100).await;
    let r = c.fs.open("/kept", None).await.unwrap();
    // A consumer that keeps what it is given, as a read-ahead cache does.
    let mut kept = Vec::new();
    r.read_range(0, r.len(), |b| {
        kept.push(b);
        Ok(())
    })
    .await
    .unwrap();
    let store = &c.worker(0).store;
    // A free command while the reader holds mapped bytes of the blocks:
    // they go only when the bytes are dropped, so the bytes do not change.
    for block_id in &info.block_ids {
        store.remove(*block_id);
    }
    assert_eq!(store.tier_stats()[0].used, 2 * MIB);
    let joined: Vec<u8> = kept.iter().flat_map(|b| b.iter().copied()).collect();
    assert!(joined == content, "bytes changed under their holder");
    drop(kept);
    alluxio_testkit::eventually(
        "the lease to be given back",
        std::time::Duration::from_secs(10),
        || async { (store.tier_stats()[0].used == 0).then_some(()) },
    )
    .await;
}

/// One worker with 4 MiB blocks fetched from S3 as 1 MiB pieces, 3 at
/// once, and `bucket` mounted at `/s3`.
async fn cluster_fetching_pieces(
    s3: &alluxio_testkit::s3::S3Server,
    bucket: &str,
) -> alluxio_testkit::cluster::Cluster {
    let c = start(1, 64 * MIB, |cfg| {
        cfg.user.block_size = alluxio_common::units::ByteSize(4 * MIB);
        cfg.worker.ufs_fetch_piece = alluxio_common::units::ByteSize(MIB);
        cfg.worker.ufs_fetch_parallelism = 3;
    })
    .await;
    c.client
        .mount(alluxio_proto::grpc::MountRequest {
            alluxio_path: "/s3".into(),
            ufs_uri: format!("s3://{bucket}"),
            options: s3.options().into_iter().collect(),
            ..Default::default()
        })
        .await
        .unwrap();
    c
}

/// A cold block in S3 is fetched as several ranged GETs at once
/// (`worker.ufs_fetch_piece` and `_parallelism`), and its bytes reach the
/// reader and the cache in order.
#[tokio::test]
async fn a_cold_s3_block_is_fetched_in_parallel_pieces_in_order() {
    let Some(s3) = alluxio_testkit::s3::S3Server::start() else {
        return;
    };
    s3.create_bucket("pieces");
    let content = data((9 * MIB + 12345) as usize, 9);
    s3.put_object("pieces", "big.bin", &content);
    let c = cluster_fetching_pieces(&s3, "pieces").await;
    let r = c.fs.open("/s3/big.bin", None).await.unwrap();
    assert_eq!(&r.read_at(0, r.len()).await.unwrap()[..], &content[..]);
    c.wait_cached("/s3/big.bin", 100).await;
    // Blocks of 4, 4 and 1 MiB + 12345 bytes: 4 + 4 + 2 pieces.
    assert_eq!(c.worker(0).metrics.ufs_requests.get(), 10);
    // And from the cache, byte for byte.
    let r = c.fs.open("/s3/big.bin", None).await.unwrap();
    assert_eq!(&r.read_at(0, r.len()).await.unwrap()[..], &content[..]);
    assert_eq!(c.worker(0).metrics.ufs_requests.get(), 10);
}

/// A load (`CacheBlock`) of a cold S3 block fetches its pieces side by
/// side and writes them into the cache as they arrive: the cached block is
/// byte for byte the object, with one request per piece, and a reader
/// that comes during the load gets the same bytes.
#[tokio::test]
async fn a_load_writes_parallel_pieces_straight_into_the_cache() {
    let Some(s3) = alluxio_testkit::s3::S3Server::start() else {
        return;
    };
    s3.create_bucket("loads");
    let content = data((9 * MIB + 12345) as usize, 10);
    s3.put_object("loads", "a.bin", &content);
    s3.put_object("loads", "b.bin", &content);
    let c = cluster_fetching_pieces(&s3, "loads").await;
    let info = c.client.get_status("/s3/a.bin", None).await.unwrap();
    let fetched = c.fs.load(&info, false, |_| {}).await.unwrap();
    assert_eq!(fetched, content.len() as u64);
    // Blocks of 4, 4 and 1 MiB + 12345 bytes: 4 + 4 + 2 pieces.
    let metrics = &c.worker(0).metrics;
    assert_eq!(metrics.ufs_requests.get(), 10);
    assert_eq!(metrics.bytes_read_ufs.get(), content.len() as u64);
    let r = c.fs.open("/s3/a.bin", None).await.unwrap();
    assert_eq!(&r.read_at(0, r.len()).await.unwrap()[..], &content[..]);
    assert_eq!(metrics.ufs_requests.get(), 10, "read from the cache");

    // A reader during a load: it waits for the block and reads it cached.
    let info = c.client.get_status("/s3/b.bin", None).await.unwrap();
    let r = c.fs.open("/s3/b.bin", None).await.unwrap();
    let (loaded, read) = tokio::join!(c.fs.load(&info, false, |_| {}), r.read_at(0, r.len()));
    loaded.unwrap();
    assert_eq!(&read.unwrap()[..], &content[..]);
    c.wait_cached("/s3/b.bin", 100).await;
    assert_eq!(metrics.bytes_read_ufs.get(), 2 * content.len() as u64);
}

/// A load onto a worker with no room for the block is refused before
/// anything is fetched from the UFS.
#[tokio::test]
async fn a_load_without_room_fetches_nothing() {
    let c = start(1, 2 * MIB, |cfg| {
        cfg.user.block_size = alluxio_common::units::ByteSize(4 * MIB);
    })
    .await;
    let content = data((3 * MIB) as usize, 11);
    std::fs::write(c.ufs.join("big.bin"), &content).unwrap();
    let info = c.client.get_status("/big.bin", None).await.unwrap();
    let refused = c.fs.load(&info, false, |_| {}).await.unwrap_err();
    assert!(
        matches!(refused, alluxio_common::AlluxioError::ResourceExhausted(_)),
        "{refused:?}"
    );
    let metrics = &c.worker(0).metrics;
    assert_eq!(metrics.bytes_read_ufs.get(), 0);
    assert_eq!(metrics.ufs_requests.get(), 0);
    // A reader still gets the bytes, straight from the UFS.
    let r = c.fs.open("/big.bin", None).await.unwrap();
    assert_eq!(&r.read_at(0, r.len()).await.unwrap()[..], &content[..]);
}
