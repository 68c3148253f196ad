//! A worker's block records (`BlockMeta`), read back from its disks at
//! every start: decoding answers Ok or Err, and a record that decodes
//! encodes back to the same bytes and has one checksum per chunk (readers
//! index them by chunk).
#![no_main]

use alluxio_fuzz::with_trailing_crc;
use alluxio_worker::block_store::meta::BlockMeta;
use libfuzzer_sys::fuzz_target;

fn check(data: &[u8]) {
    if let Ok(meta) = BlockMeta::decode(data) {
        assert_eq!(meta.encode(), data, "{meta:?} re-encodes differently");
        assert!(meta.chunk_size > 0, "{meta:?}");
        let chunks = meta.length.div_ceil(u64::from(meta.chunk_size));
        assert_eq!(chunks, meta.chunk_crcs.len() as u64, "{meta:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(fixed) = with_trailing_crc(data) {
        check(&fixed);
    }
});
