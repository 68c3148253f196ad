//! [`BlockWriter`]: a block being written into the store. Its bytes go to
//! their place in the file's sparse data file as they arrive; the block
//! exists only after `commit` has written its record.

use super::meta::BlockMeta;
use super::{io, is_out_of_space, punch_hole, BlockStore, Entry, StoreError, CHUNK_SIZE};
use alluxio_common::io::write_all_vectored_at;
use alluxio_proto::grpc::BlockAdded;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

/// A block being written: bytes go straight to their place in the sparse
/// data file; the block exists only after `commit`.
pub struct BlockWriter {
    pub(super) store: BlockStore,
    pub(super) block_id: u64,
    pub(super) dir: usize,
    pub(super) offset_in_file: u64,
    pub(super) max_len: u64,
    pub(super) written: u64,
    pub(super) file: File,
    pub(super) path: PathBuf,
    pub(super) chunk_crcs: Vec<u32>,
    pub(super) chunk_hasher: crc32fast::Hasher,
    pub(super) chunk_fill: u64,
    /// Checksums of chunks written out of order by `place_chunk`, by
    /// index (empty for a block written by `append`).
    pub(super) placed: Vec<Option<u32>>,
    /// End (in the block) of the furthest byte written: what a move or
    /// a discard covers.
    pub(super) extent: u64,
    pub(super) done: bool,
    /// fsync data and record before the block becomes visible.
    pub(super) durable: bool,
}

impl BlockWriter {
    /// Marks this block as a copy of UFS data: it is not fsynced. After a
    /// machine crash its bytes may be incomplete, which the per-chunk
    /// checksums detect on the next read (the block is then dropped and
    /// fetched again); data written by clients is always fsynced.
    pub fn refetchable(mut self) -> Self {
        self.durable = false;
        self
    }

    pub fn block_id(&self) -> u64 {
        self.block_id
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn append(&mut self, data: &[u8]) -> Result<(), StoreError> {
        self.append_all(&[data])
    }

    /// Appends `chunks` in order with one vectored write per 1,024 of
    /// them, so bytes that arrived in many buffers are not joined first.
    pub fn append_all<B: AsRef<[u8]>>(&mut self, chunks: &[B]) -> Result<(), StoreError> {
        let len: u64 = chunks.iter().map(|c| c.as_ref().len() as u64).sum();
        if !self.placed.is_empty() {
            return Err(StoreError::Incomplete {
                block_id: self.block_id,
                reason: "appended to after chunks were placed".into(),
            });
        }
        if self.written + len > self.max_len {
            return Err(StoreError::TooLong {
                block_id: self.block_id,
                written: self.written + len,
                max: self.max_len,
            });
        }
        self.write_at(self.written, chunks)?;
        self.written += len;
        for chunk in chunks {
            self.checksum(chunk.as_ref());
        }
        Ok(())
    }

    /// Writes checksum chunk `index` of the block (`CHUNK_SIZE` bytes, the
    /// last chunk of the block the rest) whose CRC-32 the caller computed,
    /// in any order: pieces fetched side by side are written as they
    /// arrive. Not to be mixed with `append`; `commit` requires every
    /// chunk of the block (its whole `max_len`).
    pub fn place_chunk<B: AsRef<[u8]>>(
        &mut self,
        index: u64,
        data: &[B],
        crc: u32,
    ) -> Result<(), StoreError> {
        let len: u64 = data.iter().map(|c| c.as_ref().len() as u64).sum();
        let at = index.saturating_mul(CHUNK_SIZE);
        let count = self.max_len.div_ceil(CHUNK_SIZE);
        let placed_already = self.placed.get(index as usize).is_some_and(Option::is_some);
        if index >= count
            || len != CHUNK_SIZE.min(self.max_len - at)
            || placed_already
            || (self.placed.is_empty() && self.written > 0)
        {
            return Err(StoreError::Incomplete {
                block_id: self.block_id,
                reason: format!("chunk {index} of {len} bytes does not fit or was written already"),
            });
        }
        self.write_at(at, data)?;
        self.placed.resize(count as usize, None);
        self.placed[index as usize] = Some(crc);
        self.written += len;
        Ok(())
    }

    /// Writes `chunks` at `at` in the block, moving the block to another
    /// directory when this one's disk turns out to be full.
    fn write_at<B: AsRef<[u8]>>(&mut self, at: u64, chunks: &[B]) -> Result<(), StoreError> {
        let len: u64 = chunks.iter().map(|c| c.as_ref().len() as u64).sum();
        let pos = self.offset_in_file + at;
        if let Err(e) = write_all_vectored_at(&self.file, chunks, pos).map_err(io(&self.path)) {
            if !is_out_of_space(&e) {
                return Err(e);
            }
            // This directory's disk is full below its quota: the block
            // goes on in another directory or a slower tier.
            self.move_elsewhere()?;
            write_all_vectored_at(&self.file, chunks, pos).map_err(io(&self.path))?;
        }
        self.extent = self.extent.max(at + len);
        Ok(())
    }

    /// Adds `data`, the next bytes of the block, to the chunk checksums.
    fn checksum(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = ((CHUNK_SIZE - self.chunk_fill) as usize).min(data.len());
            self.chunk_hasher.update(&data[..take]);
            self.chunk_fill += take as u64;
            data = &data[take..];
            if self.chunk_fill == CHUNK_SIZE {
                let h = std::mem::replace(&mut self.chunk_hasher, crc32fast::Hasher::new());
                self.chunk_crcs.push(h.finalize());
                self.chunk_fill = 0;
            }
        }
    }

    /// Makes the block durable and visible; returns (length, tier alias).
    pub fn commit(mut self) -> Result<(u64, String), StoreError> {
        self.done = true;
        let result = self.commit_inner();
        if result.is_err() {
            self.discard();
        }
        self.store.writer_done(self.dir, self.block_id);
        result
    }

    fn commit_inner(&mut self) -> Result<(u64, String), StoreError> {
        if self.chunk_fill > 0 {
            let h = std::mem::replace(&mut self.chunk_hasher, crc32fast::Hasher::new());
            self.chunk_crcs.push(h.finalize());
        }
        if !self.placed.is_empty() {
            let crcs: Option<Vec<u32>> = self.placed.iter().copied().collect();
            match crcs {
                Some(crcs) if self.written == self.max_len => self.chunk_crcs = crcs,
                _ => {
                    return Err(StoreError::Incomplete {
                        block_id: self.block_id,
                        reason: format!(
                            "committed with {} of its {} bytes written",
                            self.written, self.max_len
                        ),
                    })
                }
            }
        }
        if self.durable {
            self.file.sync_data().map_err(io(&self.path))?;
        }
        let meta = BlockMeta {
            block_id: self.block_id,
            offset: self.offset_in_file,
            length: self.written,
            chunk_size: CHUNK_SIZE as u32,
            chunk_crcs: std::mem::take(&mut self.chunk_crcs),
        };
        if let Err(e) = self.write_record(&meta) {
            if !is_out_of_space(&e) {
                return Err(e);
            }
            // No room left on this disk even for the record: the block's
            // bytes go to another directory or a slower tier, and its
            // record with them.
            self.move_elsewhere()?;
            if self.durable {
                self.file.sync_data().map_err(io(&self.path))?;
            }
            self.write_record(&meta)?;
        }
        let d = &self.store.0.dirs[self.dir];
        if self.durable {
            let meta_dir = d.root.join("meta");
            File::open(&meta_dir)
                .and_then(|f| f.sync_all())
                .map_err(io(&meta_dir))?;
        }

        let alias = d.alias.clone();
        let mut inner = self.store.lock();
        inner.used[self.dir] = inner.used[self.dir] - self.max_len + self.written;
        inner.clock += 1;
        let now = inner.clock;
        inner.blocks.insert(
            self.block_id,
            Entry {
                dir: self.dir,
                meta: Arc::new(meta),
                last_access: now,
                crf: 1.0,
                leases: 0,
                doomed: false,
            },
        );
        inner.changes.added(BlockAdded {
            block_id: self.block_id,
            length: self.written,
            tier_alias: alias.clone(),
        });
        Ok((self.written, alias))
    }

    /// Writes the block's record into its directory: to a temporary name,
    /// then renamed into place (a half-written record never exists). A
    /// failed write leaves no temporary file behind.
    fn write_record(&self, meta: &BlockMeta) -> Result<(), StoreError> {
        let d = &self.store.0.dirs[self.dir];
        let tmp = d.root.join("tmp").join(self.block_id.to_string());
        let final_path = d.meta_path(self.block_id);
        let written = (|| {
            let mut f = File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(&meta.encode()).map_err(io(&tmp))?;
            if self.durable {
                f.sync_all().map_err(io(&tmp))?;
            }
            std::fs::rename(&tmp, &final_path).map_err(io(&final_path))
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// Moves the bytes written so far to a directory with room (another
    /// one of the tier, else a slower tier) and goes on writing there.
    fn move_elsewhere(&mut self) -> Result<(), StoreError> {
        // Until the move succeeds the block stays where it is (and a
        // failure drops it from there, as any failed write).
        let (old_dir, file_id) = (self.dir, super::file_id_of(self.block_id));
        let new_dir = self.store.reserve_instead_of(old_dir, self.max_len)?;
        let (file, path) = self
            .store
            .open_data_file(new_dir, self.block_id)
            .inspect_err(|_| self.store.release(new_dir, self.max_len))?;
        if let Err(e) = copy_range(&self.file, &file, self.offset_in_file, self.extent) {
            punch_hole(&file, self.offset_in_file, self.extent);
            self.store.not_writing(new_dir, file_id);
            self.store.release(new_dir, self.max_len);
            return Err(io(&path)(e));
        }
        punch_hole(&self.file, self.offset_in_file, self.extent);
        self.store.not_writing(old_dir, file_id);
        self.store.release(old_dir, self.max_len);
        tracing::info!(
            block_id = self.block_id,
            from = %self.path.display(),
            to = %path.display(),
            "block moved to another cache directory: the disk was full"
        );
        self.dir = new_dir;
        self.file = file;
        self.path = path;
        Ok(())
    }

    fn discard(&mut self) {
        punch_hole(&self.file, self.offset_in_file, self.extent);
        self.store.release(self.dir, self.max_len);
    }
}

impl Drop for BlockWriter {
    fn drop(&mut self) {
        if !self.done {
            self.discard();
            self.store.writer_done(self.dir, self.block_id);
        }
    }
}

/// Copies `len` bytes at `offset` of `from` to the same place in `to`.
fn copy_range(from: &File, to: &File, offset: u64, len: u64) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK_SIZE.min(len) as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        from.read_exact_at(&mut buf[..n], offset + done)?;
        to.write_all_at(&buf[..n], offset + done)?;
        done += n as u64;
    }
    Ok(())
}
