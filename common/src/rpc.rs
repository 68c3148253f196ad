//! gRPC settings every client and server of the project shares, so that
//! every wait has a bound: a connect timeout, a deadline per call (sent to
//! the server as `grpc-timeout`), HTTP/2 keepalive pings and TCP
//! keepalives that notice a peer that went away without closing, and
//! explicit message size limits.
//!
//! The per-call deadline is `user.rpc_timeout` (default 2 min: long enough
//! for a worker to fetch a 64 MiB block from a slow store, short enough
//! that a hung master or worker turns into an error); a process sets it
//! once from its configuration with [`set_call_timeout`]. A deadline bounds
//! a call until its response starts; a streamed response is bounded by
//! the keepalives and the data-path timeouts after that.

use crate::tls::{ClientTls, Protocol};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint, Server};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Interval of HTTP/2 pings on an idle or busy connection, and how long an
/// answer may take before the connection is given up.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// Largest message a master service decodes (a ListStatus batch, a
/// registration). Worker registrations larger than this are refused,
/// until registration is paged (issue 12).
pub const MASTER_MAX_MESSAGE: usize = 64 << 20;
/// Largest message a worker service decodes (block data comes in 1 MiB
/// messages).
pub const WORKER_MAX_MESSAGE: usize = 64 << 20;
/// Concurrent calls per connection a server serves; more wait for a slot
/// in the client's HTTP/2 flow control instead of piling up on the server.
pub const MAX_CONCURRENT_STREAMS: u32 = 1024;

/// gRPC metadata with which a master that is not the leader of its Raft
/// group names the leader's client address (clients go there next).
pub const LEADER_HEADER: &str = "x-alluxio-leader";

/// How long a client of several masters keeps trying others (and
/// following NotLeader hints) before a call fails; `user.rpc_retry_timeout`.
static FAILOVER_TIMEOUT_MS: AtomicU64 = AtomicU64::new(30_000);

pub fn set_failover_timeout(timeout: Duration) {
    let ms = timeout.as_millis().clamp(1, u64::MAX as u128) as u64;
    FAILOVER_TIMEOUT_MS.store(ms, Ordering::Relaxed);
}

pub fn failover_timeout() -> Duration {
    Duration::from_millis(FAILOVER_TIMEOUT_MS.load(Ordering::Relaxed))
}

static CALL_TIMEOUT_MS: AtomicU64 = AtomicU64::new(DEFAULT_CALL_TIMEOUT.as_millis() as u64);

/// Sets the deadline of every call made from now on by this process.
pub fn set_call_timeout(timeout: Duration) {
    let ms = timeout.as_millis().clamp(1, u64::MAX as u128) as u64;
    CALL_TIMEOUT_MS.store(ms, Ordering::Relaxed);
}

pub fn call_timeout() -> Duration {
    Duration::from_millis(CALL_TIMEOUT_MS.load(Ordering::Relaxed))
}

/// An endpoint for `http://{address}` with the bounds above.
pub fn endpoint(address: &str) -> Result<Endpoint, String> {
    let endpoint = Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| format!("invalid address {address:?}: {e}"))?;
    Ok(endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(call_timeout())
        .tcp_nodelay(true)
        .tcp_keepalive(Some(TCP_KEEPALIVE))
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true))
}

/// A channel through `endpoint`, connecting on its first call: over TLS
/// when `tls` is given (what `security.tls.*` says), plain otherwise.
pub fn connect_lazy(endpoint: &Endpoint, tls: Option<&ClientTls>) -> Channel {
    match tls {
        None => endpoint.connect_lazy(),
        Some(tls) => endpoint.connect_with_connector_lazy(tls_connector(tls.clone())),
    }
}

/// Like [`connect_lazy`], connecting now.
pub async fn connect(
    endpoint: &Endpoint,
    tls: Option<&ClientTls>,
) -> Result<Channel, tonic::transport::Error> {
    match tls {
        None => endpoint.connect().await,
        Some(tls) => {
            endpoint
                .connect_with_connector(tls_connector(tls.clone()))
                .await
        }
    }
}

/// Dials the endpoint's `host:port` and shakes hands. The endpoint stays
/// `http://`: this connector, not tonic, does the TLS, so it can follow
/// a reloaded CA file.
fn tls_connector(
    tls: ClientTls,
) -> impl tower::Service<
    http::Uri,
    Response = hyper_util::rt::TokioIo<crate::tls::MaybeTls>,
    Error = std::io::Error,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    tower::service_fn(move |uri: http::Uri| {
        let tls = tls.clone();
        async move {
            let authority = uri.authority().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "no host:port to dial")
            })?;
            let stream = tls.connect(authority.as_str(), Protocol::Grpc).await?;
            Ok(hyper_util::rt::TokioIo::new(stream))
        }
    })
}

/// What every connection of ours gets: no Nagle delay (small answers
/// would wait for the peer's delayed ACK), and TCP keepalives that notice
/// a peer gone without a word.
pub fn tune_socket(tcp: &tokio::net::TcpStream) -> std::io::Result<()> {
    tcp.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
    socket2::SockRef::from(tcp).set_tcp_keepalive(&keepalive)
}

/// A server builder with keepalives and a bound on concurrent calls per
/// connection.
pub fn server() -> Server {
    Server::builder()
        .tcp_keepalive(Some(TCP_KEEPALIVE))
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .max_concurrent_streams(Some(MAX_CONCURRENT_STREAMS))
}
