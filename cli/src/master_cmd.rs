//! `alluxio master`: runs a master until SIGTERM or Ctrl-C.

use crate::Context;
use alluxio_common::AlluxioError;
use alluxio_master::MasterServer;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct MasterArgs {
    /// gRPC port (master.rpc_port).
    #[arg(long)]
    port: Option<u16>,
    /// HTTP port for /metrics, /healthz, /readyz (master.web_port).
    #[arg(long)]
    web_port: Option<u16>,
    /// Journal directory (master.journal.dir).
    #[arg(long)]
    journal_dir: Option<PathBuf>,
    /// UFS mounted at / on the first start (master.mount_table_root_ufs).
    #[arg(long)]
    root_ufs: Option<String>,
    /// Address to bind and advertise (master.hostname).
    #[arg(long)]
    hostname: Option<String>,
}

pub async fn run(mut ctx: Context, args: MasterArgs) -> Result<(), AlluxioError> {
    alluxio_common::init_tracing();
    let m = &mut ctx.config.master;
    if let Some(p) = args.port {
        m.rpc_port = p;
    }
    if let Some(p) = args.web_port {
        m.web_port = p;
    }
    if let Some(d) = args.journal_dir {
        m.journal.dir = d;
    }
    if let Some(u) = args.root_ufs {
        m.mount_table_root_ufs = u;
    }
    if let Some(h) = args.hostname {
        m.hostname = h;
    }
    let signal = alluxio_common::server::wait_for_signal();
    let server = MasterServer::start(&ctx.config)
        .await
        .map_err(|e| AlluxioError::Unavailable(e.to_string()))?;
    signal.await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}
