//! The worker's data port: cached block bytes over plain TCP (the format is
//! `alluxio_common::data_protocol`). gRPC stays the way to read blocks this
//! worker does not hold (read-through from the UFS); this port only serves
//! what is cached, verified chunk by chunk, written to the socket straight
//! from the mapped block file.
//!
//! Bad input costs only its own connection: a request that is not ours
//! gets a BAD_REQUEST answer and the connection is closed; a connection that
//! sends nothing for a minute is closed. With authentication on, nothing is
//! read for a connection that has not presented a valid token first.
//!
//! Bounded: at most `worker.data_port_max_connections` connections at once
//! (the next ones are answered BUSY and closed), and a reader that takes no
//! bytes for `worker.data_port_write_timeout` is dropped, so a stalled
//! client holds neither a connection nor the worker's buffers for long.

use crate::block_store::{BlockStore, StoreError};
use crate::metrics::WorkerMetrics;
use alluxio_common::auth::{Authenticator, Identity, Role, MAX_TOKEN_LEN};
use alluxio_common::data_protocol::{
    AnswerHeader, ReadRequest, Request, Status, CAPABILITIES_PER_CONNECTION, REQUEST_LEN,
};
use bytes::Bytes;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Bytes mapped, verified and written at a time; the next window is
/// mapped and verified while one is written.
const WINDOW: u64 = 4 << 20;
/// A connection that sends no request for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What bounds a data port.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub write_timeout: Duration,
}

/// Serves connections until `stop` completes, then drops them.
pub async fn serve(
    listener: TcpListener,
    store: BlockStore,
    metrics: Arc<WorkerMetrics>,
    auth: Authenticator,
    limits: Limits,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((mut stream, _)) if connections.len() >= limits.max_connections => {
                    // Said and closed off the accept loop, within a bound.
                    tokio::spawn(async move {
                        let busy = answer_error(&mut stream, Status::Busy, "too many data-port connections; read over gRPC");
                        let _ = tokio::time::timeout(Duration::from_secs(1), busy).await;
                    });
                }
                Ok((stream, _)) => {
                    let (store, metrics, auth) = (store.clone(), metrics.clone(), auth.clone());
                    connections.spawn(serve_connection(stream, store, metrics, auth, limits.write_timeout));
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

async fn serve_connection(
    mut stream: TcpStream,
    store: BlockStore,
    metrics: Arc<WorkerMetrics>,
    auth: Authenticator,
    write_timeout: Duration,
) {
    let _ = stream.set_nodelay(true);
    // NOSASL: every connection is trusted from the start.
    let mut caller: Option<Identity> = auth.key().is_none().then(Identity::unchecked);
    // Files whose capabilities this connection presented.
    let mut files: HashSet<u64> = HashSet::new();
    loop {
        let mut raw = [0u8; REQUEST_LEN];
        match tokio::time::timeout(IDLE_TIMEOUT, stream.read_exact(&mut raw)).await {
            Ok(Ok(_)) => {}
            // Closed by the client, broken, or idle.
            _ => return,
        }
        let request = match Request::decode(&raw) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "data port: refused a request");
                let _ = answer_error(&mut stream, Status::BadRequest, &e.to_string()).await;
                return;
            }
        };
        match request {
            Request::Authenticate { token_len } => {
                match authenticate(&mut stream, &auth, token_len).await {
                    Ok(identity) => {
                        caller = Some(identity);
                        let ok = AnswerHeader {
                            status: Status::Ok,
                            length: 0,
                        };
                        if stream.write_all(&ok.encode()).await.is_err() {
                            return;
                        }
                    }
                    Err(reason) => {
                        tracing::debug!(reason, "data port: authentication refused");
                        let _ = answer_error(&mut stream, Status::Unauthenticated, &reason).await;
                        return;
                    }
                }
            }
            Request::Capability { file_id, len } => {
                let checked = match (&caller, auth.key()) {
                    (Some(_), Some(key)) => read_credential(&mut stream, len, "capability")
                        .await
                        .and_then(|cap| {
                            key.verify_capability(&cap, file_id)
                                .map_err(|e| e.to_string())
                        }),
                    (Some(_), None) => Ok(()), // NOSASL: nothing to check.
                    (None, _) => Err("authenticate first".to_string()),
                };
                if let Err(reason) = checked {
                    let _ = answer_error(&mut stream, Status::Forbidden, &reason).await;
                    return;
                }
                if files.len() >= CAPABILITIES_PER_CONNECTION {
                    files.clear();
                }
                files.insert(file_id);
                let ok = AnswerHeader {
                    status: Status::Ok,
                    length: 0,
                };
                if stream.write_all(&ok.encode()).await.is_err() {
                    return;
                }
            }
            Request::Read(read) => {
                let reason = match &caller {
                    None => Some("authenticate before reading".to_string()),
                    Some(who) if who.is_expired() => Some("token expired".to_string()),
                    Some(_) => None,
                };
                if let Some(reason) = reason {
                    let _ = answer_error(&mut stream, Status::Unauthenticated, &reason).await;
                    return;
                }
                let file_id = alluxio_common::block_id::file_id_of_block(read.block_id);
                let needs_capability = auth.key().is_some()
                    && !caller
                        .as_ref()
                        .is_some_and(|who| matches!(who.role, Role::Worker | Role::Admin));
                if needs_capability && !files.contains(&file_id) {
                    let reason = format!("present file {file_id}'s capability before reading it");
                    let _ = answer_error(&mut stream, Status::Forbidden, &reason).await;
                    return;
                }
                let served = serve_read(&mut stream, &store, &metrics, read, write_timeout);
                if served.await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Reads the `len` bytes of text (a token, a capability: `what`) that
/// follow a request. An oversized length is refused before anything is
/// read.
async fn read_credential(stream: &mut TcpStream, len: u64, what: &str) -> Result<String, String> {
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

/// Reads the token that follows an authenticate request and checks it.
async fn authenticate(
    stream: &mut TcpStream,
    auth: &Authenticator,
    token_len: u64,
) -> Result<Identity, String> {
    let token = read_credential(stream, token_len, "token").await?;
    auth.check(Some(&token)).map_err(|e| e.to_string())
}

/// Answers one read. An error means the connection cannot carry another
/// request (the socket failed, or the answer was cut short on damage).
async fn serve_read(
    stream: &mut TcpStream,
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
    let read = |pos: u64| {
        let (store, id, n) = (store.clone(), r.block_id, WINDOW.min(end - pos));
        tokio::task::spawn_blocking(move || store.read(id, pos, n))
    };
    let first = if r.offset < end {
        Some(read(r.offset).await)
    } else {
        None
    };
    // Problems with the first window still get a proper answer.
    let first = match first {
        None => Bytes::new(),
        Some(Ok(Ok(bytes))) => bytes,
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
    let mut current = first;
    while !current.is_empty() {
        pos += current.len() as u64;
        let next = (pos < end).then(|| read(pos));
        write_within(stream, &current, write_timeout).await?;
        metrics.bytes_read_cache.inc_by(current.len() as u64);
        metrics.bytes_read_data_port.inc_by(current.len() as u64);
        current = match next {
            None => Bytes::new(),
            Some(pending) => match pending.await {
                Ok(Ok(bytes)) => bytes,
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
    Ok(())
}

/// Writes `bytes`, failing if the reader takes none of them for `timeout`
/// (a stalled reader must not hold the connection).
async fn write_within(
    stream: &mut TcpStream,
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

async fn answer_error(stream: &mut TcpStream, status: Status, reason: &str) -> std::io::Result<()> {
    let header = AnswerHeader {
        status,
        length: reason.len() as u64,
    };
    stream.write_all(&header.encode()).await?;
    stream.write_all(reason.as_bytes()).await
}
