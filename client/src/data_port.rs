//! Reading cached blocks over a worker's data port: TCP (under TLS when the
//! credentials say so) in the format of `alluxio_common::data_protocol`, a
//! few idle connections kept per worker for the next block. Every frame of
//! an answer is checked against its checksum before it is handed on. A new
//! connection presents the client's token first (when it has one), and a
//! connection presents a file's capability before its first read of that
//! file.

use crate::block::Stop;
use alluxio_common::auth::Credentials;
use alluxio_common::data_protocol::{
    frame_crc, AnswerHeader, ReadRequest, Request, Status, ANSWER_HEADER_LEN, FRAME_CRC_LEN,
    FRAME_LEN,
};
use alluxio_common::tls::{MaybeTls, Protocol};
use alluxio_common::{AlluxioError, Result};
use bytes::{Bytes, BytesMut};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Idle connections kept per worker.
const IDLE_PER_WORKER: usize = 4;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the worker may take to start answering (it maps and verifies
/// the first window first) or between two pieces.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest explanation accepted with an error answer.
const MAX_REASON: u64 = 64 << 10;

pub(crate) struct DataConnections {
    idle: Mutex<HashMap<String, Vec<Conn>>>,
    credentials: Credentials,
}

/// A connection, and the files whose capabilities it has presented.
struct Conn {
    stream: MaybeTls,
    files: HashSet<u64>,
}

impl DataConnections {
    pub fn new(credentials: Credentials) -> Self {
        DataConnections {
            idle: Mutex::default(),
            credentials,
        }
    }

    /// Streams `request` from the worker at `address` to `sink`. On a
    /// `Stop::Source` failure the bytes already handed on stay handed on.
    pub async fn read(
        &self,
        address: &str,
        request: ReadRequest,
        capability: &str,
        sink: &mut impl FnMut(Bytes) -> Result<()>,
    ) -> Result<(), Stop> {
        let source = |what: String| Stop::Source(AlluxioError::Unavailable(what));
        let (mut conn, header) = self
            .send(address, request, capability)
            .await
            .map_err(|e| source(format!("data port {address}: {e}")))?;
        let stream = &mut conn.stream;
        if header.status != Status::Ok {
            let reason = read_reason(stream, header.length).await;
            // The connection is still good for another request (the worker
            // closes it after these).
            let closed = matches!(
                header.status,
                Status::BadRequest | Status::Unauthenticated | Status::Forbidden | Status::Busy
            );
            if !closed && !reason.is_empty() {
                self.put_back(address, conn);
            }
            return Err(source(format!(
                "data port {address}: {:?}: {reason}",
                header.status
            )));
        }
        let mut left = header.length;
        while left > 0 {
            // One frame: its data, then its checksum (read together).
            let data_len = FRAME_LEN.min(left as usize);
            let mut frame = BytesMut::with_capacity(data_len + FRAME_CRC_LEN);
            while frame.len() < data_len + FRAME_CRC_LEN {
                let n = tokio::time::timeout(READ_TIMEOUT, stream.read_buf(&mut frame))
                    .await
                    .map_err(|_| source(format!("data port {address}: no data for 30 s")))?
                    .map_err(|e| source(format!("data port {address}: {e}")))?;
                if n == 0 {
                    return Err(source(format!(
                        "data port {address} closed after {} of {} bytes of block {}",
                        header.length - left + frame.len().min(data_len) as u64,
                        header.length,
                        request.block_id
                    )));
                }
            }
            let crc = frame.split_off(data_len);
            if frame_crc(&frame) != crc[..] {
                // Damaged on the way: nothing of this frame is handed on,
                // and the connection is not reused.
                return Err(source(format!(
                    "data port {address}: checksum mismatch in the frame at byte {} of block {}",
                    request.offset + header.length - left,
                    request.block_id
                )));
            }
            left -= data_len as u64;
            sink(frame.freeze()).map_err(Stop::Sink)?;
        }
        self.put_back(address, conn);
        Ok(())
    }

    /// Sends the request on an idle connection (a new one when it turns out
    /// to be closed) and reads the answer's header.
    async fn send(
        &self,
        address: &str,
        request: ReadRequest,
        capability: &str,
    ) -> std::io::Result<(Conn, AnswerHeader)> {
        let file_id = alluxio_common::block_id::file_id_of_block(request.block_id);
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(address)
            .and_then(Vec::pop);
        if let Some(mut conn) = idle {
            // A worker may have closed an idle connection (restart, idle
            // timeout) or its token may have expired: then try once more
            // on a fresh one.
            if present(&mut conn, file_id, capability).await.is_ok() {
                match exchange(conn, request).await {
                    Ok(answer) if answer.1.status != Status::Unauthenticated => return Ok(answer),
                    _ => {}
                }
            }
        }
        let mut stream = self.connect(address).await?;
        self.authenticate(&mut stream).await?;
        let mut conn = Conn {
            stream,
            files: HashSet::new(),
        };
        present(&mut conn, file_id, capability).await?;
        exchange(conn, request).await
    }

    /// A new connection to the data port at `address`, under TLS when
    /// our credentials say so.
    async fn connect(&self, address: &str) -> std::io::Result<MaybeTls> {
        let connect = async {
            match self.credentials.tls() {
                Some(tls) => tls.connect(address, Protocol::DataPort).await,
                None => {
                    let tcp = TcpStream::connect(address).await?;
                    alluxio_common::rpc::tune_socket(&tcp)?;
                    Ok(MaybeTls::Plain(tcp))
                }
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| std::io::Error::other("connect timed out"))?
    }

    /// Presents our token on a new connection; a refusal is an error with
    /// the worker's reason.
    async fn authenticate(&self, stream: &mut MaybeTls) -> std::io::Result<()> {
        let Some(token) = self.credentials.current_token() else {
            return Ok(()); // Anonymous: the worker decides.
        };
        let header = Request::Authenticate {
            token_len: token.len() as u64,
        };
        let mut message = header.encode().to_vec();
        message.extend_from_slice(token.as_bytes());
        send(stream, &message).await?;
        let mut raw = [0u8; ANSWER_HEADER_LEN];
        tokio::time::timeout(READ_TIMEOUT, stream.read_exact(&mut raw))
            .await
            .map_err(|_| std::io::Error::other("no answer to authentication for 30 s"))??;
        let answer = AnswerHeader::decode(&raw).map_err(std::io::Error::other)?;
        if answer.status != Status::Ok {
            let reason = read_reason(stream, answer.length).await;
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("{:?}: {reason}", answer.status),
            ));
        }
        Ok(())
    }

    fn put_back(&self, address: &str, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.entry(address.to_string()).or_default();
        if list.len() < IDLE_PER_WORKER {
            list.push(conn);
        }
    }
}

async fn exchange(mut conn: Conn, request: ReadRequest) -> std::io::Result<(Conn, AnswerHeader)> {
    send(&mut conn.stream, &request.encode()).await?;
    let header = read_header(&mut conn.stream).await?;
    Ok((conn, header))
}

/// Writes a whole message and flushes it (TLS holds written bytes until
/// then).
async fn send(stream: &mut MaybeTls, message: &[u8]) -> std::io::Result<()> {
    stream.write_all(message).await?;
    stream.flush().await
}

async fn read_header(stream: &mut MaybeTls) -> std::io::Result<AnswerHeader> {
    let mut raw = [0u8; ANSWER_HEADER_LEN];
    tokio::time::timeout(READ_TIMEOUT, stream.read_exact(&mut raw))
        .await
        .map_err(|_| std::io::Error::other("no answer for 30 s"))??;
    AnswerHeader::decode(&raw).map_err(std::io::Error::other)
}

/// Presents file `file_id`'s capability on `conn` unless it has already
/// (or there is none: authentication off, or a service's read).
async fn present(conn: &mut Conn, file_id: u64, capability: &str) -> std::io::Result<()> {
    if capability.is_empty() || conn.files.contains(&file_id) {
        return Ok(());
    }
    let header = Request::Capability {
        file_id,
        len: capability.len() as u64,
    };
    let mut message = header.encode().to_vec();
    message.extend_from_slice(capability.as_bytes());
    send(&mut conn.stream, &message).await?;
    let answer = read_header(&mut conn.stream).await?;
    if answer.status != Status::Ok {
        let reason = read_reason(&mut conn.stream, answer.length).await;
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{:?}: {reason}", answer.status),
        ));
    }
    if conn.files.len() >= alluxio_common::data_protocol::CAPABILITIES_PER_CONNECTION {
        conn.files.clear();
    }
    conn.files.insert(file_id);
    Ok(())
}

/// The explanation that follows an error answer; empty when it cannot be
/// read (then the connection is not reused).
async fn read_reason(stream: &mut MaybeTls, length: u64) -> String {
    if length > MAX_REASON {
        return String::new();
    }
    let mut reason = vec![0u8; length as usize];
    match tokio::time::timeout(READ_TIMEOUT, stream.read_exact(&mut reason)).await {
        Ok(Ok(_)) => String::from_utf8_lossy(&reason).into_owned(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alluxio_common::data_protocol::REQUEST_LEN;
    use tokio::net::TcpListener;

    /// A worker's data port that answers one read with `data`, framed and
    /// checksummed, after flipping a bit of byte `damage` (if any) on the
    /// way.
    async fn one_answer(data: Vec<u8>, damage: Option<usize>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut request = [0u8; REQUEST_LEN];
            s.read_exact(&mut request).await.unwrap();
            let header = AnswerHeader {
                status: Status::Ok,
                length: data.len() as u64,
            };
            let mut wire = header.encode().to_vec();
            let mut sent = data.clone();
            if let Some(at) = damage {
                sent[at] ^= 0x10;
            }
            for (frame, sent) in data.chunks(FRAME_LEN).zip(sent.chunks(FRAME_LEN)) {
                wire.extend_from_slice(sent);
                wire.extend_from_slice(&frame_crc(frame));
            }
            s.write_all(&wire).await.unwrap();
            // Keep the connection open until the client is done.
            let _ = s.read(&mut [0u8; 1]).await;
        });
        address
    }

    async fn read_all(address: &str, len: usize) -> (Vec<u8>, Result<(), String>) {
        let connections = DataConnections::new(Credentials::anonymous());
        let request = ReadRequest {
            block_id: 1 << 24,
            offset: 0,
            length: len as u64,
        };
        let mut got = Vec::new();
        let mut sink = |b: Bytes| {
            got.extend_from_slice(&b);
            Ok(())
        };
        let result = connections.read(address, request, "", &mut sink).await;
        let result = result.map_err(|stop| match stop {
            Stop::Source(e) | Stop::Sink(e) => e.to_string(),
        });
        (got, result)
    }

    #[tokio::test]
    async fn frames_are_checked_and_damage_hands_on_nothing_of_its_frame() {
        let data: Vec<u8> = (0..3 * FRAME_LEN - 5).map(|i| (i % 251) as u8).collect();
        let intact = one_answer(data.clone(), None).await;
        let (got, result) = read_all(&intact, data.len()).await;
        assert_eq!(result, Ok(()));
        assert_eq!(got, data);

        // A bit flipped in the second frame: the first frame is handed on,
        // nothing after it, and the read fails so the caller goes on from
        // another source.
        let damaged = one_answer(data.clone(), Some(FRAME_LEN + 77)).await;
        let (got, result) = read_all(&damaged, data.len()).await;
        let error = result.unwrap_err();
        assert!(error.contains("checksum mismatch"), "{error}");
        assert_eq!(got, data[..FRAME_LEN]);
    }
}
