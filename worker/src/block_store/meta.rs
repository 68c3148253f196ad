//! The on-disk record that makes a cached block exist.
//!
//! Layout of a tier directory:
//! ```text
//! <dir>/alluxio-blocks/data/<file_id>     sparse file: block i of the file at its offset in the file
//! <dir>/alluxio-blocks/meta/<block_id>    this record
//! ```
//! A file's cached blocks share one sparse data file at their offsets in
//! the file, so a fully cached file is a byte-for-byte copy that FUSE
//! passthrough can hand to the kernel. A block's bytes are written and
//! fsynced first; only then is its meta record written to a temporary name
//! and renamed into place. A crash therefore never exposes half a block: a
//! block without a record does not exist (its bytes are reclaimed).
//!
//! ```text
//! record := magic "ALXB" | version u16 | 0 u16 | block_id u64 | offset u64 | length u64
//!           | chunk_size u32 | chunk_count u32 | chunk_crc u32 * chunk_count | record_crc u32
//! ```
//! Each chunk's CRC32 lets readers verify exactly the chunks they touch.

pub const MAGIC: [u8; 4] = *b"ALXB";
pub const VERSION: u16 = 1;
const FIXED_LEN: usize = 4 + 2 + 2 + 8 + 8 + 8 + 4 + 4;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockMeta {
    pub block_id: u64,
    /// Offset of the block in its file (and in the sparse data file).
    pub offset: u64,
    pub length: u64,
    pub chunk_size: u32,
    pub chunk_crcs: Vec<u32>,
}

impl BlockMeta {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LEN + 4 * self.chunk_crcs.len() + 4);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&self.block_id.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.length.to_le_bytes());
        out.extend_from_slice(&self.chunk_size.to_le_bytes());
        out.extend_from_slice(&(self.chunk_crcs.len() as u32).to_le_bytes());
        for crc in &self.chunk_crcs {
            out.extend_from_slice(&crc.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(data: &[u8]) -> Result<BlockMeta, String> {
        if data.len() < FIXED_LEN + 4 {
            return Err(format!("record too short ({} bytes)", data.len()));
        }
        let (body, tail) = data.split_at(data.len() - 4);
        let stored = u32::from_le_bytes(tail.try_into().expect("4 bytes"));
        if crc32fast::hash(body) != stored {
            return Err("record checksum mismatch".to_string());
        }
        if body[..4] != MAGIC {
            return Err("bad magic".to_string());
        }
        let u16_at = |i: usize| u16::from_le_bytes(body[i..i + 2].try_into().expect("2 bytes"));
        let u32_at = |i: usize| u32::from_le_bytes(body[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(body[i..i + 8].try_into().expect("8 bytes"));
        let version = u16_at(4);
        if version != VERSION {
            return Err(format!("unsupported version {version}"));
        }
        if u16_at(6) != 0 {
            return Err("reserved bytes are not zero".to_string());
        }
        let count = u32_at(36) as usize;
        if body.len() != FIXED_LEN + 4 * count {
            return Err("chunk count does not match the record length".to_string());
        }
        let (length, chunk_size) = (u64_at(24), u32_at(32));
        // Readers index the checksums by chunk: one per chunk, no more.
        if chunk_size == 0 || length.div_ceil(u64::from(chunk_size)) != count as u64 {
            return Err(format!(
                "{count} chunk checksums for {length} bytes in chunks of {chunk_size}"
            ));
        }
        Ok(BlockMeta {
            block_id: u64_at(8),
            offset: u64_at(16),
            length,
            chunk_size,
            chunk_crcs: (0..count).map(|i| u32_at(FIXED_LEN + 4 * i)).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_damage() {
        let m = BlockMeta {
            block_id: 7 << 24,
            offset: 64 << 20,
            length: 3 << 20,
            chunk_size: 1 << 20,
            chunk_crcs: vec![1, 2, 3],
        };
        let bytes = m.encode();
        assert_eq!(BlockMeta::decode(&bytes).unwrap(), m);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(BlockMeta::decode(&bad).is_err(), "flip at {i} undetected");
        }
        assert!(BlockMeta::decode(&bytes[..bytes.len() - 1]).is_err());
        // Checksums that do not cover the length (readers would index past
        // them), and chunks of no size, are refused even when the record's
        // own checksum is right.
        for wrong in [
            BlockMeta {
                chunk_crcs: vec![1, 2],
                ..m.clone()
            },
            BlockMeta {
                chunk_size: 0,
                ..m.clone()
            },
        ] {
            assert!(BlockMeta::decode(&wrong.encode()).is_err(), "{wrong:?}");
        }
    }
}
