//! A fetch for a load (`CacheBlock`): the block's pieces stream from the
//! UFS straight into the cache. Each 1 MiB checksum chunk is written, and
//! its CRC computed, as soon as its bytes are in, so a load holds one
//! chunk per piece in flight, never a whole block (a reader's fetch keeps
//! its pieces for the readers that follow it, `read_through`). A load
//! that finds no room in any tier is refused before it fetches anything.

use crate::block_store::{BlockStore, BlockWriter, StoreError, CHUNK_SIZE};
use crate::metrics::WorkerMetrics;
use alluxio_common::{AlluxioError, Result};
use alluxio_ufs::UnderFileSystem;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// Where the bytes of one block go, shared by its pieces in flight.
type SharedWriter = Arc<Mutex<BlockWriter>>;

/// A block to fetch: its id, where it starts in its UFS file, and the
/// ranged requests that make it, in order, each starting at a multiple of
/// `CHUNK_SIZE` from `start`.
pub(crate) struct BlockPieces {
    pub block_id: u64,
    pub start: u64,
    pub pieces: Vec<Range<u64>>,
}

/// Fetches `block` from the UFS file `path`, `parallelism` pieces at once,
/// into a new cached block. Fails with ResourceExhausted, before reading
/// anything, when no tier has room.
pub(crate) async fn fetch_into_cache(
    store: &BlockStore,
    metrics: &WorkerMetrics,
    ufs: Arc<dyn UnderFileSystem>,
    path: &str,
    block: BlockPieces,
    parallelism: usize,
) -> Result<()> {
    let BlockPieces {
        block_id,
        start,
        pieces,
    } = block;
    let len: u64 = pieces.iter().map(|p| p.end - p.start).sum();
    let store = store.clone();
    let writer = blocking(move || store.create_block(block_id, start, len, 0))
        .await?
        .map_err(|e| store_error(block_id, e))?
        .refetchable();
    let writer: SharedWriter = Arc::new(Mutex::new(writer));
    futures::stream::iter(pieces)
        .map(Ok)
        .try_for_each_concurrent(parallelism.max(1), |piece| {
            let (ufs, writer) = (ufs.clone(), writer.clone());
            async move {
                let chunk_index = (piece.start - start) / CHUNK_SIZE;
                piece_into_cache(&*ufs, path, piece, chunk_index, &writer, metrics).await
            }
        })
        .await?;
    let writer = Arc::try_unwrap(writer)
        .map_err(|_| AlluxioError::Internal("a piece still writes the block".into()))?
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    blocking(move || writer.commit())
        .await?
        .map_err(|e| store_error(block_id, e))?;
    Ok(())
}

/// Streams one piece into its chunks of the block, from `chunk_index` on.
async fn piece_into_cache(
    ufs: &dyn UnderFileSystem,
    path: &str,
    piece: Range<u64>,
    mut chunk_index: u64,
    writer: &SharedWriter,
    metrics: &WorkerMetrics,
) -> Result<()> {
    let expected = piece.end - piece.start;
    metrics.ufs_requests.inc();
    let mut stream = ufs.read_stream(path, piece.clone()).await?;
    let (mut chunk, mut fill, mut received) = (Vec::new(), 0u64, 0u64);
    while let Some(bytes) = stream.next().await {
        let mut bytes = bytes?;
        received += bytes.len() as u64;
        if received > expected {
            break;
        }
        while !bytes.is_empty() {
            let take = ((CHUNK_SIZE - fill) as usize).min(bytes.len());
            chunk.push(bytes.split_to(take));
            fill += take as u64;
            if fill == CHUNK_SIZE {
                place_chunk(writer, chunk_index, std::mem::take(&mut chunk), metrics).await?;
                (chunk_index, fill) = (chunk_index + 1, 0);
            }
        }
    }
    if received != expected {
        return Err(AlluxioError::Unavailable(format!(
            "UFS returned {received} bytes for bytes {}..{} of {path} (did the file change?)",
            piece.start, piece.end
        )));
    }
    if fill > 0 {
        place_chunk(writer, chunk_index, chunk, metrics).await?;
    }
    Ok(())
}

/// Checksums and writes one chunk off the async threads.
async fn place_chunk(
    writer: &SharedWriter,
    index: u64,
    chunk: Vec<Bytes>,
    metrics: &WorkerMetrics,
) -> Result<()> {
    let len: u64 = chunk.iter().map(|b| b.len() as u64).sum();
    let writer = writer.clone();
    let placed = blocking(move || {
        let mut crc = crc32fast::Hasher::new();
        chunk.iter().for_each(|b| crc.update(b));
        let crc = crc.finalize();
        let mut writer = writer.lock().unwrap_or_else(|p| p.into_inner());
        let id = writer.block_id();
        writer
            .place_chunk(index, &chunk, crc)
            .map_err(|e| store_error(id, e))
    })
    .await?;
    metrics.bytes_read_ufs.inc_by(len);
    placed
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AlluxioError::Internal(e.to_string()))
}

/// A store failure as the load sees it: no room is ResourceExhausted
/// (another worker may have some), the rest Internal.
fn store_error(block_id: u64, e: StoreError) -> AlluxioError {
    let message = format!("cannot cache block {block_id}: {e}");
    if e.is_no_room() {
        AlluxioError::ResourceExhausted(message)
    } else {
        AlluxioError::Internal(message)
    }
}
