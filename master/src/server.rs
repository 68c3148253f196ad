//! Starting and stopping a master process: recover from the journal, serve
//! gRPC and HTTP, and run the background loops (lost workers, TTLs,
//! checkpoints). Shutdown is explicit: `MasterServer::shutdown` stops the
//! listeners and waits for the tasks.

use crate::block_master::BlockMaster;
use crate::fs_master::{bootstrap_root, FileSystemMaster, FsSettings};
use crate::journal::{Journal, JournalError};
use crate::metrics::MasterMetrics;
use crate::service::{
    block::BlockMasterService, file_system::FileSystemService, meta::MetaMasterService,
};
use crate::state::MasterState;
use alluxio_common::config::AlluxioConfig;
use alluxio_common::AlluxioError;
use alluxio_proto::grpc::{
    block_master_server::BlockMasterServer, file_system_master_server::FileSystemMasterServer,
    meta_master_server::MetaMasterServer,
};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("cannot recover the journal: {0}")]
    Journal(#[from] JournalError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot initialise the namespace: {0}")]
    Bootstrap(AlluxioError),
}

pub struct MasterServer {
    pub rpc_addr: SocketAddr,
    pub web_addr: SocketAddr,
    pub fs: Arc<FileSystemMaster>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

async fn bind(host: &str, port: u16) -> Result<tokio::net::TcpListener, MasterError> {
    alluxio_common::server::bind(host, port)
        .await
        .map_err(|(addr, source)| MasterError::Bind { addr, source })
}

impl MasterServer {
    /// Recovers state and starts serving. Ports 0 pick free ports (tests).
    pub async fn start(config: &AlluxioConfig) -> Result<MasterServer, MasterError> {
        let mc = &config.master;
        let rpc_listener = bind(&mc.hostname, mc.rpc_port).await?;
        let web_listener = bind(&mc.hostname, mc.web_port).await?;
        let rpc_addr = rpc_listener
            .local_addr()
            .map_err(|source| MasterError::Bind {
                addr: mc.hostname.clone(),
                source,
            })?;
        let web_addr = web_listener
            .local_addr()
            .map_err(|source| MasterError::Bind {
                addr: mc.hostname.clone(),
                source,
            })?;

        let journal_dir = mc.journal.dir.clone();
        let (period, fsync) = (mc.journal.checkpoint_period_entries, mc.journal.fsync);
        let started = std::time::Instant::now();
        let (state, journal, report) = tokio::task::spawn_blocking(move || {
            let mut state = MasterState::default();
            Journal::open(&journal_dir, &mut state, period, fsync).map(|(j, r)| (state, j, r))
        })
        .await
        .map_err(|e| {
            MasterError::Journal(JournalError::Failed(format!("recovery task failed: {e}")))
        })??;
        tracing::info!(
            checkpoint = report.checkpoint_sequence,
            replayed = report.replayed_entries,
            torn_tail_dropped = report.torn_tail_dropped,
            inodes = state.tree.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "journal recovered"
        );

        // Also when a crash cut the very first commit in half.
        let fresh = state.tree.root().is_none()
            || state
                .mounts
                .get(&alluxio_common::AlluxioPath::root())
                .is_none();
        let settings = FsSettings {
            default_block_size: config.user.block_size.0,
            default_sync_interval_ms: mc.metadata_sync_interval.0,
        };
        let fs = Arc::new(FileSystemMaster::new(
            state,
            journal,
            Arc::new(BlockMaster::default()),
            settings,
        ));
        if fresh {
            prepare_local_root(&mc.mount_table_root_ufs);
            let (uri, options) = (
                mc.mount_table_root_ufs.clone(),
                mc.mount_table_root_options.clone(),
            );
            fs.commit(|txn| bootstrap_root(txn, &uri, &options))
                .await
                .map_err(MasterError::Bootstrap)?;
            tracing::info!(root_ufs = %mc.mount_table_root_ufs, "initialised a new namespace");
        }

        let mut registry = Registry::default();
        let metrics = Arc::new(MasterMetrics::register(&mut registry));
        let registry = Arc::new(Mutex::new(registry));
        let ready = Arc::new(AtomicBool::new(false));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();

        // gRPC
        let address = format!("{}:{}", mc.hostname, rpc_addr.port());
        let grpc = tonic::transport::Server::builder()
            .add_service(FileSystemMasterServer::new(FileSystemService {
                fs: fs.clone(),
                metrics: metrics.clone(),
                list_batch_size: mc.list_batch_size,
            }))
            .add_service(BlockMasterServer::new(BlockMasterService {
                fs: fs.clone(),
                metrics: metrics.clone(),
            }))
            .add_service(MetaMasterServer::new(MetaMasterService {
                fs: fs.clone(),
                metrics: metrics.clone(),
                address,
                web_port: web_addr.port(),
                start_time_ms: alluxio_common::now_ms(),
            }));
        let incoming = alluxio_common::server::grpc_incoming(rpc_listener);
        let stop = alluxio_common::server::wait_for_shutdown(shutdown_rx.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = grpc.serve_with_incoming_shutdown(incoming, stop).await {
                tracing::error!(error = %e, "master gRPC server failed");
            }
        }));

        // HTTP: health, readiness, metrics.
        let hook_fs = fs.clone();
        let hook_metrics = metrics.clone();
        let hook: alluxio_common::http::ScrapeHook =
            Arc::new(move || hook_metrics.refresh(&hook_fs));
        let router = alluxio_common::http::status_router(registry, ready.clone(), Some(hook));
        let stop = alluxio_common::server::wait_for_shutdown(shutdown_rx.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = alluxio_common::http::serve(web_listener, router, stop).await {
                tracing::error!(error = %e, "master HTTP server failed");
            }
        }));

        // Background loops.
        let timeout = mc.worker_timeout.0;
        let blocks = fs.block_master().clone();
        tasks.push(every(
            mc.worker_check_interval.0,
            shutdown_rx.clone(),
            move || {
                let blocks = blocks.clone();
                async move {
                    blocks.mark_lost_workers(timeout);
                }
            },
        ));
        let ttl_fs = fs.clone();
        tasks.push(every(
            mc.ttl_check_interval.0,
            shutdown_rx.clone(),
            move || {
                let fs = ttl_fs.clone();
                async move {
                    fs.check_ttls().await;
                }
            },
        ));
        let ckpt_fs = fs.clone();
        tasks.push(every(
            Duration::from_millis(500),
            shutdown_rx.clone(),
            move || {
                let fs = ckpt_fs.clone();
                async move {
                    if fs.journal().checkpoint_due() {
                        let result =
                            tokio::task::spawn_blocking(move || fs.journal().checkpoint(&fs.state))
                                .await;
                        match result {
                            Ok(Ok(_)) => {}
                            Ok(Err(e)) => tracing::error!(error = %e, "checkpoint failed"),
                            Err(e) => tracing::error!(error = %e, "checkpoint task failed"),
                        }
                    }
                }
            },
        ));
        let ready_fs = fs.clone();
        let ready_flag = ready.clone();
        tasks.push(every(Duration::from_millis(500), shutdown_rx, move || {
            ready_flag.store(ready_fs.healthy(), Ordering::Release);
            async {}
        }));
        ready.store(true, Ordering::Release);
        tracing::info!(rpc = %rpc_addr, web = %web_addr, "Alluxio master started");
        Ok(MasterServer {
            rpc_addr,
            web_addr,
            fs,
            shutdown,
            tasks,
        })
    }

    /// Stops serving and waits for every task. Journal entries already
    /// acknowledged are on disk; nothing else needs saving.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        tracing::info!("Alluxio master stopped");
    }
}

/// A local root directory is created on the first start (a convenience
/// for `alluxio local` and fresh installs); other stores must exist.
fn prepare_local_root(uri: &str) {
    if let Some(path) = uri.strip_prefix("file://") {
        if let Err(e) = std::fs::create_dir_all(path) {
            tracing::warn!(path, error = %e, "cannot create the local root UFS directory");
        }
    }
}

/// Runs `tick` every `period` until shutdown.
fn every<F, Fut>(period: Duration, shutdown: watch::Receiver<bool>, mut tick: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period.max(Duration::from_millis(10)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop = alluxio_common::server::wait_for_shutdown(shutdown);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = interval.tick() => tick().await,
            }
        }
    })
}
