//! A worker's block records (`BlockMeta`, read back at every start from
//! its disks), mutated and random (`alluxio_testkit::fuzz`), with the
//! checksum repaired half the time: decoding answers Ok or Err, never
//! panics.

use alluxio_testkit::fuzz;
use alluxio_worker::block_store::meta::BlockMeta;

#[test]
fn damaged_block_records_are_refused_never_a_panic() {
    let seed = BlockMeta {
        block_id: 7 << 24,
        offset: 64 << 20,
        length: 3 << 20,
        chunk_size: 1 << 20,
        chunk_crcs: vec![1, 2, 3],
    }
    .encode();
    let fix = |b: &mut [u8]| {
        if b.len() >= 4 {
            let n = b.len() - 4;
            let crc = crc32fast::hash(&b[..n]);
            b[n..].copy_from_slice(&crc.to_le_bytes());
        }
    };
    fuzz::save_seeds("block_meta", std::slice::from_ref(&seed));
    fuzz::run("block records", &[seed], fix, |b| {
        let _ = BlockMeta::decode(b);
    });
}
