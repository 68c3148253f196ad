//! `alluxio-bench`: measurements named by the issues, each against a plain
//! alternative in the same run (these machines are noisy, so only
//! side-by-side ratios mean anything). Results go to `bench/results/` as
//! JSON plus an SVG bar chart.

mod checkpoint;
mod csi;
mod data;
mod data_path;
mod fuse;
mod ha;
mod ha_blocks;
mod ha_snapshot;
mod load;
mod master;
mod operator;
mod read_through_memory;
mod report;
mod security;
mod small_files;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "alluxio-rs benchmarks")]
struct Args {
    /// Where JSON results and plots are written.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Seconds per measured phase.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    #[command(subcommand)]
    which: Which,
}

#[derive(Subcommand, Clone)]
enum Which {
    /// getStatus vs a no-op RPC, 16 concurrent clients.
    MasterRpc,
    /// create+complete with fsync (group commit, 64 clients) vs one fsync per entry.
    JournalCommit,
    /// RSS per inode after 1,000,000 files, then restart time from a
    /// checkpoint of them plus 100,000 log entries.
    MasterScale {
        #[arg(long, default_value_t = 1_000_000)]
        files: u64,
        #[arg(long, default_value_t = 100_000)]
        log_entries: u64,
    },
    /// p99 create latency while checkpoints of 1,000,000 inodes are
    /// written vs without one (`--seconds` of creates before them).
    CheckpointStall {
        #[arg(long, default_value_t = 1_000_000)]
        files: u64,
        #[arg(long, default_value_t = 3)]
        checkpoints: usize,
        /// Journal without fsync (the lock's cost alone, without the disk's).
        #[arg(long)]
        no_fsync: bool,
    },
    /// Cold and warm reads of a dataset in S3 (moto) vs direct reads.
    ColdWarm {
        /// Dataset size in MiB.
        #[arg(long, default_value_t = 2048)]
        mib: u64,
        /// Use this s3s-fs binary as the S3 server instead of moto.
        #[arg(long)]
        s3s_fs: Option<PathBuf>,
    },
    /// Warm reads from a separate client process: over gRPC vs a loopback
    /// TCP copy, and short-circuit vs a page-cache read.
    WarmReads {
        #[arg(long, default_value_t = 1024)]
        mib: u64,
        /// The `alluxio` binary used as the client process.
        #[arg(long, default_value = "target/release/alluxio")]
        alluxio: PathBuf,
    },
    /// FUSE: warm read of a cached file vs the page cache.
    Fuse {
        /// Size of the file in MiB.
        #[arg(long, default_value_t = 1024)]
        mib: u64,
    },
    /// The data path vs what a user does without a cache: cold big reads
    /// vs plain GETs (s3s-fs and moto) and `cat`, small files vs a local
    /// directory and sequential GETs.
    DataPath {
        #[arg(long, default_value_t = 1024)]
        mib: u64,
        #[arg(long, default_value_t = 1000)]
        small_files: usize,
        /// Also run on this s3s-fs binary (moto always runs).
        #[arg(long)]
        s3s_fs: Option<PathBuf>,
        /// Which parts: cold-s3 (s3s-fs if given, and moto),
        /// cold-s3s-fs (s3s-fs only), cold-local, small-files.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "cold-s3,cold-local,small-files"
        )]
        parts: Vec<String>,
        /// Override `worker.ufs_fetch_parallelism` for the cold S3 reads.
        #[arg(long)]
        fetch_parallelism: Option<usize>,
    },
    /// kubectl apply of the example cluster to Ready in the simulation
    /// (vs bare processes), and the operator's memory with many objects.
    Operator {
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long, default_value_t = 100)]
        clusters: usize,
        #[arg(long, default_value_t = 1000)]
        mounts: usize,
        #[arg(long, default_value = "target/release/alluxio")]
        alluxio: PathBuf,
        #[arg(long, default_value = "target/release/alluxio-operator")]
        operator: PathBuf,
    },
    /// CSI: NodeStage/NodePublish latency, and reads through a published
    /// volume vs a plain FUSE mount (root).
    Csi {
        #[arg(long, default_value_t = 1024)]
        mib: u64,
        #[arg(long, default_value_t = 10)]
        rounds: usize,
        #[arg(long, default_value = "target/release/alluxio")]
        alluxio: PathBuf,
        #[arg(long, default_value = "target/release/alluxio-csi")]
        plugin: PathBuf,
    },
    /// Authentication's and TLS's cost: getStatus and a remote warm read
    /// over the data port, TOKEN vs TOKEN + TLS vs NOSASL.
    Auth {
        #[arg(long, default_value_t = 1024)]
        mib: u64,
        #[arg(long, default_value = "target/release/alluxio")]
        alluxio: PathBuf,
    },
    /// Fault-tolerant masters: failover after kill -9 of the leader, and
    /// three masters vs one (writes and reads).
    Ha {
        #[arg(long, default_value_t = 20)]
        kills: usize,
        /// Cached blocks (4 KiB each, on 3 workers) whose locations a new
        /// leader must learn.
        #[arg(long, default_value_t = 100_000)]
        blocks: u64,
        #[arg(long, default_value = "target/release/alluxio")]
        alluxio: PathBuf,
    },
    /// Three masters: one comes back after a million inodes were created
    /// without it and installs a snapshot; catch-up time and create
    /// latency meanwhile (`--seconds` of creates before it comes back).
    HaSnapshot {
        #[arg(long, default_value_t = 1_000_000)]
        files: u64,
    },
    /// Worker memory while 64 readers fetch cold 64 MiB blocks from a
    /// slow UFS (moto) at once, against `worker.read_through_memory`.
    ReadThroughMemory {
        #[arg(long, default_value_t = 64)]
        readers: u64,
        /// worker.read_through_memory, in MiB.
        #[arg(long, default_value_t = 512)]
        limit_mib: u64,
    },
    /// A load job of 64 files against as many parallel plain GETs and
    /// the client-driven load; a metadata load of one big directory.
    Load {
        #[arg(long, default_value_t = 64)]
        files: u64,
        /// Size of each file in MiB.
        #[arg(long, default_value_t = 128)]
        file_mib: u64,
        #[arg(long, default_value_t = 3)]
        workers: usize,
        /// Blocks of the job each worker fetches at once
        /// (`master.job.worker_concurrency`).
        #[arg(long, default_value_t = 4)]
        worker_concurrency: usize,
        /// Use this s3s-fs binary as the S3 server instead of moto.
        #[arg(long)]
        s3s_fs: Option<PathBuf>,
        /// Objects in the directory whose metadata is loaded.
        #[arg(long, default_value_t = 1_000_000)]
        objects: u64,
    },
    /// Everything above.
    All,
}

fn main() {
    let args = Args::parse();
    // Logs only when asked for (RUST_LOG=warn...): they would drown the results.
    if std::env::var_os("RUST_LOG").is_some() {
        alluxio_common::init_tracing();
    }
    std::fs::create_dir_all(&args.out).expect("create the results directory");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let run = |w: Which| {
            let w = w.clone();
            let out = args.out.clone();
            let seconds = args.seconds;
            async move {
                match w {
                    Which::MasterRpc => master::rpc(&out, seconds).await,
                    Which::JournalCommit => master::journal_commit(&out, seconds).await,
                    Which::MasterScale { files, log_entries } => {
                        master::scale(&out, files, log_entries).await
                    }
                    Which::CheckpointStall {
                        files,
                        checkpoints,
                        no_fsync,
                    } => checkpoint::stall(&out, files, seconds, checkpoints, !no_fsync).await,
                    Which::ColdWarm { mib, s3s_fs } => {
                        data::cold_warm(&out, mib << 20, s3s_fs.as_deref()).await
                    }
                    Which::WarmReads { mib, alluxio } => {
                        data::warm_reads(&out, mib << 20, &alluxio).await
                    }
                    Which::Fuse { mib } => fuse::warm_read(&out, mib << 20).await,
                    Which::DataPath {
                        mib,
                        small_files,
                        s3s_fs,
                        parts,
                        fetch_parallelism,
                    } => {
                        let part = |p: &str| parts.iter().any(|x| x == p);
                        let tuning = data_path::FetchTuning {
                            parallelism: fetch_parallelism,
                        };
                        if part("cold-s3") || part("cold-s3s-fs") {
                            let moto = part("cold-s3");
                            data_path::cold_s3(&out, mib << 20, s3s_fs.as_deref(), moto, tuning)
                                .await;
                        }
                        if part("cold-local") {
                            data_path::cold_local(&out, mib << 20).await;
                        }
                        if part("small-files") {
                            small_files::small_files(&out, small_files, s3s_fs.as_deref()).await;
                        }
                    }
                    Which::Operator {
                        rounds,
                        clusters,
                        mounts,
                        alluxio,
                        operator: op,
                    } => {
                        operator::apply_to_ready(&out, rounds, &alluxio, &op).await;
                        operator::memory(&out, clusters, mounts, &op).await;
                    }
                    Which::Csi {
                        mib,
                        rounds,
                        alluxio,
                        plugin,
                    } => csi::csi(&out, mib << 20, rounds, &alluxio, &plugin).await,
                    Which::Auth { mib, alluxio } => {
                        security::auth(&out, seconds, mib << 20, &alluxio).await
                    }
                    Which::Ha {
                        kills,
                        blocks,
                        alluxio,
                    } => {
                        ha::throughput(&out, seconds).await;
                        ha::failover(&out, kills, &alluxio).await;
                        ha_blocks::block_locations(&out, blocks).await;
                    }
                    Which::ReadThroughMemory { readers, limit_mib } => {
                        read_through_memory::read_through_memory(&out, readers, limit_mib << 20)
                            .await
                    }
                    Which::HaSnapshot { files } => {
                        ha_snapshot::snapshot_catch_up(&out, files, seconds).await
                    }
                    Which::Load {
                        files,
                        file_mib,
                        workers,
                        worker_concurrency,
                        s3s_fs,
                        objects,
                    } => {
                        let workers = load::Workers {
                            count: workers,
                            concurrency: worker_concurrency,
                        };
                        let size = file_mib * data::MIB;
                        load::load(&out, files, size, workers, s3s_fs.as_deref()).await;
                        load::metadata(&out, objects).await;
                    }
                    Which::All => unreachable!(),
                }
            }
        };
        match args.which.clone() {
            Which::All => {
                run(Which::MasterRpc).await;
                run(Which::JournalCommit).await;
                run(Which::MasterScale {
                    files: 1_000_000,
                    log_entries: 100_000,
                })
                .await;
                run(Which::CheckpointStall {
                    files: 1_000_000,
                    checkpoints: 3,
                    no_fsync: false,
                })
                .await;
                run(Which::ColdWarm {
                    mib: 2048,
                    s3s_fs: None,
                })
                .await;
                run(Which::WarmReads {
                    mib: 1024,
                    alluxio: PathBuf::from("target/release/alluxio"),
                })
                .await;
                run(Which::Fuse { mib: 1024 }).await;
                run(Which::DataPath {
                    mib: 1024,
                    small_files: 1000,
                    s3s_fs: None,
                    parts: vec!["cold-s3".into(), "cold-local".into(), "small-files".into()],
                    fetch_parallelism: None,
                })
                .await;
                run(Which::Operator {
                    rounds: 3,
                    clusters: 100,
                    mounts: 1000,
                    alluxio: PathBuf::from("target/release/alluxio"),
                    operator: PathBuf::from("target/release/alluxio-operator"),
                })
                .await;
                run(Which::Csi {
                    mib: 1024,
                    rounds: 10,
                    alluxio: PathBuf::from("target/release/alluxio"),
                    plugin: PathBuf::from("target/release/alluxio-csi"),
                })
                .await;
                run(Which::Auth {
                    mib: 1024,
                    alluxio: PathBuf::from("target/release/alluxio"),
                })
                .await;
                run(Which::Ha {
                    kills: 20,
                    blocks: 100_000,
                    alluxio: PathBuf::from("target/release/alluxio"),
                })
                .await;
                run(Which::HaSnapshot { files: 1_000_000 }).await;
                run(Which::ReadThroughMemory {
                    readers: 64,
                    limit_mib: 512,
                })
                .await;
                run(Which::Load {
                    files: 64,
                    file_mib: 128,
                    workers: 3,
                    worker_concurrency: 4,
                    s3s_fs: None,
                    objects: 1_000_000,
                })
                .await;
            }
            w => run(w).await,
        }
    });
}
