//! `alluxio-operator`: `run` is the controller process (leader election,
//! the AlluxioCluster and Mount controllers, `/metrics`, `/healthz` and
//! `/readyz`); `crds` writes the CustomResourceDefinitions generated from
//! the Rust types.

use alluxio_operator::controller::{run::controllers, Context};
use alluxio_operator::crd::{AlluxioCluster, ClusterPhase};
use alluxio_operator::leader::LeaderElector;
use alluxio_operator::metrics::Metrics;
use clap::{Parser, Subcommand};
use kube::runtime::reflector::Store;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Parser)]
#[command(
    name = "alluxio-operator",
    version,
    about = "The alluxio-rs Kubernetes operator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers (with leader election) until SIGTERM.
    Run(RunArgs),
    /// Write the CRDs as YAML files into a directory (or to stdout).
    Crds {
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_address: String,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long)]
    namespace: Option<String>,
    /// Namespace of the leader Lease (default: the pod's namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    #[arg(long, default_value = "alluxio-operator")]
    lease_name: String,
    /// This replica's name in the Lease (default: the pod name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Server-side apply field manager.
    #[arg(long, default_value = "alluxio-operator")]
    field_manager: String,
}

fn main() {
    match Cli::parse().command {
        Command::Crds { out } => write_crds(out),
        Command::Run(args) => {
            alluxio_common::init_tracing();
            let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
            let code = runtime.block_on(run(args)).unwrap_or_else(|e| {
                tracing::error!("{e}");
                eprintln!("Error: {e}");
                1
            });
            std::process::exit(code);
        }
    }
}

/// Runs until SIGTERM (exit 0) or until leadership is lost (exit 1, so
/// the pod restarts as a fresh candidate).
async fn run(args: RunArgs) -> Result<i32, String> {
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("cannot configure the Kubernetes client: {e}"))?;
    let registry = Arc::new(Mutex::new(prometheus_client::registry::Registry::default()));
    let metrics = Metrics::register(&mut registry.lock().expect("fresh registry"));
    let ready = Arc::new(AtomicBool::new(false));
    let store: Arc<Mutex<Option<Store<AlluxioCluster>>>> = Arc::new(Mutex::new(None));
    let scrape_hook = {
        let (metrics, store) = (metrics.clone(), store.clone());
        Arc::new(move || {
            let guard = store.lock().unwrap_or_else(|e| e.into_inner());
            let Some(clusters) = guard.as_ref() else {
                return;
            };
            let state = clusters.state();
            metrics.set_cluster_phases(state.iter().map(|c| {
                c.status
                    .as_ref()
                    .and_then(|s| s.phase)
                    .unwrap_or(ClusterPhase::Pending)
                    .as_str()
            }));
        })
    };
    let router = alluxio_common::http::status_router(registry, ready.clone(), Some(scrape_hook));
    let listener = tokio::net::TcpListener::bind(&args.metrics_address)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.metrics_address))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = {
        let rx = stop_rx.clone();
        move || alluxio_common::server::wait_for_shutdown(rx.clone())
    };
    tokio::spawn(alluxio_common::http::serve(listener, router, stopped()));
    let signal = alluxio_common::server::wait_for_signal();
    tokio::spawn(async move {
        signal.await;
        tracing::info!("signal received; shutting down");
        let _ = stop_tx.send(true);
    });

    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let elector = LeaderElector::new(
        client.clone(),
        &args.lease_namespace,
        &args.lease_name,
        &identity,
    );
    tokio::select! {
        _ = elector.acquire(|| ready.store(true, Ordering::Release)) => {}
        _ = stopped() => return Ok(0),
    }
    metrics.leader.set(1);
    let cx = Arc::new(Context::new(client, &args.field_manager, metrics.clone()));
    let (leadership_lost_tx, leadership_lost_rx) = tokio::sync::watch::channel(false);
    let shutdown = {
        let (stop, lost) = (stop_rx.clone(), leadership_lost_rx);
        async move {
            tokio::select! {
                _ = alluxio_common::server::wait_for_shutdown(stop) => {}
                _ = alluxio_common::server::wait_for_shutdown(lost) => {}
            }
        }
    };
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let (cluster_store, running) = controllers(cx, args.namespace.as_deref(), shutdown);
    *store.lock().unwrap_or_else(|e| e.into_inner()) = Some(cluster_store);
    let lost = tokio::select! {
        _ = running => false,
        _ = elector.hold() => {
            let _ = leadership_lost_tx.send(true);
            true
        }
    };
    metrics.leader.set(0);
    if lost {
        return Ok(1);
    }
    elector.release().await;
    tracing::info!("stopped");
    Ok(0)
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "alluxio-operator".into());
    format!("{host}-{}", std::process::id())
}

fn write_crds(out: Option<PathBuf>) {
    for (name, yaml) in alluxio_operator::crd::crd_files() {
        match &out {
            Some(dir) => {
                let path = dir.join(name);
                if let Err(e) =
                    std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&path, &yaml))
                {
                    eprintln!("Error: cannot write {}: {e}", path.display());
                    std::process::exit(1);
                }
            }
            None => print!("---\n{yaml}"),
        }
    }
}
