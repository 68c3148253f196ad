//! Pieces of a block being fetched from the UFS: runs of about a MiB of
//! the chunks the UFS delivered, kept as they arrived. Joining the chunks
//! into one buffer would copy every byte once more; the cache writes them
//! with one vectored write per piece instead, and only a reader's slice
//! that spans chunks is joined (into the one message it is sent as).

use bytes::{Bytes, BytesMut};

/// Pieces handed to readers and to the cache hold this many bytes (the
/// last one of a block fewer).
pub const PIECE_BYTES: usize = 1 << 20;

/// Consecutive bytes of a block, as the chunks they arrived in.
#[derive(Clone, Debug, Default)]
pub struct Piece {
    chunks: Vec<Bytes>,
    len: usize,
}

impl Piece {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunks, in order (none empty).
    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push(chunk);
        }
    }

    /// Bytes [from, to) of the piece: a view when they lie in one chunk,
    /// else joined into one buffer.
    pub fn slice(&self, from: usize, to: usize) -> Bytes {
        assert!(from <= to && to <= self.len, "{from}..{to} of {}", self.len);
        let mut start = 0;
        let mut joined: Option<BytesMut> = None;
        for chunk in &self.chunks {
            let end = start + chunk.len();
            if end > from && start < to {
                let part = chunk.slice(from.max(start) - start..to.min(end) - start);
                if joined.is_none() && part.len() == to - from {
                    return part;
                }
                joined
                    .get_or_insert_with(|| BytesMut::with_capacity(to - from))
                    .extend_from_slice(&part);
            }
            start = end;
        }
        joined.map(BytesMut::freeze).unwrap_or_default()
    }
}

/// Gathers what the UFS delivers into pieces of `PIECE_BYTES` without
/// copying: a big delivery (an object store's ranged request arrives as
/// the HTTP body's chunks, a local file in big reads) is split into views,
/// small ones are kept side by side.
#[derive(Default)]
pub struct PieceGatherer {
    open: Piece,
}

impl PieceGatherer {
    /// The pieces complete with `bytes`.
    pub fn push(&mut self, mut bytes: Bytes) -> Vec<Piece> {
        let mut ready = Vec::new();
        while !bytes.is_empty() {
            let take = (PIECE_BYTES - self.open.len).min(bytes.len());
            self.open.push(bytes.split_to(take));
            if self.open.len == PIECE_BYTES {
                ready.push(std::mem::take(&mut self.open));
            }
        }
        ready
    }

    /// The last, shorter piece, if any.
    pub fn finish(&mut self) -> Option<Piece> {
        Some(std::mem::take(&mut self.open)).filter(|p| !p.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::{Piece, PieceGatherer, PIECE_BYTES};
    use bytes::Bytes;

    fn joined(pieces: &[Piece]) -> Vec<u8> {
        pieces
            .iter()
            .flat_map(|p| p.chunks().iter().flat_map(|c| c.to_vec()))
            .collect()
    }

    #[test]
    fn deliveries_are_gathered_into_whole_pieces_without_losing_a_byte() {
        let data: Vec<u8> = (0..5 * PIECE_BYTES + 123)
            .map(|i| (i % 251) as u8)
            .collect();
        let data = Bytes::from(data);
        // Small chunks, one big delivery, and a mix straddling pieces.
        for cuts in [
            vec![4096; data.len().div_ceil(4096)],
            vec![data.len()],
            vec![100, 2 * PIECE_BYTES, PIECE_BYTES - 100, 7, data.len()],
        ] {
            let mut gatherer = PieceGatherer::default();
            let (mut pieces, mut at) = (Vec::new(), 0);
            for len in cuts {
                let end = (at + len).min(data.len());
                pieces.extend(gatherer.push(data.slice(at..end)));
                at = end;
            }
            pieces.extend(gatherer.finish());
            let (last, whole) = pieces.split_last().unwrap();
            assert!(whole.iter().all(|p| p.len() == PIECE_BYTES));
            assert_eq!(last.len(), 123);
            assert!(pieces
                .iter()
                .all(|p| p.chunks().iter().all(|c| !c.is_empty())));
            assert_eq!(joined(&pieces), data);
        }
        assert!(PieceGatherer::default().finish().is_none());
    }

    #[test]
    fn a_slice_is_a_view_inside_a_chunk_and_joined_across_chunks() {
        let mut gatherer = PieceGatherer::default();
        for chunk in [&b"abc"[..], b"", b"defg", b"h"] {
            assert!(gatherer.push(Bytes::copy_from_slice(chunk)).is_empty());
        }
        let piece = gatherer.finish().unwrap();
        assert_eq!(piece.chunks().len(), 3, "the empty chunk is dropped");
        assert_eq!(&piece.slice(0, 8)[..], b"abcdefgh");
        assert_eq!(&piece.slice(2, 4)[..], b"cd");
        assert_eq!(&piece.slice(3, 7)[..], b"defg");
        assert_eq!(piece.slice(4, 6).as_ptr(), piece.chunks()[1][1..].as_ptr());
        assert_eq!(&piece.slice(5, 5)[..], b"");
        assert_eq!(&piece.slice(7, 8)[..], b"h");
    }
}
