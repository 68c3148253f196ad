//! `alluxio local`: a master and N workers in one process, everything under
//! one data directory, with a local-directory UFS by default. The quickest
//! way to try the system.

use crate::Context;
use alluxio_common::config::{TierConfig, TierDirConfig};
use alluxio_common::AlluxioError;
use alluxio_master::MasterServer;
use alluxio_worker::WorkerServer;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct LocalArgs {
    /// Number of workers.
    #[arg(long, default_value_t = 1)]
    workers: u16,
    /// Root UFS: a URI, or a local directory (default: a directory under
    /// the data directory).
    #[arg(long)]
    ufs: Option<String>,
    /// Where journal, UFS and tiers live.
    #[arg(long, default_value = "/tmp/alluxio-local")]
    data_dir: PathBuf,
    /// Cache quota per worker (MEM tier).
    #[arg(long, default_value = "1GiB")]
    cache: String,
    /// Start afresh: erase the journal and the workers' caches under the
    /// data directory first (the UFS, even the default one under it, is
    /// kept). Needed to change the root UFS of an existing data directory.
    #[arg(long)]
    format: bool,
}

pub async fn run(mut ctx: Context, args: LocalArgs) -> Result<(), AlluxioError> {
    alluxio_common::init_tracing();
    let dir = args.data_dir.clone();
    let cfg = &mut ctx.config;
    cfg.master.journal.dir = dir.join("journal");
    // The cluster key lives in the data directory (mode 0600); the master
    // creates it, the workers and this user's CLI mint tokens from it.
    let default_key = alluxio_common::config::SecurityConfig::default().key_file;
    if cfg.security.key_file == default_key {
        cfg.security.key_file = dir.join("security/cluster.key");
    }
    let requested_ufs = args.ufs.map(|u| match u.starts_with('/') {
        true => format!("file://{u}"),
        false => u,
    });
    cfg.master.mount_table_root_ufs = requested_ufs
        .clone()
        .unwrap_or_else(|| format!("file://{}", dir.join("underfs").display()));
    let quota = alluxio_common::units::ByteSize::parse(&args.cache)
        .map_err(AlluxioError::InvalidArgument)?;
    if args.format {
        format_data_dir(&dir)?;
    }
    let signal = alluxio_common::server::wait_for_signal();
    let master = MasterServer::start(cfg)
        .await
        .map_err(|e| AlluxioError::Unavailable(e.to_string()))?;
    // The journal decides the root UFS of an existing data directory: use
    // what it records, and refuse a different --ufs instead of ignoring it.
    let root_ufs = recorded_root_ufs(&master);
    if let Some(requested) = requested_ufs.filter(|r| *r != root_ufs) {
        master.shutdown().await;
        return Err(AlluxioError::FailedPrecondition(format!(
            "{} already holds a namespace whose root UFS is {root_ufs}, not {requested}; \
             run with --format to erase it and start afresh (the UFS is kept), \
             or choose another --data-dir",
            dir.display()
        )));
    }
    let master_address = format!("{}:{}", cfg.master.hostname, master.rpc_addr.port());

    let mut workers = Vec::new();
    for i in 0..args.workers {
        let mut wc = cfg.clone();
        // The first worker takes the configured ports; the next ones step
        // by two from them (RPC 29999, 30001, ...; web 30000, 30002, ...),
        // and data ports count down (29998, 29997, ...). Port 0 stays 0.
        let step = |port: u16, by: u16| {
            if port == 0 {
                0
            } else {
                port.saturating_add(by)
            }
        };
        wc.worker.rpc_port = step(cfg.worker.rpc_port, 2 * i);
        wc.worker.web_port = step(cfg.worker.web_port, 2 * i);
        wc.worker.data_port = if cfg.worker.data_port == 0 {
            0
        } else {
            cfg.worker.data_port.saturating_sub(i)
        };
        wc.worker.data_dir = dir.join(format!("worker-{i}"));
        if wc.worker.tiers.is_empty() {
            wc.worker.tiers = vec![TierConfig {
                alias: "MEM".to_string(),
                dirs: vec![TierDirConfig {
                    path: wc.worker.data_dir.join("mem"),
                    quota,
                }],
            }];
        }
        let w = WorkerServer::start(&wc, &master_address)
            .await
            .map_err(|e| AlluxioError::Unavailable(e.to_string()))?;
        workers.push(w);
    }

    println!("alluxio-rs local cluster is running (Ctrl-C to stop)");
    println!(
        "  master      {master_address} (web http://{})",
        master.web_addr
    );
    for w in &workers {
        println!(
            "  worker      {} (data {}, web http://{}, id {})",
            w.rpc_addr, w.data_addr, w.web_addr, w.worker_id
        );
    }
    println!("  under store {root_ufs}");
    println!("  data        {}", dir.display());
    if cfg.security.authentication == alluxio_common::config::AuthenticationConfig::Nosasl {
        println!("  security    OFF (security.authentication: NOSASL)");
    } else {
        println!("  cluster key {}", cfg.security.key_file.display());
        if cfg.security.key_file != default_key {
            println!(
                "              (for the CLI: export ALLUXIO_SECURITY_KEY_FILE={})",
                cfg.security.key_file.display()
            );
        }
    }
    let tls = &cfg.security.tls;
    if tls.enabled {
        let ca = tls.ca_file.as_deref().unwrap_or(std::path::Path::new("?"));
        println!("  TLS         on, CA {}", ca.display());
        println!(
            "              (for the CLI: -D security.tls.enabled=true -D security.tls.ca_file={})",
            ca.display()
        );
    }
    if let Some(key) = &cfg.master.journal.encryption_key_file {
        println!("  journal     encrypted at rest, key {}", key.display());
    }
    println!();
    println!("Try:");
    println!("  alluxio fs copyFromLocal Cargo.toml /Cargo.toml");
    println!("  alluxio fs cat /Cargo.toml");
    println!("  alluxio fs ls -R /");
    println!("  alluxio fsadmin report");
    signal.await;
    for w in workers {
        w.shutdown().await;
    }
    master.shutdown().await;
    Ok(())
}

/// The UFS the master has mounted at `/`.
fn recorded_root_ufs(master: &MasterServer) -> String {
    master
        .fs
        .mount_table()
        .into_iter()
        .find(|m| m.alluxio_path == "/")
        .map(|m| m.ufs_uri)
        .unwrap_or_default()
}

/// Erases the journal and every worker's directory under `dir` (what
/// `alluxio local` keeps there besides the default UFS).
fn format_data_dir(dir: &std::path::Path) -> Result<(), AlluxioError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(()); // nothing there yet
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "journal" || name.starts_with("worker-") {
            std::fs::remove_dir_all(entry.path()).map_err(|e| {
                AlluxioError::Internal(format!("cannot erase {}: {e}", entry.path().display()))
            })?;
        }
    }
    println!(
        "formatted {} (journal and worker caches erased)",
        dir.display()
    );
    Ok(())
}
