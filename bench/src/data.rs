//! Data-path benchmarks: cold and warm reads against direct S3 reads,
//! remote (gRPC over TCP, separate process) warm reads against a plain
//! loopback TCP copy, short-circuit warm reads against `dd` of a file in
//! the page cache, and how many UFS requests 8 concurrent cold readers cause.

use crate::report::{write, Bar};
use alluxio_client::{FileSystem, MasterClient};
use alluxio_common::config::{AlluxioConfig, TierConfig, TierDirConfig};
use alluxio_common::units::ByteSize;
use alluxio_master::MasterServer;
use alluxio_worker::WorkerServer;
use futures::StreamExt;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const MIB: u64 = 1 << 20;

pub(crate) struct Cluster {
    pub master: MasterServer,
    pub worker: WorkerServer,
    pub fs: FileSystem,
    pub config: AlluxioConfig,
    /// The MEM tier's directory (removed when the cluster goes).
    _mem: tempfile::TempDir,
}

pub(crate) async fn cluster(
    dir: &Path,
    cache: u64,
    root_ufs: String,
    root_options: BTreeMap<String, String>,
) -> Cluster {
    cluster_with(dir, cache, root_ufs, root_options, |_| {}).await
}

/// Like [`cluster`], with the configuration adjusted by `tweak` first.
pub(crate) async fn cluster_with(
    dir: &Path,
    cache: u64,
    root_ufs: String,
    root_options: BTreeMap<String, String>,
    tweak: impl FnOnce(&mut AlluxioConfig),
) -> Cluster {
    let mut c = AlluxioConfig::default();
    c.master.rpc_port = 0;
    c.master.web_port = 0;
    c.master.journal.dir = dir.join("journal");
    c.security.key_file = dir.join("security/cluster.key");
    c.master.mount_table_root_ufs = root_ufs;
    c.master.mount_table_root_options = root_options;
    c.worker.rpc_port = 0;
    c.worker.web_port = 0;
    c.worker.data_port = 0;
    c.worker.data_dir = dir.join("worker");
    c.worker.heartbeat_interval.0 = Duration::from_millis(100);
    // The MEM tier in memory, as deployments have it (the operator's
    // emptyDir of medium Memory, Alluxio's ramdisk): on a disk's file
    // system the page-cache writes cost several times the CPU.
    let mem = alluxio_testkit::memory_dir();
    c.worker.tiers = vec![TierConfig {
        alias: "MEM".into(),
        dirs: vec![TierDirConfig {
            path: mem.path().join("mem"),
            quota: ByteSize(cache),
        }],
    }];
    tweak(&mut c);
    let master = MasterServer::start(&c).await.expect("master");
    let worker = WorkerServer::start(&c, &master.rpc_addr.to_string())
        .await
        .expect("worker");
    let credentials = alluxio_common::auth::Credentials::for_client(&c).expect("credentials");
    let client = MasterClient::connect(
        &master.rpc_addr.to_string(),
        Duration::from_secs(10),
        credentials,
    )
    .await
    .expect("connect");
    while client.worker_infos().await.expect("workers").is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fs = FileSystem::with_config(client, &c);
    Cluster {
        master,
        worker,
        fs,
        config: c,
        _mem: mem,
    }
}

pub(crate) async fn read_all(fs: &FileSystem, path: &str) -> u64 {
    let r = fs.open(path, None).await.expect("open");
    let mut n = 0u64;
    r.read_range(0, r.len(), |b| {
        n += b.len() as u64;
        Ok(())
    })
    .await
    .expect("read");
    n
}

pub(crate) fn mb_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / MIB as f64 / secs
}

/// An S3 server on 127.0.0.1 for a benchmark (s3s-fs when its binary is
/// given, else moto) with a bucket `bench`, and the UFS of `s3://bench/data`.
pub(crate) struct BenchS3 {
    pub server: alluxio_testkit::s3::S3Server,
    pub name: &'static str,
    pub options: BTreeMap<String, String>,
    pub ufs: std::sync::Arc<dyn alluxio_ufs::UnderFileSystem>,
}

impl BenchS3 {
    /// An S3 client of the bucket, as a user's program has one.
    pub fn plain_client(&self) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name("bench")
            .with_endpoint(&self.options["endpoint"])
            .with_region(&self.options["region"])
            .with_access_key_id(&self.options["access_key_id"])
            .with_secret_access_key(&self.options["secret_access_key"])
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .build()
            .expect("an S3 client")
    }
}

pub(crate) fn bench_s3(s3s_fs: Option<&Path>, root: &Path) -> Option<BenchS3> {
    let (server, name) = match s3s_fs {
        Some(bin) => (
            alluxio_testkit::s3::S3Server::start_s3s_fs(bin, root),
            "s3s-fs on 127.0.0.1",
        ),
        None => match alluxio_testkit::s3::S3Server::start() {
            Some(s) => (s, "moto_server on 127.0.0.1"),
            None => {
                eprintln!("moto_server (or --s3s-fs) is needed for this benchmark");
                return None;
            }
        },
    };
    server.create_bucket("bench");
    let options: BTreeMap<String, String> = server.options().into_iter().collect();
    let ufs = alluxio_ufs::create_ufs("s3://bench/data", &options).expect("ufs");
    Some(BenchS3 {
        server,
        name,
        options,
        ufs,
    })
}

/// Cold and warm reads of a dataset in S3 (moto on 127.0.0.1) against
/// reading it directly with object_store.
pub async fn cold_warm(out: &Path, total: u64, s3s_fs: Option<&Path>) {
    let s3_root = tempfile::tempdir().expect("tempdir");
    let Some(BenchS3 {
        server: _s3,
        name: server_name,
        options,
        ufs,
    }) = bench_s3(s3s_fs, s3_root.path())
    else {
        return;
    };
    let file_size = 128 * MIB;
    let files = total.div_ceil(file_size);
    let piece = vec![0x42u8; (8 * MIB) as usize];
    for f in 0..files {
        let mut w = ufs
            .create(&format!("part-{f:04}.bin"))
            .await
            .expect("create");
        for _ in 0..file_size / (8 * MIB) {
            w.write(bytes::Bytes::from(piece.clone()))
                .await
                .expect("upload");
        }
        w.complete().await.expect("complete");
    }
    let bytes = files * file_size;

    let start = Instant::now();
    let mut direct = 0u64;
    for f in 0..files {
        let mut s = ufs
            .read_stream(&format!("part-{f:04}.bin"), 0..file_size)
            .await
            .expect("get");
        while let Some(p) = s.next().await {
            direct += p.expect("piece").len() as u64;
        }
    }
    let direct_secs = start.elapsed().as_secs_f64();
    assert_eq!(direct, bytes);

    let dir = tempfile::tempdir().expect("tempdir");
    let c = cluster(
        dir.path(),
        bytes + 256 * MIB,
        "s3://bench/data".into(),
        options,
    )
    .await;
    let mut times = Vec::new();
    for _ in 0..2 {
        let start = Instant::now();
        let mut n = 0;
        for f in 0..files {
            n += read_all(&c.fs, &format!("/part-{f:04}.bin")).await;
        }
        assert_eq!(n, bytes);
        times.push(start.elapsed().as_secs_f64());
        // Let the last cached blocks reach the master.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ufs_requests = c.worker.metrics.ufs_requests.get();
    let (direct_mb, cold_mb, warm_mb) = (
        mb_s(bytes, direct_secs),
        mb_s(bytes, times[0]),
        mb_s(bytes, times[1]),
    );
    c.worker.shutdown().await;
    c.master.shutdown().await;
    let name = if s3s_fs.is_some() {
        "data_cold_warm_s3s_fs"
    } else {
        "data_cold_warm_moto"
    };
    write(
        out,
        name,
        "MiB/s",
        &[
            Bar {
                label: "alluxio-rs warm (2nd read)".into(),
                value: warm_mb,
            },
            Bar {
                label: "alluxio-rs cold (1st read)".into(),
                value: cold_mb,
            },
            Bar {
                label: "direct S3 (object_store)".into(),
                value: direct_mb,
            },
        ],
        json!({
            "dataset_bytes": bytes,
            "files": files,
            "s3_server": server_name,
            "direct_seconds": direct_secs,
            "cold_seconds": times[0],
            "warm_seconds": times[1],
            "warm_speedup_vs_direct": direct_secs / times[1],
            "cold_slowdown_vs_direct_percent": (times[0] / direct_secs - 1.0) * 100.0,
            "ufs_requests_during_cold_read": ufs_requests,
            "target_warm_speedup": 10.0,
            "target_cold_slowdown_percent": 15.0,
            "meets_warm_target": direct_secs / times[1] >= 10.0,
            "meets_cold_target": times[0] / direct_secs <= 1.15,
        }),
    );
}

/// Seconds `cmd` takes to run to completion (stdout discarded).
pub(crate) fn time_command(cmd: &mut Command) -> f64 {
    let start = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .expect("run");
    assert!(status.success(), "{cmd:?} failed");
    start.elapsed().as_secs_f64()
}

/// One stream of `bytes` over a loopback TCP socket, in one process.
fn loopback_tcp_copy(bytes: u64) -> f64 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let sender = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let buf = vec![7u8; (4 * MIB) as usize];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            s.write_all(&buf[..n]).expect("send");
            left -= n as u64;
        }
    });
    let start = Instant::now();
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let mut buf = vec![0u8; (4 * MIB) as usize];
    let mut got = 0u64;
    while got < bytes {
        let n = s.read(&mut buf).expect("recv");
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    sender.join().expect("sender");
    secs
}

/// A plain file of `size` bytes in `dir`, a copy of it as `/data.bin` in a
/// local-directory UFS, and a cluster over that UFS with room to cache it.
pub(crate) async fn plain_file_and_cluster(dir: &Path, size: u64) -> (std::path::PathBuf, Cluster) {
    let ufs_dir = dir.join("ufs");
    std::fs::create_dir_all(&ufs_dir).expect("ufs dir");
    let plain = dir.join("plain.bin");
    {
        let mut f = std::fs::File::create(&plain).expect("plain");
        let piece = vec![0x5au8; (8 * MIB) as usize];
        for _ in 0..size / (8 * MIB) {
            f.write_all(&piece).expect("write");
        }
    }
    std::fs::copy(&plain, ufs_dir.join("data.bin")).expect("copy");
    let c = cluster(
        dir,
        size + 256 * MIB,
        format!("file://{}", ufs_dir.display()),
        BTreeMap::new(),
    )
    .await;
    (plain, c)
}

/// Warm reads by a separate client process (`alluxio fs cat`): remote over
/// the data port and over gRPC only, against a loopback TCP copy; and
/// short-circuit, against `dd` of a plain file in the page cache.
pub async fn warm_reads(out: &Path, size: u64, alluxio_bin: &Path) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (plain, c) = plain_file_and_cluster(dir.path(), size).await;
    read_all(&c.fs, "/data.bin").await; // warm the cache
    tokio::time::sleep(Duration::from_millis(500)).await;
    let master = c.master.rpc_addr.to_string();
    // Short-circuit, or a remote read over the data port or over gRPC.
    let cat = |short_circuit: bool, data_port: bool| {
        let mut cmd = Command::new(alluxio_bin);
        cmd.env("ALLUXIO_SECURITY_KEY_FILE", &c.config.security.key_file);
        cmd.args([
            "--master",
            &master,
            "-D",
            &format!("user.short_circuit={short_circuit}"),
            "-D",
            &format!("user.data_port_reads={data_port}"),
            "fs",
            "cat",
            "/data.bin",
        ]);
        cmd
    };
    // The plain read: dd reads into a user buffer and writes to /dev/null
    // (cat would use copy_file_range and never copy the bytes at all).
    let dd_input = format!("if={}", plain.display());
    let dd = || {
        let mut cmd = Command::new("dd");
        cmd.args([dd_input.as_str(), "of=/dev/null", "bs=16M", "status=none"]);
        cmd
    };
    // Warm the page cache for the plain file too, then alternate runs.
    time_command(&mut dd());
    let (mut remote, mut grpc, mut sc, mut page, mut tcp) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        remote.push(time_command(&mut cat(false, true)));
        grpc.push(time_command(&mut cat(false, false)));
        sc.push(time_command(&mut cat(true, true)));
        page.push(time_command(&mut dd()));
        tcp.push(
            tokio::task::spawn_blocking(move || loopback_tcp_copy(size))
                .await
                .expect("tcp"),
        );
    }
    let best = |v: &[f64]| v.iter().cloned().fold(f64::MAX, f64::min);
    let (remote_s, grpc_s, sc_s, page_s, tcp_s) = (
        best(&remote),
        best(&grpc),
        best(&sc),
        best(&page),
        best(&tcp),
    );
    c.worker.shutdown().await;
    c.master.shutdown().await;
    let mb = |s: f64| mb_s(size, s);
    write(
        out,
        "data_remote_warm_read",
        "MiB/s",
        &[
            Bar {
                label: "alluxio fs cat, data port (other process)".into(),
                value: mb(remote_s),
            },
            Bar {
                label: "same over gRPC only".into(),
                value: mb(grpc_s),
            },
            Bar {
                label: "plain loopback TCP, one stream".into(),
                value: mb(tcp_s),
            },
        ],
        json!({
            "bytes": size,
            "runs_seconds": {"data_port": remote, "grpc_only": grpc, "tcp": tcp},
            "ratio": tcp_s / remote_s,
            "grpc_only_ratio": tcp_s / grpc_s,
            "target_ratio": 0.5,
            "meets_target": tcp_s / remote_s >= 0.5,
            "note": "best of 3 alternating runs; the alluxio client is a separate process (alluxio fs cat > /dev/null); ratio = the default path (data port) against the TCP copy",
        }),
    );
    write(
        out,
        "data_short_circuit_warm_read",
        "MiB/s",
        &[
            Bar {
                label: "alluxio fs cat, short-circuit".into(),
                value: mb(sc_s),
            },
            Bar {
                label: "dd of a plain file (page cache)".into(),
                value: mb(page_s),
            },
        ],
        json!({
            "bytes": size,
            "runs_seconds": {"short_circuit": sc, "page_cache_dd": page},
            "ratio": page_s / sc_s,
            "target_ratio": 0.7,
            "meets_target": page_s / sc_s >= 0.7,
            "note": "best of 3 alternating runs; both are separate processes writing to /dev/null",
        }),
    );
    let _ = c.config;
}
