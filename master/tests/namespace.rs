//! Namespace operations over real gRPC: what works, and for every kind of
//! bad input the right status code with no change to the state.

mod common;

use alluxio_common::AlluxioError;
use alluxio_proto::grpc::*;
use common::start;

fn mkdir(path: &str, recursive: bool) -> CreateDirectoryRequest {
    CreateDirectoryRequest {
        path: path.to_string(),
        recursive,
        owner: "alice".into(),
        group: "staff".into(),
        ..Default::default()
    }
}

fn create(path: &str) -> CreateFileRequest {
    CreateFileRequest {
        path: path.to_string(),
        write_type: WriteType::MustCache as i32,
        ..Default::default()
    }
}

fn complete(path: &str, length: u64) -> CompleteFileRequest {
    CompleteFileRequest {
        path: path.to_string(),
        length,
        ..Default::default()
    }
}

#[tokio::test]
async fn files_and_directories_round_trip() {
    let m = start(|_| {}).await;
    let c = &m.client;
    c.create_directory(mkdir("/a/b/c", true)).await.unwrap();
    assert!(
        m.ufs.join("a/b/c").is_dir(),
        "CACHE_THROUGH directories exist in the UFS"
    );
    let info = c.create_file(create("/a/b/f")).await.unwrap();
    assert!(!info.completed);
    let info = c
        .complete_file(complete("/a/b/f", 200 << 20))
        .await
        .unwrap();
    assert!(info.completed);
    assert_eq!(info.block_ids.len(), 4, "200 MiB in 64 MiB blocks");
    assert_eq!(info.block_ids[1], (info.file_id << 24) | 1);
    assert_eq!(
        info.persistence_state,
        PersistenceState::NotPersisted as i32
    );

    let names: Vec<String> = c
        .list_status("/a", true, None)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.path)
        .collect();
    assert_eq!(names, vec!["/a/b", "/a/b/c", "/a/b/f"]);

    c.rename("/a/b", "/z").await.unwrap();
    assert!(
        m.ufs.join("z/c").is_dir(),
        "persisted directories are renamed in the UFS"
    );
    assert_eq!(c.get_status("/z/f", None).await.unwrap().length, 200 << 20);
    assert!(matches!(
        c.get_status("/a/b", None).await,
        Err(AlluxioError::NotFound(_))
    ));

    c.set_attribute(SetAttributeRequest {
        path: "/z".into(),
        recursive: true,
        mode: Some(0o700),
        owner: Some("bob".into()),
        pinned: Some(true),
        ..Default::default()
    })
    .await
    .unwrap();
    let f = c.get_status("/z/f", None).await.unwrap();
    assert_eq!((f.mode, f.owner.as_str(), f.pinned), (0o700, "bob", true));

    c.delete("/z", true, false).await.unwrap();
    assert!(!m.ufs.join("z").exists());
    assert!(c
        .list_status("/", false, None)
        .await
        .unwrap()
        .iter()
        .all(|i| i.path != "/z"));
}

#[tokio::test]
async fn state_survives_restart() {
    let mut m = start(|_| {}).await;
    m.client
        .create_directory(mkdir("/keep/me", true))
        .await
        .unwrap();
    m.client.create_file(create("/keep/me/f")).await.unwrap();
    m.client
        .complete_file(complete("/keep/me/f", 42))
        .await
        .unwrap();
    m.client
        .set_attribute(SetAttributeRequest {
            path: "/keep".into(),
            pinned: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    let before = common::durable_listing(&m.client, "/").await;
    m.restart().await;
    let after = common::durable_listing(&m.client, "/").await;
    assert_eq!(before, after);
    // Ids keep increasing after a restart: block ids are never reused.
    let f = m.client.create_file(create("/keep/new")).await.unwrap();
    assert!(f.file_id > before.iter().map(|i| i.file_id).max().unwrap());
}

/// Runs a request that must fail with `expected` and checks that the
/// namespace and the journal did not change.
macro_rules! refused {
    ($m:expr, $expected:pat, $call:expr) => {{
        let before = $m.client.list_status("/", true, Some(-1)).await.unwrap();
        let seq = $m.last_sequence();
        let result = $call.await;
        assert!(
            matches!(result, Err($expected)),
            "{} gave {:?}",
            stringify!($call),
            result
        );
        assert_eq!(
            $m.last_sequence(),
            seq,
            "{} wrote to the journal",
            stringify!($call)
        );
        assert_eq!(
            $m.client.list_status("/", true, Some(-1)).await.unwrap(),
            before
        );
    }};
}

#[tokio::test]
async fn bad_input_gets_the_right_code_and_changes_nothing() {
    let m = start(|_| {}).await;
    let c = &m.client;
    c.create_directory(mkdir("/d/sub", true)).await.unwrap();
    c.create_file(create("/d/file")).await.unwrap();
    c.complete_file(complete("/d/file", 1)).await.unwrap();

    for bad in ["relative", "/a/../b", "/a//b", "/a/./b", "/nul\0byte", ""] {
        refused!(m, AlluxioError::InvalidArgument(_), c.get_status(bad, None));
        refused!(
            m,
            AlluxioError::InvalidArgument(_),
            c.create_directory(mkdir(bad, true))
        );
        refused!(
            m,
            AlluxioError::InvalidArgument(_),
            c.create_file(create(bad))
        );
        refused!(
            m,
            AlluxioError::InvalidArgument(_),
            c.delete(bad, true, false)
        );
    }
    refused!(m, AlluxioError::NotFound(_), c.get_status("/missing", None));
    refused!(
        m,
        AlluxioError::NotFound(_),
        c.delete("/missing", false, false)
    );
    refused!(m, AlluxioError::NotFound(_), c.rename("/missing", "/x"));
    refused!(
        m,
        AlluxioError::NotFound(_),
        c.create_directory(mkdir("/no/parent", false))
    );
    refused!(
        m,
        AlluxioError::AlreadyExists(_),
        c.create_file(create("/d/file"))
    );
    refused!(
        m,
        AlluxioError::AlreadyExists(_),
        c.create_directory(mkdir("/d", false))
    );
    refused!(
        m,
        AlluxioError::FailedPrecondition(_),
        c.complete_file(complete("/d/file", 5))
    );
    refused!(
        m,
        AlluxioError::FailedPrecondition(_),
        c.create_file(create("/d/file/below"))
    );
    refused!(
        m,
        AlluxioError::FailedPrecondition(_),
        c.delete("/d", false, false)
    );
    refused!(
        m,
        AlluxioError::InvalidArgument(_),
        c.rename("/d", "/d/sub/inside")
    );
    refused!(m, AlluxioError::InvalidArgument(_), c.rename("/d", "/d"));
    refused!(
        m,
        AlluxioError::AlreadyExists(_),
        c.rename("/d/file", "/d/sub")
    );
    refused!(
        m,
        AlluxioError::InvalidArgument(_),
        c.delete("/", true, false)
    );
    refused!(
        m,
        AlluxioError::InvalidArgument(_),
        c.set_attribute(SetAttributeRequest {
            path: "/d".into(),
            mode: Some(0o77777),
            ..Default::default()
        })
    );
    assert!(
        m.ufs.join("d/sub").is_dir(),
        "refused operations left the UFS alone"
    );
}

#[tokio::test]
async fn mounts_and_their_errors() {
    let m = start(|_| {}).await;
    let c = &m.client;
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other.path().join("x")).unwrap();
    std::fs::write(other.path().join("x/data.bin"), vec![7u8; 1000]).unwrap();
    let uri = format!("file://{}", other.path().display());

    c.create_directory(mkdir("/mnt", false)).await.unwrap();
    let mut options = std::collections::HashMap::new();
    options.insert("request_timeout".to_string(), "5s".to_string());
    let info = c
        .mount(MountRequest {
            alluxio_path: "/mnt/o".into(),
            ufs_uri: uri.clone(),
            read_only: true,
            options,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(info.read_only);

    // Lazy load: the file appears on first access.
    let f = c.get_status("/mnt/o/x/data.bin", None).await.unwrap();
    assert_eq!(f.length, 1000);
    assert_eq!(f.persistence_state, PersistenceState::Persisted as i32);

    // Writes under a read-only mount are refused.
    refused!(
        m,
        AlluxioError::PermissionDenied(_),
        c.create_directory(mkdir("/mnt/o/new", false))
    );
    refused!(
        m,
        AlluxioError::PermissionDenied(_),
        c.delete("/mnt/o/x/data.bin", false, false)
    );
    refused!(
        m,
        AlluxioError::PermissionDenied(_),
        c.rename("/mnt/o/x/data.bin", "/mnt/o/x/moved")
    );
    // Mounting over a mount, a malformed URI, an unreachable UFS, an
    // overlapping UFS, an unknown option.
    let req = |path: &str, uri: &str| MountRequest {
        alluxio_path: path.into(),
        ufs_uri: uri.into(),
        ..Default::default()
    };
    refused!(
        m,
        AlluxioError::AlreadyExists(_),
        c.mount(req("/mnt/o", &uri))
    );
    refused!(m, AlluxioError::AlreadyExists(_), c.mount(req("/", &uri)));
    refused!(
        m,
        AlluxioError::InvalidArgument(_),
        c.mount(req("/mnt/bad", "not a uri"))
    );
    refused!(
        m,
        AlluxioError::InvalidArgument(_),
        c.mount(req("/mnt/bad", "ftp://host/x"))
    );
    refused!(
        m,
        AlluxioError::Unavailable(_),
        c.mount(req("/mnt/bad", "file:///nonexistent/alluxio/ufs"))
    );
    refused!(
        m,
        AlluxioError::InvalidArgument(_),
        c.mount(req("/mnt/again", &format!("{uri}/x")))
    );
    refused!(
        m,
        AlluxioError::NotFound(_),
        c.mount(req("/no/such/parent", "memory://p"))
    );
    let mut bad_option = req("/mnt/bad", "memory://q");
    bad_option.options.insert("colour".into(), "blue".into());
    refused!(m, AlluxioError::InvalidArgument(_), c.mount(bad_option));
    refused!(
        m,
        AlluxioError::FailedPrecondition(_),
        c.delete("/mnt/o", true, false)
    );
    refused!(
        m,
        AlluxioError::FailedPrecondition(_),
        c.delete("/mnt", true, false)
    );
    refused!(m, AlluxioError::NotFound(_), c.unmount("/mnt"));
    refused!(m, AlluxioError::InvalidArgument(_), c.unmount("/"));

    let table = c.mount_table().await.unwrap();
    assert_eq!(table.len(), 2);

    c.update_mount(UpdateMountRequest {
        alluxio_path: "/mnt/o".into(),
        read_only: false,
        ..Default::default()
    })
    .await
    .unwrap();
    c.create_directory(mkdir("/mnt/o/now-writable", false))
        .await
        .unwrap();
    assert!(other.path().join("now-writable").is_dir());

    c.unmount("/mnt/o").await.unwrap();
    assert!(matches!(
        c.get_status("/mnt/o/x", None).await,
        Err(AlluxioError::NotFound(_))
    ));
    assert!(
        other.path().join("x/data.bin").exists(),
        "unmount keeps UFS data"
    );
    c.mount(req("/mnt/o", &uri)).await.unwrap();
}

#[tokio::test]
async fn sync_interval_controls_what_is_seen_from_the_ufs() {
    let m = start(|_| {}).await;
    let c = &m.client;
    std::fs::create_dir_all(m.ufs.join("data")).unwrap();
    std::fs::write(m.ufs.join("data/one"), b"1").unwrap();
    // First listing loads the directory.
    let names = |infos: Vec<FileInfo>| infos.into_iter().map(|i| i.name).collect::<Vec<_>>();
    assert_eq!(
        names(c.list_status("/data", false, None).await.unwrap()),
        vec!["one"]
    );

    // Added behind the cluster's back: invisible with -1, visible with 0.
    std::fs::write(m.ufs.join("data/two"), b"22").unwrap();
    assert_eq!(
        names(c.list_status("/data", false, Some(-1)).await.unwrap()),
        vec!["one"]
    );
    assert_eq!(
        names(c.list_status("/data", false, Some(0)).await.unwrap()),
        vec!["one", "two"]
    );

    // Changed and removed behind the cluster's back.
    let old = c.get_status("/data/two", None).await.unwrap();
    std::fs::write(m.ufs.join("data/two"), b"longer").unwrap();
    std::fs::remove_file(m.ufs.join("data/one")).unwrap();
    let now = c.list_status("/data", false, Some(0)).await.unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].length, 6);
    assert_ne!(
        now[0].file_id, old.file_id,
        "a changed file gets a new inode (and new block ids)"
    );

    // With an interval, a sync happens at most once per interval.
    std::fs::write(m.ufs.join("data/three"), b"3").unwrap();
    let long = 3_600_000;
    assert_eq!(
        c.list_status("/data", false, Some(long))
            .await
            .unwrap()
            .len(),
        1
    );

    // A single missing path is looked up in the UFS (lazy load).
    assert_eq!(
        c.get_status("/data/three", Some(0)).await.unwrap().length,
        1
    );
}

#[tokio::test]
async fn workers_register_heartbeat_and_get_lost() {
    let m = start(|c| {
        c.master.worker_timeout.0 = std::time::Duration::from_millis(300);
        c.master.worker_check_interval.0 = std::time::Duration::from_millis(50);
    })
    .await;
    // Registration and heartbeats are for workers only.
    let c = &m
        .client_as("worker", alluxio_common::auth::Role::Worker)
        .await;
    c.create_file(create("/f")).await.unwrap();
    let f = c.complete_file(complete("/f", 10)).await.unwrap();
    let block = f.block_ids[0];
    let tiers = vec![TierUsage {
        tier_alias: "MEM".into(),
        capacity_bytes: 1 << 30,
        used_bytes: 10,
    }];

    // Unknown workers are told to register.
    let cmd = c
        .worker_heartbeat(WorkerHeartbeatRequest {
            worker_id: 9,
            ..Default::default()
        })
        .await
        .unwrap()
        .command
        .unwrap();
    assert_eq!(cmd.command_type, CommandType::Register as i32);

    let mut blocks = std::collections::HashMap::new();
    blocks.insert(
        "MEM".to_string(),
        BlockIdList {
            block_ids: vec![block, 999 << 24],
        },
    );
    c.register_worker(RegisterWorkerRequest {
        worker_id: 9,
        address: Some(WorkerAddress {
            host: "127.0.0.1".into(),
            rpc_port: 29999,
            web_port: 30000,
            data_port: 0,
        }),
        tiers: tiers.clone(),
        blocks_on_tiers: blocks,
        page: 0,
    })
    .await
    .unwrap();
    let f = c.get_status("/f", None).await.unwrap();
    assert_eq!(f.in_alluxio_percentage, 100);
    assert_eq!(
        f.file_block_infos[0].block_info.as_ref().unwrap().locations[0].worker_id,
        9
    );

    // The block of a file that does not exist is freed at the next heartbeat.
    let cmd = c
        .worker_heartbeat(WorkerHeartbeatRequest {
            worker_id: 9,
            tiers: tiers.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .command
        .unwrap();
    assert_eq!(
        (cmd.command_type, cmd.block_ids.clone()),
        (CommandType::Free as i32, vec![999 << 24])
    );

    // Deleting the file frees its block too.
    c.delete("/f", false, true).await.unwrap();
    let cmd = c
        .worker_heartbeat(WorkerHeartbeatRequest {
            worker_id: 9,
            tiers: tiers.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .command
        .unwrap();
    assert_eq!(cmd.block_ids, vec![block]);

    let info = c.master_info().await.unwrap();
    assert_eq!(
        (info.live_workers, info.capacity[0].capacity_bytes),
        (1, 1 << 30)
    );

    // Silence: the worker is marked lost.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let info = c.master_info().await.unwrap();
        if info.lost_workers == 1 {
            assert_eq!(info.live_workers, 0);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "worker never marked lost"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (_, metrics) = common::http_get(&m.web(), "/metrics").await;
    assert!(
        metrics.contains("alluxio_master_workers{state=\"lost\"} 1"),
        "{metrics}"
    );
    assert!(matches!(
        c.register_worker(RegisterWorkerRequest {
            worker_id: 0,
            ..Default::default()
        })
        .await,
        Err(AlluxioError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn ttl_checker_deletes_or_frees() {
    let m = start(|c| c.master.ttl_check_interval.0 = std::time::Duration::from_millis(50)).await;
    let c = &m.client;
    c.create_directory(mkdir("/tmp/gone", true)).await.unwrap();
    c.create_directory(mkdir("/tmp/kept", true)).await.unwrap();
    c.set_attribute(SetAttributeRequest {
        path: "/tmp/gone".into(),
        ttl_ms: Some(1),
        ..Default::default()
    })
    .await
    .unwrap();
    c.set_attribute(SetAttributeRequest {
        path: "/tmp/kept".into(),
        ttl_ms: Some(1),
        ttl_action: Some(TtlAction::Free as i32),
        ..Default::default()
    })
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while c.get_status("/tmp/gone", None).await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "TTL never acted");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        !m.ufs.join("tmp/gone").exists(),
        "DELETE removes from the UFS too"
    );
    // FREE keeps the directory and clears its TTL.
    loop {
        let kept = c.get_status("/tmp/kept", None).await.unwrap();
        if kept.ttl_ms == -1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "FREE TTL never acted");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn status_endpoints_and_metrics() {
    let m = start(|_| {}).await;
    m.client
        .create_directory(mkdir("/m1", false))
        .await
        .unwrap();
    let _ = m.client.get_status("/nope", None).await;
    let (code, body) = common::http_get(&m.web(), "/healthz").await;
    assert_eq!((code, body.trim()), (200, "ok"));
    let (code, _) = common::http_get(&m.web(), "/readyz").await;
    assert_eq!(code, 200);
    let (_, metrics) = common::http_get(&m.web(), "/metrics").await;
    for needle in [
        "alluxio_master_directories 2",
        "alluxio_master_files 0",
        "alluxio_master_rpc_duration_seconds_count{method=\"CreateDirectory\"} 1",
        "alluxio_master_rpc_errors_total{method=\"GetStatus\",code=\"NotFound\"} 1",
        "alluxio_master_journal_entries_since_checkpoint",
        "alluxio_master_workers{state=\"live\"} 0",
        "alluxio_master_rpcs_shed_total 0",
        "alluxio_master_journal_failed 0",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
}

#[tokio::test]
async fn a_mount_can_set_its_own_sync_interval() {
    // The master's default is -1 (never sync after the first load).
    let m = start(|_| {}).await;
    let c = &m.client;
    let always = tempfile::tempdir().unwrap();
    let options = |interval: &str| {
        std::collections::HashMap::from([("sync_interval".to_string(), interval.to_string())])
    };
    let err = c
        .mount(MountRequest {
            alluxio_path: "/fresh".into(),
            ufs_uri: format!("file://{}", always.path().display()),
            options: options("sometimes"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("sync_interval"), "{err}");
    c.mount(MountRequest {
        alluxio_path: "/fresh".into(),
        ufs_uri: format!("file://{}", always.path().display()),
        options: options("0"),
        ..Default::default()
    })
    .await
    .unwrap();
    std::fs::create_dir_all(m.ufs.join("stale")).unwrap();
    let count =
        |path: &'static str| async move { c.list_status(path, false, None).await.unwrap().len() };
    assert_eq!(count("/fresh").await, 0);
    assert_eq!(count("/stale").await, 0);
    // Files added behind the cluster's back: seen under the mount that
    // syncs on every access, not under the root (the default, never).
    std::fs::write(always.path().join("new"), b"1").unwrap();
    std::fs::write(m.ufs.join("stale/new"), b"1").unwrap();
    assert_eq!(count("/fresh").await, 1);
    assert_eq!(count("/stale").await, 0);
    // A request's own interval still wins.
    assert_eq!(
        c.list_status("/stale", false, Some(0)).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn setuid_and_setgid_bits_are_dropped_unless_the_mount_allows_them() {
    let m = start(|_| {}).await;
    let c = &m.client;
    let mode_of = |path: &'static str| async move { c.get_status(path, None).await.unwrap().mode };

    // Under the root mount: created, made and changed without them.
    c.create_file(CreateFileRequest {
        mode: Some(0o4755),
        ..create("/planted")
    })
    .await
    .unwrap();
    assert_eq!(mode_of("/planted").await, 0o755);
    c.create_directory(CreateDirectoryRequest {
        mode: Some(0o2775),
        ..mkdir("/shared", false)
    })
    .await
    .unwrap();
    assert_eq!(mode_of("/shared").await, 0o775);
    c.set_attribute(SetAttributeRequest {
        path: "/planted".into(),
        mode: Some(0o6711),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(mode_of("/planted").await, 0o711);

    // A mount that asks for them keeps them.
    let tools = tempfile::tempdir().unwrap();
    c.mount(MountRequest {
        alluxio_path: "/tools".into(),
        ufs_uri: format!("file://{}", tools.path().display()),
        options: [("allow_setuid".to_string(), "true".to_string())].into(),
        ..Default::default()
    })
    .await
    .unwrap();
    c.create_file(CreateFileRequest {
        mode: Some(0o4755),
        ..create("/tools/su")
    })
    .await
    .unwrap();
    assert_eq!(mode_of("/tools/su").await, 0o4755);
}

#[tokio::test]
async fn local_directories_are_mounted_only_inside_the_allowed_roots() {
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("data");
    let beside = base.path().join("database");
    for d in [&data, &beside] {
        std::fs::create_dir_all(d.join("x")).unwrap();
    }
    let allowed = data.display().to_string();
    let m = start(|c| c.master.allowed_local_ufs_roots = vec![allowed]).await;
    let c = &m.client;
    let mount = |path: &str, uri: String| MountRequest {
        alluxio_path: path.into(),
        ufs_uri: uri,
        ..Default::default()
    };
    c.mount(mount("/ok", format!("file://{}/x", data.display())))
        .await
        .unwrap();
    let before = c.mount_table().await.unwrap();
    for uri in [
        "file:///etc".to_string(),
        format!("file://{}", beside.display()),
        format!("file://{}", base.path().display()),
    ] {
        let err = c.mount(mount("/denied", uri.clone())).await.unwrap_err();
        assert!(
            matches!(&err, AlluxioError::PermissionDenied(m) if m.contains("allowed_local_ufs_roots")),
            "{uri}: {err}"
        );
    }
    assert_eq!(c.mount_table().await.unwrap(), before);
    assert!(c.get_status("/denied", None).await.is_err());

    // By default no local directory may be mounted; the configured root
    // UFS still is one.
    let strict = start(|c| c.master.allowed_local_ufs_roots.clear()).await;
    let err = strict
        .client
        .mount(mount("/ok", format!("file://{}/x", data.display())))
        .await
        .unwrap_err();
    assert!(matches!(err, AlluxioError::PermissionDenied(_)), "{err}");
    strict.client.get_status("/", None).await.unwrap();
}

#[tokio::test]
async fn a_recursive_set_attribute_commits_in_bounded_batches() {
    let m = start(|c| c.master.recursive_change_batch_size = 3).await;
    let c = &m.client;
    c.create_directory(mkdir("/t", false)).await.unwrap();
    for i in 0..10 {
        c.create_file(create(&format!("/t/f{i}"))).await.unwrap();
    }
    let flushes = || {
        m.server
            .as_ref()
            .unwrap()
            .fs
            .journal()
            .counters()
            .flushes
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = flushes();
    c.set_attribute(SetAttributeRequest {
        path: "/t".into(),
        recursive: true,
        mode: Some(0o750),
        ..Default::default()
    })
    .await
    .unwrap();
    // 11 inodes, 3 per transaction: four transactions, each its own
    // append to the journal (one, before batching).
    assert!(flushes() - before >= 4, "{} flushes", flushes() - before);
    for info in c.list_status("/t", true, None).await.unwrap() {
        assert_eq!(info.mode, 0o750, "{}", info.path);
    }
    assert_eq!(c.get_status("/t", None).await.unwrap().mode, 0o750);
}
