//! Starting and stopping a worker: open the block store, serve the data
//! service and the status HTTP endpoints, and heartbeat to the master.

use crate::block_store::{BlockStore, CHUNK_SIZE};
use crate::heartbeat::{load_or_create_id, Heartbeat};
use crate::metrics::WorkerMetrics;
use crate::read_through::ReadThrough;
use crate::service::{WorkerGrpc, WorkerService};
use alluxio_client::MasterClient;
use alluxio_client::MountResolver;
use alluxio_common::auth::{AuthError, Authenticator, Credentials, Role};
use alluxio_common::config::AlluxioConfig;
use alluxio_common::conn_limit::{limited_incoming, ConnectionCounts};
use alluxio_common::server::Supervisor;
use alluxio_common::tls::ServerTls;
use alluxio_proto::grpc::block_worker_server::BlockWorkerServer;
use alluxio_proto::grpc::WorkerAddress;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot open the block store: {0}")]
    Store(#[from] crate::block_store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot keep the worker identity in {dir}: {source}")]
    Identity { dir: String, source: std::io::Error },
    #[error("invalid master address: {0}")]
    Master(alluxio_common::AlluxioError),
    #[error("cannot set up authentication: {0}")]
    Security(#[from] AuthError),
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] alluxio_common::tls::TlsError),
}

pub struct WorkerServer {
    pub worker_id: u64,
    pub rpc_addr: SocketAddr,
    pub web_addr: SocketAddr,
    /// The raw TCP data port for cached blocks.
    pub data_addr: SocketAddr,
    pub store: BlockStore,
    pub metrics: Arc<WorkerMetrics>,
    tasks: Supervisor,
}

/// Listens on `host:port` and says which address that is (port 0 picks a
/// free one).
async fn bind(host: &str, port: u16) -> Result<(tokio::net::TcpListener, SocketAddr), WorkerError> {
    alluxio_common::server::bind(host, port)
        .await
        .map_err(|(addr, source)| WorkerError::Bind { addr, source })
}

impl WorkerServer {
    /// Starts a worker that talks to the master at `master_address`.
    pub async fn start(
        config: &AlluxioConfig,
        master_address: &str,
    ) -> Result<WorkerServer, WorkerError> {
        let wc = &config.worker;
        // A worker checks callers with the cluster key and calls the master
        // as a worker with tokens it mints from it.
        let auth = Authenticator::from_config(config, false)?;
        let credentials = Credentials::for_service(config, auth.key(), Role::Worker)?;
        let tls = ServerTls::from_config(config, &wc.tls, "worker")?;
        let worker_id =
            load_or_create_id(&wc.data_dir).map_err(|source| WorkerError::Identity {
                dir: wc.data_dir.display().to_string(),
                source,
            })?;
        let tiers = wc.effective_tiers();
        let evictor = wc.evictor;
        let store = tokio::task::spawn_blocking(move || BlockStore::open(&tiers, evictor))
            .await
            .map_err(|e| {
                WorkerError::Store(crate::block_store::StoreError::Config(e.to_string()))
            })??;
        let (rpc_listener, rpc_addr) = bind(&wc.hostname, wc.rpc_port).await?;
        let (web_listener, web_addr) = bind(&wc.hostname, wc.web_port).await?;
        let (data_listener, data_addr) = bind(&wc.hostname, wc.data_port).await?;
        // Lazy: the master may come up after the worker; heartbeats retry.
        let master =
            MasterClient::connect_lazy(master_address, credentials).map_err(WorkerError::Master)?;

        let mut registry = Registry::default();
        let metrics = Arc::new(WorkerMetrics::register(&mut registry));
        let ufs = Arc::new(MountResolver::new(master.clone()));
        let persister = Arc::new(crate::persist::Persister::new(
            alluxio_client::FileSystem::with_config(master.clone(), config),
            ufs.clone(),
            master.clone(),
        ));
        let read_through = Arc::new(ReadThrough::new(
            store.clone(),
            ufs,
            metrics.clone(),
            wc.read_through_memory.0,
            crate::read_through::FetchPlan {
                // Smaller pieces would only multiply requests; whole
                // checksum chunks let a load write pieces side by side.
                piece: wc.ufs_fetch_piece.0.max(1).next_multiple_of(CHUNK_SIZE),
                parallelism: wc.ufs_fetch_parallelism.max(1),
            },
        ));
        let service = Arc::new(WorkerService {
            store: store.clone(),
            read_through,
            metrics: metrics.clone(),
            master: master.clone(),
            worker_id,
            cache_whole_block_on_partial_read: wc.cache_whole_block_on_partial_read,
            leases: Mutex::new(Default::default()),
            auth: auth.clone(),
        });
        let mut tasks = Supervisor::default();

        let shed = alluxio_common::load_shed::ShedLoadLayer::new(wc.max_concurrent_rpcs);
        shed.in_flight().register(&mut registry, "alluxio_worker");
        let grpc = alluxio_common::rpc::server()
            .initial_stream_window_size(Some(8 << 20))
            .initial_connection_window_size(Some(16 << 20))
            .max_frame_size(Some((1 << 24) - 1))
            .layer(shed)
            .add_service(InterceptedService::new(
                BlockWorkerServer::new(WorkerGrpc(service))
                    .max_decoding_message_size(alluxio_common::rpc::WORKER_MAX_MESSAGE),
                auth.clone(),
            ));
        let connections = Arc::new(ConnectionCounts::default());
        connections.register(&mut registry, "alluxio_worker");
        let incoming = limited_incoming(rpc_listener, wc.max_connections, connections, tls.clone());
        tasks.spawn_server("worker gRPC", move |stop| {
            grpc.serve_with_incoming_shutdown(incoming, stop)
        });
        let data_port = crate::data_server::serve(
            data_listener,
            crate::data_server::DataPort {
                store: store.clone(),
                metrics: metrics.clone(),
                auth,
                limits: crate::data_server::Limits {
                    max_connections: wc.data_port_max_connections.max(1),
                    write_timeout: wc.data_port_write_timeout.0,
                },
                tls: tls.clone(),
            },
            tasks.stop_signal(),
        );
        tasks.spawn("worker data port", data_port);

        let ready = Arc::new(AtomicBool::new(true));
        let (hook_store, hook_metrics) = (store.clone(), metrics.clone());
        let hook: alluxio_common::http::ScrapeHook =
            Arc::new(move || hook_metrics.refresh(&hook_store));
        let router =
            alluxio_common::http::status_router(Arc::new(Mutex::new(registry)), ready, Some(hook));
        tasks.spawn_server("worker HTTP", move |stop| {
            alluxio_common::http::serve(web_listener, router, stop)
        });

        let heartbeat = Heartbeat {
            master,
            persister,
            store: store.clone(),
            worker_id,
            address: WorkerAddress {
                host: wc.hostname.clone(),
                rpc_port: rpc_addr.port() as u32,
                web_port: web_addr.port() as u32,
                data_port: data_addr.port() as u32,
            },
            interval: wc.heartbeat_interval.0.max(Duration::from_millis(10)),
            pinned_version: Default::default(),
        };
        tasks.spawn("heartbeat", heartbeat.run(tasks.subscribe()));
        tracing::info!(worker_id, rpc = %rpc_addr, web = %web_addr, data = %data_addr, "Alluxio worker started");
        Ok(WorkerServer {
            worker_id,
            rpc_addr,
            web_addr,
            data_addr,
            store,
            metrics,
            tasks,
        })
    }

    pub async fn shutdown(self) {
        self.tasks.shutdown().await;
        tracing::info!(worker_id = self.worker_id, "Alluxio worker stopped");
    }
}
