//! What authentication costs (issue 18): getStatus from 16 clients, and a
//! remote warm read over the data port by a separate client process, each
//! with `security.authentication: TOKEN` (the default) against the same
//! with NOSASL, alternating in one run.

use crate::data::{cluster_with, mb_s, read_all, time_command, MIB};
use crate::master::{clients, config, create_files, rate};
use crate::report::{write, Bar};
use alluxio_common::config::AuthenticationConfig;
use alluxio_master::MasterServer;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

pub async fn auth(out: &Path, seconds: f64, size: u64, alluxio_bin: &Path) {
    get_status(out, seconds).await;
    data_port(out, size, alluxio_bin).await;
}

fn set_mode(c: &mut alluxio_common::config::AlluxioConfig, token: bool) {
    c.security.authentication = match token {
        true => AuthenticationConfig::Token,
        false => AuthenticationConfig::Nosasl,
    };
}

/// getStatus rate against a master with tokens and one without.
async fn get_status(out: &Path, seconds: f64) {
    let (mut token_rates, mut open_rates) = (Vec::new(), Vec::new());
    let dirs = [
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    ];
    let mut masters = Vec::new();
    for (dir, token) in dirs.iter().zip([true, false]) {
        let mut cfg = config(dir.path(), true);
        set_mode(&mut cfg, token);
        let server = MasterServer::start(&cfg).await.expect("master");
        let conns = clients(&server, &cfg, 16).await;
        create_files(&conns[0], 1000).await;
        masters.push((server, Arc::new(conns)));
    }
    // Alternate, so drift in machine speed hits both.
    for _ in 0..3 {
        for (i, (_, conns)) in masters.iter().enumerate() {
            let c = conns.clone();
            let r = rate(16, seconds / 3.0, move |t, i| {
                let c = c.clone();
                async move {
                    let path = format!("/bench/f{}", (i * 16 + t as u64) % 1000);
                    c[t].get_status(&path, None).await.expect("getStatus");
                }
            })
            .await;
            if i == 0 {
                token_rates.push(r);
            } else {
                open_rates.push(r);
            }
        }
    }
    for (server, _) in masters {
        server.shutdown().await;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (token, open) = (mean(&token_rates), mean(&open_rates));
    let ratio = token / open;
    write(
        out,
        "security_get_status",
        "getStatus per second, 16 clients",
        &[
            Bar {
                label: "authentication TOKEN".into(),
                value: token,
            },
            Bar {
                label: "NOSASL".into(),
                value: open,
            },
        ],
        json!({
            "token_per_s": token, "nosasl_per_s": open,
            "phases_token": token_rates, "phases_nosasl": open_rates,
            "ratio": ratio, "target_ratio": 0.9, "meets_target": ratio >= 0.9,
        }),
    );
}

/// `alluxio fs cat` of a cached file over the data port (no
/// short-circuit), from a cluster with tokens and one without.
async fn data_port(out: &Path, size: u64, alluxio_bin: &Path) {
    let dirs = [
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    ];
    let mut clusters = Vec::new();
    for (dir, token) in dirs.iter().zip([true, false]) {
        let ufs = dir.path().join("ufs");
        std::fs::create_dir_all(&ufs).expect("ufs");
        {
            let mut f = std::fs::File::create(ufs.join("data.bin")).expect("data");
            let piece = vec![0x5au8; (8 * MIB) as usize];
            for _ in 0..size / (8 * MIB) {
                f.write_all(&piece).expect("write");
            }
        }
        let c = cluster_with(
            dir.path(),
            size + 256 * MIB,
            format!("file://{}", ufs.display()),
            BTreeMap::new(),
            |c| set_mode(c, token),
        )
        .await;
        read_all(&c.fs, "/data.bin").await; // cached from here on
        clusters.push((c, token));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let cat = |c: &crate::data::Cluster, token: bool| {
        let mut cmd = Command::new(alluxio_bin);
        cmd.env("ALLUXIO_SECURITY_KEY_FILE", &c.config.security.key_file)
            .args(["--master", &c.master.rpc_addr.to_string()])
            .args([
                "-D",
                "user.short_circuit=false",
                "-D",
                "user.data_port_reads=true",
            ])
            .args([
                "-D",
                &format!(
                    "security.authentication={}",
                    if token { "TOKEN" } else { "NOSASL" }
                ),
            ])
            .args(["fs", "cat", "/data.bin"]);
        cmd
    };
    let (mut token_runs, mut open_runs) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        for (c, token) in &clusters {
            let s = time_command(&mut cat(c, *token));
            if *token {
                token_runs.push(s);
            } else {
                open_runs.push(s);
            }
        }
    }
    for (c, _) in clusters {
        c.worker.shutdown().await;
        c.master.shutdown().await;
    }
    let best = |v: &[f64]| v.iter().cloned().fold(f64::MAX, f64::min);
    let (token_s, open_s) = (best(&token_runs), best(&open_runs));
    let ratio = open_s / token_s;
    write(
        out,
        "security_data_port_read",
        "MiB/s",
        &[
            Bar {
                label: "alluxio fs cat, data port, TOKEN".into(),
                value: mb_s(size, token_s),
            },
            Bar {
                label: "same, NOSASL".into(),
                value: mb_s(size, open_s),
            },
        ],
        json!({
            "bytes": size,
            "runs_seconds": {"token": token_runs, "nosasl": open_runs},
            "ratio": ratio, "target_ratio": 0.95, "meets_target": ratio >= 0.95,
            "note": "best of 5 alternating runs of a separate client process; TLS is not implemented, so not measured",
        }),
    );
}
