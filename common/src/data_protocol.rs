//! The wire format of a worker's data port (`worker.data_port`, 29998):
//! cached block bytes over plain TCP, without gRPC's framing and its two
//! extra copies (the worker writes straight from its mapping of the block
//! file; the client reads straight into the buffer it hands on).
//!
//! Version 3. A connection carries one request at a time; after a complete
//! answer it takes the next. All integers are little-endian; the CRC32 in
//! each header covers the header bytes before it.
//!
//! Request, 36 bytes:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `ALXD` |
//! | 4..6 | version (2) |
//! | 6..8 | kind (1: read a cached block, 2: authenticate, 3: capability) |
//! | 8..16 | block id (0 for authenticate; the file id for capability) |
//! | 16..24 | offset in the block (0 for authenticate) |
//! | 24..32 | length (clamped to the block's end); for authenticate and capability, the length of what follows |
//! | 32..36 | CRC32 of bytes 0..32 |
//!
//! Authentication (since version 2): with `security.authentication: TOKEN`, the
//! first request of a connection must be an authenticate request followed
//! by that many bytes of token (at most `auth::MAX_TOKEN_LEN`). The worker
//! answers OK (length 0) and serves the connection as that identity until
//! the token expires, or answers UNAUTHENTICATED with a reason and closes
//! the connection. A read before authenticating gets UNAUTHENTICATED too.
//!
//! Capabilities: a read of a block of file F needs F's capability
//! (`FileInfo.capability`, the master's signed word that the caller may
//! read F) presented on the connection first: a capability request naming
//! F, followed by that many bytes. The worker answers OK, or FORBIDDEN
//! with a reason and closes; a read of a file whose capability was not
//! presented gets FORBIDDEN too. Services (workers) need none.
//!
//! Answer header, 20 bytes: magic, version, status (u16), length (u64),
//! CRC32 of bytes 0..16. With status OK, `length` bytes of the block follow
//! in frames (version 3): [`FRAME_LEN`] bytes of data (the last frame: what
//! is left) and the CRC32 of those bytes (u32), so damage between the
//! worker's memory and the client's is caught, not handed to a reader; the
//! client then continues from another source. A worker that finds the
//! block damaged half-way closes the connection, so a short answer is a
//! failed read. With any other status, `length` bytes
//! of UTF-8 explanation follow. After BAD_REQUEST the worker closes the
//! connection: it cannot tell where the next request would start.

/// First bytes of every request and answer.
pub const MAGIC: [u8; 4] = *b"ALXD";
pub const VERSION: u16 = 3;
pub const REQUEST_LEN: usize = 36;
pub const ANSWER_HEADER_LEN: usize = 20;
/// Data bytes per checksummed frame of a read answer (the last frame of
/// an answer may be shorter).
pub const FRAME_LEN: usize = 1 << 20;
/// The CRC32 after each frame's data.
pub const FRAME_CRC_LEN: usize = 4;

/// The checksum that follows `frame` in a read answer.
pub fn frame_crc(frame: &[u8]) -> [u8; FRAME_CRC_LEN] {
    crc32fast::hash(frame).to_le_bytes()
}

/// Kind of request: read bytes of a cached block.
const READ_CACHED_BLOCK: u16 = 1;
/// Kind of request: a token follows.
const AUTHENTICATE: u16 = 2;
/// Kind of request: a file's capability follows.
const CAPABILITY: u16 = 3;
/// Capabilities a connection holds; at this many both sides start afresh
/// before the next one (same rule on both ends, so they always agree).
pub const CAPABILITIES_PER_CONNECTION: usize = 1024;

/// A decoded request header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Read(ReadRequest),
    /// `token_len` bytes of token follow the header.
    Authenticate {
        token_len: u64,
    },
    /// `len` bytes of file `file_id`'s capability follow the header.
    Capability {
        file_id: u64,
        len: u64,
    },
}

/// Read `length` bytes at `offset` of cached block `block_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRequest {
    pub block_id: u64,
    pub offset: u64,
    pub length: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Status {
    Ok = 0,
    /// The worker does not hold the block (read it over gRPC, which also
    /// reads through from the UFS).
    NotCached = 1,
    /// The block failed its checksums; the worker dropped it.
    Damaged = 2,
    BadRequest = 3,
    Internal = 4,
    /// No valid token (the connection is closed after the reason).
    Unauthenticated = 5,
    /// No valid capability for the block's file (closed after the reason).
    Forbidden = 6,
    /// The worker serves as many connections as it may (closed after the
    /// reason; read over gRPC instead).
    Busy = 7,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerHeader {
    pub status: Status,
    pub length: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("not an alluxio-rs data port message (bad magic bytes)")]
    BadMagic,
    #[error("unsupported data protocol version {0} (this side speaks {VERSION})")]
    Version(u16),
    #[error("header checksum mismatch")]
    Checksum,
    #[error("unknown request kind {0}")]
    Kind(u16),
    #[error("unknown answer status {0}")]
    Status(u16),
    #[error("the {0} of this kind of request must be 0")]
    NotZero(&'static str),
}

fn encode_request(kind: u16, block_id: u64, offset: u64, length: u64) -> [u8; REQUEST_LEN] {
    let mut b = [0u8; REQUEST_LEN];
    b[0..4].copy_from_slice(&MAGIC);
    b[4..6].copy_from_slice(&VERSION.to_le_bytes());
    b[6..8].copy_from_slice(&kind.to_le_bytes());
    b[8..16].copy_from_slice(&block_id.to_le_bytes());
    b[16..24].copy_from_slice(&offset.to_le_bytes());
    b[24..32].copy_from_slice(&length.to_le_bytes());
    let crc = crc32fast::hash(&b[..32]);
    b[32..36].copy_from_slice(&crc.to_le_bytes());
    b
}

impl Request {
    pub fn encode(&self) -> [u8; REQUEST_LEN] {
        match *self {
            Request::Read(r) => encode_request(READ_CACHED_BLOCK, r.block_id, r.offset, r.length),
            Request::Authenticate { token_len } => encode_request(AUTHENTICATE, 0, 0, token_len),
            Request::Capability { file_id, len } => encode_request(CAPABILITY, file_id, 0, len),
        }
    }

    pub fn decode(b: &[u8; REQUEST_LEN]) -> Result<Request, ProtocolError> {
        check_header(b)?;
        match u16_at(b, 6) {
            READ_CACHED_BLOCK => Ok(Request::Read(ReadRequest {
                block_id: u64_at(b, 8),
                offset: u64_at(b, 16),
                length: u64_at(b, 24),
            })),
            // Unused fields must be 0, so that one request has one
            // encoding (and a later version can give them a meaning).
            AUTHENTICATE if u64_at(b, 8) != 0 => Err(ProtocolError::NotZero("block id")),
            AUTHENTICATE | CAPABILITY if u64_at(b, 16) != 0 => {
                Err(ProtocolError::NotZero("offset"))
            }
            AUTHENTICATE => Ok(Request::Authenticate {
                token_len: u64_at(b, 24),
            }),
            CAPABILITY => Ok(Request::Capability {
                file_id: u64_at(b, 8),
                len: u64_at(b, 24),
            }),
            kind => Err(ProtocolError::Kind(kind)),
        }
    }
}

impl ReadRequest {
    pub fn encode(&self) -> [u8; REQUEST_LEN] {
        Request::Read(*self).encode()
    }
}

impl AnswerHeader {
    pub fn encode(&self) -> [u8; ANSWER_HEADER_LEN] {
        let mut b = [0u8; ANSWER_HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[6..8].copy_from_slice(&(self.status as u16).to_le_bytes());
        b[8..16].copy_from_slice(&self.length.to_le_bytes());
        let crc = crc32fast::hash(&b[..16]);
        b[16..20].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8; ANSWER_HEADER_LEN]) -> Result<AnswerHeader, ProtocolError> {
        check_header(b)?;
        let status = match u16_at(b, 6) {
            0 => Status::Ok,
            1 => Status::NotCached,
            2 => Status::Damaged,
            3 => Status::BadRequest,
            4 => Status::Internal,
            5 => Status::Unauthenticated,
            6 => Status::Forbidden,
            7 => Status::Busy,
            other => return Err(ProtocolError::Status(other)),
        };
        Ok(AnswerHeader {
            status,
            length: u64_at(b, 8),
        })
    }
}

/// Magic, version and the trailing CRC32 of a request or answer header.
fn check_header(b: &[u8]) -> Result<(), ProtocolError> {
    if b[0..4] != MAGIC {
        return Err(ProtocolError::BadMagic);
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err(ProtocolError::Checksum);
    }
    let version = u16_at(b, 4);
    if version != VERSION {
        return Err(ProtocolError::Version(version));
    }
    Ok(())
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_round_trip() {
        let r = ReadRequest {
            block_id: 7 << 24,
            offset: 1 << 20,
            length: 64 << 20,
        };
        assert_eq!(Request::decode(&r.encode()), Ok(Request::Read(r)));
        let auth = Request::Authenticate { token_len: 180 };
        assert_eq!(Request::decode(&auth.encode()), Ok(auth));
        let cap = Request::Capability {
            file_id: 7,
            len: 150,
        };
        assert_eq!(Request::decode(&cap.encode()), Ok(cap));
        for status in [
            Status::Ok,
            Status::NotCached,
            Status::Damaged,
            Status::Unauthenticated,
        ] {
            let a = AnswerHeader { status, length: 12 };
            assert_eq!(AnswerHeader::decode(&a.encode()), Ok(a));
        }
    }

    #[test]
    fn garbage_and_damage_are_refused_with_a_reason() {
        let mut b = ReadRequest {
            block_id: 1,
            offset: 0,
            length: 1,
        }
        .encode();
        let good = b;
        b[10] ^= 1;
        assert_eq!(Request::decode(&b), Err(ProtocolError::Checksum));
        assert_eq!(
            Request::decode(&[b'G'; REQUEST_LEN]),
            Err(ProtocolError::BadMagic)
        );
        // Another version (2: before framed answers), with a correct checksum.
        let mut v1 = good;
        v1[4] = 2;
        let crc = crc32fast::hash(&v1[..32]);
        v1[32..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(Request::decode(&v1), Err(ProtocolError::Version(2)));
        // An unknown kind.
        let mut kind = good;
        kind[6] = 9;
        let crc = crc32fast::hash(&kind[..32]);
        kind[32..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(Request::decode(&kind), Err(ProtocolError::Kind(9)));
        // Fields a kind does not use must be 0 (one encoding per request).
        let mut auth = Request::Authenticate { token_len: 9 }.encode();
        auth[11] = 1;
        let crc = crc32fast::hash(&auth[..32]);
        auth[32..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            Request::decode(&auth),
            Err(ProtocolError::NotZero("block id"))
        );
    }
}
