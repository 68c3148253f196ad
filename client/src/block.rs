//! Block-level pieces shared by the readers, the data-port client, local
//! files and loads: why a block read stopped, the requests that name a
//! block's place in its UFS, and the chunk checksum check.

use alluxio_common::AlluxioError;
use alluxio_proto::grpc::{CacheBlockRequest, FileBlockInfo, FileInfo, UfsBlockSource};

/// Why a read stopped: the source failed (try another) or the consumer did.
pub(crate) enum Stop {
    Source(AlluxioError),
    Sink(AlluxioError),
}

/// Where a file's block lives in its UFS, for a worker to read it through.
pub(crate) fn ufs_block_source(info: &FileInfo, fbi: &FileBlockInfo) -> UfsBlockSource {
    UfsBlockSource {
        mount_id: info.mount_id,
        ufs_path: info.ufs_path.clone(),
        offset_in_file: fbi.offset,
    }
}

/// Asks a worker to cache one block of a persisted file from the UFS.
pub(crate) fn cache_block_request(info: &FileInfo, fbi: &FileBlockInfo) -> CacheBlockRequest {
    let block = fbi.block_info.clone().unwrap_or_default();
    CacheBlockRequest {
        block_id: block.block_id,
        block_length: block.length,
        block_offset_in_file: fbi.offset,
        ufs: Some(ufs_block_source(info, fbi)),
        capability: info.capability.clone(),
    }
}

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
