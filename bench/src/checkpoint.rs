//! Master stall during a checkpoint: the latency of file creations over
//! gRPC while checkpoints of a namespace of 1,000,000 inodes are written,
//! against the same creations, in the same run, with no checkpoint.

use crate::master::{clients, config, populate};
use crate::report::{percentile_ms, write, Bar};
use alluxio_client::MasterClient;
use alluxio_master::MasterServer;
use alluxio_proto::grpc::{CreateFileRequest, WriteType};
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Concurrent creators (one connection each).
pub(crate) const CREATORS: usize = 16;

/// One create: when it started and how long it took.
pub(crate) type Sample = (Instant, Duration);

/// Creators in a loop, one per connection, timing every create.
pub(crate) struct TimedCreates {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl TimedCreates {
    /// Starts one creator per connection, creating files under `dir`
    /// (which must exist).
    pub(crate) fn start(conns: Arc<Vec<MasterClient>>, dir: &str) -> TimedCreates {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..conns.len())
            .map(|t| {
                let (stop, samples, conns) = (stop.clone(), samples.clone(), conns.clone());
                let dir = dir.to_string();
                tokio::spawn(async move {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let at = Instant::now();
                        conns[t]
                            .create_file(CreateFileRequest {
                                path: format!("{dir}/t{t}-{i}"),
                                write_type: WriteType::MustCache as i32,
                                ..Default::default()
                            })
                            .await
                            .expect("create");
                        samples.lock().unwrap().push((at, at.elapsed()));
                        i += 1;
                    }
                })
            })
            .collect();
        TimedCreates {
            stop,
            samples,
            tasks,
        }
    }

    /// Stops the creators; every create's sample.
    pub(crate) async fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("creator");
        }
        let samples = self.samples.lock().unwrap().clone();
        samples
    }
}

/// `journal_fsync: false` separates the cost of the lock from the disk's
/// (a checkpoint's writes slow the journal's fsyncs down).
pub async fn stall(out: &Path, files: u64, seconds: f64, checkpoints: usize, journal_fsync: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    // By default the journal as a user runs it: every acknowledged create
    // is fsynced.
    let cfg = config(dir.path(), journal_fsync);
    let server = MasterServer::start(&cfg).await.expect("master");
    let fs = server.fs.clone();
    let started = Instant::now();
    let _more = populate(&fs, files).await;
    let inodes = fs.read_state().tree.len();
    println!(
        "{inodes} inodes in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let conns = Arc::new(clients(&server, &cfg, CREATORS).await);
    conns[0]
        .create_directory(alluxio_proto::grpc::CreateDirectoryRequest {
            path: "/j".into(),
            ..Default::default()
        })
        .await
        .expect("mkdir /j");

    let load = TimedCreates::start(conns.clone(), "/j");

    // First without a checkpoint, then checkpoints back to back.
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let mut windows = Vec::new();
    for _ in 0..checkpoints {
        let fs = fs.clone();
        let begin = Instant::now();
        tokio::task::spawn_blocking(move || fs.checkpoint_now())
            .await
            .expect("checkpoint task")
            .expect("checkpoint");
        windows.push((begin, Instant::now()));
    }
    let samples = load.stop().await;
    let first_checkpoint = windows[0].0;
    let during_checkpoint = |at: &Instant| windows.iter().any(|(b, e)| at >= b && at < e);
    let without: Vec<Duration> = samples
        .iter()
        .filter(|(at, _)| *at < first_checkpoint)
        .map(|s| s.1)
        .collect();
    let during: Vec<Duration> = samples
        .iter()
        .filter(|(at, _)| during_checkpoint(at))
        .map(|s| s.1)
        .collect();
    let checkpoint_secs: Vec<f64> = windows
        .iter()
        .map(|(b, e)| (*e - *b).as_secs_f64())
        .collect();
    server.shutdown().await;

    let ms = percentile_ms;
    let (p99_without, p99_during) = (ms(&without, 0.99), ms(&during, 0.99));
    let ratio = p99_during / p99_without;
    let name = if journal_fsync {
        "master_checkpoint_stall"
    } else {
        "master_checkpoint_stall_no_fsync"
    };
    write(
        out,
        name,
        "ms, p99 create latency",
        &[
            Bar {
                label: "during a checkpoint".into(),
                value: p99_during,
            },
            Bar {
                label: "without a checkpoint".into(),
                value: p99_without,
            },
        ],
        json!({
            "inodes": inodes,
            "creators": CREATORS,
            "journal_fsync": journal_fsync,
            "checkpoint_seconds": checkpoint_secs,
            "creates_without": without.len(),
            "creates_during": during.len(),
            "p50_ms_without": ms(&without, 0.5),
            "p50_ms_during": ms(&during, 0.5),
            "p99_ms_without": p99_without,
            "p99_ms_during": p99_during,
            "max_ms_without": ms(&without, 1.0),
            "max_ms_during": ms(&during, 1.0),
            "ratio_p99": ratio,
            "target_ratio_p99": 2.0,
            "meets_target": ratio <= 2.0,
        }),
    );
}
