//! The worker's data port: cached block bytes over TCP, under TLS when
//! `security.tls.enabled` (the format is `alluxio_common::data_protocol`).
//! gRPC stays the way to read blocks this worker does not hold
//! (read-through from the UFS); this port only serves what is cached,
//! verified chunk by chunk, written to the socket straight from the mapped
//! block file.
//!
//! Bad input costs only its own connection: a request that is not ours
//! gets a BAD_REQUEST answer and the connection is closed; a connection that
//! sends nothing for a minute is closed. With authentication on, nothing is
//! read for a connection that has not presented a valid token first.
//!
//! Bounded: at most `worker.data_port_max_connections` connections at once
//! (the next ones are answered BUSY and closed; under TLS, closed), and a
//! reader that takes no bytes for `worker.data_port_write_timeout` is
//! dropped, so a stalled client holds neither a connection nor the
//! worker's buffers for long.

use crate::block_store::{BlockStore, StoreError};
use crate::metrics::WorkerMetrics;
use alluxio_common::auth::{Authenticator, Identity, Role, MAX_TOKEN_LEN};
use alluxio_common::data_protocol::{
    frame_crc, AnswerHeader, ReadRequest, Request, Status, CAPABILITIES_PER_CONNECTION, FRAME_LEN,
    REQUEST_LEN,
};
use alluxio_common::tls::{MaybeTls, Protocol, ServerTls};
use bytes::Bytes;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Bytes mapped, verified and written at a time; the next window is
/// mapped and verified while one is written.
const WINDOW: u64 = 4 << 20;
// Frames are counted from the start of an answer: every window but the
// last must be whole frames.
const _: () = assert!(WINDOW.is_multiple_of(FRAME_LEN as u64));
/// A connection that sends no request for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What bounds a data port.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub write_timeout: Duration,
}

/// What a data port serves from, and how.
pub struct DataPort {
    pub store: BlockStore,
    pub metrics: Arc<WorkerMetrics>,
    pub auth: Authenticator,
    pub limits: Limits,
    /// TLS on every connection when given.
    pub tls: Option<ServerTls>,
}

/// Serves connections until `stop` completes, then drops them.
pub async fn serve(
    listener: TcpListener,
    port: DataPort,
    stop: impl std::future::Future<Output = ()>,
) {
    let DataPort {
        store,
        metrics,
        auth,
        limits,
        tls,
    } = port;
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((_, _)) if connections.len() >= limits.max_connections && tls.is_some() => {
                    // Closed: a plain answer would not be TLS.
                }
                Ok((stream, _)) if connections.len() >= limits.max_connections => {
                    // Said and closed off the accept loop, within a bound.
                    let mut stream = MaybeTls::Plain(stream);
                    tokio::spawn(async move {
                        let busy = answer_error(&mut stream, Status::Busy, "too many data-port connections; read over gRPC");
                        let _ = tokio::time::timeout(Duration::from_secs(1), busy).await;
                    });
                }
                Ok((stream, _)) => {
                    let (store, metrics, auth, tls) = (store.clone(), metrics.clone(), auth.clone(), tls.clone());
                    connections.spawn(async move {
                        let _ = alluxio_common::rpc::tune_socket(&stream);
                        let stream = match tls {
                            None => MaybeTls::Plain(stream),
                            Some(tls) => match tls.accept(stream, Protocol::DataPort).await {
                                Ok(stream) => stream,
                                Err(e) => {
                                    tracing::debug!(error = %e, "data port: TLS handshake failed");
                                    return;
                                }
                            },
                        };
                        serve_connection(stream, store, metrics, auth, limits.write_timeout).await
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "data port: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut stop => break,
        }
    }
    connections.shutdown().await;
}

/// What one connection has proved: who is calling, and for which files it
/// presented capabilities.
struct Session {
    auth: Authenticator,
    /// None until a valid token (NOSASL: trusted from the start).
    caller: Option<Identity>,
    files: HashSet<u64>,
}

/// A refusal: its status and reason, after which the connection closes.
type Refusal = (Status, String);

impl Session {
    fn new(auth: Authenticator) -> Self {
        Session {
            caller: auth.key().is_none().then(Identity::unchecked),
            auth,
            files: HashSet::new(),
        }
    }

    async fn authenticate(&mut self, stream: &mut MaybeTls, token_len: u64) -> Result<(), Refusal> {
        let token = read_credential(stream, token_len, "token")
            .await
            .map_err(|reason| (Status::Unauthenticated, reason))?;
        let identity = self
            .auth
            .check(Some(&token))
            .map_err(|e| (Status::Unauthenticated, e.to_string()))?;
        self.caller = Some(identity);
        Ok(())
    }

    async fn present(
        &mut self,
        stream: &mut MaybeTls,
        file_id: u64,
        len: u64,
    ) -> Result<(), Refusal> {
        let forbidden = |reason: String| (Status::Forbidden, reason);
        if self.caller.is_none() {
            return Err(forbidden("authenticate first".to_string()));
        }
        let capability = read_credential(stream, len, "capability")
            .await
            .map_err(forbidden)?;
        if let Some(key) = self.auth.key() {
            key.verify_capability(&capability, file_id)
                .map_err(|e| forbidden(e.to_string()))?;
        }
        // The client keeps the same set by the same rule.
        if self.files.len() >= CAPABILITIES_PER_CONNECTION {
            self.files.clear();
        }
        self.files.insert(file_id);
        Ok(())
    }

    /// Whether this connection may read `block_id`: a valid, unexpired
    /// token, and the capability of its file unless the caller is a
    /// service.
    fn may_read(&self, block_id: u64) -> Result<(), Refusal> {
        let unauthenticated = |reason: &str| (Status::Unauthenticated, reason.to_string());
        let who = self
            .caller
            .as_ref()
            .ok_or_else(|| unauthenticated("authenticate before reading"))?;
        if who.is_expired() {
            return Err(unauthenticated("token expired"));
        }
        let file_id = alluxio_common::block_id::file_id_of_block(block_id);
        let service = matches!(who.role, Role::Worker | Role::Admin);
        if self.auth.key().is_some() && !service && !self.files.contains(&file_id) {
            return Err((
                Status::Forbidden,
                format!("present file {file_id}'s capability before reading it"),
            ));
        }
        Ok(())
    }
}

async fn serve_connection(
    mut stream: MaybeTls,
    store: BlockStore,
    metrics: Arc<WorkerMetrics>,
    auth: Authenticator,
    write_timeout: Duration,
) {
    let mut session = Session::new(auth);
    loop {
        let mut raw = [0u8; REQUEST_LEN];
        match tokio::time::timeout(IDLE_TIMEOUT, stream.read_exact(&mut raw)).await {
            Ok(Ok(_)) => {}
            // Closed by the client, broken, or idle.
            _ => return,
        }
        let outcome = match Request::decode(&raw) {
            Err(e) => Err((Status::BadRequest, e.to_string())),
            Ok(Request::Authenticate { token_len }) => {
                session.authenticate(&mut stream, token_len).await
            }
            Ok(Request::Capability { file_id, len }) => {
                session.present(&mut stream, file_id, len).await
            }
            Ok(Request::Read(read)) => match session.may_read(read.block_id) {
                Err(refusal) => Err(refusal),
                Ok(()) => {
                    let served = serve_read(&mut stream, &store, &metrics, read, write_timeout);
                    if served.await.is_err() {
                        return;
                    }
                    continue;
                }
            },
        };
        let answered = match outcome {
            // Authenticated, or the capability taken: an empty OK.
            Ok(()) => {
                let ok = AnswerHeader {
                    status: Status::Ok,
                    length: 0,
                };
                send(&mut stream, &ok.encode()).await.is_ok()
            }
            Err((status, reason)) => {
                tracing::debug!(?status, reason, "data port: refused a request");
                let _ = answer_error(&mut stream, status, &reason).await;
                false
            }
        };
        if !answered {
            return;
        }
    }
}

/// Reads the `len` bytes of text (a token, a capability: `what`) that
/// follow a request. An oversized length is refused before anything is
/// read.
async fn read_credential(stream: &mut MaybeTls, len: u64, what: &str) -> Result<String, String> {
    if len == 0 || len > MAX_TOKEN_LEN as u64 {
        return Err(format!(
            "{what} length {len} is outside 1..={MAX_TOKEN_LEN}"
        ));
    }
    let mut bytes = vec![0u8; len as usize];
    match tokio::time::timeout(IDLE_TIMEOUT, stream.read_exact(&mut bytes)).await {
        Ok(Ok(_)) => {}
        _ => return Err(format!("{what} cut short")),
    }
    String::from_utf8(bytes).map_err(|_| format!("{what} is not UTF-8"))
}

/// Answers one read. An error means the connection cannot carry another
/// request (the socket failed, or the answer was cut short on damage).
async fn serve_read(
    stream: &mut MaybeTls,
    store: &BlockStore,
    metrics: &WorkerMetrics,
    r: ReadRequest,
    write_timeout: Duration,
) -> std::io::Result<()> {
    let Some(block_length) = store.length(r.block_id) else {
        let reason = format!("block {} is not cached here", r.block_id);
        return answer_error(stream, Status::NotCached, &reason).await;
    };
    let end = r.offset.saturating_add(r.length).min(block_length);
    // A window of the block and the checksums of its frames, computed off
    // the async threads (windows are whole frames but for the last).
    let read = |pos: u64| {
        let (store, id, n) = (store.clone(), r.block_id, WINDOW.min(end - pos));
        tokio::task::spawn_blocking(move || {
            store.read(id, pos, n).map(|bytes| {
                let crcs: Vec<_> = bytes.chunks(FRAME_LEN).map(frame_crc).collect();
                (bytes, crcs)
            })
        })
    };
    let first = if r.offset < end {
        Some(read(r.offset).await)
    } else {
        None
    };
    // Problems with the first window still get a proper answer.
    let first = match first {
        None => (Bytes::new(), Vec::new()),
        Some(Ok(Ok(window))) => window,
        Some(Ok(Err(StoreError::NotCached(_)))) => {
            let reason = format!("block {} is not cached here", r.block_id);
            return answer_error(stream, Status::NotCached, &reason).await;
        }
        Some(Ok(Err(e @ StoreError::Corrupt { .. }))) => {
            return answer_error(stream, Status::Damaged, &e.to_string()).await;
        }
        Some(Ok(Err(e))) => return answer_error(stream, Status::Internal, &e.to_string()).await,
        Some(Err(e)) => return answer_error(stream, Status::Internal, &e.to_string()).await,
    };
    metrics.cache_hits.inc();
    let header = AnswerHeader {
        status: Status::Ok,
        length: end.saturating_sub(r.offset),
    };
    write_within(stream, &header.encode(), write_timeout).await?;
    let mut pos = r.offset;
    let (mut current, mut crcs) = first;
    while !current.is_empty() {
        pos += current.len() as u64;
        let next = (pos < end).then(|| read(pos));
        for (frame, crc) in current.chunks(FRAME_LEN).zip(&crcs) {
            write_within(stream, frame, write_timeout).await?;
            write_within(stream, crc, write_timeout).await?;
        }
        metrics.bytes_read_cache.inc_by(current.len() as u64);
        metrics.bytes_read_data_port.inc_by(current.len() as u64);
        (current, crcs) = match next {
            None => (Bytes::new(), Vec::new()),
            Some(pending) => match pending.await {
                Ok(Ok(window)) => window,
                Ok(Err(e)) => {
                    // Damaged (and dropped) or evicted half-way: cut the
                    // answer short; the client goes to another source.
                    tracing::warn!(block_id = r.block_id, error = %e, "data port: read failed mid-answer");
                    return Err(std::io::Error::other(e.to_string()));
                }
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            },
        };
    }
    tokio::time::timeout(write_timeout, stream.flush())
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "the reader stalled"))?
}

/// Writes `bytes`, failing if the reader takes none of them for `timeout`
/// (a stalled reader must not hold the connection).
async fn write_within(
    stream: &mut MaybeTls,
    bytes: &[u8],
    timeout: Duration,
) -> std::io::Result<()> {
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = tokio::time::timeout(timeout, stream.write(rest))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "the reader stalled")
            })??;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        rest = &rest[n..];
    }
    Ok(())
}

async fn answer_error(stream: &mut MaybeTls, status: Status, reason: &str) -> std::io::Result<()> {
    let header = AnswerHeader {
        status,
        length: reason.len() as u64,
    };
    let mut answer = header.encode().to_vec();
    answer.extend_from_slice(reason.as_bytes());
    send(stream, &answer).await
}

/// Writes a whole message and flushes it (TLS holds written bytes until
/// then).
async fn send(stream: &mut MaybeTls, message: &[u8]) -> std::io::Result<()> {
    stream.write_all(message).await?;
    stream.flush().await
}
