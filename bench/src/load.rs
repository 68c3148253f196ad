//! Warming a dataset (issue 16). A load job of the cluster against what a
//! user would otherwise run — the same number of plain whole-object GETs
//! at once, straight from the server — and against the client-driven load
//! (`fs load --local`: this process asks a worker for one block at a
//! time); and a metadata load of many objects in one directory: objects
//! per second, and the master's memory growth per object.

use crate::data::{bench_s3, mb_s, BenchS3, MIB};
use crate::master::rss_bytes;
use crate::report::{median, write, Bar};
use alluxio_common::units::ByteSize;
use alluxio_proto::grpc::{JobInfo, JobState, LoadOptions, MountRequest};
use alluxio_testkit::cluster::{start, start_in_memory, Cluster};
use futures::StreamExt;
use object_store::aws::AmazonS3;
use object_store::ObjectStoreExt;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BLOCK: u64 = 64 * MIB;
const ROUNDS: usize = 3;

/// How many workers, and how many blocks of a job each fetches at once.
#[derive(Clone, Copy)]
pub struct Workers {
    pub count: usize,
    pub concurrency: usize,
}

/// A cluster of `workers` with room for the whole dataset in MEM tiers on
/// a tmpfs (as the operator's clusters have them), 64 MiB blocks, and the
/// benchmark bucket mounted at `/data`.
async fn cluster_with_bucket(s3: &BenchS3, workers: Workers, total: u64) -> Cluster {
    let quota = total / workers.count as u64 + 2 * BLOCK;
    let c = start_in_memory(workers.count, quota, |c| {
        c.user.block_size = ByteSize(BLOCK);
        c.master.job.worker_concurrency = workers.concurrency;
    })
    .await;
    c.client
        .mount(MountRequest {
            alluxio_path: "/data".into(),
            ufs_uri: "s3://bench/data".into(),
            options: s3.options.clone().into_iter().collect(),
            ..Default::default()
        })
        .await
        .expect("mount");
    c
}

async fn stop(c: Cluster) {
    for w in c.workers.into_iter().flatten() {
        w.shutdown().await;
    }
    if let Some(m) = c.master {
        m.shutdown().await;
    }
}

async fn wait_for_job(c: &Cluster, id: u64) -> JobInfo {
    loop {
        let job = c.client.get_job(id).await.expect("job");
        if job.state() != JobState::Running {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Seconds for every object at once, each with one plain GET of the whole
/// object (no Range header): what a user would do instead.
async fn parallel_plain_gets(store: &Arc<AmazonS3>, files: u64, total: u64) -> f64 {
    let start = Instant::now();
    let got: u64 = futures::stream::iter(0..files)
        .map(|f| {
            let store = store.clone();
            async move {
                let key = object_store::path::Path::from(format!("data/part-{f:04}.bin"));
                let mut stream = store.get(&key).await.expect("get").into_stream();
                let mut n = 0u64;
                while let Some(piece) = stream.next().await {
                    n += piece.expect("piece").len() as u64;
                }
                n
            }
        })
        .buffer_unordered(files as usize)
        .fold(0, |a, n| async move { a + n })
        .await;
    assert_eq!(got, total);
    start.elapsed().as_secs_f64()
}

/// Writes `bytes` into a file on the tmpfs and deletes it. In a virtual
/// machine whose host takes back memory the guest has freed (a balloon
/// with free page reporting, as here), the first write to such memory
/// costs about ten times a write to memory used a moment ago; a job
/// right after this caches into memory the host still backs.
fn touch_memory(bytes: u64) {
    use std::io::Write;
    let dir = alluxio_testkit::memory_dir();
    let mut f = std::fs::File::create(dir.path().join("touch")).expect("touch file");
    let buf = vec![1u8; MIB as usize];
    for _ in 0..bytes.div_ceil(MIB) {
        f.write_all(&buf).expect("touch");
    }
}

/// Seconds for a load job of `/data` on a fresh cluster, and the bytes
/// each worker fetched.
async fn load_job(s3: &BenchS3, workers: Workers, total: u64) -> (f64, Vec<u64>) {
    let c = cluster_with_bucket(s3, workers, total).await;
    let start = Instant::now();
    let submitted = c
        .client
        .submit_load("/data", LoadOptions::default())
        .await
        .expect("submit");
    let job = wait_for_job(&c, submitted.job.expect("job").job_id).await;
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    assert_eq!(job.bytes_fetched, total);
    let per_worker = c
        .workers
        .iter()
        .flatten()
        .map(|w| w.metrics.bytes_read_ufs.get())
        .collect();
    stop(c).await;
    (secs, per_worker)
}

pub async fn load(out: &Path, files: u64, file_size: u64, workers: Workers, s3s_fs: Option<&Path>) {
    let s3_root = tempfile::tempdir().expect("tempdir");
    let Some(s3) = bench_s3(s3s_fs, s3_root.path()) else {
        return;
    };
    let piece = bytes::Bytes::from(vec![0x5au8; (8 * MIB) as usize]);
    futures::stream::iter(0..files)
        .for_each_concurrent(4, |f| {
            let (ufs, piece) = (s3.ufs.clone(), piece.clone());
            async move {
                let mut w = ufs
                    .create(&format!("part-{f:04}.bin"))
                    .await
                    .expect("create");
                for _ in 0..file_size.div_ceil(8 * MIB) {
                    w.write(piece.clone()).await.expect("upload");
                }
                w.complete().await.expect("complete");
            }
        })
        .await;
    let total = files * file_size.div_ceil(8 * MIB) * 8 * MIB;
    // The server's files written back now, not by the kernel during the
    // first round.
    let _ = std::process::Command::new("sync").status();

    // Paired rounds (this machine is noisy): the plain GETs, then the job
    // on a fresh (cold) cluster, then the job again right after the
    // dataset's size of memory was touched and given back, each round.
    let store = Arc::new(s3.plain_client());
    let (mut gets_secs, mut job_secs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut touched_job_secs, mut touched_ratios) = (Vec::new(), Vec::new());
    let mut per_worker = Vec::new();
    for _ in 0..ROUNDS {
        let gets = parallel_plain_gets(&store, files, total).await;
        let (job, fetched) = load_job(&s3, workers, total).await;
        touch_memory(total);
        let (touched_job, _) = load_job(&s3, workers, total).await;
        gets_secs.push(gets);
        job_secs.push(job);
        ratios.push(gets / job);
        touched_job_secs.push(touched_job);
        touched_ratios.push(gets / touched_job);
        per_worker = fetched;
    }

    // The client-driven load, on a fresh (cold) cluster.
    let c = cluster_with_bucket(&s3, workers, total).await;
    let start_client = Instant::now();
    for f in 0..files {
        let info = c
            .client
            .get_status(&format!("/data/part-{f:04}.bin"), None)
            .await
            .expect("status");
        c.fs.load(&info, true, |_| {}).await.expect("load");
    }
    let client_secs = start_client.elapsed().as_secs_f64();
    stop(c).await;

    let job_vs_gets = median(ratios);
    let (job_secs_median, gets_secs_median) = (median(job_secs.clone()), median(gets_secs.clone()));
    let (job_mb, gets_mb, client_mb) = (
        mb_s(total, job_secs_median),
        mb_s(total, gets_secs_median),
        mb_s(total, client_secs),
    );
    write(
        out,
        "load_job",
        "MiB/s",
        &[
            Bar {
                label: format!("load job ({} workers)", workers.count),
                value: job_mb,
            },
            Bar {
                label: format!("{files} parallel plain GETs"),
                value: gets_mb,
            },
            Bar {
                label: "client-driven load (fs load --local)".into(),
                value: client_mb,
            },
        ],
        json!({
            "files": files,
            "file_bytes": file_size,
            "dataset_bytes": total,
            "workers": workers.count,
            "blocks_in_flight_per_worker": workers.concurrency,
            "s3_server": s3.name,
            "rounds": ROUNDS,
            "job_seconds": job_secs,
            "parallel_gets_seconds": gets_secs,
            "client_driven_seconds": client_secs,
            "bytes_fetched_per_worker": per_worker,
            "job_vs_parallel_gets": job_vs_gets,
            "job_after_touching_memory_seconds": touched_job_secs,
            "job_after_touching_memory_vs_parallel_gets": median(touched_ratios),
            "job_vs_client_driven": job_mb / client_mb,
            "target_vs_parallel_gets": 0.8,
            "target_vs_client_driven": 2.0,
            "meets_parallel_gets_target": job_vs_gets >= 0.8,
            "meets_client_driven_target": job_mb / client_mb >= 2.0,
            "note": "job_vs_parallel_gets is the median of per-round ratios (GETs then job, each round; the job on a fresh cluster); bars are medians; the workers' MEM tiers are on a tmpfs, as in the operator's clusters; job_after_touching_memory: the job again, right after the dataset's size of tmpfs memory was written and deleted (memory the VM's host still backs)",
        }),
    );
}

/// `objects` files in one local directory, their metadata loaded by a
/// `loadMetadata` job: objects per second, and the master's RSS growth per
/// object against the bytes per inode of the master benchmark.
pub async fn metadata(out: &Path, objects: u64) {
    let c = start(1, 64 * MIB, |_| {}).await;
    let dir = c.ufs.join("many");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for i in 0..objects {
        std::fs::write(dir.join(format!("obj-{i:08}")), b"").expect("create");
    }
    let rss_before = rss_bytes();
    let start_job = Instant::now();
    let options = LoadOptions {
        metadata_only: true,
        ..Default::default()
    };
    let submitted = c
        .client
        .submit_load("/many", options)
        .await
        .expect("submit");
    let job = wait_for_job(&c, submitted.job.expect("job").job_id).await;
    let secs = start_job.elapsed().as_secs_f64();
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    assert_eq!(job.files_done, objects);
    let grown = rss_bytes().saturating_sub(rss_before);
    stop(c).await;
    let per_object = grown as f64 / objects as f64;
    let per_inode = std::fs::read_to_string(out.join("master_memory_per_inode.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["bytes_per_inode"].as_f64());
    write(
        out,
        "load_metadata",
        "objects/s",
        &[Bar {
            label: "loadMetadata of one directory (local UFS)".into(),
            value: objects as f64 / secs,
        }],
        json!({
            "objects": objects,
            "seconds": secs,
            "rss_growth_bytes": grown,
            "rss_growth_bytes_per_object": per_object,
            "master_bytes_per_inode": per_inode,
            "meets_memory_target": per_inode.map(|p| per_object <= p),
            "sync_batch_size": 1000,
        }),
    );
}
