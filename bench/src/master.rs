//! Master benchmarks: metadata RPC rate, journal group commit, memory per
//! inode and restart time.

use crate::report::{write, Bar};
use alluxio_client::MasterClient;
use alluxio_common::auth::Credentials;
use alluxio_common::config::AlluxioConfig;
use alluxio_master::fs_master::FileSystemMaster;
use alluxio_master::fs_master::NewInodeAttrs;
use alluxio_master::MasterServer;
use alluxio_proto::grpc::{CompleteFileRequest, CreateFileRequest, WriteType};
use futures::StreamExt;
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) fn config(dir: &Path, fsync: bool) -> AlluxioConfig {
    let mut c = AlluxioConfig::default();
    c.master.rpc_port = 0;
    c.master.web_port = 0;
    c.master.journal.dir = dir.join("journal");
    c.master.journal.fsync = fsync;
    c.master.journal.checkpoint_period_entries = u64::MAX;
    c.master.mount_table_root_ufs = format!("file://{}", dir.join("ufs").display());
    c.security.key_file = dir.join("security/cluster.key");
    c
}

/// `n` clients of `server`, each on its own connection, with the
/// credentials `config` gives a client (tokens minted from the key).
pub(crate) async fn clients(
    server: &MasterServer,
    config: &AlluxioConfig,
    n: usize,
) -> Vec<MasterClient> {
    let credentials = Credentials::for_client(config).expect("credentials");
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            MasterClient::connect(
                &server.rpc_addr.to_string(),
                Duration::from_secs(10),
                credentials.clone(),
            )
            .await
            .expect("connect"),
        );
    }
    out
}

/// Creates and completes `/bench/f0` .. `/bench/f{n-1}` (1 MiB each).
pub(crate) async fn create_files(client: &MasterClient, n: usize) {
    for i in 0..n {
        let path = format!("/bench/f{i}");
        client
            .create_file(CreateFileRequest {
                path: path.clone(),
                recursive: true,
                write_type: WriteType::MustCache as i32,
                ..Default::default()
            })
            .await
            .expect("create");
        client
            .complete_file(CompleteFileRequest {
                path,
                length: 1 << 20,
                ..Default::default()
            })
            .await
            .expect("complete");
    }
}

/// Runs `op` from `tasks` concurrent loops for `seconds`; returns ops/s.
pub(crate) async fn rate<F, Fut>(tasks: usize, seconds: f64, op: F) -> f64
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (stop, done, op) = (stop.clone(), done.clone(), op.clone());
        handles.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                op(t, i).await;
                i += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.await.expect("benchmark task");
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

pub async fn rpc(out: &Path, seconds: f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), true);
    let server = MasterServer::start(&cfg).await.expect("master");
    let conns = clients(&server, &cfg, 16).await;
    create_files(&conns[0], 1000).await;
    let conns = Arc::new(conns);
    let (mut ping, mut status) = (Vec::new(), Vec::new());
    // Alternate the two so that drift in machine speed hits both.
    for _ in 0..3 {
        let c = conns.clone();
        ping.push(
            rate(16, seconds / 3.0, move |t, _| {
                let c = c.clone();
                async move { c[t].ping().await.expect("ping") }
            })
            .await,
        );
        let c = conns.clone();
        status.push(
            rate(16, seconds / 3.0, move |t, i| {
                let c = c.clone();
                async move {
                    let path = format!("/bench/f{}", (i * 16 + t as u64) % 1000);
                    c[t].get_status(&path, None).await.expect("getStatus");
                }
            })
            .await,
        );
    }
    server.shutdown().await;
    let ping_rate = ping.iter().sum::<f64>() / ping.len() as f64;
    let status_rate = status.iter().sum::<f64>() / status.len() as f64;
    let ratio = status_rate / ping_rate;
    write(
        out,
        "master_get_status",
        "RPCs per second, 16 clients",
        &[
            Bar {
                label: "getStatus".into(),
                value: status_rate,
            },
            Bar {
                label: "no-op Ping (baseline)".into(),
                value: ping_rate,
            },
        ],
        json!({
            "get_status_per_s": status_rate,
            "ping_per_s": ping_rate,
            "phases_get_status": status,
            "phases_ping": ping,
            "ratio": ratio,
            "target_ratio": 0.5,
            "meets_target": ratio >= 0.5,
        }),
    );
}

/// create+complete pairs per second from 64 loops over `conns` (16
/// connections), under `/j` (which must exist).
pub(crate) async fn create_complete_rate(conns: Arc<Vec<MasterClient>>, seconds: f64) -> f64 {
    let run = alluxio_common::now_ms();
    rate(64, seconds, move |t, i| {
        let c = conns.clone();
        async move {
            let client = &c[t % 16];
            let path = format!("/j/r{run}-t{t}-{i}");
            client
                .create_file(CreateFileRequest {
                    path: path.clone(),
                    write_type: WriteType::MustCache as i32,
                    ..Default::default()
                })
                .await
                .expect("create");
            client
                .complete_file(CompleteFileRequest {
                    path,
                    length: 1,
                    ..Default::default()
                })
                .await
                .expect("complete");
        }
    })
    .await
}

/// One fsync per entry: append a journal-sized record and fdatasync it,
/// in the same directory (same disk) as the master's journal.
fn fsync_per_entry(dir: &Path, seconds: f64) -> f64 {
    let path = dir.join("baseline.log");
    let mut f = std::fs::File::create(&path).expect("baseline file");
    let record = [0x5au8; 120];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        f.write_all(&record).expect("write");
        f.sync_data().expect("fdatasync");
        n += 1;
    }
    let _ = std::fs::remove_file(path);
    n as f64 / start.elapsed().as_secs_f64()
}

/// create+complete pairs per second from 64 concurrent clients over gRPC.
async fn grpc_create_complete(dir: &Path, fsync: bool, seconds: f64) -> (f64, f64) {
    let cfg = config(dir, fsync);
    let server = MasterServer::start(&cfg).await.expect("master");
    let conns = Arc::new(clients(&server, &cfg, 16).await);
    conns[0]
        .create_directory(alluxio_proto::grpc::CreateDirectoryRequest {
            path: "/j".into(),
            allow_exists: true,
            ..Default::default()
        })
        .await
        .expect("mkdir");
    let flushes_before = server
        .fs
        .journal()
        .counters()
        .flushes
        .load(Ordering::Relaxed);
    let seq_before = server.fs.journal().last_sequence();
    let pairs = create_complete_rate(conns.clone(), seconds).await;
    let flushes = server
        .fs
        .journal()
        .counters()
        .flushes
        .load(Ordering::Relaxed)
        - flushes_before;
    let entries = server.fs.journal().last_sequence() - seq_before;
    server.shutdown().await;
    (pairs, entries as f64 / flushes.max(1) as f64)
}

/// The same operations called in-process (no RPC), so the journal, not
/// gRPC, is the limit.
async fn direct_create_complete(dir: &Path, seconds: f64) -> (f64, f64) {
    let server = MasterServer::start(&config(dir, true))
        .await
        .expect("master");
    let fs = server.fs.clone();
    let attrs = NewInodeAttrs {
        owner: "bench".into(),
        group: "bench".into(),
        mode: 0o644,
    };
    let root = alluxio_common::AlluxioPath::new("/direct").expect("path");
    fs.create_directory(&root, false, true, false, attrs.clone(), -1)
        .await
        .expect("mkdir");
    let flushes_before = fs.journal().counters().flushes.load(Ordering::Relaxed);
    let seq_before = fs.journal().last_sequence();
    let f = fs.clone();
    let pairs = rate(64, seconds, move |t, i| {
        let (fs, attrs) = (f.clone(), attrs.clone());
        async move {
            let p = alluxio_common::AlluxioPath::new(&format!("/direct/t{t}-{i}")).expect("path");
            fs.create_file(&p, false, 0, WriteType::MustCache, -1, 0, attrs, -1)
                .await
                .expect("create");
            fs.complete_file(&p, 1, false, 0).await.expect("complete");
        }
    })
    .await;
    let flushes = fs.journal().counters().flushes.load(Ordering::Relaxed) - flushes_before;
    let entries = fs.journal().last_sequence() - seq_before;
    drop(fs);
    server.shutdown().await;
    (pairs, entries as f64 / flushes.max(1) as f64)
}

pub async fn journal_commit(out: &Path, seconds: f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_path_buf();
    let baseline_a = tokio::task::spawn_blocking(move || fsync_per_entry(&d, seconds / 2.0))
        .await
        .expect("baseline");
    let (grpc_pairs, grpc_batch) = grpc_create_complete(&dir.path().join("a"), true, seconds).await;
    let (direct_pairs, direct_batch) = direct_create_complete(&dir.path().join("b"), seconds).await;
    let (nosync_pairs, _) = grpc_create_complete(&dir.path().join("c"), false, seconds).await;
    let d = dir.path().to_path_buf();
    let baseline_b = tokio::task::spawn_blocking(move || fsync_per_entry(&d, seconds / 2.0))
        .await
        .expect("baseline");
    let baseline = (baseline_a + baseline_b) / 2.0;
    let ratio = grpc_pairs / baseline;
    write(
        out,
        "journal_group_commit",
        "operations per second",
        &[
            Bar {
                label: "create+complete, 64 gRPC clients".into(),
                value: grpc_pairs,
            },
            Bar {
                label: "same, in-process (no RPC)".into(),
                value: direct_pairs,
            },
            Bar {
                label: "same over gRPC, fsync OFF".into(),
                value: nosync_pairs,
            },
            Bar {
                label: "one fsync per entry".into(),
                value: baseline,
            },
        ],
        json!({
            "create_complete_pairs_per_s": grpc_pairs,
            "entries_per_fsync": grpc_batch,
            "in_process_pairs_per_s": direct_pairs,
            "in_process_entries_per_fsync": direct_batch,
            "grpc_fsync_off_pairs_per_s": nosync_pairs,
            "fsync_per_entry_baseline_per_s": baseline,
            "baseline_runs": [baseline_a, baseline_b],
            "ratio_pairs_vs_baseline_entries": ratio,
            "ratio_in_process_vs_baseline": direct_pairs / baseline,
            "fsync_on_vs_off": grpc_pairs / nosync_pairs,
            "target_ratio": 20.0,
            "meets_target": ratio >= 20.0,
        }),
    );
}

pub(crate) fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// Creates `files` completed 1 MiB files in directories of 1,000 (without
/// RPCs, straight on the master); returns a function that creates and
/// completes file number `i` of the same layout.
pub(crate) async fn populate(
    fs: &Arc<FileSystemMaster>,
    files: u64,
) -> impl Fn(u64) -> futures::future::BoxFuture<'static, ()> + Clone {
    let attrs = NewInodeAttrs {
        owner: "bench".into(),
        group: "bench".into(),
        mode: 0o644,
    };
    let dirs = files.div_ceil(1000).max(1);
    for d in 0..dirs {
        let p = alluxio_common::AlluxioPath::new(&format!("/d{d}")).expect("path");
        fs.create_directory(&p, false, false, false, attrs.clone(), -1)
            .await
            .expect("mkdir");
    }
    let fs = fs.clone();
    let create = move |i: u64| {
        let fs = fs.clone();
        let attrs = attrs.clone();
        Box::pin(async move {
            let p = alluxio_common::AlluxioPath::new(&format!("/d{}/file-{i:07}", i % dirs))
                .expect("path");
            fs.create_file(&p, false, 0, WriteType::MustCache, -1, 0, attrs, -1)
                .await
                .expect("create");
            fs.complete_file(&p, 1 << 20, false, 0)
                .await
                .expect("complete");
        }) as futures::future::BoxFuture<'static, ()>
    };
    futures::stream::iter(0..files)
        .map(create.clone())
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
    create
}

pub async fn scale(out: &Path, files: u64, log_entries: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    // fsync off: this measures memory and recovery, not the disk.
    let cfg = config(dir.path(), false);
    let server = MasterServer::start(&cfg).await.expect("master");
    let fs = server.fs.clone();
    let rss_before = rss_bytes();
    let inodes_before = fs.read_state().tree.len() as u64;
    let started = Instant::now();
    let create = populate(&fs, files).await;
    let create_secs = started.elapsed().as_secs_f64();
    let rss_after = rss_bytes();
    let inodes_after = fs.read_state().tree.len() as u64;
    let per_inode =
        (rss_after.saturating_sub(rss_before)) as f64 / (inodes_after - inodes_before) as f64;

    // Checkpoint, then log entries on top of it.
    let ckpt_fs = fs.clone();
    let t = Instant::now();
    tokio::task::spawn_blocking(move || ckpt_fs.checkpoint_now())
        .await
        .expect("task")
        .expect("checkpoint");
    let checkpoint_secs = t.elapsed().as_secs_f64();
    let seq = fs.journal().last_sequence();
    futures::stream::iter(files..files + log_entries / 2)
        .map(create)
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
    let log_written = fs.journal().last_sequence() - seq;
    let total_inodes = fs.read_state().tree.len() as u64;
    drop(fs);
    server.shutdown().await;

    let t = Instant::now();
    let restarted = MasterServer::start(&cfg).await.expect("restart");
    let restart_secs = t.elapsed().as_secs_f64();
    let recovered = restarted.fs.read_state().tree.len() as u64;
    assert_eq!(recovered, total_inodes, "restart lost inodes");
    restarted.shutdown().await;

    write(
        out,
        "master_memory_per_inode",
        "bytes of RSS per inode",
        &[
            Bar {
                label: "alluxio-rs master".into(),
                value: per_inode,
            },
            Bar {
                label: "target".into(),
                value: 500.0,
            },
            Bar {
                label: "Alluxio on-heap (about)".into(),
                value: 1024.0,
            },
        ],
        json!({
            "files": files,
            "inodes_added": inodes_after - inodes_before,
            "rss_before_bytes": rss_before,
            "rss_after_bytes": rss_after,
            "bytes_per_inode": per_inode,
            "create_complete_seconds": create_secs,
            "target_bytes_per_inode": 500,
            "meets_target": per_inode <= 500.0,
            "note": "journal fsync off for this run: it measures memory, not the disk",
        }),
    );
    write(
        out,
        "master_restart",
        "seconds",
        &[
            Bar {
                label: "restart (checkpoint + log replay)".into(),
                value: restart_secs,
            },
            Bar {
                label: "target".into(),
                value: 5.0,
            },
        ],
        json!({
            "inodes": total_inodes,
            "log_entries_replayed": log_written,
            "checkpoint_write_seconds": checkpoint_secs,
            "restart_seconds": restart_secs,
            "target_seconds": 5.0,
            "meets_target": restart_secs <= 5.0,
        }),
    );
}
