//! Helpers shared by the fuzz targets: checksum repair, so that a mutated
//! input also reaches the decoding behind a checksum (each target parses
//! an input as it is and once more with its checksums made right).

/// `input` with the trailing CRC32 of every fixed-size header of `len`
/// bytes recomputed (data-port requests and answers), or `None` when the
/// input is not exactly one header.
pub fn with_header_crc(input: &[u8], len: usize) -> Option<Vec<u8>> {
    if input.len() != len {
        return None;
    }
    let mut out = input.to_vec();
    let crc = crc32fast::hash(&out[..len - 4]);
    out[len - 4..].copy_from_slice(&crc.to_le_bytes());
    Some(out)
}

/// `input` with the CRC32 in its last four bytes recomputed over what
/// comes before (a block record).
pub fn with_trailing_crc(input: &[u8]) -> Option<Vec<u8>> {
    let n = input.len().checked_sub(4)?;
    let mut out = input.to_vec();
    let crc = crc32fast::hash(&out[..n]);
    out[n..].copy_from_slice(&crc.to_le_bytes());
    Some(out)
}

/// `input` (a journal or Raft log file: a 16-byte header, then records of
/// length u32, CRC32 u32 and payload) with every whole record's CRC
/// recomputed.
pub fn with_record_crcs(input: &[u8]) -> Vec<u8> {
    use alluxio_master::journal::format::{HEADER_LEN, RECORD_HEADER_LEN};
    let mut out = input.to_vec();
    let mut at = HEADER_LEN;
    while at + RECORD_HEADER_LEN <= out.len() {
        let len = u32::from_le_bytes(out[at..at + 4].try_into().expect("4 bytes")) as usize;
        let Some(end) = (at + RECORD_HEADER_LEN)
            .checked_add(len)
            .filter(|end| *end <= out.len())
        else {
            break;
        };
        let crc = crc32fast::hash(&out[at + RECORD_HEADER_LEN..end]);
        out[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
    out
}

/// The journal encryption key the journal targets read with (fixed, so
/// that seeds sealed with it stay valid from run to run).
pub fn journal_key() -> &'static alluxio_master::journal::seal::JournalKey {
    use alluxio_common::auth::ClusterKey;
    use alluxio_master::journal::seal::JournalKey;
    static KEY: std::sync::OnceLock<JournalKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let file_key = ClusterKey::from_hex(&"5e".repeat(32)).expect("64 hex digits");
        JournalKey::from_file_key(&file_key)
    })
}
