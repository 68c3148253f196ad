//! Pieces every alluxio-rs component shares: configuration (`alluxio.yaml`),
//! validated Alluxio paths, the error type and its gRPC mapping, the
//! Prometheus registry with the status HTTP server, formatting helpers and
//! tracing setup. Nothing here knows about a particular component.

pub mod auth;
pub mod block_id;
pub mod block_source;
pub mod config;
pub mod conn_limit;
pub mod data_protocol;
pub mod error;
pub mod format;
pub mod http;
pub mod io;
pub mod load_shed;
pub mod mapped;
pub mod path;
pub mod rpc;
pub mod server;
pub mod tls;
pub mod units;
pub mod users;

pub use error::{AlluxioError, Result};
pub use path::AlluxioPath;

/// Version string reported by every process.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Installs the global tracing subscriber: structured logs on stderr,
/// filtered by `RUST_LOG` (default `info`). Safe to call more than once.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .try_init();
}
