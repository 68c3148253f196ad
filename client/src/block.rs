//! Block-level pieces shared by the readers, the data-port client, local
//! files and loads: why a block read stopped, the requests that name a
//! block's place in its UFS, and the chunk checksum check.

use alluxio_common::AlluxioError;

/// Why a read stopped: the source failed (try another) or the consumer did.
pub(crate) enum Stop {
    Source(AlluxioError),
    Sink(AlluxioError),
}

pub(crate) use alluxio_common::block_source::{cache_block_request, ufs_block_source};

/// Checks chunk `index` of a local block against the CRC the worker gave.
pub(crate) fn check_chunk(
    block_id: u64,
    crcs: &[u32],
    index: usize,
    data: &[u8],
) -> alluxio_common::Result<()> {
    if crcs.get(index) == Some(&crc32fast::hash(data)) {
        Ok(())
    } else {
        Err(AlluxioError::Internal(format!(
            "damaged block {block_id}: checksum mismatch in chunk {index}"
        )))
    }
}
