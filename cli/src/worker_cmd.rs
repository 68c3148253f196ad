//! `alluxio worker`: runs a worker until SIGTERM or Ctrl-C.

use crate::Context;
use alluxio_common::config::{TierConfig, TierDirConfig};
use alluxio_common::units::ByteSize;
use alluxio_common::AlluxioError;
use alluxio_worker::WorkerServer;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct WorkerArgs {
    /// gRPC port (worker.rpc_port).
    #[arg(long)]
    port: Option<u16>,
    /// HTTP port for /metrics, /healthz, /readyz (worker.web_port).
    #[arg(long)]
    web_port: Option<u16>,
    /// Raw TCP data port for cached blocks (worker.data_port; 0: any).
    #[arg(long)]
    data_port: Option<u16>,
    /// Identity and default tier location (worker.data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to bind and advertise (worker.hostname).
    #[arg(long)]
    hostname: Option<String>,
    /// A tier directory ALIAS:PATH:QUOTA, e.g. MEM:/dev/shm/alluxio:4GiB;
    /// repeat for more directories and tiers (fastest first).
    #[arg(long = "tier", value_name = "ALIAS:PATH:QUOTA")]
    tiers: Vec<String>,
}

/// Parses `ALIAS:PATH:QUOTA` arguments into tiers, in order of first use.
pub fn parse_tiers(raw: &[String]) -> Result<Vec<TierConfig>, AlluxioError> {
    let mut tiers: Vec<TierConfig> = Vec::new();
    for item in raw {
        let parts: Vec<&str> = item.splitn(3, ':').collect();
        let [alias, path, quota] = parts[..] else {
            return Err(AlluxioError::InvalidArgument(format!(
                "invalid tier {item:?}: expected ALIAS:PATH:QUOTA"
            )));
        };
        let quota = ByteSize::parse(quota).map_err(AlluxioError::InvalidArgument)?;
        let dir = TierDirConfig {
            path: PathBuf::from(path),
            quota,
        };
        match tiers.iter_mut().find(|t| t.alias == alias) {
            Some(t) => t.dirs.push(dir),
            None => tiers.push(TierConfig {
                alias: alias.to_string(),
                dirs: vec![dir],
            }),
        }
    }
    Ok(tiers)
}

pub async fn run(mut ctx: Context, args: WorkerArgs) -> Result<(), AlluxioError> {
    alluxio_common::init_tracing();
    let w = &mut ctx.config.worker;
    if let Some(p) = args.port {
        w.rpc_port = p;
    }
    if let Some(p) = args.web_port {
        w.web_port = p;
    }
    if let Some(p) = args.data_port {
        w.data_port = p;
    }
    if let Some(d) = args.data_dir {
        w.data_dir = d;
    }
    if let Some(h) = args.hostname {
        w.hostname = h;
    }
    if !args.tiers.is_empty() {
        w.tiers = parse_tiers(&args.tiers)?;
    }
    let signal = alluxio_common::server::wait_for_signal();
    let server = WorkerServer::start(&ctx.config, &ctx.master_address)
        .await
        .map_err(|e| AlluxioError::Unavailable(e.to_string()))?;
    signal.await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}
