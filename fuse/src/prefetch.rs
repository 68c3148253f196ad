//! Read-ahead across files: a program that reads a directory's files in
//! the order of its listing (a data loader, `cat *`, `cp -r`) gets the
//! next `prefetch_files` of them fetched while it reads the current one,
//! so that many small UFS requests are in flight instead of one at a time.
//!
//! - What "in order" means comes from the daemon's last listing of the
//!   directory (readdir): two opens of neighbouring entries start it;
//!   random opens never do.
//! - Only small completed files are prefetched (at most
//!   `prefetch_file_max` bytes each; bigger files have block read-ahead),
//!   whole, through the client library: the worker caches them on the way
//!   as any read does, and the bytes wait here for the open that comes
//!   next. The bytes held are bounded by `files × file_max`; the oldest
//!   go first, and the worker still has them.
//! - The metadata used is what the listing gave the same caller (the
//!   daemon's metadata cache, per user), so a prefetch reads nothing that
//!   user could not open; the open itself still checks.

use crate::handles::Piece;
use alluxio_client::FileSystem;
use alluxio_common::auth::{acting_for, ActAs};
use alluxio_proto::grpc::{FileInfo, ReadType};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Directories whose listing order is remembered at most.
const LISTINGS: usize = 16;
/// Entries of one directory remembered at most (beyond, no prefetch).
const LISTING_ENTRIES: usize = 100_000;
/// Files remembered as seen at most; the set starts afresh beyond.
const SEEN: usize = 1_000_000;

/// The order of one directory's entries, and where its reader is.
#[derive(Default)]
struct Listing {
    names: Vec<String>,
    position: HashMap<String, usize>,
    /// The entry opened last.
    last_open: Option<usize>,
    /// Entries up to here were handed to prefetch tasks.
    scheduled_to: usize,
}

#[derive(Default)]
struct Held {
    /// File id -> its bytes, waiting for an open.
    files: HashMap<u64, Piece>,
    /// Insertion order, for dropping the oldest.
    order: VecDeque<u64>,
    bytes: u64,
}

pub struct FilePrefetcher {
    files_ahead: usize,
    file_max: u64,
    read_type: Option<ReadType>,
    listings: Mutex<(VecDeque<String>, HashMap<String, Listing>)>,
    held: Mutex<Held>,
    in_flight: Arc<Semaphore>,
    /// Files opened or fetched ahead already: the kernel's page cache or
    /// the worker has them, so fetching them again would only burn CPU.
    seen: Mutex<HashSet<u64>>,
}

/// A file to fetch ahead, as its caller listed it.
pub struct Ahead {
    pub path: String,
}

impl FilePrefetcher {
    pub fn new(files_ahead: usize, file_max: u64, read_type: Option<ReadType>) -> Self {
        FilePrefetcher {
            files_ahead,
            file_max,
            read_type,
            listings: Mutex::new((VecDeque::new(), HashMap::new())),
            held: Mutex::new(Held::default()),
            in_flight: Arc::new(Semaphore::new(files_ahead.max(1))),
            seen: Mutex::new(HashSet::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.files_ahead > 0
    }

    /// Records entries `from..` of the listing of `dir` (readdir hands
    /// them out batch by batch; a listing from 0 starts afresh).
    pub fn listed(&self, dir: &str, from: usize, names: impl Iterator<Item = String>) {
        if !self.enabled() {
            return;
        }
        let mut guard = lock(&self.listings);
        let (order, listings) = &mut *guard;
        if from == 0 || !listings.contains_key(dir) {
            if listings.len() >= LISTINGS && !listings.contains_key(dir) {
                if let Some(oldest) = order.pop_front() {
                    listings.remove(&oldest);
                }
            }
            order.retain(|d| d != dir);
            order.push_back(dir.to_string());
            listings.insert(dir.to_string(), Listing::default());
        }
        let listing = listings.get_mut(dir).expect("inserted");
        if listing.names.len() != from {
            return; // a batch out of order: keep what is contiguous
        }
        for name in names {
            if listing.names.len() >= LISTING_ENTRIES {
                break;
            }
            listing.position.insert(name.clone(), listing.names.len());
            listing.names.push(name);
        }
    }

    /// An open of `name` in `dir`: the entries to fetch now, if the
    /// reader is going through the directory in order.
    pub fn opened(&self, dir: &str, name: &str) -> Vec<Ahead> {
        if !self.enabled() {
            return Vec::new();
        }
        let mut guard = lock(&self.listings);
        let Some(listing) = guard.1.get_mut(dir) else {
            return Vec::new();
        };
        let Some(&at) = listing.position.get(name) else {
            return Vec::new();
        };
        let in_order = listing.last_open.is_some_and(|last| at == last + 1);
        listing.last_open = Some(at);
        if !in_order {
            return Vec::new();
        }
        let from = listing.scheduled_to.max(at + 1);
        let to = (at + 1 + self.files_ahead).min(listing.names.len());
        listing.scheduled_to = to.max(listing.scheduled_to);
        let base = dir.trim_end_matches('/');
        (from..to)
            .map(|i| Ahead {
                path: format!("{base}/{}", listing.names[i]),
            })
            .collect()
    }

    /// Whether `info` is worth fetching ahead: a small completed file,
    /// not opened or fetched here before, not wholly cached in Alluxio
    /// (as far as the listing knew): what is worth hiding is the UFS's
    /// latency. Marks it seen.
    pub fn wants(&self, info: &FileInfo) -> bool {
        let small =
            !info.folder && info.completed && info.length > 0 && info.length <= self.file_max;
        small && info.in_alluxio_percentage < 100 && self.first_sight(info.file_id)
    }

    /// Records that file `id` was opened (or fetched); true the first time.
    pub fn first_sight(&self, id: u64) -> bool {
        if !self.enabled() {
            return false;
        }
        let mut seen = lock(&self.seen);
        if seen.len() >= SEEN {
            seen.clear();
        }
        seen.insert(id)
    }

    /// Fetches `info` whole in the background, for `caller`.
    pub fn fetch(self: &Arc<Self>, fs: FileSystem, caller: ActAs, info: FileInfo) {
        let this = self.clone();
        tokio::spawn(async move {
            let Ok(_permit) = this.in_flight.clone().acquire_owned().await else {
                return;
            };
            if lock(&this.held).files.contains_key(&info.file_id) {
                return;
            }
            let id = info.file_id;
            let path = info.path.clone();
            let Ok(reader) = fs.reader(info, this.read_type) else {
                return;
            };
            match acting_for(caller, Piece::fetch(&reader, 0, reader.len())).await {
                Ok(piece) => this.hold(id, piece),
                Err(e) => tracing::debug!(path, error = %e, "prefetch failed"),
            }
        });
    }

    fn hold(&self, id: u64, piece: Piece) {
        let budget = self.file_max.saturating_mul(self.files_ahead as u64);
        let mut held = lock(&self.held);
        held.bytes += piece.len;
        if let Some(old) = held.files.insert(id, piece) {
            held.bytes -= old.len;
        } else {
            held.order.push_back(id);
        }
        while held.bytes > budget {
            let Some(oldest) = held.order.pop_front() else {
                break;
            };
            if let Some(p) = held.files.remove(&oldest) {
                held.bytes -= p.len;
            }
        }
    }

    /// The bytes of file `id` if they were fetched ahead (handed over
    /// once: the kernel's page cache keeps them from then on).
    pub(crate) fn take(&self, id: u64) -> Option<Piece> {
        let mut held = lock(&self.held);
        let piece = held.files.remove(&id)?;
        held.bytes -= piece.len;
        held.order.retain(|i| *i != id);
        Some(piece)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> impl Iterator<Item = String> {
        (0..n).map(|i| format!("f{i:03}"))
    }

    fn paths(a: Vec<Ahead>) -> Vec<String> {
        a.into_iter().map(|a| a.path).collect()
    }

    #[test]
    fn reading_a_listed_directory_in_order_fetches_the_next_entries_once() {
        let p = FilePrefetcher::new(3, 1 << 20, None);
        p.listed("/d", 0, names(5));
        p.listed("/d", 5, names(10).skip(5));
        assert!(
            p.opened("/d", "f000").is_empty(),
            "one open is not an order"
        );
        assert_eq!(
            paths(p.opened("/d", "f001")),
            ["/d/f002", "/d/f003", "/d/f004"]
        );
        assert_eq!(
            paths(p.opened("/d", "f002")),
            ["/d/f005"],
            "only what is new"
        );
        assert!(p.opened("/d", "f007").is_empty(), "a jump is not in order");
        assert_eq!(
            paths(p.opened("/d", "f008")),
            ["/d/f009"],
            "the listing ends"
        );
        assert!(p.opened("/d", "nope").is_empty());
        assert!(p.opened("/other", "f001").is_empty());
    }

    #[test]
    fn a_new_listing_starts_afresh_and_few_listings_are_kept() {
        let p = FilePrefetcher::new(2, 1 << 20, None);
        p.listed("/d", 0, names(4));
        p.opened("/d", "f000");
        assert_eq!(paths(p.opened("/d", "f001")), ["/d/f002", "/d/f003"]);
        p.listed("/d", 0, names(4));
        p.opened("/d", "f000");
        assert_eq!(paths(p.opened("/d", "f001")), ["/d/f002", "/d/f003"]);
        for i in 0..LISTINGS {
            p.listed(&format!("/x{i}"), 0, names(2));
        }
        p.opened("/d", "f000");
        assert!(p.opened("/d", "f001").is_empty(), "the oldest listing went");
        let off = FilePrefetcher::new(0, 1 << 20, None);
        off.listed("/d", 0, names(4));
        off.opened("/d", "f000");
        assert!(off.opened("/d", "f001").is_empty());
    }

    #[test]
    fn held_bytes_stay_within_the_budget_and_are_handed_over_once() {
        let p = FilePrefetcher::new(2, 10, None);
        for id in 1..=3 {
            p.hold(id, Piece::from_bytes(bytes::Bytes::from(vec![0u8; 10])));
        }
        assert!(p.take(1).is_none(), "the oldest was dropped for the budget");
        assert_eq!(p.take(2).map(|p| p.len), Some(10));
        assert!(p.take(2).is_none(), "handed over once");
        assert!(p.take(3).is_some());
        assert_eq!(lock(&p.held).bytes, 0);
        let info = |id, len, completed, cached| FileInfo {
            file_id: id,
            length: len,
            completed,
            in_alluxio_percentage: cached,
            ..Default::default()
        };
        assert!(p.wants(&info(1, 10, true, 0)));
        assert!(!p.wants(&info(1, 10, true, 0)), "once");
        p.first_sight(2);
        assert!(!p.wants(&info(2, 10, true, 0)), "opened here before");
        assert!(!p.wants(&info(3, 10, true, 100)), "cached in Alluxio");
        assert!(
            !p.wants(&info(4, 11, true, 0)),
            "bigger files have block read-ahead"
        );
        assert!(
            !p.wants(&info(5, 5, false, 0)),
            "files being written are not"
        );
        assert!(!p.wants(&info(6, 0, true, 0)));
    }
}
