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
}

pub async fn run(mut ctx: Context, args: LocalArgs) -> Result<(), AlluxioError> {
    alluxio_common::init_tracing();
    let dir = args.data_dir.clone();
    let cfg = &mut ctx.config;
    cfg.master.journal.dir = dir.join("journal");
    cfg.master.mount_table_root_ufs = match args.ufs {
        Some(u) if u.starts_with('/') => format!("file://{u}"),
        Some(u) => u,
        None => format!("file://{}", dir.join("underfs").display()),
    };
    let quota = alluxio_common::units::ByteSize::parse(&args.cache)
        .map_err(AlluxioError::InvalidArgument)?;
    let master = MasterServer::start(cfg)
        .await
        .map_err(|e| AlluxioError::Unavailable(e.to_string()))?;
    let master_address = format!("{}:{}", cfg.master.hostname, master.rpc_addr.port());

    let mut workers = Vec::new();
    for i in 0..args.workers {
        let mut wc = cfg.clone();
        let base = cfg.worker.rpc_port;
        wc.worker.rpc_port = base.saturating_add(2 * i);
        wc.worker.web_port = base.saturating_add(2 * i + 1);
        // Data ports count down from worker.data_port (29998, 29997, ...).
        wc.worker.data_port = cfg.worker.data_port.saturating_sub(i);
        if base == 0 {
            wc.worker.web_port = 0;
        }
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
    println!("  under store {}", cfg.master.mount_table_root_ufs);
    println!("  data        {}", dir.display());
    println!();
    println!("Try:");
    println!("  alluxio fs copyFromLocal Cargo.toml /Cargo.toml");
    println!("  alluxio fs cat /Cargo.toml");
    println!("  alluxio fs ls -R /");
    println!("  alluxio fsadmin report");
    alluxio_common::server::wait_for_signal().await;
    for w in workers {
        w.shutdown().await;
    }
    master.shutdown().await;
    Ok(())
}
