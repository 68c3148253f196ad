//! Under storage (UFS): the systems alluxio-rs caches.
//!
//! One trait, [`UnderFileSystem`], with paths relative to the mounted URI.
//! Implementations:
//! - [`object::ObjectStoreUfs`] over the `object_store` crate for `s3://`,
//!   `gs://`, `abfs://`/`az://` and `memory://`;
//! - [`local::LocalUfs`] for `file://` (real directories, atomic renames);
//! - `hdfs::HdfsUfs` for `hdfs://` behind the `hdfs` cargo feature;
//! - [`timed::TimedUfs`] around the local and HDFS ones, which have no
//!   timeouts of their own (the object stores' HTTP client has).
//!
//! Object stores have no directories: a directory is any common prefix, and
//! an empty directory created through Alluxio is kept as a zero-byte marker
//! object `<dir>_$folder$` (the Hadoop convention). Renames on object stores
//! are copy + delete, object by object, and are not atomic.

pub mod factory;
pub mod local;
pub mod mount_path;
pub mod object;
pub mod options;
pub mod signed_url;

#[cfg(feature = "hdfs")]
pub mod hdfs;
pub mod timed;

use async_trait::async_trait;
use bytes::Bytes;
use std::ops::Range;

pub use factory::{create_ufs, UfsUri};
pub use mount_path::path_in_mount;

/// What a UFS reports for one file or directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UfsStatus {
    /// Last path component.
    pub name: String,
    pub is_dir: bool,
    pub length: u64,
    pub mtime_ms: i64,
    /// Content fingerprint when the store has one (ETag, or length+mtime).
    pub fingerprint: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UfsError {
    #[error("{0} does not exist in the UFS")]
    NotFound(String),
    #[error("{0} already exists in the UFS")]
    AlreadyExists(String),
    #[error("directory {0} is not empty in the UFS")]
    DirectoryNotEmpty(String),
    #[error("invalid UFS URI {uri:?}: {reason}")]
    InvalidUri { uri: String, reason: String },
    #[error("invalid UFS option: {0}")]
    InvalidOption(String),
    #[error("UFS {uri} is unreachable: {reason}")]
    Unreachable { uri: String, reason: String },
    #[error("UFS {uri}: {reason}")]
    Other { uri: String, reason: String },
}

impl From<UfsError> for alluxio_common::AlluxioError {
    fn from(e: UfsError) -> Self {
        use alluxio_common::AlluxioError as E;
        let msg = e.to_string();
        match e {
            UfsError::NotFound(_) => E::NotFound(msg),
            UfsError::AlreadyExists(_) => E::AlreadyExists(msg),
            UfsError::DirectoryNotEmpty(_) => E::FailedPrecondition(msg),
            UfsError::InvalidUri { .. } | UfsError::InvalidOption(_) => E::InvalidArgument(msg),
            UfsError::Unreachable { .. } | UfsError::Other { .. } => E::Unavailable(msg),
        }
    }
}

pub type UfsResult<T> = Result<T, UfsError>;

/// Pieces of a file's bytes, in order.
pub type ByteStream = std::pin::Pin<Box<dyn futures::Stream<Item = UfsResult<Bytes>> + Send>>;

/// Pages of a directory listing, as the store returns them.
pub type ListPages =
    std::pin::Pin<Box<dyn futures::Stream<Item = UfsResult<Vec<UfsStatus>>> + Send>>;

/// `entries` handed out `page_size` at a time (stores without paged
/// listings).
pub fn pages_of(entries: Vec<UfsStatus>, page_size: usize) -> ListPages {
    let page_size = page_size.max(1);
    let mut pages = Vec::new();
    let mut rest = entries.into_iter().peekable();
    while rest.peek().is_some() {
        pages.push(Ok(rest.by_ref().take(page_size).collect()));
    }
    Box::pin(futures::stream::iter(pages))
}

/// Streaming writer of one new UFS file. Data is visible at the path only
/// after `complete`; `abort` discards it.
#[async_trait]
pub trait UfsWriter: Send {
    async fn write(&mut self, data: Bytes) -> UfsResult<()>;
    async fn complete(self: Box<Self>) -> UfsResult<UfsStatus>;
    async fn abort(self: Box<Self>) -> UfsResult<()>;
}

/// An under storage mounted at some URI. `path` arguments are relative to
/// that URI, `/`-separated, without leading slash; `""` is the mount root.
#[async_trait]
pub trait UnderFileSystem: Send + Sync + std::fmt::Debug {
    /// The mounted URI (never includes credentials).
    fn uri(&self) -> &str;

    /// Short type name: `s3`, `gcs`, `azure`, `local`, `memory`, `hdfs`.
    fn kind(&self) -> &'static str;

    /// Fails with `Unreachable` when the store cannot be listed.
    async fn check_reachable(&self) -> UfsResult<()>;

    /// `None` when nothing exists at `path`.
    async fn status(&self, path: &str) -> UfsResult<Option<UfsStatus>>;

    /// Direct children of a directory (every page of the listing).
    async fn list(&self, path: &str) -> UfsResult<Vec<UfsStatus>>;

    /// Direct children of a directory a page at a time (about `page_size`
    /// entries each), fetched as the stream is read, so a directory with
    /// millions of entries never sits in memory whole. Pages come in no
    /// particular order, and a directory may appear twice (a prefix and a
    /// marker). The default lists everything first: right for stores whose
    /// listings are not paged (local directories, HDFS).
    async fn list_pages(&self, path: &str, page_size: usize) -> UfsResult<ListPages> {
        Ok(pages_of(self.list(path).await?, page_size))
    }

    /// Bytes `range` of a file; shorter at the end of the file.
    async fn read_range(&self, path: &str, range: Range<u64>) -> UfsResult<Bytes>;

    /// Bytes `range` of a file as a stream of pieces, as they arrive, from
    /// one request to the store. The default makes one `read_range` call.
    async fn read_stream(&self, path: &str, range: Range<u64>) -> UfsResult<ByteStream> {
        let bytes = self.read_range(path, range).await?;
        Ok(Box::pin(futures::stream::once(async move { Ok(bytes) })))
    }

    /// The file itself, opened for reading, when this store is a directory
    /// of this host (confined as every other call is); `None` for stores
    /// that are not. For readers that hand the file to the kernel (FUSE
    /// passthrough) instead of copying its bytes.
    async fn open_host_file(&self, path: &str) -> UfsResult<Option<std::fs::File>> {
        let _ = path;
        Ok(None)
    }

    /// A URL that reads `path` without credentials for `valid_for`
    /// (S3, GCS and Azure presign it); `None` for stores that cannot sign.
    async fn signed_read_url(
        &self,
        path: &str,
        valid_for: std::time::Duration,
    ) -> UfsResult<Option<String>> {
        let _ = (path, valid_for);
        Ok(None)
    }

    /// Starts a new file, replacing any existing one on completion.
    async fn create(&self, path: &str) -> UfsResult<Box<dyn UfsWriter>>;

    /// Creates a directory and its missing parents.
    async fn mkdirs(&self, path: &str) -> UfsResult<()>;

    async fn delete_file(&self, path: &str) -> UfsResult<()>;

    /// Deletes a directory; with `recursive`, everything in it too.
    async fn delete_directory(&self, path: &str, recursive: bool) -> UfsResult<()>;

    /// Renames a file or a directory (with its contents).
    async fn rename(&self, src: &str, dst: &str) -> UfsResult<()>;
}

/// Joins a mount-relative path and a child name.
pub fn join_relative(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}
