//! A cap on the connections of a gRPC listener. Every connection costs a
//! file descriptor, buffers and an HTTP/2 state machine even while idle,
//! so a server that accepts without bound can be made to run out of them
//! by anyone who can reach its port. Past the cap a new connection is
//! accepted and closed at once: the client sees a reset right away (and
//! tries another server or backs off) instead of waiting in the kernel's
//! backlog with no answer.
//!
//! With TLS, each accepted connection shakes hands in its own task (a
//! peer that stalls its handshake holds only its own slot, for at most
//! `tls::HANDSHAKE_TIMEOUT`), and the server sees it once that is done.

use crate::tls::{MaybeTls, Protocol, ServerTls};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

/// Open and refused connections of one listener, as Prometheus metrics.
#[derive(Debug, Default)]
pub struct ConnectionCounts {
    pub open: Gauge,
    pub refused: Counter,
}

impl ConnectionCounts {
    /// Registers `{prefix}_connections` and `{prefix}_connections_refused`.
    pub fn register(&self, registry: &mut Registry, prefix: &str) {
        registry.register(
            format!("{prefix}_connections"),
            "open gRPC connections",
            self.open.clone(),
        );
        registry.register(
            format!("{prefix}_connections_refused"),
            "gRPC connections closed at once: the server was at max_connections",
            self.refused.clone(),
        );
    }
}

/// The accepted connections of `listener` (with TCP_NODELAY: without it,
/// small responses wait for the peer's delayed ACK, about 40 ms each), at
/// most `max_connections` open at once (0: no cap), under TLS when `tls`
/// is given.
pub fn limited_incoming(
    listener: TcpListener,
    max_connections: usize,
    counts: Arc<ConnectionCounts>,
    tls: Option<ServerTls>,
) -> Pin<Box<dyn Stream<Item = io::Result<LimitedConnection>> + Send + 'static>> {
    let accepted = accepted_within_cap(listener, max_connections, counts);
    match tls {
        None => Box::pin(accepted),
        Some(tls) => Box::pin(after_handshakes(accepted, tls)),
    }
}

fn accepted_within_cap(
    listener: TcpListener,
    max_connections: usize,
    counts: Arc<ConnectionCounts>,
) -> impl Stream<Item = io::Result<LimitedConnection>> + Send + 'static {
    let cap = (max_connections > 0).then(|| Arc::new(Semaphore::new(max_connections)));
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .filter_map(move |accepted| {
            let stream = match accepted {
                Ok(stream) => stream,
                Err(e) => return Some(Err(e)),
            };
            let permit = match &cap {
                None => None,
                Some(cap) => match cap.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => {
                        counts.refused.inc();
                        tracing::debug!(
                            peer = ?stream.peer_addr().ok(),
                            max_connections,
                            "connection refused: at max_connections"
                        );
                        return None;
                    }
                },
            };
            counts.open.inc();
            Some(Ok(LimitedConnection {
                stream: MaybeTls::Plain(stream),
                slot: Slot {
                    _permit: permit,
                    counts: counts.clone(),
                },
            }))
        })
}

/// The connections of `accepted` once their TLS handshake is done; those
/// whose handshake fails or stalls are dropped (with their slot). Stops
/// accepting when the server drops this stream.
fn after_handshakes(
    accepted: impl Stream<Item = io::Result<LimitedConnection>> + Send + 'static,
    tls: ServerTls,
) -> impl Stream<Item = io::Result<LimitedConnection>> + Send + 'static {
    let (ready, incoming) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        tokio::pin!(accepted);
        loop {
            let next = tokio::select! {
                () = ready.closed() => return,
                next = accepted.next() => next,
            };
            let connection = match next {
                None => return,
                Some(Err(e)) => {
                    if ready.send(Err(e)).await.is_err() {
                        return;
                    }
                    continue;
                }
                Some(Ok(connection)) => connection,
            };
            let (tls, ready) = (tls.clone(), ready.clone());
            tokio::spawn(async move {
                let LimitedConnection { stream, slot } = connection;
                let MaybeTls::Plain(tcp) = stream else {
                    return;
                };
                let peer = tcp.peer_addr().ok();
                match tls.accept(tcp, Protocol::Grpc).await {
                    Ok(stream) => {
                        let _ = ready.send(Ok(LimitedConnection { stream, slot })).await;
                    }
                    Err(e) => tracing::debug!(?peer, error = %e, "TLS handshake failed"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(incoming)
}

/// A connection that frees its place under the cap when it closes.
pub struct LimitedConnection {
    stream: MaybeTls,
    slot: Slot,
}

/// A place under the cap, and in the count of open connections.
struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
    counts: Arc<ConnectionCounts>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.counts.open.dec();
    }
}

impl Connected for LimitedConnection {
    /// The peer's address, as a plain TCP connection gives it (so
    /// `Request::remote_addr` keeps working).
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.tcp().connect_info()
    }
}

impl AsyncRead for LimitedConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;

    #[tokio::test]
    async fn connections_past_the_cap_are_closed_and_room_comes_back() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(ConnectionCounts::default());
        let mut incoming = limited_incoming(listener, 2, counts.clone(), None);
        let _a = TcpStream::connect(addr).await.unwrap();
        let first = incoming.next().await.unwrap().unwrap();
        let _b = TcpStream::connect(addr).await.unwrap();
        let _second = incoming.next().await.unwrap().unwrap();
        assert_eq!(counts.open.get(), 2);

        // The third is closed by the server without a word.
        let mut c = TcpStream::connect(addr).await.unwrap();
        let next = incoming.next();
        tokio::pin!(next);
        let mut byte = [0u8; 1];
        tokio::select! {
            _ = &mut next => panic!("a third connection was let in"),
            read = c.read(&mut byte) => assert!(matches!(read, Ok(0) | Err(_))),
        }
        assert_eq!(counts.refused.get(), 1);

        // A closed connection makes room for the next one.
        drop(first);
        assert_eq!(counts.open.get(), 1);
        let _d = TcpStream::connect(addr).await.unwrap();
        let fourth = next.await.unwrap().unwrap();
        assert!(fourth.connect_info().remote_addr().is_some());
        assert_eq!(counts.open.get(), 2);
    }
}
