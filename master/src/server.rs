//! Starting and stopping a master process: recover from the journal, serve
//! gRPC and HTTP, and run the background loops (lost workers, TTLs,
//! checkpoints). Shutdown is explicit: `MasterServer::shutdown` stops the
//! listeners and waits for the tasks.

use crate::block_master::BlockMaster;
use crate::fs_master::{bootstrap_root, FileSystemMaster, FsSettings};
use crate::job::{JobMaster, JobSettings};
use crate::journal::seal::JournalKey;
use crate::journal::{Journal, JournalError};
use crate::metrics::MasterMetrics;
use crate::raft::{membership, network, RaftSettings, ReplicatedJournal};
use crate::service::{
    access::AccessPolicy, block::BlockMasterService, file_system::FileSystemService,
    job::JobMasterService, leader_gate::LeaderGateLayer, meta::MetaMasterService,
};
use crate::state::MasterState;
use alluxio_common::auth::{AuthError, Authenticator, Credentials, Role};
use alluxio_common::config::AlluxioConfig;
use alluxio_common::conn_limit::{limited_incoming, ConnectionCounts};
use alluxio_common::server::Supervisor;
use alluxio_common::tls::ServerTls;
use alluxio_common::AlluxioError;
use alluxio_proto::grpc::{
    block_master_server::BlockMasterServer, file_system_master_server::FileSystemMasterServer,
    job_master_server::JobMasterServer, meta_master_server::MetaMasterServer,
};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;

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
    #[error("cannot set up authentication: {0}")]
    Security(#[from] AuthError),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] alluxio_common::tls::TlsError),
}

pub struct MasterServer {
    pub rpc_addr: SocketAddr,
    pub web_addr: SocketAddr,
    pub fs: Arc<FileSystemMaster>,
    pub jobs: Arc<JobMaster>,
    tasks: Supervisor,
    replicated: Option<Arc<ReplicatedJournal>>,
}

/// 23 random bits, never 0, different in every master process (the
/// standard library's hasher seeds are random per process).
fn process_epoch() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (random >> 41) | 1
}

/// Listens on `host:port` (see `alluxio_common::server::bind`).
async fn bind(host: &str, port: u16) -> Result<(TcpListener, SocketAddr), MasterError> {
    alluxio_common::server::bind(host, port)
        .await
        .map_err(|(addr, source)| MasterError::Bind { addr, source })
}

impl MasterServer {
    /// Recovers state and starts serving. Ports 0 pick free ports (tests).
    pub async fn start(config: &AlluxioConfig) -> Result<MasterServer, MasterError> {
        let mc = &config.master;
        // The first master of a cluster creates its key, before it listens:
        // whoever sees the port open can expect the key file to be there.
        let auth = Authenticator::from_config(config, true)?;
        let tls = ServerTls::from_config(config, &mc.tls, "master")?;
        let journal_key = JournalKey::from_config(config)?;
        let raft_settings = RaftSettings::from_config(config).map_err(MasterError::Config)?;
        let (rpc_listener, rpc_addr) = bind(&mc.hostname, mc.rpc_port).await?;
        let (web_listener, web_addr) = bind(&mc.hostname, mc.web_port).await?;
        let access = Arc::new(AccessPolicy::from_config(config));
        let mut tasks = Supervisor::default();
        let (fs, replicated) = match raft_settings {
            None => (Arc::new(recover(config, journal_key).await?), None),
            Some(mut settings) => {
                settings.journal_key = journal_key;
                match start_replicated(config, settings, &auth, &tls, &mut tasks).await {
                    Ok((fs, journal)) => (fs, Some(journal)),
                    Err(e) => {
                        // Release the Raft port before answering: a start that
                        // failed (refused by the group) leaves nothing bound.
                        tasks.shutdown().await;
                        return Err(e);
                    }
                }
            }
        };

        let mut registry = Registry::default();
        let metrics = Arc::new(MasterMetrics::register(&mut registry));
        let ready = Arc::new(AtomicBool::new(false));
        let jobs = Arc::new(JobMaster::new(
            fs.clone(),
            Credentials::for_service(config, auth.key(), Role::Admin)?,
            JobSettings::from_config(&mc.job),
        ));

        let limit = alluxio_common::rpc::MASTER_MAX_MESSAGE;
        // Every service behind the authenticator: no call reaches a handler
        // without a verified identity. In a Raft group, file-system and
        // worker calls reach only the leader (`leader_gate`).
        let shed = alluxio_common::load_shed::ShedLoadLayer::new(mc.max_concurrent_rpcs);
        shed.in_flight().register(&mut registry, "alluxio_master");
        let grpc = alluxio_common::rpc::server()
            .layer(shed)
            .layer(LeaderGateLayer {
                replicated: replicated.clone(),
                health: fs.journal_health(),
            })
            .add_service(InterceptedService::new(
                FileSystemMasterServer::new(FileSystemService {
                    fs: fs.clone(),
                    metrics: metrics.clone(),
                    access: access.clone(),
                    list_batch_size: mc.list_batch_size,
                    capabilities: auth.key().cloned().map(|key| {
                        Arc::new(alluxio_common::auth::capability::CapabilityIssuer::new(key))
                    }),
                })
                .max_decoding_message_size(limit),
                auth.clone(),
            ))
            .add_service(InterceptedService::new(
                BlockMasterServer::new(BlockMasterService {
                    fs: fs.clone(),
                    metrics: metrics.clone(),
                    access: access.clone(),
                    pinned_epoch: process_epoch(),
                })
                .max_decoding_message_size(limit),
                auth.clone(),
            ))
            .add_service(InterceptedService::new(
                JobMasterServer::new(JobMasterService {
                    fs: fs.clone(),
                    jobs: jobs.clone(),
                    metrics: metrics.clone(),
                    access: access.clone(),
                }),
                auth.clone(),
            ))
            .add_service(InterceptedService::new(
                MetaMasterServer::new(MetaMasterService {
                    fs: fs.clone(),
                    access,
                    metrics: metrics.clone(),
                    address: format!("{}:{}", mc.hostname, rpc_addr.port()),
                    web_port: web_addr.port(),
                    start_time_ms: alluxio_common::now_ms(),
                }),
                auth,
            ));
        let connections = Arc::new(ConnectionCounts::default());
        connections.register(&mut registry, "alluxio_master");
        let incoming = limited_incoming(rpc_listener, mc.max_connections, connections, tls);
        tasks.spawn_server("master gRPC", move |stop| {
            grpc.serve_with_incoming_shutdown(incoming, stop)
        });

        // HTTP: health, readiness, metrics.
        let (hook_fs, hook_metrics) = (fs.clone(), metrics.clone());
        let hook: alluxio_common::http::ScrapeHook =
            Arc::new(move || hook_metrics.refresh(&hook_fs));
        let registry = Arc::new(Mutex::new(registry));
        let health = fs.journal_health();
        let why_not_ready: alluxio_common::http::ReasonHook = Arc::new(move || health.failure());
        let router = alluxio_common::http::status_router_explained(
            registry,
            ready.clone(),
            why_not_ready,
            Some(hook),
        );
        tasks.spawn_server("master HTTP", move |stop| {
            alluxio_common::http::serve(web_listener, router, stop)
        });

        start_background_loops(&mut tasks, config, &fs, ready.clone());
        let supervised = jobs.clone();
        tasks.every("load jobs", Duration::from_secs(1), move || {
            supervised.supervise();
            async {}
        });
        ready.store(fs.healthy(), Ordering::Release);
        tracing::info!(rpc = %rpc_addr, web = %web_addr, "Alluxio master started");
        Ok(MasterServer {
            rpc_addr,
            web_addr,
            fs,
            jobs,
            tasks,
            replicated,
        })
    }

    /// The Raft group this master belongs to (fault-tolerant mode).
    pub fn replicated(&self) -> Option<&Arc<ReplicatedJournal>> {
        self.replicated.as_ref()
    }

    /// Stops serving and waits for every task. Journal entries already
    /// acknowledged are on disk; nothing else needs saving.
    pub async fn shutdown(self) {
        self.jobs.shutdown().await;
        if let Some(journal) = &self.replicated {
            journal.shutdown().await;
        }
        self.tasks.shutdown().await;
        // The supervisor may have started a runner meanwhile.
        self.jobs.shutdown().await;
        tracing::info!("Alluxio master stopped");
    }
}

/// Fault-tolerant mode: opens the replicated journal, serves the Raft port,
/// and follows leadership (a new leader of a new namespace creates the
/// root, as a single master does on its first start).
async fn start_replicated(
    config: &AlluxioConfig,
    settings: RaftSettings,
    auth: &Authenticator,
    tls: &Option<ServerTls>,
    tasks: &mut Supervisor,
) -> Result<(Arc<FileSystemMaster>, Arc<ReplicatedJournal>), MasterError> {
    let mc = &config.master;
    let (raft_listener, raft_addr) = bind(&mc.hostname, mc.embedded_journal.port).await?;
    let credentials = Credentials::for_service(config, auth.key(), Role::Admin)?;
    // The Raft port serves before this master's Raft node exists: other
    // masters finding their place ask it who it is.
    let node = Arc::new(std::sync::OnceLock::new());
    // Followers refuse votes for 2 x election_timeout after a heartbeat
    // (openraft's leader lease); a restarted master must wait as long.
    let vote_delay = settings.election_timeout * 2;
    let peer_service = network::PeerService {
        journal: node.clone(),
        configured: settings
            .members
            .iter()
            .map(|m| m.raft_address.clone())
            .collect(),
        votes_from: std::time::Instant::now() + vote_delay,
    };
    let raft_grpc = alluxio_common::rpc::server().add_service(InterceptedService::new(
        network::server(peer_service),
        auth.clone(),
    ));
    let incoming = limited_incoming(
        raft_listener,
        mc.max_connections,
        Arc::default(),
        tls.clone(),
    );
    tasks.spawn_server("master Raft", move |stop| {
        raft_grpc.serve_with_incoming_shutdown(incoming, stop)
    });
    let record = membership::find_place(&settings, &credentials).await?;
    let peers = network::PeerNetwork {
        credentials,
        group: record.group.clone(),
    };
    let journal = Arc::new(ReplicatedJournal::open(settings, record, peers).await?);
    let _ = node.set(journal.clone());
    tasks.spawn(
        "Raft membership upkeep",
        membership::run_upkeep(journal.clone()),
    );
    let fs = Arc::new(FileSystemMaster::replicated(
        journal.clone(),
        Arc::new(BlockMaster::default()),
        fs_settings(config),
    ));
    let (elected_fs, root_ufs, root_options) = (
        fs.clone(),
        mc.mount_table_root_ufs.clone(),
        mc.mount_table_root_options.clone(),
    );
    let watcher = journal.watch_leadership(move || {
        let (fs, uri, options) = (elected_fs.clone(), root_ufs.clone(), root_options.clone());
        async move {
            let fresh = {
                let state = fs.read_state();
                state.tree.root().is_none()
                    || state
                        .mounts
                        .get(&alluxio_common::AlluxioPath::root())
                        .is_none()
            };
            if fresh {
                prepare_local_root(&uri);
                match fs.commit(|txn| bootstrap_root(txn, &uri, &options)).await {
                    Ok(()) => tracing::info!(root_ufs = %uri, "initialised a new namespace"),
                    Err(e) => tracing::error!(error = %e, "cannot initialise the namespace"),
                }
            }
        }
    });
    tasks.spawn("leadership watcher", async move {
        let _ = watcher.await;
    });
    tracing::info!(raft = %raft_addr, "embedded journal serving");
    Ok((fs, journal))
}

fn fs_settings(config: &AlluxioConfig) -> FsSettings {
    let mc = &config.master;
    FsSettings {
        default_block_size: config.user.block_size.0,
        allowed_local_ufs_roots: mc.allowed_local_ufs_roots.clone(),
        default_sync_interval_ms: mc.metadata_sync_interval.0,
        sync_batch_size: mc.metadata_sync_batch_size,
        change_batch_size: mc.recursive_change_batch_size.max(1),
    }
}

/// Replays the journal into a new [`FileSystemMaster`]; on the first start
/// (or after a crash cut the very first commit in half), creates the root
/// and mounts the configured root UFS at `/`.
async fn recover(
    config: &AlluxioConfig,
    key: Option<Arc<JournalKey>>,
) -> Result<FileSystemMaster, MasterError> {
    let mc = &config.master;
    let journal_dir = mc.journal.dir.clone();
    let (period, fsync) = (mc.journal.checkpoint_period_entries, mc.journal.fsync);
    let started = std::time::Instant::now();
    let (state, journal, report) = tokio::task::spawn_blocking(move || {
        let mut state = MasterState::default();
        Journal::open(&journal_dir, &mut state, period, fsync, key).map(|(j, r)| (state, j, r))
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

    let root = alluxio_common::AlluxioPath::root();
    let recorded_root_ufs = state.mounts.get(&root).map(|m| m.ufs_uri.clone());
    let fresh = state.tree.root().is_none() || recorded_root_ufs.is_none();
    let fs = FileSystemMaster::new(
        state,
        journal,
        Arc::new(BlockMaster::default()),
        fs_settings(config),
    );
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
    } else if recorded_root_ufs.as_deref() != Some(mc.mount_table_root_ufs.as_str()) {
        // As in Alluxio, the root UFS is chosen when the journal is formatted.
        tracing::warn!(
            recorded = recorded_root_ufs.as_deref().unwrap_or_default(),
            configured = %mc.mount_table_root_ufs,
            "master.mount_table_root_ufs differs from the root mount recorded in the journal; \
             the recorded one is used (format the journal to change it)"
        );
    }
    Ok(fs)
}

/// The leader's periodic duties: lost workers, TTLs, checkpoints, and the
/// readiness flag.
fn start_background_loops(
    tasks: &mut Supervisor,
    config: &AlluxioConfig,
    fs: &Arc<FileSystemMaster>,
    ready: Arc<AtomicBool>,
) {
    let mc = &config.master;
    let (timeout, forget_after) = (mc.worker_timeout.0, mc.lost_worker_forget_after.0);
    let lost_fs = fs.clone();
    tasks.every("lost-worker check", mc.worker_check_interval.0, move || {
        // Followers hear no heartbeats: only the leader judges workers.
        if lost_fs.is_leader() {
            let blocks = lost_fs.block_master();
            blocks.mark_lost_workers(timeout);
            blocks.forget_lost_workers(forget_after);
        }
        async {}
    });
    let ttl_fs = fs.clone();
    tasks.every("TTL check", mc.ttl_check_interval.0, move || {
        let fs = ttl_fs.clone();
        async move {
            if fs.is_leader() {
                fs.check_ttls().await;
            }
        }
    });
    let ckpt_fs = fs.clone();
    tasks.every("checkpoint", Duration::from_millis(500), move || {
        let fs = ckpt_fs.clone();
        async move {
            if fs.journal().checkpoint_due() {
                let result = tokio::task::spawn_blocking(move || fs.checkpoint_now()).await;
                match result {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "checkpoint failed"),
                    Err(e) => tracing::error!(error = %e, "checkpoint task failed"),
                }
            }
        }
    });
    let ready_fs = fs.clone();
    tasks.every("readiness", Duration::from_millis(500), move || {
        // A member of a Raft group is ready once it knows a leader (it is
        // in the quorum); clients reach the leader by NotLeader redirects.
        let in_quorum = ready_fs
            .journal()
            .replicated()
            .is_none_or(|r| r.raft.metrics().borrow().current_leader.is_some());
        ready.store(ready_fs.healthy() && in_quorum, Ordering::Release);
        async {}
    });
}

/// A local root directory is created on the first start (a convenience
/// for `alluxio local` and fresh installs); other stores must exist.
fn prepare_local_root(uri: &str) {
    if let Some(path) = uri.strip_prefix("file://") {
        if let Err(e) = alluxio_common::io::create_dir_all_durable(std::path::Path::new(path)) {
            tracing::warn!(path, error = %e, "cannot create the local root UFS directory");
        }
    }
}
