//! Server plumbing shared by the master and the workers: binding with a
//! clear error, gRPC incoming connections, and the shutdown signal.

use tokio::sync::watch;

/// Binds `host:port`; the error names the address.
pub async fn bind(
    host: &str,
    port: u16,
) -> Result<tokio::net::TcpListener, (String, std::io::Error)> {
    let addr = format!("{host}:{port}");
    tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| (addr, e))
}

/// Incoming connections for a tonic server with TCP_NODELAY set: without
/// it, small responses wait for the peer's delayed ACK (about 40 ms each).
pub fn grpc_incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Resolves once the shutdown flag turns true (or its sender is gone).
pub async fn wait_for_shutdown(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
