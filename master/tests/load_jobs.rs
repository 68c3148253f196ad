//! Load jobs run by the master on several in-process workers, against a
//! real S3 server (moto on 127.0.0.1) and local directories: spreading,
//! joining, resuming after a master restart without fetching a block
//! twice, a worker killed mid-load, per-file failures, verify, stop, and
//! refused requests.

use alluxio_client::MasterClient;
use alluxio_common::auth::Role;
use alluxio_common::AlluxioError;
use alluxio_proto::grpc::{
    JobInfo, JobState, LoadOptions, MountRequest, SetAttributeRequest, WriteType,
};
use alluxio_testkit::cluster::{data, start, Cluster, MIB};
use alluxio_testkit::s3::S3Server;
use std::time::{Duration, Instant};

/// A client of `c` as the plain user `name`.
async fn user_client(c: &Cluster, name: &str) -> MasterClient {
    MasterClient::connect(
        &c.master().rpc_addr.to_string(),
        Duration::from_secs(5),
        c.credentials(name, Role::User),
    )
    .await
    .unwrap()
}

async fn mount_s3(c: &Cluster, s3: &S3Server, at: &str, uri: &str) {
    c.client
        .mount(MountRequest {
            alluxio_path: at.into(),
            ufs_uri: uri.into(),
            options: s3.options().into_iter().collect(),
            ..Default::default()
        })
        .await
        .unwrap();
}

/// `count` objects of 2.5 blocks each under `bucket/prefix`, mounted at
/// `/s3`; returns their total size.
async fn s3_dataset(c: &Cluster, s3: &S3Server, count: usize) -> u64 {
    s3.create_bucket("warm");
    let mut total = 0;
    for i in 0..count {
        let bytes = data((5 * MIB / 2) as usize + i, i as u8);
        s3.put_object("warm", &format!("set/part-{i:03}.bin"), &bytes);
        total += bytes.len() as u64;
    }
    mount_s3(c, s3, "/s3", "s3://warm/set").await;
    total
}

/// Files of 2.5 blocks each in the root UFS directory `dir` (loaded lazily).
fn local_dataset(c: &Cluster, dir: &str, count: usize) -> u64 {
    let root = c.ufs.join(dir);
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let mut total = 0;
    for i in 0..count {
        let bytes = data((5 * MIB / 2) as usize, i as u8);
        let name = if i % 3 == 0 {
            format!("sub/f{i:03}")
        } else {
            format!("f{i:03}")
        };
        std::fs::write(root.join(name), &bytes).unwrap();
        total += bytes.len() as u64;
    }
    total
}

fn options(replicas: u32, bandwidth: u64) -> LoadOptions {
    LoadOptions {
        replicas,
        bandwidth_bytes_per_sec: bandwidth,
        ..Default::default()
    }
}

async fn submit(client: &MasterClient, path: &str, options: LoadOptions) -> (JobInfo, bool) {
    let r = client.submit_load(path, options).await.unwrap();
    (r.job.unwrap(), r.joined)
}

/// Polls the job until it ends (the client may be replaced by a restart,
/// so it is asked for each time).
async fn wait_finished(client: impl Fn() -> MasterClient, id: u64) -> JobInfo {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(job) = client().get_job(id).await {
            if job.state() != JobState::Running {
                return job;
            }
        }
        assert!(Instant::now() < deadline, "job {id} did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_progress(client: &MasterClient, id: u64, files: u64) -> JobInfo {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = client.get_job(id).await.unwrap();
        if job.files_done >= files || job.state() != JobState::Running {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} made no progress: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ufs_bytes(c: &Cluster) -> u64 {
    c.total(|w| w.metrics.bytes_read_ufs.get())
}

#[tokio::test]
async fn a_load_spreads_over_the_workers_joins_a_second_submit_and_fetches_each_block_once() {
    let Some(s3) = S3Server::start() else {
        return;
    };
    let c = start(3, 256 * MIB, |_| {}).await;
    let total = s3_dataset(&c, &s3, 24).await;
    // Paced, so that the second submit finds it running.
    let (job, joined) = submit(&c.client, "/s3", options(1, 40 * MIB)).await;
    assert!(!joined);
    let (again, joined) = submit(&c.client, "/s3", options(1, 0)).await;
    assert!(joined, "a second load of the same path joins the first");
    assert_eq!(again.job_id, job.job_id);

    let done = wait_finished(|| c.client.clone(), job.job_id).await;
    assert_eq!(done.state(), JobState::Succeeded, "{done:?}");
    assert_eq!((done.files_done, done.files_failed), (24, 0));
    assert_eq!((done.files_total, done.bytes_total), (24, total));
    assert_eq!(done.bytes_done, total);
    assert_eq!(done.bytes_fetched, total);
    assert!(done.end_time_ms >= done.submit_time_ms);
    for f in c.client.list_status("/s3", false, None).await.unwrap() {
        c.wait_cached(&f.path, 100).await;
    }
    assert_eq!(ufs_bytes(&c), total, "every block was fetched exactly once");
    for (i, w) in c.workers.iter().flatten().enumerate() {
        let fetched = w.metrics.bytes_read_ufs.get();
        assert!(
            fetched > total / 6,
            "worker {i} fetched only {fetched} of {total} bytes"
        );
    }

    // Everything is cached now: a new load fetches nothing.
    let (job, _) = submit(&c.client, "/s3", options(1, 0)).await;
    let done = wait_finished(|| c.client.clone(), job.job_id).await;
    assert_eq!(done.state(), JobState::Succeeded);
    assert_eq!((done.bytes_done, done.bytes_fetched), (total, 0));
    assert_eq!(ufs_bytes(&c), total);
    let listed = c.client.list_jobs().await.unwrap();
    assert_eq!(listed.len(), 2, "both jobs are listed");
    assert_eq!(listed[0].job_id, job.job_id, "newest first");
}

#[tokio::test]
async fn a_load_resumes_after_a_master_restart_without_fetching_a_block_twice() {
    let Some(s3) = S3Server::start() else {
        return;
    };
    let port = alluxio_testkit::free_port().expect("a free port");
    let mut c = start(2, 256 * MIB, |cfg| cfg.master.rpc_port = port).await;
    let total = s3_dataset(&c, &s3, 16).await;
    let (job, _) = submit(&c.client, "/s3", options(1, 12 * MIB)).await;
    let before = wait_progress(&c.client, job.job_id, 4).await;
    assert_eq!(
        before.state(),
        JobState::Running,
        "still running when the master stops"
    );
    assert!(before.files_done < 16);

    c.restart_master().await;
    c.wait_for_workers(2).await;
    let resumed = c.client.get_job(job.job_id).await.unwrap();
    assert_eq!(
        resumed.state(),
        JobState::Running,
        "the journal kept the job"
    );
    let done = wait_finished(|| c.client.clone(), job.job_id).await;
    assert_eq!(done.state(), JobState::Succeeded, "{done:?}");
    assert_eq!((done.files_done, done.files_failed), (16, 0));
    assert_eq!(done.bytes_done, total);
    for f in c.client.list_status("/s3", false, None).await.unwrap() {
        c.wait_cached(&f.path, 100).await;
    }
    assert_eq!(ufs_bytes(&c), total, "no block was fetched twice");
}

#[tokio::test]
async fn a_worker_killed_mid_load_has_its_blocks_cached_by_the_others() {
    let mut c = start(3, 256 * MIB, |cfg| {
        cfg.master.worker_timeout.0 = Duration::from_secs(1);
        cfg.master.worker_check_interval.0 = Duration::from_millis(200);
    })
    .await;
    let total = local_dataset(&c, "killed", 18);
    // Verify loads again what was lost with the worker after it cached it.
    let verified = LoadOptions {
        verify: true,
        ..options(1, 10 * MIB)
    };
    let (job, _) = submit(&c.client, "/killed", verified).await;
    wait_progress(&c.client, job.job_id, 3).await;
    let killed = c.workers[1].take().unwrap();
    let killed_id = killed.worker_id;
    killed.shutdown().await;
    let done = wait_finished(|| c.client.clone(), job.job_id).await;
    assert_eq!(done.state(), JobState::Succeeded, "{done:?}");
    assert_eq!(
        (done.files_done, done.files_failed, done.bytes_done),
        (18, 0, total)
    );
    for f in c.client.list_status("/killed", true, None).await.unwrap() {
        if f.folder {
            continue;
        }
        assert_eq!(f.in_alluxio_percentage, 100, "{} is not all cached", f.path);
        for b in &f.file_block_infos {
            let holders = &b.block_info.as_ref().unwrap().locations;
            assert!(
                holders.iter().all(|h| h.worker_id != killed_id),
                "{}",
                f.path
            );
        }
    }
}

#[tokio::test]
async fn files_the_ufs_cannot_serve_are_reported_and_the_rest_loaded() {
    let c = start(2, 256 * MIB, |_| {}).await;
    local_dataset(&c, "broken", 9);
    // The metadata is known; then two files vanish from the UFS.
    c.client.list_status("/broken", true, None).await.unwrap();
    std::fs::remove_file(c.ufs.join("broken/f001")).unwrap();
    std::fs::remove_file(c.ufs.join("broken/sub/f003")).unwrap();
    let (job, _) = submit(&c.client, "/broken", options(1, 0)).await;
    let done = wait_finished(|| c.client.clone(), job.job_id).await;
    assert_eq!(done.state(), JobState::Failed, "{done:?}");
    assert_eq!((done.files_done, done.files_failed), (9, 2));
    let mut failed: Vec<&str> = done.failures.iter().map(|f| f.path.as_str()).collect();
    failed.sort();
    assert_eq!(failed, ["/broken/f001", "/broken/sub/f003"]);
    assert!(done.message.contains("2 of 9"), "{}", done.message);
    c.wait_cached("/broken/f002", 100).await;
    c.wait_cached("/broken/sub/f000", 100).await;
}

#[tokio::test]
async fn replicas_and_verify() {
    let c = start(3, 256 * MIB, |_| {}).await;
    local_dataset(&c, "twice", 4);
    let verified = LoadOptions {
        verify: true,
        ..options(2, 0)
    };
    let (job, _) = submit(&c.client, "/twice", verified).await;
    let done = wait_finished(|| c.client.clone(), job.job_id).await;
    assert_eq!(done.state(), JobState::Succeeded, "{done:?}");
    for f in c.client.list_status("/twice", true, None).await.unwrap() {
        for b in f.file_block_infos {
            let holders = b.block_info.unwrap().locations.len();
            assert_eq!(holders, 2, "{} has a block on {holders} workers", f.path);
        }
    }
    // Four replicas on three workers cannot be: verify says so per file.
    let impossible = LoadOptions {
        verify: true,
        ..options(4, 0)
    };
    let (job, _) = submit(&c.client, "/twice", impossible).await;
    let done = wait_finished(|| c.client.clone(), job.job_id).await;
    assert_eq!(done.state(), JobState::Failed, "{done:?}");
    assert_eq!(done.files_failed, 4);
    assert!(
        done.failures[0].reason.contains("3 of 4 workers"),
        "{:?}",
        done.failures[0]
    );
}

#[tokio::test]
async fn a_stopped_job_stops_fetching_and_only_its_owner_or_the_superuser_may_stop_it() {
    let c = start(2, 256 * MIB, |_| {}).await;
    let total = local_dataset(&c, "stopped", 20);
    let (job, _) = submit(&c.client, "/stopped", options(1, 8 * MIB)).await;
    wait_progress(&c.client, job.job_id, 2).await;

    let stranger = user_client(&c, "mallory").await;
    let refused = stranger.stop_job(job.job_id).await.unwrap_err();
    assert!(
        matches!(refused, AlluxioError::PermissionDenied(_)),
        "{refused}"
    );

    let stopped = c.client.stop_job(job.job_id).await.unwrap();
    assert_eq!(stopped.state(), JobState::Stopped);
    assert!(
        stopped.message.contains("stopped by"),
        "{}",
        stopped.message
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let fetched = ufs_bytes(&c);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ufs_bytes(&c), fetched, "nothing is fetched after the stop");
    assert!(fetched < total, "the job was stopped before it finished");
    let after = c.client.get_job(job.job_id).await.unwrap();
    assert_eq!(after.state(), JobState::Stopped);
    assert_eq!(after.bytes_done, stopped.bytes_done, "the progress is kept");
    // Stopping again changes nothing.
    assert_eq!(
        c.client.stop_job(job.job_id).await.unwrap().state(),
        JobState::Stopped
    );
}

#[tokio::test]
async fn bad_requests_are_refused_and_start_nothing() {
    let c = start(1, 64 * MIB, |_| {}).await;
    local_dataset(&c, "ok", 1);
    let missing = c
        .client
        .submit_load("/nope", options(1, 0))
        .await
        .unwrap_err();
    assert!(matches!(missing, AlluxioError::NotFound(_)), "{missing}");
    let replicas = c
        .client
        .submit_load("/ok", options(99, 0))
        .await
        .unwrap_err();
    assert!(
        matches!(replicas, AlluxioError::InvalidArgument(_)),
        "{replicas}"
    );
    let unknown = c.client.get_job(12345).await.unwrap_err();
    assert!(matches!(unknown, AlluxioError::NotFound(_)), "{unknown}");
    assert!(matches!(
        c.client.stop_job(12345).await.unwrap_err(),
        AlluxioError::NotFound(_)
    ));
    // A user who may not list a directory may not load it.
    c.give_directory("/private", "alice").await;
    c.client
        .set_attribute(alluxio_proto::grpc::SetAttributeRequest {
            path: "/private".into(),
            mode: Some(0o700),
            ..Default::default()
        })
        .await
        .unwrap();
    let bob = user_client(&c, "bob").await;
    let denied = bob
        .submit_load("/private", options(1, 0))
        .await
        .unwrap_err();
    assert!(
        matches!(denied, AlluxioError::PermissionDenied(_)),
        "{denied}"
    );
    assert!(
        c.client.list_jobs().await.unwrap().is_empty(),
        "no job was created"
    );
}

#[tokio::test]
async fn a_metadata_load_lists_every_directory_and_caches_no_block() {
    let Some(s3) = S3Server::start() else {
        return;
    };
    let c = start(2, 256 * MIB, |cfg| cfg.master.metadata_sync_batch_size = 4).await;
    s3.create_bucket("meta");
    let mut names = Vec::new();
    for d in 0..3 {
        for i in 0..10 {
            names.push(format!("d{d}/f{i:02}"));
        }
    }
    names.extend((0..5).map(|i| format!("top{i}")));
    for name in &names {
        s3.put_object("meta", name, &[5u8; 100]);
    }
    mount_s3(&c, &s3, "/meta", "s3://meta").await;
    let metadata = LoadOptions {
        metadata_only: true,
        ..Default::default()
    };
    let (job, joined) = submit(&c.client, "/meta", metadata).await;
    assert!(!joined);
    let done = wait_finished(|| c.client.clone(), job.job_id).await;
    assert_eq!(done.state(), JobState::Succeeded, "{done:?}");
    assert_eq!((done.files_done, done.files_failed), (35, 0));
    assert_eq!(done.bytes_total, 3500);
    assert_eq!((done.bytes_done, done.bytes_fetched), (0, 0));
    assert_eq!(ufs_bytes(&c), 0, "no block was fetched");
    // Every directory is loaded: a listing that never syncs sees it all.
    let listed = c.client.list_status("/meta", true, Some(-1)).await.unwrap();
    assert_eq!(listed.iter().filter(|f| !f.folder).count(), 35);
    assert!(listed.iter().all(|f| f.in_alluxio_percentage == 0));

    // A metadata load joins a running load of the blocks, which walks the
    // same metadata (the other way round: `table.rs`'s unit test).
    let (blocks, _) = submit(&c.client, "/meta", options(1, 1)).await;
    let (joined_job, joined) = submit(&c.client, "/meta", metadata).await;
    assert!(joined && joined_job.job_id == blocks.job_id);
    c.client.stop_job(blocks.job_id).await.unwrap();
    let refused = c
        .client
        .submit_load(
            "/meta",
            LoadOptions {
                verify: true,
                ..metadata
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, AlluxioError::InvalidArgument(_)),
        "{refused}"
    );
}

#[tokio::test]
async fn a_free_job_frees_what_it_may_and_reports_the_rest() {
    let c = start(2, 256 * MIB, |_| {}).await;
    let total = local_dataset(&c, "freed", 6);
    let (job, _) = submit(&c.client, "/freed", options(1, 0)).await;
    assert_eq!(
        wait_finished(|| c.client.clone(), job.job_id).await.state(),
        JobState::Succeeded
    );
    // One pinned file, and one whose only copy is the cache.
    c.client
        .set_attribute(SetAttributeRequest {
            path: "/freed/f001".into(),
            pinned: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    c.fs.write_file(
        "/freed/only-cached",
        WriteType::MustCache,
        [bytes::Bytes::from(data(1000, 1))],
    )
    .await
    .unwrap();
    let free = |forced| LoadOptions {
        free: true,
        forced,
        ..Default::default()
    };

    let stranger = user_client(&c, "mallory").await;
    let refused = stranger
        .submit_load("/freed", free(false))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, AlluxioError::PermissionDenied(_)),
        "{refused}"
    );

    let (job, _) = submit(&c.client, "/freed", free(false)).await;
    let done = wait_finished(|| c.client.clone(), job.job_id).await;
    assert_eq!(done.state(), JobState::Failed, "{done:?}");
    assert_eq!((done.files_done, done.files_failed), (7, 2));
    let mut failed: Vec<&str> = done.failures.iter().map(|f| f.path.as_str()).collect();
    failed.sort();
    assert_eq!(failed, ["/freed/f001", "/freed/only-cached"]);
    let pinned_bytes = c
        .client
        .get_status("/freed/f001", None)
        .await
        .unwrap()
        .length;
    assert_eq!(
        done.bytes_done,
        total - pinned_bytes,
        "the freed files' cached bytes"
    );
    c.wait_cached("/freed/f002", 0).await;
    c.wait_cached("/freed/sub/f000", 0).await;
    c.wait_cached("/freed/f001", 100).await;
    c.wait_cached("/freed/only-cached", 100).await;

    // Forced: the pinned file too; the only copy of a file never.
    let (job, _) = submit(&c.client, "/freed", free(true)).await;
    let done = wait_finished(|| c.client.clone(), job.job_id).await;
    assert_eq!(done.files_failed, 1, "{done:?}");
    assert_eq!(done.failures[0].path, "/freed/only-cached");
    c.wait_cached("/freed/f001", 0).await;
    let only = c.fs.open("/freed/only-cached", None).await.unwrap();
    assert_eq!(
        &only.read_at(0, 1000).await.unwrap()[..],
        &data(1000, 1)[..]
    );
    let refused = c
        .client
        .submit_load(
            "/freed",
            LoadOptions {
                forced: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, AlluxioError::InvalidArgument(_)),
        "{refused}"
    );
}
