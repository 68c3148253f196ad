//! `alluxio-csi`: the CSI plugin process. In node mode it serves Identity
//! and Node, adopts the FUSE daemons a previous run left, and checks them
//! every two seconds; in controller mode Identity and Controller; `all`
//! serves everything. SIGTERM stops serving and leaves the FUSE daemons
//! (and so the pods' mounts) running.

use alluxio_client::MasterClient;
use alluxio_csi::fuse_daemons::FuseDaemons;
use alluxio_csi::metrics::CsiMetrics;
use alluxio_csi::server::controller::ControllerService;
use alluxio_csi::server::identity::IdentityService;
use alluxio_csi::server::node::NodeService;
use alluxio_proto::csi::controller_server::ControllerServer;
use alluxio_proto::csi::identity_server::IdentityServer;
use alluxio_proto::csi::node_server::NodeServer;
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Node,
    Controller,
    All,
}

#[derive(Parser)]
#[command(name = "alluxio-csi", version, about = "The alluxio-rs CSI driver")]
struct Args {
    /// Where to serve CSI: unix:///path/to/csi.sock.
    #[arg(long, default_value = "unix:///csi/csi.sock")]
    endpoint: String,
    #[arg(long, value_enum, default_value = "all")]
    mode: Mode,
    /// This node's name (NodeGetInfo).
    #[arg(long, env = "NODE_NAME", default_value = "")]
    node_id: String,
    /// The Alluxio master, host:port.
    #[arg(long, env = "ALLUXIO_MASTER", default_value = "127.0.0.1:19998")]
    master: String,
    /// Alluxio directory holding dynamically provisioned volumes.
    #[arg(long, default_value = "/csi/volumes")]
    volume_root: String,
    /// Alluxio directory holding the volumes' records.
    #[arg(long, default_value = "/csi/records")]
    records_root: String,
    /// Staging and target paths must be inside one of these (repeatable).
    #[arg(long = "allowed-root", default_value = "/var/lib/kubelet")]
    allowed_roots: Vec<PathBuf>,
    /// Where the FUSE daemons' state and logs are kept (survives restarts).
    #[arg(long, default_value = "/var/lib/alluxio-csi")]
    state_dir: PathBuf,
    /// The `alluxio` binary the FUSE daemons run.
    #[arg(long, default_value = "alluxio")]
    alluxio: PathBuf,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:9808")]
    metrics_address: String,
}

fn main() {
    let args = Args::parse();
    alluxio_common::init_tracing();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(args)) {
        eprintln!("Error: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let socket = args
        .endpoint
        .strip_prefix("unix://")
        .ok_or_else(|| format!("--endpoint {} is not unix:///path", args.endpoint))?;
    let listener = alluxio_csi::server::bind_socket(std::path::Path::new(socket))
        .map_err(|e| format!("cannot listen on {socket}: {e}"))?;
    // The plugin's own credentials, for requests that carry no Secret:
    // ALLUXIO_TOKEN, or ALLUXIO_SECURITY_* settings in the environment.
    let config =
        alluxio_common::config::AlluxioConfig::load(None, &[]).map_err(|e| e.to_string())?;
    let credentials =
        alluxio_common::auth::Credentials::for_client(&config).map_err(|e| e.to_string())?;
    let master =
        MasterClient::connect_lazy(&args.master, credentials.clone()).map_err(|e| e.to_string())?;

    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(CsiMetrics::register(&mut registry));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || alluxio_common::server::wait_for_shutdown(stop_rx.clone());
    let web = tokio::net::TcpListener::bind(&args.metrics_address)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.metrics_address))?;
    let router = alluxio_common::http::status_router(
        Arc::new(Mutex::new(registry)),
        Arc::new(AtomicBool::new(true)),
        None,
    );
    tokio::spawn(alluxio_common::http::serve(web, router, stopped()));

    let controller = args.mode != Mode::Node;
    let mut routes = tonic::service::Routes::new(IdentityServer::new(IdentityService {
        master: master.clone(),
        controller,
    }));
    if controller {
        routes = routes.add_service(ControllerServer::new(ControllerService::new(
            &args.master,
            &args.volume_root,
            &args.records_root,
            credentials,
        )));
    }
    if args.mode != Mode::Controller {
        if args.node_id.is_empty() {
            return Err("--node-id (or NODE_NAME) is required in node mode".into());
        }
        let daemons = Arc::new(
            FuseDaemons::open(&args.alluxio, &args.state_dir)
                .map_err(|e| format!("cannot open {}: {e}", args.state_dir.display()))?,
        );
        routes = routes.add_service(NodeServer::new(NodeService {
            node_id: args.node_id.clone(),
            master: args.master.clone(),
            allowed_roots: args.allowed_roots.clone(),
            daemons: daemons.clone(),
            metrics: metrics.clone(),
        }));
        // Adopt, then keep checking the daemons.
        let (daemons, metrics, stop) = (daemons, metrics.clone(), stopped());
        tokio::spawn(async move {
            tokio::pin!(stop);
            loop {
                daemons.check_all(&metrics).await;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = &mut stop => break,
                }
            }
        });
    }
    let signal = alluxio_common::server::wait_for_signal();
    tokio::spawn(async move {
        signal.await;
        tracing::info!("signal received; the FUSE daemons keep running");
        let _ = stop_tx.send(true);
    });
    tracing::info!(endpoint = args.endpoint, "serving CSI");
    alluxio_csi::server::serve(listener, routes, stopped())
        .await
        .map_err(|e| e.to_string())
}
