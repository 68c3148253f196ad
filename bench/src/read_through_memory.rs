//! Worker memory under 64 concurrent cold reads of 64 MiB blocks from a
//! slow UFS (moto, which reads a whole object to answer each ranged GET,
//! so every fetch is slow and many would be in memory at once without a
//! bound): the bytes the worker held for fetches at the peak
//! (`alluxio_worker_read_through_bytes_peak`) and the growth of the
//! process's anonymous memory, against `worker.read_through_memory`.

use crate::data::{bench_s3, cluster_with, read_all, BenchS3, MIB};
use crate::report::{write, Bar};
use alluxio_common::units::ByteSize;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BLOCK: u64 = 64 * MIB;

/// Anonymous resident memory of this process (`RssAnon`), in bytes.
fn rss_anon() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

pub async fn read_through_memory(out: &Path, readers: u64, limit: u64) {
    let s3_root = tempfile::tempdir().expect("tempdir");
    let Some(BenchS3 {
        server: _s3,
        options,
        ufs,
        ..
    }) = bench_s3(None, s3_root.path())
    else {
        return;
    };
    // One block-sized object per reader.
    let mut piece = vec![0u8; (8 * MIB) as usize];
    for f in 0..readers {
        piece[0] = f as u8;
        let mut w = ufs.create(&format!("f{f:03}")).await.expect("create");
        for _ in 0..BLOCK / (8 * MIB) {
            w.write(bytes::Bytes::from(piece.clone()))
                .await
                .expect("upload");
        }
        w.complete().await.expect("complete");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let c = cluster_with(
        dir.path(),
        readers * BLOCK + 256 * MIB,
        "s3://bench/data".into(),
        options,
        |cfg| {
            cfg.user.block_size = ByteSize(BLOCK);
            cfg.worker.read_through_memory = ByteSize(limit);
        },
    )
    .await;
    let before = rss_anon();
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_anon(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let started = Instant::now();
    let tasks: Vec<_> = (0..readers)
        .map(|f| {
            let fs = c.fs.clone();
            tokio::spawn(async move { read_all(&fs, &format!("/f{f:03}")).await })
        })
        .collect();
    let mut bytes = 0;
    for t in tasks {
        bytes += t.await.expect("reader");
    }
    let secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    sampler.await.expect("sampler");
    assert_eq!(bytes, readers * BLOCK);
    let held_peak = c.worker.metrics.read_through_bytes_peak.get() as u64;
    let anon_growth = peak.load(Ordering::Relaxed).saturating_sub(before);
    c.worker.shutdown().await;
    c.master.shutdown().await;

    let mib = |b: u64| b as f64 / MIB as f64;
    write(
        out,
        "worker_read_through_memory",
        "MiB",
        &[
            Bar {
                label: "held for fetches at the peak".into(),
                value: mib(held_peak),
            },
            Bar {
                label: "read_through_memory (the limit)".into(),
                value: mib(limit),
            },
            Bar {
                label: "process anonymous memory growth".into(),
                value: mib(anon_growth),
            },
            Bar {
                label: "unbounded: every fetch at once".into(),
                value: mib(readers * BLOCK),
            },
        ],
        json!({
            "readers": readers,
            "block_bytes": BLOCK,
            "limit_bytes": limit,
            "held_peak_bytes": held_peak,
            "anon_growth_bytes": anon_growth,
            "seconds": secs,
            "ufs": "moto_server on 127.0.0.1 (each ranged GET reads the whole object)",
            "note": "master, worker and the 64 readers in one process: the growth includes the readers' own buffers and the gRPC streams",
            "meets_target": held_peak <= limit,
        }),
    );
}
