//! `alluxio fs` commands that move file data: cat, head, tail,
//! copyFromLocal, copyToLocal, cp, load, location, checksum.

use crate::output::print_json;
use crate::progress::CopyProgress;
use alluxio_client::FileSystem;
use alluxio_common::format::format_bytes;
use alluxio_common::AlluxioError;
use alluxio_proto::grpc::{FileInfo, ReadType, WriteType};
use bytes::Bytes;
use serde_json::json;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const COPY_CHUNK: usize = 4 << 20;

/// Writes to file descriptor 1 directly: `std::io::Stdout` is line
/// buffered and scans every write for newlines, which costs more than the
/// read itself for large binary files.
fn stdout_sink() -> impl FnMut(Bytes) -> Result<(), AlluxioError> {
    use std::os::fd::FromRawFd;
    let _ = std::io::stdout().flush();
    // SAFETY: fd 1 is open for the life of the process; ManuallyDrop keeps
    // this File from closing it.
    let mut out = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(1) });
    move |b: Bytes| {
        out.write_all(&b)
            .map_err(|e| AlluxioError::Internal(format!("cannot write to stdout: {e}")))
    }
}

/// `cat`, `head -c N`, `tail -c N`.
pub async fn print_range(
    fs: &FileSystem,
    path: &str,
    read_type: Option<ReadType>,
    range: Range,
) -> Result<(), AlluxioError> {
    let reader = fs.open(path, read_type).await?;
    let len = reader.len();
    let (offset, n) = match range {
        Range::All => (0, len),
        Range::Head(n) => (0, n.min(len)),
        Range::Tail(n) => (len.saturating_sub(n), n.min(len)),
    };
    reader.read_range(offset, n, stdout_sink()).await?;
    std::io::stdout()
        .flush()
        .map_err(|e| AlluxioError::Internal(e.to_string()))
}

pub enum Range {
    All,
    Head(u64),
    Tail(u64),
}

/// Local files (a file or a directory tree) into Alluxio.
pub async fn copy_from_local(
    fs: &FileSystem,
    src: &Path,
    dst: &str,
    write_type: Option<WriteType>,
    progress: &CopyProgress,
) -> Result<u64, AlluxioError> {
    let meta = std::fs::metadata(src)
        .map_err(|e| AlluxioError::NotFound(format!("{}: {e}", src.display())))?;
    if meta.is_dir() {
        let mut total = 0;
        let mut entries: Vec<_> = std::fs::read_dir(src)
            .map_err(|e| AlluxioError::InvalidArgument(format!("{}: {e}", src.display())))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().to_string();
            let child = format!("{}/{name}", dst.trim_end_matches('/'));
            total += Box::pin(copy_from_local(fs, &e.path(), &child, write_type, progress)).await?;
        }
        return Ok(total);
    }
    let mut file = std::fs::File::open(src)
        .map_err(|e| AlluxioError::NotFound(format!("{}: {e}", src.display())))?;
    let mut writer = fs.create(dst, write_type).await?;
    let mut total = 0u64;
    loop {
        let mut buf = vec![0u8; COPY_CHUNK];
        let n = match file.read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                writer.abandon().await;
                return Err(AlluxioError::Internal(format!(
                    "reading {}: {e}",
                    src.display()
                )));
            }
        };
        if n == 0 {
            break;
        }
        buf.truncate(n);
        total += n as u64;
        if let Err(e) = writer.write(Bytes::from(buf)).await {
            writer.abandon().await;
            return Err(e);
        }
        progress.add_bytes(n as u64);
    }
    writer.close().await?;
    progress.file_done();
    Ok(total)
}

/// Files and bytes of a local file or tree (for a progress bar).
pub fn local_totals(src: &Path) -> (u64, u64) {
    let Ok(meta) = std::fs::metadata(src) else {
        return (0, 0);
    };
    if !meta.is_dir() {
        return (1, meta.len());
    }
    std::fs::read_dir(src)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| local_totals(&e.path()))
        .fold((0, 0), |(f, b), (f2, b2)| (f + f2, b + b2))
}

/// Files and bytes below an Alluxio path (for a progress bar).
pub async fn alluxio_totals(fs: &FileSystem, path: &str) -> Result<(u64, u64), AlluxioError> {
    let files = files_below(fs, path).await?;
    Ok((files.len() as u64, files.iter().map(|f| f.length).sum()))
}

/// An Alluxio file or directory tree to local files.
pub async fn copy_to_local(
    fs: &FileSystem,
    src: &str,
    dst: &Path,
    read_type: Option<ReadType>,
    progress: &CopyProgress,
) -> Result<u64, AlluxioError> {
    let info = fs.master().get_status(src, None).await?;
    if info.folder {
        std::fs::create_dir_all(dst)
            .map_err(|e| AlluxioError::Internal(format!("{}: {e}", dst.display())))?;
        let mut total = 0;
        for child in fs.master().list_status(src, false, None).await? {
            total += Box::pin(copy_to_local(
                fs,
                &child.path,
                &dst.join(&child.name),
                read_type,
                progress,
            ))
            .await?;
        }
        return Ok(total);
    }
    let reader = fs.open(src, read_type).await?;
    let tmp = dst.with_file_name(format!(
        ".{}.alluxio-copy",
        dst.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let mut out = std::fs::File::create(&tmp)
        .map_err(|e| AlluxioError::Internal(format!("{}: {e}", tmp.display())))?;
    let result = reader
        .read_range(0, reader.len(), |b| {
            out.write_all(&b)
                .map_err(|e| AlluxioError::Internal(e.to_string()))?;
            progress.add_bytes(b.len() as u64);
            Ok(())
        })
        .await;
    match result.and_then(|()| {
        out.sync_all()
            .map_err(|e| AlluxioError::Internal(e.to_string()))
    }) {
        Ok(()) => {
            std::fs::rename(&tmp, dst)
                .map_err(|e| AlluxioError::Internal(format!("{}: {e}", dst.display())))?;
            progress.file_done();
            Ok(reader.len())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Alluxio to Alluxio.
pub async fn copy(
    fs: &FileSystem,
    src: &str,
    dst: &str,
    read_type: Option<ReadType>,
    write_type: Option<WriteType>,
    progress: &CopyProgress,
) -> Result<u64, AlluxioError> {
    let info = fs.master().get_status(src, None).await?;
    if info.folder {
        let mut total = 0;
        for child in fs.master().list_status(src, false, None).await? {
            let target = format!("{}/{}", dst.trim_end_matches('/'), child.name);
            total += Box::pin(copy(
                fs,
                &child.path,
                &target,
                read_type,
                write_type,
                progress,
            ))
            .await?;
        }
        return Ok(total);
    }
    let reader = fs.open(src, read_type).await?;
    let mut writer = fs.create(dst, write_type).await?;
    let mut offset = 0;
    while offset < reader.len() {
        let piece = match reader.read_at(offset, COPY_CHUNK as u64).await {
            Ok(p) => p,
            Err(e) => {
                writer.abandon().await;
                return Err(e);
            }
        };
        offset += piece.len() as u64;
        let n = piece.len() as u64;
        if let Err(e) = writer.write(piece).await {
            writer.abandon().await;
            return Err(e);
        }
        progress.add_bytes(n);
    }
    writer.close().await?;
    progress.file_done();
    Ok(reader.len())
}

/// Files below `path` (or `path` itself).
async fn files_below(fs: &FileSystem, path: &str) -> Result<Vec<FileInfo>, AlluxioError> {
    let info = fs.master().get_status(path, None).await?;
    if !info.folder {
        return Ok(vec![info]);
    }
    Ok(fs
        .master()
        .list_status(path, true, None)
        .await?
        .into_iter()
        .filter(|i| !i.folder)
        .collect())
}

/// `load --local`: cache every block below `path` in a worker on this
/// host, driven by this process, with a progress bar.
pub async fn load_here(fs: &FileSystem, path: &str, json: bool) -> Result<(), AlluxioError> {
    let files = files_below(fs, path).await?;
    let total: u64 = files.iter().map(|f| f.length).sum();
    let bar = crate::progress::bytes_bar(total, json);
    let start = std::time::Instant::now();
    let mut fetched = 0;
    let mut done_before = 0;
    for f in &files {
        bar.set_message(f.path.clone());
        let base = done_before;
        fetched += fs
            .load(f, true, |done| bar.set_position(base + done))
            .await?;
        done_before += f.length;
    }
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    if json {
        print_json(
            &json!({"path": path, "files": files.len(), "bytes": total, "fetchedBytes": fetched, "seconds": secs}),
        );
    } else {
        println!(
            "{path} loaded: {} files, {} ({} fetched from the UFS) in {secs:.2}s ({}/s)",
            files.len(),
            format_bytes(total),
            format_bytes(fetched),
            format_bytes((fetched as f64 / secs) as u64)
        );
    }
    Ok(())
}

/// `location`: which workers hold each block.
pub async fn location(fs: &FileSystem, path: &str, json: bool) -> Result<(), AlluxioError> {
    let info = fs.master().get_status(path, None).await?;
    let blocks: Vec<_> = info
        .file_block_infos
        .iter()
        .map(|b| {
            let block = b.block_info.clone().unwrap_or_default();
            let hosts = crate::output::block_locations(&block);
            (block.block_id, block.length, b.offset, hosts)
        })
        .collect();
    if json {
        print_json(&json!(blocks
            .iter()
            .map(|(id, len, off, hosts)| json!({"blockId": id, "length": len, "offset": off, "locations": hosts}))
            .collect::<Vec<_>>()));
    } else {
        println!(
            "{path} with file id {} has {} blocks:",
            info.file_id,
            blocks.len()
        );
        for (id, len, off, hosts) in blocks {
            let at = if hosts.is_empty() {
                "not cached".to_string()
            } else {
                hosts.join(", ")
            };
            println!("  block {id} (offset {off}, {len} bytes): {at}");
        }
    }
    Ok(())
}

/// `checksum`: MD5 of the file's bytes, as Alluxio prints it.
pub async fn checksum(
    fs: &FileSystem,
    path: &str,
    read_type: Option<ReadType>,
    json: bool,
) -> Result<(), AlluxioError> {
    use md5::Digest;
    let reader = fs.open(path, read_type).await?;
    let mut hasher = md5::Md5::new();
    reader
        .read_range(0, reader.len(), |b| {
            hasher.update(&b);
            Ok(())
        })
        .await?;
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if json {
        print_json(&json!({"path": path, "md5": hex}));
    } else {
        println!("md5sum: {hex}");
    }
    Ok(())
}

pub fn local_path(raw: &str) -> PathBuf {
    PathBuf::from(raw.strip_prefix("file://").unwrap_or(raw))
}
