//! [`LocalUfs`]: a local (or NFS-mounted) directory as under storage.
//!
//! Unlike object stores it has real directories and atomic renames. New
//! files are written to a hidden temporary file beside the target and
//! renamed into place on completion, so readers never see half a file.
//!
//! Every path stays inside the mounted directory: a path with a NUL, a
//! leading `/`, or a `.`, `..` or empty component is refused, and unless
//! the mount sets `follow_symlinks=true`, so is any path through a
//! symbolic link (checked component by component, and the last one is
//! opened with `O_NOFOLLOW`), since a link may point anywhere on the host.

use crate::{UfsError, UfsResult, UfsStatus, UfsWriter, UnderFileSystem};
use async_trait::async_trait;
use bytes::Bytes;
use std::io::ErrorKind;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Marks our temporary files so listings can skip them.
const TMP_MARKER: &str = ".alluxio_tmp_";

/// The mount option that lets paths go through symbolic links.
pub const FOLLOW_SYMLINKS_OPTION: &str = "follow_symlinks";

#[derive(Debug)]
pub struct LocalUfs {
    uri: String,
    root: PathBuf,
    follow_symlinks: bool,
}

impl LocalUfs {
    pub fn new(uri: String, root: impl Into<PathBuf>) -> Self {
        LocalUfs {
            uri,
            root: root.into(),
            follow_symlinks: false,
        }
    }

    /// Lets paths go through symbolic links (`follow_symlinks=true`).
    pub fn following_symlinks(mut self, follow: bool) -> Self {
        self.follow_symlinks = follow;
        self
    }

    /// The host path of `path`, refused when it could leave the root.
    async fn full(&self, path: &str) -> UfsResult<PathBuf> {
        if path.is_empty() {
            return Ok(self.root.clone());
        }
        let refuse = |why: &str| UfsError::InvalidUri {
            uri: self.display(path),
            reason: format!("outside the mounted directory: {why}"),
        };
        if path.contains('\0') {
            return Err(refuse("a NUL byte"));
        }
        if path.starts_with('/') {
            return Err(refuse("an absolute path"));
        }
        if path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(refuse("a `.`, `..` or empty component"));
        }
        let full = self.root.join(path);
        if !self.follow_symlinks {
            // Each existing component below the root must be no link; the
            // first missing one ends the walk (the rest is being created).
            let mut at = self.root.clone();
            for component in path.split('/') {
                at.push(component);
                match tokio::fs::symlink_metadata(&at).await {
                    Ok(meta) if meta.file_type().is_symlink() => {
                        return Err(refuse("a symbolic link (mount option follow_symlinks)"))
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        Ok(full)
    }

    /// Opens a file for reading; without `follow_symlinks`, `O_NOFOLLOW`
    /// closes the window between the check in [`Self::full`] and the open.
    async fn open_for_read(&self, path: &str) -> UfsResult<tokio::fs::File> {
        let full = self.full(path).await?;
        let mut options = tokio::fs::OpenOptions::new();
        options.read(true);
        if !self.follow_symlinks {
            options.custom_flags(libc::O_NOFOLLOW);
        }
        options.open(full).await.map_err(|e| self.err(path, e))
    }

    fn display(&self, path: &str) -> String {
        if path.is_empty() {
            self.uri.clone()
        } else {
            format!("{}/{path}", self.uri)
        }
    }

    fn err(&self, path: &str, e: std::io::Error) -> UfsError {
        match e.kind() {
            ErrorKind::NotFound => UfsError::NotFound(self.display(path)),
            ErrorKind::AlreadyExists => UfsError::AlreadyExists(self.display(path)),
            ErrorKind::DirectoryNotEmpty => UfsError::DirectoryNotEmpty(self.display(path)),
            _ => UfsError::Other {
                uri: self.uri.clone(),
                reason: format!("{}: {e}", self.display(path)),
            },
        }
    }
}

fn status_of(name: &str, meta: &std::fs::Metadata) -> UfsStatus {
    let mtime_ms = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let length = if meta.is_dir() { 0 } else { meta.len() };
    UfsStatus {
        name: name.to_string(),
        is_dir: meta.is_dir(),
        length,
        mtime_ms,
        fingerprint: if meta.is_dir() {
            String::new()
        } else {
            format!("{length}-{mtime_ms}")
        },
    }
}

#[async_trait]
impl UnderFileSystem for LocalUfs {
    fn uri(&self) -> &str {
        &self.uri
    }

    fn kind(&self) -> &'static str {
        "local"
    }

    async fn check_reachable(&self) -> UfsResult<()> {
        match tokio::fs::metadata(&self.root).await {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(UfsError::Unreachable {
                uri: self.uri.clone(),
                reason: "not a directory".to_string(),
            }),
            Err(e) => Err(UfsError::Unreachable {
                uri: self.uri.clone(),
                reason: e.to_string(),
            }),
        }
    }

    async fn status(&self, path: &str) -> UfsResult<Option<UfsStatus>> {
        let name = path.rsplit('/').next().unwrap_or("");
        match tokio::fs::metadata(self.full(path).await?).await {
            Ok(meta) => Ok(Some(status_of(name, &meta))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotADirectory => Ok(None),
            Err(e) => Err(self.err(path, e)),
        }
    }

    async fn list(&self, path: &str) -> UfsResult<Vec<UfsStatus>> {
        let mut dir = tokio::fs::read_dir(self.full(path).await?)
            .await
            .map_err(|e| self.err(path, e))?;
        let mut out = Vec::new();
        while let Some(entry) = dir.next_entry().await.map_err(|e| self.err(path, e))? {
            let Ok(name) = entry.file_name().into_string() else {
                tracing::warn!(dir = %self.display(path), "skipping a name that is not UTF-8");
                continue;
            };
            if name.starts_with('.') && name.contains(TMP_MARKER) {
                continue;
            }
            // A link is what a reader would find behind it, or nothing
            // when links are not followed (it could not be read).
            let is_link = entry.file_type().await.is_ok_and(|t| t.is_symlink());
            if is_link && !self.follow_symlinks {
                continue;
            }
            match tokio::fs::metadata(entry.path()).await {
                Ok(meta) => out.push(status_of(&name, &meta)),
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(self.err(path, e)),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn open_host_file(&self, path: &str) -> UfsResult<Option<std::fs::File>> {
        Ok(Some(self.open_for_read(path).await?.into_std().await))
    }

    async fn read_range(&self, path: &str, range: Range<u64>) -> UfsResult<Bytes> {
        let mut file = self.open_for_read(path).await?;
        file.seek(std::io::SeekFrom::Start(range.start))
            .await
            .map_err(|e| self.err(path, e))?;
        let want = range.end.saturating_sub(range.start);
        let mut buf = Vec::with_capacity(want.min(64 << 20) as usize);
        file.take(want)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| self.err(path, e))?;
        Ok(Bytes::from(buf))
    }

    async fn read_stream(&self, path: &str, range: Range<u64>) -> UfsResult<crate::ByteStream> {
        const PIECE: u64 = 4 << 20;
        let mut file = self.open_for_read(path).await?;
        file.seek(std::io::SeekFrom::Start(range.start))
            .await
            .map_err(|e| self.err(path, e))?;
        let display = self.display(path);
        let uri = self.uri.clone();
        let state = (file, range.end.saturating_sub(range.start));
        Ok(Box::pin(futures::stream::try_unfold(
            state,
            move |(mut file, left)| {
                let (display, uri) = (display.clone(), uri.clone());
                async move {
                    if left == 0 {
                        return Ok(None);
                    }
                    let wanted = left.min(PIECE) as usize;
                    let mut buf = vec![0u8; wanted];
                    let mut filled = 0;
                    while filled < buf.len() {
                        let n =
                            file.read(&mut buf[filled..])
                                .await
                                .map_err(|e| UfsError::Other {
                                    uri: uri.clone(),
                                    reason: format!("{display}: {e}"),
                                })?;
                        if n == 0 {
                            break;
                        }
                        filled += n;
                    }
                    if filled == 0 {
                        return Ok(None);
                    }
                    buf.truncate(filled);
                    // A short read means the end of the file.
                    let left = if filled < wanted {
                        0
                    } else {
                        left - filled as u64
                    };
                    Ok(Some((Bytes::from(buf), (file, left))))
                }
            },
        )))
    }

    async fn create(&self, path: &str) -> UfsResult<Box<dyn UfsWriter>> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let target = self.full(path).await?;
        let name = path.rsplit('/').next().unwrap_or("").to_string();
        let parent = target.parent().unwrap_or(Path::new("/")).to_path_buf();
        create_dirs_durably(parent.clone())
            .await
            .map_err(|e| self.err(path, e))?;
        let tmp = parent.join(format!(
            ".{name}{TMP_MARKER}{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| self.err(path, e))?;
        Ok(Box::new(LocalWriter {
            file,
            tmp,
            target,
            name,
            display: self.display(path),
        }))
    }

    async fn mkdirs(&self, path: &str) -> UfsResult<()> {
        let full = self.full(path).await?;
        if let Ok(meta) = tokio::fs::metadata(&full).await {
            if !meta.is_dir() {
                return Err(UfsError::AlreadyExists(self.display(path)));
            }
        }
        create_dirs_durably(full)
            .await
            .map_err(|e| self.err(path, e))
    }

    async fn delete_file(&self, path: &str) -> UfsResult<()> {
        tokio::fs::remove_file(self.full(path).await?)
            .await
            .map_err(|e| self.err(path, e))
    }

    async fn delete_directory(&self, path: &str, recursive: bool) -> UfsResult<()> {
        let full = self.full(path).await?;
        let result = if recursive {
            tokio::fs::remove_dir_all(full).await
        } else {
            tokio::fs::remove_dir(full).await
        };
        result.map_err(|e| self.err(path, e))
    }

    async fn rename(&self, src: &str, dst: &str) -> UfsResult<()> {
        let (from, to) = (self.full(src).await?, self.full(dst).await?);
        if let Some(parent) = to.parent() {
            create_dirs_durably(parent.to_path_buf())
                .await
                .map_err(|e| self.err(dst, e))?;
        }
        tokio::fs::rename(&from, &to)
            .await
            .map_err(|e| self.err(src, e))?;
        // Both directories changed: make the move durable.
        let synced = tokio::task::spawn_blocking(move || {
            alluxio_common::io::sync_parent(&to)?;
            alluxio_common::io::sync_parent(&from)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        synced.map_err(|e| self.err(dst, e))
    }
}

/// Creates `dir` and its missing parents so that they survive a power
/// loss (a directory the master recorded as persisted must not vanish).
async fn create_dirs_durably(dir: PathBuf) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || alluxio_common::io::create_dir_all_durable(&dir))
        .await
        .map_err(std::io::Error::other)?
}

struct LocalWriter {
    file: tokio::fs::File,
    tmp: PathBuf,
    target: PathBuf,
    name: String,
    display: String,
}

impl LocalWriter {
    fn err(&self, e: std::io::Error) -> UfsError {
        UfsError::Other {
            uri: self.display.clone(),
            reason: format!("write failed: {e}"),
        }
    }
}

#[async_trait]
impl UfsWriter for LocalWriter {
    async fn write(&mut self, data: Bytes) -> UfsResult<()> {
        let result = self.file.write_all(&data).await;
        result.map_err(|e| self.err(e))
    }

    async fn complete(mut self: Box<Self>) -> UfsResult<UfsStatus> {
        let flushed = async {
            self.file.flush().await?;
            self.file.sync_all().await?;
            tokio::fs::rename(&self.tmp, &self.target).await?;
            // The new name, durable like the bytes.
            let target = self.target.clone();
            tokio::task::spawn_blocking(move || alluxio_common::io::sync_parent(&target))
                .await
                .map_err(std::io::Error::other)??;
            tokio::fs::metadata(&self.target).await
        }
        .await;
        match flushed {
            Ok(meta) => Ok(status_of(&self.name, &meta)),
            Err(e) => {
                let _ = tokio::fs::remove_file(&self.tmp).await;
                Err(self.err(e))
            }
        }
    }

    async fn abort(self: Box<Self>) -> UfsResult<()> {
        drop(self.file);
        match tokio::fs::remove_file(&self.tmp).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(UfsError::Other {
                uri: self.display.clone(),
                reason: format!("abort failed: {e}"),
            }),
        }
    }
}
