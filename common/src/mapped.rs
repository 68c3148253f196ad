//! Block file ranges read through read-only memory mappings.
//!
//! Reading a cached block through a mapping skips the copy out of the page
//! cache that read(2) makes: checksumming a mapped range and handing it on
//! costs about half of copying it (measured on 1 GiB: 0.035 s against
//! 0.07 s for `dd`). Short-circuit readers and the worker's block reads
//! use it.
//!
//! A mapping has one hazard a read(2) does not: touching a page past the
//! end of a file that was truncated after it was mapped raises SIGBUS,
//! which kills the process. Nothing in alluxio-rs truncates a block file in
//! use, but a stray process or a damaged disk may. So every mapping is
//! registered, and a SIGBUS handler puts a page of zeros in place of a page
//! that faulted inside a registered mapping: the reader sees zeros, the
//! chunk's checksum fails, and the block is handled like any other damaged
//! block. A SIGBUS anywhere else goes to the handler that was installed
//! before ours (by default, the process dies as it would have).

use bytes::Bytes;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

/// Mappings that can be alive at once; past that, ranges are copied.
const SLOTS: usize = 1024;

/// One registered mapping: `[start, end)`. A free slot has `end == 0`; a
/// slot being filled or emptied has `end == CLAIMED`, which the handler
/// skips.
struct Slot {
    start: AtomicUsize,
    end: AtomicUsize,
}

const CLAIMED: usize = usize::MAX;

static REGISTRY: [Slot; SLOTS] = [const {
    Slot {
        start: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
    }
}; SLOTS];

static INSTALL: Once = Once::new();
static PREVIOUS_HANDLER: OnceLock<libc::sigaction> = OnceLock::new();
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);

/// Bytes `[offset, offset + len)` of `file`, mapped when possible (copied
/// when too many mappings are alive). `keep_alive` lives as long as the
/// returned bytes do: a lease that stops the block from being evicted, so
/// the bytes cannot change under a holder. Fails with `UnexpectedEof` when
/// the file is shorter than the range.
pub fn read_range<G: Send + 'static>(
    file: &File,
    offset: u64,
    len: usize,
    keep_alive: G,
) -> io::Result<Bytes> {
    let file_len = file.metadata()?.len();
    if offset.saturating_add(len as u64) > file_len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("file ends at {file_len}, before {}", offset + len as u64),
        ));
    }
    if len == 0 {
        return Ok(Bytes::new());
    }
    match MappedRange::map(file, offset, len)? {
        Some(range) => Ok(Bytes::from_owner(Owned {
            range,
            _keep_alive: keep_alive,
        })),
        None => crate::io::read_exact_at(file, len, offset).map(Bytes::from),
    }
}

/// The bytes of a mapping together with what must outlive them.
struct Owned<G> {
    range: MappedRange,
    _keep_alive: G,
}

impl<G> AsRef<[u8]> for Owned<G> {
    fn as_ref(&self) -> &[u8] {
        self.range.as_slice()
    }
}

/// A registered read-only shared mapping of part of a file.
struct MappedRange {
    /// Start of the mapping (page aligned) and its length.
    base: *mut libc::c_void,
    map_len: usize,
    /// Where the requested bytes start inside the mapping, and how many.
    skip: usize,
    len: usize,
    slot: usize,
}

// SAFETY: the mapping is read-only and owned by this value alone; the
// pointer is only dereferenced through `as_slice`.
unsafe impl Send for MappedRange {}
// SAFETY: as above; shared access only ever reads the mapping.
unsafe impl Sync for MappedRange {}

impl MappedRange {
    /// Maps and registers the range; `None` when every slot is taken.
    fn map(file: &File, offset: u64, len: usize) -> io::Result<Option<MappedRange>> {
        install_handler();
        let Some(slot) = claim_slot() else {
            return Ok(None);
        };
        let page = PAGE_SIZE.load(Ordering::Relaxed) as u64;
        let aligned = offset - offset % page;
        let skip = (offset - aligned) as usize;
        let map_len = skip + len;
        // SAFETY: a fresh mapping chosen by the kernel (no MAP_FIXED), of a
        // file descriptor that is open; MAP_POPULATE only pre-faults.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                file.as_raw_fd(),
                aligned as libc::off_t,
            )
        };
        if base == libc::MAP_FAILED {
            let err = io::Error::last_os_error();
            release_slot(slot);
            return Err(err);
        }
        let start = base as usize;
        REGISTRY[slot].start.store(start, Ordering::SeqCst);
        REGISTRY[slot].end.store(start + map_len, Ordering::SeqCst);
        Ok(Some(MappedRange {
            base,
            map_len,
            skip,
            len,
            slot,
        }))
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is `map_len` readable bytes until drop, and
        // the SIGBUS handler keeps every page of it readable even when the
        // file shrinks.
        unsafe { std::slice::from_raw_parts((self.base as *const u8).add(self.skip), self.len) }
    }
}

impl Drop for MappedRange {
    fn drop(&mut self) {
        // Unregister first: once unmapped, the addresses may be reused by
        // a mapping that is not ours.
        REGISTRY[self.slot].end.store(CLAIMED, Ordering::SeqCst);
        // SAFETY: `base`/`map_len` are exactly what mmap returned.
        unsafe { libc::munmap(self.base, self.map_len) };
        release_slot(self.slot);
    }
}

fn claim_slot() -> Option<usize> {
    (0..SLOTS).find(|&i| {
        REGISTRY[i]
            .end
            .compare_exchange(0, CLAIMED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    })
}

fn release_slot(slot: usize) {
    REGISTRY[slot].start.store(0, Ordering::SeqCst);
    REGISTRY[slot].end.store(0, Ordering::SeqCst);
}

/// True when `addr` lies in a registered mapping. Async-signal-safe: only
/// atomic loads.
fn is_registered(addr: usize) -> bool {
    REGISTRY.iter().any(|slot| {
        let end = slot.end.load(Ordering::SeqCst);
        end != 0 && end != CLAIMED && slot.start.load(Ordering::SeqCst) <= addr && addr < end
    })
}

fn install_handler() {
    INSTALL.call_once(|| {
        // SAFETY: sysconf and sigaction with valid arguments; the handler
        // only makes async-signal-safe calls (mmap, sigaction).
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE);
            if page > 0 {
                PAGE_SIZE.store(page as usize, Ordering::Relaxed);
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &action, &mut previous) == 0 {
                let _ = PREVIOUS_HANDLER.set(previous);
            }
        }
    });
}

extern "C" fn on_sigbus(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    if is_registered(addr) {
        let page = PAGE_SIZE.load(Ordering::Relaxed);
        // SAFETY: replaces exactly one page of our own registered mapping
        // with zeros; the faulting access is then retried and succeeds.
        let zero = unsafe {
            libc::mmap(
                (addr - addr % page) as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if zero != libc::MAP_FAILED {
            return;
        }
    }
    // Not ours (or the page could not be replaced): what would have
    // happened without us.
    match PREVIOUS_HANDLER.get() {
        Some(previous)
            if previous.sa_sigaction != libc::SIG_DFL && previous.sa_sigaction != libc::SIG_IGN =>
        {
            // SAFETY: calling the handler that was installed, with the
            // signature its flags declare.
            unsafe {
                if previous.sa_flags & libc::SA_SIGINFO != 0 {
                    let handler: extern "C" fn(
                        libc::c_int,
                        *mut libc::siginfo_t,
                        *mut libc::c_void,
                    ) = std::mem::transmute(previous.sa_sigaction);
                    handler(signal, info, context);
                } else {
                    let handler: extern "C" fn(libc::c_int) =
                        std::mem::transmute(previous.sa_sigaction);
                    handler(signal);
                }
            }
        }
        _ => {
            // Back to the default action; the access faults again and the
            // process ends with SIGBUS, as it would have.
            // SAFETY: resetting a signal disposition.
            unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(data: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(data)
            .unwrap();
        (dir, path)
    }

    #[test]
    fn reads_ranges_at_any_offset_and_refuses_short_files() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let (_dir, path) = file_with(&data);
        let f = File::open(&path).unwrap();
        let b = read_range(&f, 12_345, 50_000, ()).unwrap();
        assert_eq!(&b[..], &data[12_345..62_345]);
        assert!(read_range(&f, 0, 0, ()).unwrap().is_empty());
        let err = read_range(&f, 99_000, 2_000, ()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_file_truncated_under_a_mapping_reads_as_zeros_instead_of_crashing() {
        let data = vec![7u8; 4 * 65536];
        let (_dir, path) = file_with(&data);
        let b = read_range(&File::open(&path).unwrap(), 0, data.len(), ()).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(65536)
            .unwrap();
        // Without the handler, touching the second half kills the process.
        assert!(b[..65536].iter().all(|&x| x == 7));
        assert!(b[2 * 65536..].iter().all(|&x| x == 0));
    }

    #[test]
    fn keep_alive_lives_as_long_as_the_bytes() {
        let (_dir, path) = file_with(&[1u8; 10_000]);
        let alive = std::sync::Arc::new(());
        let b = read_range(&File::open(&path).unwrap(), 0, 10_000, alive.clone()).unwrap();
        let part = b.slice(100..200);
        drop(b);
        assert_eq!(std::sync::Arc::strong_count(&alive), 2);
        drop(part);
        assert_eq!(std::sync::Arc::strong_count(&alive), 1);
    }

    #[test]
    fn live_mappings_are_registered() {
        let (_dir, path) = file_with(&[1u8; 10_000]);
        let b = read_range(&File::open(&path).unwrap(), 0, 10_000, ()).unwrap();
        assert!(is_registered(b.as_ptr() as usize + 5_000));
    }
}
