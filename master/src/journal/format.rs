//! On-disk format of journal files (log segments and checkpoints).
//!
//! ```text
//! file   := header record*
//! header := magic "ALXJ" (4) | version u16 LE | kind u16 LE | start_sequence u64 LE
//! record := length u32 LE | crc32 u32 LE (of payload) | payload (prost JournalEntry)
//! ```
//! Log segments are named `log-<start_sequence>.log` and hold entries from
//! `start_sequence` on. A checkpoint `checkpoint-<sequence>.ckpt` holds the
//! whole state as of `sequence` and ends with a `CheckpointEnd` record.
//! Fault-tolerant masters keep their Raft log in the same framing (kind 3,
//! `start_sequence` = first Raft index, payloads = Raft entries; see
//! `raft/log_store.rs`) and their snapshots as checkpoints.
//!
//! Version 1 files hold plain payloads; version 2 files hold payloads
//! sealed with the journal's encryption key (`seal`), framed the same way.
//!
//! A record cut short at the end of the last log segment (a torn write
//! from a crash) is dropped; damage anywhere else is an error naming the
//! file and the offset, because silently skipping it would lose data.

use crate::journal::seal::JournalKey;
use crate::journal::JournalError;
use alluxio_proto::journal::JournalEntry;
use prost::Message;
use std::path::Path;

pub const MAGIC: [u8; 4] = *b"ALXJ";
/// Plain records.
pub const FORMAT_VERSION: u16 = 1;
/// Records sealed with the journal's encryption key.
pub const SEALED_VERSION: u16 = 2;
pub const HEADER_LEN: usize = 16;
pub const RECORD_HEADER_LEN: usize = 8;
/// Larger lengths can only come from damage.
pub const MAX_RECORD_LEN: u32 = 64 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Log = 1,
    Checkpoint = 2,
    RaftLog = 3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: FileKind,
    pub start_sequence: u64,
    /// Its records are sealed (version 2).
    pub sealed: bool,
}

/// The header of a file whose records are sealed when `sealed`.
pub fn encode_header(kind: FileKind, start_sequence: u64, sealed: bool) -> [u8; HEADER_LEN] {
    let version = if sealed {
        SEALED_VERSION
    } else {
        FORMAT_VERSION
    };
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&MAGIC);
    h[4..6].copy_from_slice(&version.to_le_bytes());
    h[6..8].copy_from_slice(&(kind as u16).to_le_bytes());
    h[8..16].copy_from_slice(&start_sequence.to_le_bytes());
    h
}

/// Appends one framed record to `out`, sealed with `key` when given.
pub fn encode_record(entry: &JournalEntry, key: Option<&JournalKey>, out: &mut Vec<u8>) {
    if key.is_some() {
        return encode_frame(&entry.encode_to_vec(), key, out);
    }
    let len = entry.encoded_len();
    out.reserve(RECORD_HEADER_LEN + len);
    let start = out.len();
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    entry
        .encode(out)
        .expect("a Vec grows as needed, so encoding cannot run out of space");
    let crc = crc32fast::hash(&out[start + RECORD_HEADER_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Appends `payload` framed as one record to `out`, sealed with `key`
/// when given.
pub fn encode_frame(payload: &[u8], key: Option<&JournalKey>, out: &mut Vec<u8>) {
    if let Some(key) = key {
        let start = out.len();
        out.extend_from_slice(&[0u8; RECORD_HEADER_LEN]);
        key.seal(payload, out);
        let sealed = &out[start + RECORD_HEADER_LEN..];
        let (len, crc) = (sealed.len() as u32, crc32fast::hash(sealed));
        out[start..start + 4].copy_from_slice(&len.to_le_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        return;
    }
    out.reserve(RECORD_HEADER_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// What reading a file found.
#[derive(Debug)]
pub struct ReadSummary {
    pub header: Header,
    /// Bytes of header and intact records.
    pub valid_len: u64,
    /// Offset of a dropped torn record at the end, if any.
    pub torn_at: Option<u64>,
}

/// Reads `path`, calling `on_entry(offset, entry)` for each record. With
/// `allow_torn_tail` a damaged final record is reported in `torn_at`
/// instead of failing. Sealed files need `key`.
pub fn read_file(
    path: &Path,
    allow_torn_tail: bool,
    key: Option<&JournalKey>,
    on_entry: impl FnMut(u64, JournalEntry) -> Result<(), JournalError>,
) -> Result<ReadSummary, JournalError> {
    let data = std::fs::read(path).map_err(|e| JournalError::io(path, e))?;
    decode_entries(&data, path, allow_torn_tail, key, on_entry)
}

/// [`read_file`] over the bytes of a file already in memory (`path` only
/// names it in errors).
pub fn decode_entries(
    data: &[u8],
    path: &Path,
    allow_torn_tail: bool,
    key: Option<&JournalKey>,
    mut on_entry: impl FnMut(u64, JournalEntry) -> Result<(), JournalError>,
) -> Result<ReadSummary, JournalError> {
    decode_frames(data, path, allow_torn_tail, key, |offset, payload| {
        let entry = JournalEntry::decode(payload).map_err(|e| JournalError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason: format!("undecodable record: {e}"),
        })?;
        on_entry(offset, entry)
    })
}

/// Like [`read_file`], handing over each record's payload undecoded.
pub fn read_frames(
    path: &Path,
    allow_torn_tail: bool,
    key: Option<&JournalKey>,
    on_frame: impl FnMut(u64, &[u8]) -> Result<(), JournalError>,
) -> Result<ReadSummary, JournalError> {
    let data = std::fs::read(path).map_err(|e| JournalError::io(path, e))?;
    decode_frames(&data, path, allow_torn_tail, key, on_frame)
}

/// The framing of [`read_frames`] over the bytes of a file already in
/// memory (`path` only names it in errors): what the fuzz targets feed.
pub fn decode_frames(
    data: &[u8],
    path: &Path,
    allow_torn_tail: bool,
    key: Option<&JournalKey>,
    mut on_frame: impl FnMut(u64, &[u8]) -> Result<(), JournalError>,
) -> Result<ReadSummary, JournalError> {
    let corrupt = |offset: u64, reason: String| JournalError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    if data.len() < HEADER_LEN {
        // A crash right after creating a segment can leave a short header.
        if allow_torn_tail && MAGIC.starts_with(&data[..data.len().min(4)]) {
            return Ok(ReadSummary {
                header: Header {
                    kind: FileKind::Log,
                    start_sequence: 0,
                    sealed: false,
                },
                valid_len: 0,
                torn_at: Some(0),
            });
        }
        return Err(corrupt(
            0,
            format!("file too short for a header ({} bytes)", data.len()),
        ));
    }
    if data[..4] != MAGIC {
        return Err(corrupt(0, "not a journal file (bad magic)".to_string()));
    }
    let version = u16::from_le_bytes([data[4], data[5]]);
    let sealed_with = match version {
        FORMAT_VERSION => None,
        SEALED_VERSION => Some(key.ok_or_else(|| JournalError::Sealed {
            path: path.to_path_buf(),
        })?),
        _ => {
            return Err(JournalError::UnsupportedVersion {
                path: path.to_path_buf(),
                version,
            })
        }
    };
    let kind = match u16::from_le_bytes([data[6], data[7]]) {
        1 => FileKind::Log,
        2 => FileKind::Checkpoint,
        3 => FileKind::RaftLog,
        other => return Err(corrupt(6, format!("unknown file kind {other}"))),
    };
    let header = Header {
        kind,
        start_sequence: u64::from_le_bytes(data[8..16].try_into().expect("8 bytes")),
        sealed: sealed_with.is_some(),
    };

    let mut offset = HEADER_LEN;
    while offset < data.len() {
        let rest = &data[offset..];
        let torn = |reason: String| -> Result<ReadSummary, JournalError> {
            if allow_torn_tail {
                Ok(ReadSummary {
                    header,
                    valid_len: offset as u64,
                    torn_at: Some(offset as u64),
                })
            } else {
                Err(corrupt(offset as u64, reason))
            }
        };
        if rest.len() < RECORD_HEADER_LEN {
            return torn(format!(
                "record header cut short ({} bytes left)",
                rest.len()
            ));
        }
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if len == 0 {
            // Zero-filled space after a crash (the file system extended the
            // file but the data never arrived) is a torn tail; a zero length
            // followed by real data is damage.
            if rest.iter().all(|b| *b == 0) {
                return torn("zero-filled tail".to_string());
            }
            return Err(corrupt(offset as u64, "record of length 0".to_string()));
        }
        let end = RECORD_HEADER_LEN + len as usize;
        if len > MAX_RECORD_LEN || rest.len() < end {
            // Either a write cut short by a crash, or a damaged length
            // field. A torn write can only be the last thing in the file,
            // so if any intact record follows, this is corruption.
            if intact_record_after(data, offset + 1) {
                return Err(corrupt(
                    offset as u64,
                    format!("damaged record length {len}"),
                ));
            }
            return torn(format!(
                "record of {len} bytes cut short at {} bytes",
                rest.len() - RECORD_HEADER_LEN
            ));
        }
        let payload = &rest[RECORD_HEADER_LEN..end];
        if crc32fast::hash(payload) != crc {
            // Only the very last record may be torn; a bad checksum with
            // more records after it is corruption in the middle.
            if rest.len() == end {
                return torn("checksum mismatch in the final record".to_string());
            }
            return Err(corrupt(offset as u64, "checksum mismatch".to_string()));
        }
        match sealed_with {
            None => on_frame(offset as u64, payload)?,
            Some(key) => {
                // Intact on disk (the CRC matched), so a record that does
                // not open is damage or the wrong key, never a torn tail.
                let plain = key
                    .open(payload)
                    .map_err(|e| corrupt(offset as u64, format!("sealed record: {e}")))?;
                on_frame(offset as u64, &plain)?;
            }
        }
        offset += end;
    }
    Ok(ReadSummary {
        header,
        valid_len: data.len() as u64,
        torn_at: None,
    })
}

/// Whether a whole record with a matching checksum starts anywhere at or
/// after `from`. Only called when something is wrong, near the damage.
fn intact_record_after(data: &[u8], from: usize) -> bool {
    let mut p = from;
    while p + RECORD_HEADER_LEN < data.len() {
        let len = u32::from_le_bytes(data[p..p + 4].try_into().expect("4 bytes")) as usize;
        let end = p + RECORD_HEADER_LEN + len;
        if len > 0 && len <= MAX_RECORD_LEN as usize && end <= data.len() {
            let crc = u32::from_le_bytes(data[p + 4..p + 8].try_into().expect("4 bytes"));
            if crc32fast::hash(&data[p + RECORD_HEADER_LEN..end]) == crc {
                return true;
            }
        }
        p += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use alluxio_proto::journal::{journal_entry::Entry, DeleteInodeEntry};

    fn entry(seq: u64) -> JournalEntry {
        JournalEntry {
            sequence: seq,
            entry: Some(Entry::DeleteInode(DeleteInodeEntry {
                id: seq,
                op_time_ms: 0,
            })),
        }
    }

    fn file_with(n: u64) -> (tempfile::TempDir, std::path::PathBuf, Vec<usize>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log-1.log");
        let mut buf = encode_header(FileKind::Log, 1, false).to_vec();
        let mut ends = Vec::new();
        for s in 1..=n {
            encode_record(&entry(s), None, &mut buf);
            ends.push(buf.len());
        }
        std::fs::write(&path, &buf).unwrap();
        (dir, path, ends)
    }

    fn read_all(path: &Path, allow_torn: bool) -> Result<(Vec<u64>, ReadSummary), JournalError> {
        let mut seqs = Vec::new();
        let summary = read_file(path, allow_torn, None, |_, e| {
            seqs.push(e.sequence);
            Ok(())
        })?;
        Ok((seqs, summary))
    }

    #[test]
    fn reads_back_what_was_written() {
        let (_d, path, _) = file_with(5);
        let (seqs, summary) = read_all(&path, false).unwrap();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
        assert_eq!(summary.torn_at, None);
        assert_eq!(summary.header.start_sequence, 1);
    }

    #[test]
    fn torn_tail_is_dropped_at_every_cut() {
        let (_d, path, ends) = file_with(4);
        let full = std::fs::read(&path).unwrap();
        for cut in HEADER_LEN..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let (seqs, summary) = read_all(&path, true).unwrap();
            let complete = ends.iter().filter(|e| **e <= cut).count();
            assert_eq!(seqs.len(), complete, "cut at {cut}");
            assert_eq!(
                summary.valid_len as usize,
                if complete == 0 {
                    HEADER_LEN
                } else {
                    ends[complete - 1]
                }
            );
            // Without permission to drop a tail, a cut is corruption.
            if cut != HEADER_LEN && !ends.contains(&cut) {
                assert!(read_all(&path, false).is_err());
            }
        }
    }

    #[test]
    fn corruption_in_the_middle_names_file_and_offset() {
        let (_d, path, ends) = file_with(4);
        let mut data = std::fs::read(&path).unwrap();
        let victim = ends[1] + RECORD_HEADER_LEN + 1; // inside record 3's payload
        data[victim] ^= 0xff;
        std::fs::write(&path, &data).unwrap();
        let err = read_all(&path, true).unwrap_err().to_string();
        assert!(
            err.contains("log-1.log") && err.contains(&format!("offset {}", ends[1])),
            "{err}"
        );
    }

    #[test]
    fn a_damaged_length_in_the_middle_is_corruption_not_a_torn_tail() {
        let (_d, path, ends) = file_with(6);
        let mut data = std::fs::read(&path).unwrap();
        // Record 3's length now claims far more bytes than the file has.
        data[ends[1] + 3] = 0x7f;
        std::fs::write(&path, &data).unwrap();
        let err = read_all(&path, true).unwrap_err().to_string();
        assert!(err.contains(&format!("offset {}", ends[1])), "{err}");
    }

    #[test]
    fn zero_filled_tail_is_torn_and_bad_versions_are_refused() {
        let (_d, path, _) = file_with(2);
        let mut data = std::fs::read(&path).unwrap();
        data.extend_from_slice(&[0u8; 4096]);
        std::fs::write(&path, &data).unwrap();
        let (seqs, summary) = read_all(&path, true).unwrap();
        assert_eq!(seqs, vec![1, 2]);
        assert!(summary.torn_at.is_some());

        data[4] = 9;
        std::fs::write(&path, &data).unwrap();
        let err = read_all(&path, true).unwrap_err().to_string();
        assert!(err.contains("version 9"), "{err}");
    }
}
