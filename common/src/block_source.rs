//! The requests that name a block's place in its UFS, built from the file's
//! info: what a client sends for read-through and what a load sends to
//! have a worker cache a block (the client's `fs load --local` and the
//! master's load jobs alike).

use alluxio_proto::grpc::{CacheBlockRequest, FileBlockInfo, FileInfo, UfsBlockSource};

/// Where a file's block lives in its UFS, for a worker to read it through.
pub fn ufs_block_source(info: &FileInfo, fbi: &FileBlockInfo) -> UfsBlockSource {
    UfsBlockSource {
        mount_id: info.mount_id,
        ufs_path: info.ufs_path.clone(),
        offset_in_file: fbi.offset,
    }
}

/// Asks a worker to cache one block of a persisted file from the UFS.
pub fn cache_block_request(info: &FileInfo, fbi: &FileBlockInfo) -> CacheBlockRequest {
    let block = fbi.block_info.clone().unwrap_or_default();
    CacheBlockRequest {
        block_id: block.block_id,
        block_length: block.length,
        block_offset_in_file: fbi.offset,
        ufs: Some(ufs_block_source(info, fbi)),
        capability: info.capability.clone(),
    }
}
