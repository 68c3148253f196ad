//! Block ids are `file_id << 24 | index`, as in Alluxio: a file's blocks
//! need no table, and the file of any block is known from its id. The one
//! definition of that layout, for the master, the workers and the client.

pub const BLOCK_INDEX_BITS: u32 = 24;

/// Id of block `index` of file `file_id`.
pub fn block_id(file_id: u64, index: u64) -> u64 {
    (file_id << BLOCK_INDEX_BITS) | index
}

/// The file a block belongs to.
pub fn file_id_of_block(block_id: u64) -> u64 {
    block_id >> BLOCK_INDEX_BITS
}

/// The block's index in its file.
pub fn index_of_block(block_id: u64) -> u64 {
    block_id & ((1 << BLOCK_INDEX_BITS) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let id = block_id(77, 5);
        assert_eq!(file_id_of_block(id), 77);
        assert_eq!(index_of_block(id), 5);
    }
}
