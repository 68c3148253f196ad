//! Hostile callers against a cluster with authentication on (the
//! default), over real sockets with raw gRPC clients and raw data-port
//! bytes: without a valid token every RPC of every service is refused with
//! Unauthenticated; an ordinary user cannot call worker-only RPCs, change
//! the mount table, create files in another's name or act against the
//! permission bits; and none of the refused calls changes the namespace.

use alluxio_common::auth::{ClusterKey, Credentials, Role};
use alluxio_common::data_protocol::{
    frame_crc, AnswerHeader, ReadRequest, Request, Status as DataStatus, ANSWER_HEADER_LEN,
    FRAME_CRC_LEN,
};
use alluxio_proto::grpc::block_master_client::BlockMasterClient;
use alluxio_proto::grpc::file_system_master_client::FileSystemMasterClient;
use alluxio_proto::grpc::meta_master_client::MetaMasterClient;
use alluxio_proto::grpc::*;
use alluxio_testkit::cluster::{start, Cluster, MIB};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

/// The code of every master and worker RPC called as `credentials`.
async fn codes_of_every_rpc(c: &Cluster, credentials: &Credentials) -> Vec<(&'static str, Code)> {
    let channel = c.raw_master_channel(credentials).await;
    let mut fs = FileSystemMasterClient::new(channel.clone());
    let mut block = BlockMasterClient::new(channel.clone());
    let mut meta = MetaMasterClient::new(channel);
    let mut worker = c.raw_worker(0, credentials).await;
    fn code<T>(r: Result<T, tonic::Status>) -> Code {
        r.err().map_or(Code::Ok, |s| s.code())
    }
    let path = || "/hostile".to_string();
    vec![
        (
            "CreateFile",
            code(
                fs.create_file(CreateFileRequest {
                    path: path(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "CompleteFile",
            code(
                fs.complete_file(CompleteFileRequest {
                    path: path(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "CreateDirectory",
            code(
                fs.create_directory(CreateDirectoryRequest {
                    path: path(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "GetStatus",
            code(
                fs.get_status(GetStatusRequest {
                    path: "/".into(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "ListStatus",
            code(
                fs.list_status(ListStatusRequest {
                    path: "/".into(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "Delete",
            code(
                fs.delete(DeleteRequest {
                    path: path(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "Rename",
            code(
                fs.rename(RenameRequest {
                    src: path(),
                    dst: "/x".into(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "SetAttribute",
            code(
                fs.set_attribute(SetAttributeRequest {
                    path: "/".into(),
                    pinned: Some(true),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "Free",
            code(
                fs.free(FreeRequest {
                    path: "/".into(),
                    recursive: true,
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "Mount",
            code(
                fs.mount(MountRequest {
                    alluxio_path: "/etc".into(),
                    ufs_uri: "file:///etc".into(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "Unmount",
            code(
                fs.unmount(UnmountRequest {
                    alluxio_path: "/etc".into(),
                })
                .await,
            ),
        ),
        (
            "UpdateMount",
            code(
                fs.update_mount(UpdateMountRequest {
                    alluxio_path: "/".into(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "GetMountTable",
            code(fs.get_mount_table(GetMountTableRequest {}).await),
        ),
        (
            "GetUfsInfo",
            code(fs.get_ufs_info(GetUfsInfoRequest { mount_id: 1 }).await),
        ),
        (
            "GetUfsReadUrl",
            code(
                fs.get_ufs_read_url(GetUfsReadUrlRequest {
                    path: "/etc/passwd".into(),
                })
                .await,
            ),
        ),
        (
            "CommitPersisted",
            code(
                fs.commit_persisted(CommitPersistedRequest {
                    file_id: 1,
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "RegisterWorker",
            code(
                block
                    .register_worker(RegisterWorkerRequest {
                        worker_id: 999,
                        address: Some(WorkerAddress {
                            host: "127.0.0.1".into(),
                            rpc_port: 1,
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        (
            "WorkerHeartbeat",
            code(
                block
                    .worker_heartbeat(WorkerHeartbeatRequest {
                        worker_id: 999,
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        (
            "CommitBlock",
            code(
                block
                    .commit_block(CommitBlockRequest {
                        worker_id: 999,
                        block_id: 1 << 24,
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        (
            "GetWorkerInfoList",
            code(
                block
                    .get_worker_info_list(GetWorkerInfoListRequest {})
                    .await,
            ),
        ),
        (
            "GetBlockInfo",
            code(
                block
                    .get_block_info(GetBlockInfoRequest { block_id: 1 << 24 })
                    .await,
            ),
        ),
        (
            "GetMasterInfo",
            code(meta.get_master_info(GetMasterInfoRequest {}).await),
        ),
        ("Ping", code(meta.ping(PingRequest {}).await)),
        (
            "ReadBlock",
            code(
                worker
                    .read_block(ReadBlockRequest {
                        block_id: 1 << 24,
                        length: 1,
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        (
            "WriteBlock",
            code(
                worker
                    .write_block(tokio_stream::iter(Vec::<WriteBlockChunk>::new()))
                    .await,
            ),
        ),
        (
            "OpenLocalBlock",
            code(
                worker
                    .open_local_block(OpenLocalBlockRequest {
                        block_id: 1 << 24,
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        (
            "CloseLocalBlock",
            code(
                worker
                    .close_local_block(CloseLocalBlockRequest {
                        block_id: 1 << 24,
                        lease_id: 1,
                    })
                    .await,
            ),
        ),
        (
            "RenewLocalBlocks",
            code(
                worker
                    .renew_local_blocks(RenewLocalBlocksRequest { lease_ids: vec![1] })
                    .await,
            ),
        ),
        (
            "CacheBlock",
            code(
                worker
                    .cache_block(CacheBlockRequest {
                        block_id: 1 << 24,
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        (
            "ReportCorruptBlock",
            code(
                worker
                    .report_corrupt_block(ReportCorruptBlockRequest { block_id: 1 << 24 })
                    .await,
            ),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_token_every_rpc_is_refused_and_nothing_changes() {
    let c = start(1, 64 * MIB, |_| {}).await;
    let sequence = || c.master().fs.journal().last_sequence();
    let before = sequence();
    let key = c.key();
    let token = c.token("alice", Role::Admin);
    let forged = [
        ("none", Credentials::anonymous()),
        (
            "another cluster's key",
            Credentials::token(&ClusterKey::generate().issue(
                "root",
                &[],
                Role::Admin,
                Duration::from_secs(60),
            )),
        ),
        (
            "expired",
            Credentials::token(&key.issue("root", &[], Role::Admin, Duration::ZERO)),
        ),
        ("truncated", Credentials::token(&token[..token.len() - 3])),
        ("garbage", Credentials::token("alx1.e30.AAAA")),
    ];
    for (what, credentials) in &forged {
        for (rpc, code) in codes_of_every_rpc(&c, credentials).await {
            assert_eq!(code, Code::Unauthenticated, "{rpc} with {what} credentials");
        }
    }
    assert_eq!(sequence(), before, "a refused call changed the namespace");
    assert!(c.client.get_status("/hostile", None).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_user_cannot_act_as_a_worker_an_admin_or_another_user() {
    let c = start(1, 64 * MIB, |_| {}).await;
    let alice = c.credentials("alice", Role::User);
    // The first listing of / loads it from the UFS (a journal entry of its
    // own); after that, only a change would add one.
    c.client.list_status("/", false, None).await.unwrap();
    let before = c.master().fs.journal().last_sequence();
    let codes = codes_of_every_rpc(&c, &alice).await;
    let code_of = |rpc: &str| codes.iter().find(|(r, _)| *r == rpc).unwrap().1;
    for rpc in [
        "RegisterWorker",
        "WorkerHeartbeat",
        "CommitBlock",
        "CommitPersisted",
        "Mount",
        "Unmount",
        "UpdateMount",
    ] {
        assert_eq!(code_of(rpc), Code::PermissionDenied, "{rpc} as alice");
    }
    // / is the superuser's (755): alice may look, not write.
    for rpc in ["CreateFile", "CreateDirectory", "Free", "SetAttribute"] {
        assert_eq!(code_of(rpc), Code::PermissionDenied, "{rpc} as alice");
    }
    for rpc in [
        "GetStatus",
        "ListStatus",
        "GetMountTable",
        "Ping",
        "GetWorkerInfoList",
    ] {
        assert_eq!(code_of(rpc), Code::Ok, "{rpc} as alice");
    }
    // No fake worker was registered.
    let workers = c.client.worker_infos().await.unwrap();
    assert!(workers.iter().all(|w| w.worker_id != 999), "{workers:?}");
    assert_eq!(
        c.master().fs.journal().last_sequence(),
        before,
        "alice changed the namespace"
    );
    // Given a directory of her own, what alice creates is hers, whatever
    // owner her requests name.
    c.give_directory("/home/alice", "alice").await;
    let mut fs = FileSystemMasterClient::new(c.raw_master_channel(&alice).await);
    fs.create_directory(CreateDirectoryRequest {
        path: "/home/alice/posing".into(),
        owner: "root".into(),
        group: "root".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let posing = c
        .client
        .get_status("/home/alice/posing", None)
        .await
        .unwrap();
    assert_eq!(
        (posing.owner.as_str(), posing.group.as_str()),
        ("alice", "alice")
    );
    // She may not give it away, nor touch what is not hers.
    let err = fs
        .set_attribute(SetAttributeRequest {
            path: "/home/alice/posing".into(),
            owner: Some("bob".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    let refused = [
        (
            "delete /home",
            fs.delete(DeleteRequest {
                path: "/home".into(),
                recursive: true,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        ),
        (
            "chmod /home",
            fs.set_attribute(SetAttributeRequest {
                path: "/home".into(),
                mode: Some(0o777),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        ),
        (
            "mkdir /x",
            fs.create_directory(CreateDirectoryRequest {
                path: "/x".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        ),
        (
            "rename into /",
            fs.rename(RenameRequest {
                src: "/home/alice/posing".into(),
                dst: "/posing".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        ),
    ];
    for (what, result) in refused {
        assert_eq!(result.unwrap_err().code(), Code::PermissionDenied, "{what}");
    }
    // bob cannot look into alice's directory once she closes it.
    fs.set_attribute(SetAttributeRequest {
        path: "/home/alice".into(),
        mode: Some(0o700),
        ..Default::default()
    })
    .await
    .unwrap();
    let bob = c.credentials("bob", Role::User);
    let mut as_bob = FileSystemMasterClient::new(c.raw_master_channel(&bob).await);
    let err = as_bob
        .get_status(GetStatusRequest {
            path: "/home/alice/posing".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");

    // A worker's token may do what workers do, but not mount.
    let worker = c.credentials("worker", Role::Worker);
    let mut as_worker = FileSystemMasterClient::new(c.raw_master_channel(&worker).await);
    let err = as_worker
        .mount(MountRequest {
            alluxio_path: "/etc".into(),
            ufs_uri: "file:///etc".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

/// Sends raw bytes to the data port and returns every answer until the
/// worker closes the connection (so `bytes` must end in a refusal).
async fn data_port_answers(c: &Cluster, bytes: &[u8]) -> Vec<(DataStatus, String)> {
    let mut s = tokio::net::TcpStream::connect(c.worker(0).data_addr)
        .await
        .unwrap();
    s.write_all(bytes).await.unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all).await;
    let mut answers = Vec::new();
    let mut rest = &all[..];
    while rest.len() >= ANSWER_HEADER_LEN {
        let header = AnswerHeader::decode(rest[..ANSWER_HEADER_LEN].try_into().unwrap()).unwrap();
        let end = ANSWER_HEADER_LEN + header.length as usize;
        answers.push((
            header.status,
            String::from_utf8_lossy(&rest[ANSWER_HEADER_LEN..end]).into_owned(),
        ));
        rest = &rest[end..];
    }
    answers
}

/// Sends raw bytes to the data port and returns the answer header.
async fn data_port_answer(c: &Cluster, bytes: &[u8]) -> (AnswerHeader, String) {
    let mut s = tokio::net::TcpStream::connect(c.worker(0).data_addr)
        .await
        .unwrap();
    s.write_all(bytes).await.unwrap();
    let mut header = [0u8; ANSWER_HEADER_LEN];
    s.read_exact(&mut header).await.unwrap();
    let header = AnswerHeader::decode(&header).unwrap();
    let mut reason = String::new();
    let _ = s.read_to_string(&mut reason).await;
    (header, reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_port_serves_nothing_before_a_valid_token() {
    let c = start(1, 64 * MIB, |_| {}).await;
    let content = alluxio_testkit::cluster::data(4096, 3);
    c.fs.write_file(
        "/cached",
        WriteType::MustCache,
        [bytes::Bytes::from(content.clone())],
    )
    .await
    .unwrap();
    let info = c.client.get_status("/cached", None).await.unwrap();
    let block_id = info.file_block_infos[0]
        .block_info
        .as_ref()
        .unwrap()
        .block_id;
    let read = ReadRequest {
        block_id,
        offset: 0,
        length: 4096,
    }
    .encode();

    // A read without authenticating first.
    let (header, reason) = data_port_answer(&c, &read).await;
    assert_eq!(header.status, DataStatus::Unauthenticated, "{reason}");
    // Forged, expired, oversized.
    let authenticate = |token: &str| {
        let mut b = Request::Authenticate {
            token_len: token.len() as u64,
        }
        .encode()
        .to_vec();
        b.extend_from_slice(token.as_bytes());
        b.extend_from_slice(&read);
        b
    };
    let other = ClusterKey::generate().issue("root", &[], Role::Admin, Duration::from_secs(60));
    let expired = c.key().issue("root", &[], Role::Admin, Duration::ZERO);
    for token in [other, expired] {
        let (header, reason) = data_port_answer(&c, &authenticate(&token)).await;
        assert_eq!(header.status, DataStatus::Unauthenticated, "{reason}");
    }
    let huge = Request::Authenticate {
        token_len: u64::MAX,
    }
    .encode();
    let (header, reason) = data_port_answer(&c, &huge).await;
    assert_eq!(header.status, DataStatus::Unauthenticated);
    assert!(reason.contains("outside"), "{reason}");

    // A valid token, but no capability for the file: FORBIDDEN.
    let token = c.token("alice", Role::User);
    let answers = data_port_answers(&c, &authenticate(&token)).await;
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0].0, DataStatus::Ok);
    assert_eq!(answers[1].0, DataStatus::Forbidden, "{answers:?}");
    assert!(answers[1].1.contains("capability"), "{answers:?}");

    // A valid token and the file's capability (from the master): the bytes.
    let present = |file_id: u64, capability: &str| {
        let mut b = Request::Capability {
            file_id,
            len: capability.len() as u64,
        }
        .encode()
        .to_vec();
        b.extend_from_slice(capability.as_bytes());
        b
    };
    assert!(!info.capability.is_empty());
    let mut s = tokio::net::TcpStream::connect(c.worker(0).data_addr)
        .await
        .unwrap();
    let mut message = authenticate(&token);
    message.truncate(message.len() - read.len());
    message.extend(present(info.file_id, &info.capability));
    message.extend_from_slice(&read);
    s.write_all(&message).await.unwrap();
    let mut header = [0u8; ANSWER_HEADER_LEN];
    for _ in 0..2 {
        s.read_exact(&mut header).await.unwrap();
        assert_eq!(
            AnswerHeader::decode(&header).unwrap().status,
            DataStatus::Ok
        );
    }
    s.read_exact(&mut header).await.unwrap();
    let answer = AnswerHeader::decode(&header).unwrap();
    assert_eq!((answer.status, answer.length), (DataStatus::Ok, 4096));
    let mut got = vec![0u8; 4096];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(got, content);
    // The frame's checksum follows its bytes.
    let mut crc = [0u8; FRAME_CRC_LEN];
    s.read_exact(&mut crc).await.unwrap();
    assert_eq!(crc, frame_crc(&content));
    // Another file's capability does not open this one.
    let mut message = authenticate(&token);
    message.truncate(message.len() - read.len());
    message.extend(present(info.file_id + 1, &info.capability));
    let answers = data_port_answers(&c, &message).await;
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[1].0, DataStatus::Forbidden, "{answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_bytes_go_only_to_callers_the_master_let_read_the_file() {
    let c = start(1, 64 * MIB, |_| {}).await;
    let content = alluxio_testkit::cluster::data(8192, 5);
    for (path, mode) in [("/open.bin", 0o644), ("/secret.bin", 0o600)] {
        c.fs.write_file(
            path,
            WriteType::MustCache,
            [bytes::Bytes::from(content.clone())],
        )
        .await
        .unwrap();
        c.client
            .set_attribute(SetAttributeRequest {
                path: path.into(),
                mode: Some(mode),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    // alice, through the client library: the open file reads (over the
    // data port and over gRPC), the 0600 one does not.
    let master = alluxio_client::MasterClient::connect(
        &c.master().rpc_addr.to_string(),
        Duration::from_secs(10),
        c.credentials("alice", Role::User),
    )
    .await
    .unwrap();
    for data_port in [true, false] {
        let mut config = c.config.clone();
        config.user.short_circuit = false;
        config.user.data_port_reads = data_port;
        let alice = alluxio_client::FileSystem::with_config(master.clone(), &config);
        let open = alice.open("/open.bin", None).await.unwrap();
        assert!(!open.info().capability.is_empty());
        assert_eq!(&open.read_at(0, 8192).await.unwrap()[..], &content[..]);
        let secret = alice.open("/secret.bin", None).await.unwrap();
        assert!(
            secret.info().capability.is_empty(),
            "no capability for a 0600 file"
        );
        let err = secret.read_at(0, 8192).await.unwrap_err();
        assert!(
            matches!(err, alluxio_common::AlluxioError::PermissionDenied(_)),
            "data port {data_port}: {err}"
        );
    }
    // Raw gRPC: the open file's capability does not open the secret one.
    let open = c.client.get_status("/open.bin", None).await.unwrap();
    let secret = c.client.get_status("/secret.bin", None).await.unwrap();
    let mut worker = c.raw_worker(0, &c.credentials("alice", Role::User)).await;
    let block = secret.file_block_infos[0].block_info.clone().unwrap();
    for capability in [String::new(), open.capability.clone()] {
        let err = worker
            .read_block(ReadBlockRequest {
                block_id: block.block_id,
                length: 8192,
                block_length: block.length,
                capability,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    }
}

/// Replaces the key file at once (as the kubelet replaces a mounted
/// Secret) with `keys`, the first signing.
fn write_key_file(path: &std::path::Path, keys: &[&ClusterKey]) {
    let text: String = keys.iter().map(|k| k.to_text()).collect();
    let keys = ClusterKey::from_hex(&text).unwrap();
    alluxio_common::auth::key_file::replace(path, &keys).unwrap();
}

/// The key rotation of the README, against a running master and worker
/// that are never restarted: the new key accepted, then signing, then the
/// old one dropped. Old tokens work until the last step, new ones from the
/// first, and afterwards the worker still heartbeats and serves blocks
/// (its own tokens and the master's capabilities now under the new key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_key_rotates_without_a_restart() {
    let c = start(1, 64 * MIB, |_| {}).await;
    let path = c.config.security.key_file.clone();
    let (old, new) = (c.key(), ClusterKey::generate());
    let client_of = |key: &ClusterKey| {
        let credentials = Credentials::from_key(
            ClusterKey::from_hex(&key.to_hex()).unwrap(),
            "alice",
            &[],
            Role::User,
            Duration::from_secs(3600),
        );
        let address = c.master().rpc_addr.to_string();
        async move {
            alluxio_client::MasterClient::connect(&address, Duration::from_secs(10), credentials)
                .await
                .unwrap()
        }
    };
    let (with_old, with_new) = (client_of(&old).await, client_of(&new).await);
    let accepted = |client: alluxio_client::MasterClient| async move {
        match client.get_status("/", None).await {
            Ok(_) => Some(true),
            Err(alluxio_common::AlluxioError::Unauthenticated(_)) => Some(false),
            Err(e) => panic!("{e}"),
        }
    };
    let until = |what: &'static str, client: alluxio_client::MasterClient, want: bool| async move {
        alluxio_testkit::eventually(what, Duration::from_secs(60), || {
            let client = client.clone();
            async move { (accepted(client).await? == want).then_some(()) }
        })
        .await
    };
    assert_eq!(accepted(with_new.clone()).await, Some(false));
    c.give_directory("/alice", "alice").await;

    // 1. The new key is accepted.
    write_key_file(&path, &[&old, &new]);
    until("the new key accepted", with_new.clone(), true).await;
    assert_eq!(accepted(with_old.clone()).await, Some(true));
    // 2. The new key signs (every holder picks it up within the reload
    //    interval; the old one is still accepted meanwhile).
    write_key_file(&path, &[&new, &old]);
    tokio::time::sleep(alluxio_common::auth::key_file::RELOAD_INTERVAL * 2).await;
    // 3. The old key is dropped.
    write_key_file(&path, &[&new]);
    until("the old key refused", with_old.clone(), false).await;

    // Everything still works under the new key alone: a block written to
    // the worker and committed by it to the master (the worker's own
    // token), and read back with the master's capability.
    let fs = alluxio_client::FileSystem::new(with_new.clone());
    let content = alluxio_testkit::cluster::data(100_000, 7);
    fs.write_file(
        "/alice/after-rotation.bin",
        WriteType::MustCache,
        [bytes::Bytes::from(content.clone())],
    )
    .await
    .unwrap();
    c.wait_cached("/alice/after-rotation.bin", 100).await;
    let reader = fs.open("/alice/after-rotation.bin", None).await.unwrap();
    assert_eq!(&reader.read_at(0, 100_000).await.unwrap()[..], &content[..]);
    assert!(!reader.info().capability.is_empty());
}
