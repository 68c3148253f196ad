//! The data path against what a user would do without a cache (issue 14),
//! side by side in one run:
//! - a cold 1 GiB object through FUSE and the client library vs one plain
//!   whole-object GET by boto3 (and boto3's parallel `download_fileobj`,
//!   what `aws s3 cp` does), on s3s-fs and on moto, with the machine's
//!   page cache dropped before each read and without;
//! - a cold 1 GiB file of a local-directory UFS through FUSE vs `cat`;
//! - 1,000 files of 4 KiB: `ls -l` and reading them all through FUSE (a
//!   read-only mount and a default one) and the client library vs the
//!   same local directory, cold, warm, and warm with the page cache
//!   dropped; cold from S3 with and without prefetch vs sequential plain
//!   GETs.

use crate::data::{bench_s3, cluster, cluster_with, mb_s, BenchS3, Cluster, MIB};
use crate::fuse::{dd, mount_at, timed, unmount};
use crate::report::{median, write, Bar};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Paired rounds of each comparison; the median of per-round ratios counts.
const ROUNDS: usize = 3;

/// Drops the page cache, dentries and inodes (root only). False when it
/// could not: the results say so.
pub(crate) fn drop_caches() -> bool {
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

/// Runs `bench/s3_plain_read.py` and returns the seconds it measured.
pub(crate) fn boto3(server: &BenchS3, mode: &str, target: &str) -> f64 {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("s3_plain_read.py");
    let out = Command::new("python3")
        .arg(script)
        .args([mode, &server.server.endpoint(), "bench", target])
        .env("AWS_ACCESS_KEY_ID", alluxio_testkit::s3::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", alluxio_testkit::s3::SECRET_KEY)
        .output()
        .expect("python3 with boto3 (pip install boto3)");
    assert!(
        out.status.success(),
        "s3_plain_read.py {mode} {target}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json from s3_plain_read.py");
    v["seconds"].as_f64().expect("seconds")
}

async fn upload(server: &BenchS3, key: &str, size: u64) {
    let piece = bytes::Bytes::from(vec![0x42u8; (8 * MIB).min(size) as usize]);
    let mut w = server.ufs.create(key).await.expect("create");
    let mut left = size;
    while left > 0 {
        let n = left.min(piece.len() as u64);
        w.write(piece.slice(..n as usize)).await.expect("upload");
        left -= n;
    }
    w.complete().await.expect("complete");
}

/// Seconds for one plain whole-object GET of `key` by object_store,
/// streamed and dropped.
async fn rust_get(server: &BenchS3, key: &str) -> f64 {
    use futures::StreamExt;
    use object_store::ObjectStoreExt;
    let store = server.plain_client();
    let start = Instant::now();
    let mut stream = store
        .get(&object_store::path::Path::from(key))
        .await
        .expect("get")
        .into_stream();
    let mut n = 0;
    while let Some(piece) = stream.next().await {
        n += piece.expect("piece").len();
    }
    assert!(n > 0, "{key} read");
    start.elapsed().as_secs_f64()
}

async fn client_read(c: &Cluster, path: &str) -> f64 {
    let start = Instant::now();
    let n = crate::data::read_all(&c.fs, path).await;
    assert!(n > 0, "{path} read");
    start.elapsed().as_secs_f64()
}

/// Seconds until every block of `path` is cached (at most a minute).
async fn wait_cached(c: &Cluster, path: &str) -> f64 {
    let start = Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(60) {
        match c.fs.master().get_status(path, None).await {
            Ok(info) if info.in_alluxio_percentage == 100 => break,
            _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    start.elapsed().as_secs_f64()
}

/// Forgets a file everywhere (cluster and UFS), so that the cache and the
/// S3 server do not fill up over the rounds.
async fn delete(c: &Cluster, path: &str) {
    if let Err(e) = c.fs.master().delete(path, false, false).await {
        eprintln!("delete {path}: {e}");
    }
}

/// Cold reads of a big object on s3s-fs (when given) and on moto.
/// Worker settings a run may change, recorded in its results.
#[derive(Clone, Copy, Default)]
pub struct FetchTuning {
    /// `worker.ufs_fetch_parallelism` (ranged GETs in flight per block).
    pub parallelism: Option<usize>,
}

pub async fn cold_s3(
    out: &Path,
    size: u64,
    s3s_fs: Option<&Path>,
    moto: bool,
    tuning: FetchTuning,
) {
    if let Some(bin) = s3s_fs {
        cold_s3_on(out, size, Some(bin), "data_path_cold_s3s_fs", tuning).await;
    }
    if moto {
        cold_s3_on(out, size, None, "data_path_cold_moto", tuning).await;
    }
}

/// How the cold object is read: one plain GET by boto3 (the issue's
/// reference) and by a Rust program (object_store, less CPU of its own
/// than Python's), boto3's parallel download, FUSE and the client library.
const COLD_WAYS: [&str; 5] = ["boto3_get", "rust_get", "boto3_download", "fuse", "client"];

/// Whether `way` reads an object of its own. The Rust GET reads the
/// object boto3 has just read (no cluster is involved; with the page cache
/// dropped it reads it cold too, kept it finds it in the page cache): one
/// GiB less on disk per read.
fn own_object(way: &str) -> bool {
    way != "rust_get"
}

async fn cold_s3_on(out: &Path, size: u64, s3s_fs: Option<&Path>, name: &str, tuning: FetchTuning) {
    let s3_root = tempfile::tempdir().expect("tempdir");
    let Some(server) = bench_s3(s3s_fs, s3_root.path()) else {
        return;
    };
    let variants = [("page_cache_dropped", true), ("page_cache_kept", false)];
    for round in 0..ROUNDS {
        for (variant, _) in variants {
            for way in COLD_WAYS.iter().filter(|w| own_object(w)) {
                upload(&server, &format!("{way}-{variant}-{round}.bin"), size).await;
            }
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let c = cluster_with(
        dir.path(),
        2 * size + 256 * MIB,
        "s3://bench/data".into(),
        server.options.clone(),
        |config| {
            if let Some(n) = tuning.parallelism {
                config.worker.ufs_fetch_parallelism = n;
            }
        },
    )
    .await;
    let parallelism = c.config.worker.ufs_fetch_parallelism;
    let (m, point) = mount_at(&c, dir.path(), "mnt", &[]).await;
    let mut seconds: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut dropped_ok = true;
    for round in 0..ROUNDS {
        for (variant, drop) in variants {
            for (i, way) in COLD_WAYS.into_iter().enumerate() {
                let object_of = if own_object(way) {
                    way
                } else {
                    COLD_WAYS[i - 1]
                };
                let file = format!("{object_of}-{variant}-{round}.bin");
                if drop {
                    dropped_ok &= drop_caches();
                }
                let s = match way {
                    "boto3_get" => boto3(&server, "get", &format!("data/{file}")),
                    "boto3_download" => boto3(&server, "download", &format!("data/{file}")),
                    "rust_get" => rust_get(&server, &format!("data/{file}")).await,
                    "fuse" => timed(dd(&point.join(&file))).await,
                    _ => client_read(&c, &format!("/{file}")).await,
                };
                seconds
                    .entry(format!("{way}/{variant}"))
                    .or_default()
                    .push(s);
                let next_shares = COLD_WAYS.get(i + 1).is_some_and(|next| !own_object(next));
                if !next_shares {
                    delete(&c, &format!("/{file}")).await;
                }
            }
        }
    }
    unmount(m);
    c.worker.shutdown().await;
    c.master.shutdown().await;
    // Throughput ratios against one plain GET, per round (paired).
    let ratio = |way: &str, variant: &str| {
        let base = &seconds[&format!("boto3_get/{variant}")];
        let ours = &seconds[&format!("{way}/{variant}")];
        median(base.iter().zip(ours).map(|(b, o)| b / o).collect())
    };
    let fuse_ratio = ratio("fuse", "page_cache_dropped");
    let mut bars = Vec::new();
    for variant in ["page_cache_dropped", "page_cache_kept"] {
        for way in COLD_WAYS {
            bars.push(Bar {
                label: format!("{way}, {}", variant.replace('_', " ")),
                value: mb_s(size, median(seconds[&format!("{way}/{variant}")].clone())),
            });
        }
    }
    let ratios: BTreeMap<String, f64> = ["page_cache_dropped", "page_cache_kept"]
        .iter()
        .flat_map(|v| {
            ["fuse", "client", "boto3_download", "rust_get"]
                .iter()
                .map(move |w| (format!("{w}/{v}"), ratio(w, v)))
        })
        .collect();
    write(
        out,
        name,
        "MiB/s (median of rounds)",
        &bars,
        json!({
            "bytes": size,
            "s3_server": server.name,
            "ufs_fetch_parallelism": parallelism,
            "rounds": ROUNDS,
            "page_cache_dropped": dropped_ok,
            "runs_seconds": seconds,
            "throughput_vs_one_plain_get": ratios,
            "target": "cold FUSE read >= 1.5x the throughput of one plain whole-object GET (page cache dropped)",
            "meets_target": fuse_ratio >= 1.5,
            "note": "each read is of a fresh object (uploaded before the cluster starts, deleted after); ratios are medians of per-round ratios; boto3_get is one GET streamed in 1 MiB reads, rust_get one GET by object_store (streamed), boto3_download is download_fileobj (8 MiB ranged GETs, 10 threads)",
        }),
    );
}

/// A cold file of a local-directory UFS through FUSE vs `cat`.
pub async fn cold_local(out: &Path, size: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ufs = dir.path().join("ufs");
    std::fs::create_dir_all(&ufs).expect("ufs");
    let variants = [("page_cache_dropped", true), ("page_cache_kept", false)];
    let ways = ["cat", "fuse", "client"];
    let piece = vec![0x42u8; (8 * MIB) as usize];
    for round in 0..ROUNDS {
        for (variant, _) in variants {
            for way in ways {
                let mut f = std::fs::File::create(ufs.join(format!("{way}-{variant}-{round}.bin")))
                    .expect("file");
                for _ in 0..size / (8 * MIB) {
                    std::io::Write::write_all(&mut f, &piece).expect("write");
                }
            }
        }
    }
    let c = cluster(
        dir.path(),
        2 * size + 256 * MIB,
        format!("file://{}", ufs.display()),
        BTreeMap::new(),
    )
    .await;
    let (m, point) = mount_at(&c, dir.path(), "mnt", &[]).await;
    let cat = |f: PathBuf| {
        let mut cmd = Command::new("cat");
        cmd.arg(f);
        cmd
    };
    let mut seconds: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut dropped_ok = true;
    for round in 0..ROUNDS {
        for (variant, drop) in variants {
            for way in ways {
                let file = format!("{way}-{variant}-{round}.bin");
                if drop {
                    dropped_ok &= drop_caches();
                }
                let s = match way {
                    "cat" => timed(cat(ufs.join(&file))).await,
                    "fuse" => timed(cat(point.join(&file))).await,
                    _ => client_read(&c, &format!("/{file}")).await,
                };
                seconds
                    .entry(format!("{way}/{variant}"))
                    .or_default()
                    .push(s);
                if way == "fuse" {
                    // A cold local file is read by passthrough from the UFS
                    // and cached behind, after the close: until the worker
                    // has it, the next measurement would share the disk.
                    let behind = wait_cached(&c, &format!("/{file}")).await;
                    seconds
                        .entry(format!("fuse_cached_behind/{variant}"))
                        .or_default()
                        .push(behind);
                }
                delete(&c, &format!("/{file}")).await;
                let _ = std::fs::remove_file(ufs.join(&file));
            }
        }
    }
    unmount(m);
    c.worker.shutdown().await;
    c.master.shutdown().await;
    let ratio = |way: &str, variant: &str| {
        let base = &seconds[&format!("cat/{variant}")];
        let ours = &seconds[&format!("{way}/{variant}")];
        median(base.iter().zip(ours).map(|(b, o)| b / o).collect())
    };
    let fuse_ratio = ratio("fuse", "page_cache_dropped");
    let mut bars = Vec::new();
    for (variant, _) in variants {
        for way in ways {
            bars.push(Bar {
                label: format!("{way}, {}", variant.replace('_', " ")),
                value: mb_s(size, median(seconds[&format!("{way}/{variant}")].clone())),
            });
        }
    }
    write(
        out,
        "data_path_cold_local",
        "MiB/s (median of rounds)",
        &bars,
        json!({
            "bytes": size,
            "rounds": ROUNDS,
            "page_cache_dropped": dropped_ok,
            "runs_seconds": seconds,
            "throughput_vs_cat": {
                "fuse/page_cache_dropped": fuse_ratio,
                "client/page_cache_dropped": ratio("client", "page_cache_dropped"),
                "fuse/page_cache_kept": ratio("fuse", "page_cache_kept"),
                "client/page_cache_kept": ratio("client", "page_cache_kept"),
            },
            "target": "cold FUSE read of a local-directory UFS >= 0.9x cat of the file (page cache dropped)",
            "meets_target": fuse_ratio >= 0.9,
            "note": "each read is of a fresh file, nothing of it in the cluster; page_cache_kept: the UFS file was just written, so it is in the page cache; FUSE reads a cold local file by passthrough from the UFS and the worker caches it after the close (fuse_cached_behind: seconds from the end of the read until it is 100% cached, waited for before the next read)",
        }),
    );
}
