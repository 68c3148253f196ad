//! What authentication and TLS cost (issue 18): getStatus from 16
//! clients, and a remote warm read over the data port by a separate client
//! process, each with `security.authentication: TOKEN` (the default), with
//! TOKEN and TLS, and with NOSASL, alternating in one run.

use crate::data::{cluster_with, mb_s, read_all, time_command, MIB};
use crate::master::{clients, config, create_files, rate};
use crate::report::{write, Bar};
use alluxio_common::config::AuthenticationConfig;
use alluxio_master::MasterServer;
use alluxio_testkit::tls::TlsFiles;
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

/// The settings compared: tokens (the default), tokens under TLS, and
/// nothing at all.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Token,
    TokenTls,
    Nosasl,
}

const MODES: [Mode; 3] = [Mode::Token, Mode::TokenTls, Mode::Nosasl];

impl Mode {
    /// The `-D` settings a client process needs for this mode.
    fn client_flags(self, certs: &TlsFiles) -> Vec<String> {
        let auth = match self {
            Mode::Nosasl => "NOSASL",
            _ => "TOKEN",
        };
        let mut flags = vec![format!("security.authentication={auth}")];
        if self == Mode::TokenTls {
            flags.extend(certs.settings());
        }
        flags
    }

    fn apply(self, c: &mut alluxio_common::config::AlluxioConfig, certs: &TlsFiles) {
        c.security.authentication = match self {
            Mode::Nosasl => AuthenticationConfig::Nosasl,
            _ => AuthenticationConfig::Token,
        };
        if self == Mode::TokenTls {
            certs.apply(c);
        }
    }
}

/// getStatus rate against a master in each mode.
async fn get_status(out: &Path, seconds: f64) {
    let certs_dir = tempfile::tempdir().expect("tempdir");
    let certs = TlsFiles::generate(certs_dir.path());
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); MODES.len()];
    let dirs: Vec<_> = MODES
        .iter()
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let mut masters = Vec::new();
    for (dir, mode) in dirs.iter().zip(MODES) {
        let mut cfg = config(dir.path(), true);
        mode.apply(&mut cfg, &certs);
        let server = MasterServer::start(&cfg).await.expect("master");
        let conns = clients(&server, &cfg, 16).await;
        create_files(&conns[0], 1000).await;
        masters.push((server, Arc::new(conns)));
    }
    // Alternate, so drift in machine speed hits all of them.
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
            rates[i].push(r);
        }
    }
    for (server, _) in masters {
        server.shutdown().await;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (token, tls, open) = (mean(&rates[0]), mean(&rates[1]), mean(&rates[2]));
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
                label: "TOKEN + TLS".into(),
                value: tls,
            },
            Bar {
                label: "NOSASL".into(),
                value: open,
            },
        ],
        json!({
            "token_per_s": token, "token_tls_per_s": tls, "nosasl_per_s": open,
            "phases_token": rates[0], "phases_token_tls": rates[1], "phases_nosasl": rates[2],
            "ratio": ratio, "target_ratio": 0.9, "meets_target": ratio >= 0.9,
            "tls_ratio_to_nosasl": tls / open, "tls_ratio_to_token": tls / token,
        }),
    );
}

/// `alluxio fs cat` of a cached file over the data port (no
/// short-circuit), from a cluster in each mode.
async fn data_port(out: &Path, size: u64, alluxio_bin: &Path) {
    let certs_dir = tempfile::tempdir().expect("tempdir");
    let certs = TlsFiles::generate(certs_dir.path());
    let dirs: Vec<_> = MODES
        .iter()
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let mut clusters = Vec::new();
    for (dir, mode) in dirs.iter().zip(MODES) {
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
            |c| mode.apply(c, &certs),
        )
        .await;
        read_all(&c.fs, "/data.bin").await; // cached from here on
        clusters.push((c, mode));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let cat = |c: &crate::data::Cluster, mode: Mode| {
        let mut cmd = Command::new(alluxio_bin);
        cmd.env("ALLUXIO_SECURITY_KEY_FILE", &c.config.security.key_file)
            .args(["--master", &c.master.rpc_addr.to_string()])
            .args([
                "-D",
                "user.short_circuit=false",
                "-D",
                "user.data_port_reads=true",
            ])
            .args(mode.client_flags(&certs).iter().flat_map(|f| ["-D", f]))
            .args(["fs", "cat", "/data.bin"]);
        cmd
    };
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); MODES.len()];
    for _ in 0..5 {
        for (i, (c, mode)) in clusters.iter().enumerate() {
            runs[i].push(time_command(&mut cat(c, *mode)));
        }
    }
    for (c, _) in clusters {
        c.worker.shutdown().await;
        c.master.shutdown().await;
    }
    let best = |v: &[f64]| v.iter().cloned().fold(f64::MAX, f64::min);
    let (token_s, tls_s, open_s) = (best(&runs[0]), best(&runs[1]), best(&runs[2]));
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
                label: "same, TOKEN + TLS".into(),
                value: mb_s(size, tls_s),
            },
            Bar {
                label: "same, NOSASL".into(),
                value: mb_s(size, open_s),
            },
        ],
        json!({
            "bytes": size,
            "runs_seconds": {"token": runs[0], "token_tls": runs[1], "nosasl": runs[2]},
            "ratio": ratio, "target_ratio": 0.95, "meets_target": ratio >= 0.95,
            "tls_ratio_to_nosasl": open_s / tls_s, "tls_ratio_to_token": token_s / tls_s,
            "note": "best of 5 alternating runs of a separate client process; TLS: AES-GCM by aws-lc-rs, the CLI's handshake included in each run",
        }),
    );
}
