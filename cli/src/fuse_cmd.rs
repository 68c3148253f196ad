//! `alluxio fuse`: mounts the namespace (or a directory of it) at a local
//! directory, and serves until SIGTERM or Ctrl-C (then unmounts) or until
//! someone unmounts it.

use crate::Context;
use alluxio_client::{FileSystem, MasterClient};
use alluxio_common::AlluxioError;
use alluxio_fuse::{FuseMetrics, FuseOptions};
use clap::Args;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Alluxio's default port of the FUSE daemon's web server.
const DEFAULT_WEB_PORT: u16 = 49999;

#[derive(Args)]
pub struct FuseArgs {
    /// Local directory to mount at (must exist and not be a mount point).
    mount_point: PathBuf,
    /// Alluxio directory that appears at the mount point.
    #[arg(long, default_value = "/")]
    alluxio_path: String,
    /// Mount options, comma separated; repeatable: allow_other, ro,
    /// attr_timeout=SECONDS, entry_timeout=SECONDS, read_type=TYPE,
    /// write_type=TYPE, passthrough|nopassthrough, sync_interval=DURATION,
    /// retry_timeout=SECONDS, threads=N, no_default_permissions, noatime...
    #[arg(short = 'o', value_name = "OPTIONS")]
    options: Vec<String>,
    /// HTTP port for /metrics, /healthz and /readyz (0: any free port).
    #[arg(long, default_value_t = DEFAULT_WEB_PORT)]
    web_port: u16,
}

pub async fn run(ctx: Context, args: FuseArgs) -> Result<(), AlluxioError> {
    alluxio_common::init_tracing();
    let options = FuseOptions::parse(&args.options).map_err(AlluxioError::InvalidArgument)?;
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(FuseMetrics::register(&mut registry));
    let host = ctx.config.user.hostname.clone();
    let (listener, web_address) = alluxio_common::server::bind(&host, args.web_port)
        .await
        .map_err(|(addr, e)| AlluxioError::Unavailable(format!("cannot bind {addr}: {e}")))?;

    // A proxy: each operation is checked as the process that made it.
    let credentials = alluxio_common::auth::Credentials::for_client_as(
        &ctx.config,
        alluxio_common::auth::Role::Proxy,
    )?;
    let master = MasterClient::connect_lazy(&ctx.master_address, credentials)?;
    let fs = FileSystem::with_config(master, &ctx.config);
    // Before the mount is visible: a SIGTERM right after it unmounts.
    let signal = alluxio_common::server::wait_for_signal();
    let mount = alluxio_fuse::mount(
        fs,
        &args.alluxio_path,
        &args.mount_point,
        options,
        metrics.clone(),
    )
    .await
    .map_err(|e| AlluxioError::FailedPrecondition(e.to_string()))?;

    let ready = Arc::new(AtomicBool::new(true));
    let router = alluxio_common::http::status_router(Arc::new(Mutex::new(registry)), ready, None);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let web = tokio::spawn(alluxio_common::http::serve(
        listener,
        router,
        alluxio_common::server::wait_for_shutdown(stop_rx),
    ));
    println!(
        "Mounted {} at {} (metrics on http://{web_address}/metrics)",
        args.alluxio_path,
        mount.mount_point().display()
    );

    let mut check = tokio::time::interval(Duration::from_millis(250));
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => {
                tracing::info!("signal received; unmounting");
                break;
            }
            _ = check.tick() => {
                if !mount.is_alive() {
                    tracing::info!("unmounted from outside; exiting");
                    break;
                }
            }
        }
    }
    let result = tokio::task::spawn_blocking(move || mount.unmount())
        .await
        .map_err(|e| AlluxioError::Internal(e.to_string()))?;
    let _ = stop_tx.send(true);
    let _ = web.await;
    result.map_err(AlluxioError::Internal)
}
