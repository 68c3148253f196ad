//! gRPC server plumbing shared by the master and the workers.

/// Incoming connections for a tonic server with TCP_NODELAY set: without
/// it, small responses wait for the peer's delayed ACK (about 40 ms each).
pub fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}
