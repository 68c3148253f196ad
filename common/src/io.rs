//! File reads and writes shared by the worker and the client's
//! short-circuit path, and files only their owner may read (the journal,
//! keys).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates (or truncates) `path` for writing, readable and writable by its
/// owner only (mode 0600): for files that may hold secrets.
pub fn create_private(path: &Path) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its mode through open(2): set it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// Creates `dir` (and its parents) and makes it its owner's only (mode
/// 0700), also when it existed with a wider mode. New directories survive
/// a power loss (see [`create_dir_all_durable`]).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    create_dir_all_durable(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// `create_dir_all` whose new directories survive a power loss: the parent
/// of each directory it creates is fsynced after the creation (a
/// directory's name is an entry in its parent, like a file's).
pub fn create_dir_all_durable(dir: &Path) -> std::io::Result<()> {
    let mut missing = Vec::new();
    let mut current = dir;
    while !current.is_dir() {
        missing.push(current);
        match current.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => current = parent,
            _ => break,
        }
    }
    for new in missing.into_iter().rev() {
        match std::fs::create_dir(new) {
            Ok(()) => sync_parent(new)?,
            // Made meanwhile by someone else, who syncs it.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && new.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes `data` to the end of `file` in pieces of 8 MiB, starting each
/// piece's writeback at once and waiting for the one before it to reach
/// the disk. A big file (a checkpoint, a snapshot) then never has hundreds
/// of megabytes dirty at its final fsync, which would flush them at once
/// and hold up every other fsync of the disk — the journal's, that is,
/// every acknowledgement — for as long. Linux's `sync_file_range`; best
/// effort (the caller's fsync still reports errors).
pub fn write_with_early_writeback(file: &mut File, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    const PIECE: usize = 8 << 20;
    let fd = file.as_raw_fd();
    let start = std::io::Seek::stream_position(file)? as i64;
    let mut offset = start;
    for piece in data.chunks(PIECE) {
        file.write_all(piece)?;
        // SAFETY: sync_file_range takes a descriptor we own and plain
        // integers; it touches no memory of ours.
        unsafe {
            libc::sync_file_range(fd, offset, piece.len() as i64, libc::SYNC_FILE_RANGE_WRITE);
            if offset - start >= PIECE as i64 {
                libc::sync_file_range(
                    fd,
                    offset - PIECE as i64,
                    PIECE as i64,
                    libc::SYNC_FILE_RANGE_WAIT_BEFORE
                        | libc::SYNC_FILE_RANGE_WRITE
                        | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                );
            }
        }
        offset += piece.len() as i64;
    }
    Ok(())
}

/// fsyncs directory `dir`, so that entries created or renamed in it survive
/// a power loss (the file's own fsync does not cover its name).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The parent directory of `path`, fsynced (see [`sync_dir`]).
pub fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// Replaces `path` with `bytes`, readable by its owner only (mode 0600):
/// written to `<name>.tmp` beside it, synced, renamed over it and the
/// directory synced, so a reader sees the old contents or the new ones,
/// never half a file, and the new ones survive a power loss.
pub fn replace_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    // A leftover (even a link planted there) is not written through.
    let _ = std::fs::remove_file(&tmp);
    let mut f = create_private(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_parent(path)
}

/// Reads exactly `len` bytes at `offset` into a new buffer, without first
/// zeroing it (for block-sized reads the memset costs as much as the copy
/// from the page cache). Fails with `UnexpectedEof` on a short file.
pub fn read_exact_at(file: &File, len: usize, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut buf: Vec<u8> = Vec::with_capacity(len);
    let mut filled = 0usize;
    while filled < len {
        // SAFETY: the pointer and length stay inside the allocation's
        // spare capacity; the kernel writes at most `len - filled` bytes
        // there, and `set_len` below only covers bytes it wrote.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                buf.as_mut_ptr().add(filled) as *mut libc::c_void,
                len - filled,
                (offset + filled as u64) as libc::off_t,
            )
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("file ends after {} of {len} bytes", filled),
            ));
        }
        filled += n as usize;
        // SAFETY: the first `filled` bytes were written by pread.
        unsafe { buf.set_len(filled) };
    }
    Ok(buf)
}

/// Writes all of `chunks`, in order, to `file` at `offset` with as few
/// system calls as they allow (`pwritev`, which std offers only
/// unstably): bytes that arrived in many buffers need not be joined first.
pub fn write_all_vectored_at<B: AsRef<[u8]>>(
    file: &File,
    chunks: &[B],
    mut offset: u64,
) -> std::io::Result<()> {
    // At most this many buffers per call (Linux's IOV_MAX).
    const MAX_BUFFERS: usize = 1024;
    let mut slices: Vec<std::io::IoSlice> = chunks
        .iter()
        .map(|c| std::io::IoSlice::new(c.as_ref()))
        .filter(|s| !s.is_empty())
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let count = rest.len().min(MAX_BUFFERS);
        // SAFETY: std::io::IoSlice is ABI-compatible with iovec on Unix, and the
        // `count` slices it points to live until the call returns.
        let written = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                rest.as_ptr().cast::<libc::iovec>(),
                count as libc::c_int,
                offset as libc::off_t,
            )
        };
        if written < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        offset += written as u64;
        std::io::IoSlice::advance_slices(&mut rest, written as usize);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_exact_ranges_and_reports_short_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        assert_eq!(
            super::read_exact_at(&f, 1000, 500).unwrap(),
            &data[500..1500]
        );
        let err = super::read_exact_at(&f, 1000, 99_500).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn directories_are_fsynced_and_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        super::sync_parent(&path).unwrap();
        super::sync_dir(dir.path()).unwrap();
        assert!(super::sync_parent(&dir.path().join("gone/f")).is_err());
    }

    #[test]
    fn vectored_writes_put_every_buffer_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(dir.path().join("f")).unwrap();
        // More buffers than one call takes, some of them empty.
        let chunks: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| vec![i as u8; (i % 7) as usize])
            .collect();
        super::write_all_vectored_at(&f, &chunks, 10).unwrap();
        let written = std::fs::read(dir.path().join("f")).unwrap();
        assert_eq!(&written[..10], &[0; 10], "before the offset: a hole");
        assert_eq!(&written[10..], &chunks.concat()[..]);
    }
}
