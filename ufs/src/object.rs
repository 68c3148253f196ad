//! [`ObjectStoreUfs`]: an [`UnderFileSystem`] over any `object_store`
//! backend (S3, GCS, Azure, in-memory).
//!
//! Directories are common prefixes; empty directories made through Alluxio
//! are zero-byte `<dir>_$folder$` marker objects. `list` follows every page
//! (object_store follows the continuation tokens); `list_pages` hands the
//! pages out as they arrive, where the store has a paged listing (S3, GCS,
//! Azure). Renames copy then delete.

use crate::{
    join_relative, pages_of, ListPages, UfsError, UfsResult, UfsStatus, UfsWriter, UnderFileSystem,
};
use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::signer::{Method, Signer};
use object_store::{
    GetOptions, GetRange, GetResult, ListResult, ObjectMeta, ObjectStore, ObjectStoreExt,
};
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Suffix of the zero-byte objects that stand for empty directories.
pub const DIR_MARKER_SUFFIX: &str = "_$folder$";

/// Multipart part size for uploads; also the buffer of a streaming write.
const UPLOAD_PART_BYTES: usize = 8 << 20;

pub struct ObjectStoreUfs {
    uri: String,
    kind: &'static str,
    store: Arc<dyn ObjectStore>,
    /// The same store's paged listing, where it has one.
    pages: Option<Arc<dyn PaginatedListStore>>,
    /// Key prefix of the mount root inside the bucket ("" for the bucket root).
    prefix: String,
    /// The same store's URL signer, where it has one (S3, GCS, Azure).
    signer: Option<Arc<dyn Signer>>,
}

impl std::fmt::Debug for ObjectStoreUfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStoreUfs")
            .field("uri", &self.uri)
            .finish()
    }
}

impl ObjectStoreUfs {
    pub fn new(uri: String, kind: &'static str, store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        ObjectStoreUfs {
            uri,
            kind,
            store,
            pages: None,
            prefix: prefix.trim_matches('/').to_string(),
            signer: None,
        }
    }

    /// Signs read URLs through `signer` (the same store).
    pub fn with_signer(mut self, signer: Arc<dyn Signer>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Lists directories a page at a time through `pages` (the same store).
    pub fn with_paged_listing(mut self, pages: Arc<dyn PaginatedListStore>) -> Self {
        self.pages = Some(pages);
        self
    }

    fn key(&self, path: &str) -> Path {
        Path::from(join_relative(&self.prefix, path).as_str())
    }

    fn marker_key(&self, path: &str) -> Path {
        Path::from(format!("{}{DIR_MARKER_SUFFIX}", join_relative(&self.prefix, path)).as_str())
    }

    fn err(&self, path: &str, e: object_store::Error) -> UfsError {
        match e {
            object_store::Error::NotFound { .. } => UfsError::NotFound(self.display(path)),
            object_store::Error::AlreadyExists { .. } => {
                UfsError::AlreadyExists(self.display(path))
            }
            other => UfsError::Other {
                uri: self.uri.clone(),
                reason: format!("{}: {other}", self.display(path)),
            },
        }
    }

    fn display(&self, path: &str) -> String {
        if path.is_empty() {
            self.uri.clone()
        } else {
            format!("{}/{path}", self.uri)
        }
    }

    fn file_status(name: &str, meta: &ObjectMeta) -> UfsStatus {
        UfsStatus {
            name: name.to_string(),
            is_dir: false,
            length: meta.size,
            mtime_ms: meta.last_modified.timestamp_millis(),
            fingerprint: meta.e_tag.clone().unwrap_or_else(|| {
                format!("{}-{}", meta.size, meta.last_modified.timestamp_millis())
            }),
        }
    }

    fn dir_status(name: &str) -> UfsStatus {
        UfsStatus {
            name: name.to_string(),
            is_dir: true,
            length: 0,
            mtime_ms: 0,
            fingerprint: String::new(),
        }
    }

    /// For a listing that found nothing: an empty directory (a marker, or
    /// the mount root) is fine, nothing at all at `path` is NotFound.
    async fn exists_or_not_found(&self, path: &str) -> UfsResult<()> {
        if !path.is_empty() && self.status(path).await?.is_none() {
            return Err(UfsError::NotFound(self.display(path)));
        }
        Ok(())
    }

    /// A ranged GET; `None` when the range is empty or starts at or after
    /// the end of the object (then there are no bytes to read).
    async fn get_range(&self, path: &str, range: Range<u64>) -> UfsResult<Option<GetResult>> {
        if range.is_empty() {
            return Ok(None);
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        match self.store.get_opts(&self.key(path), options).await {
            Ok(r) => Ok(Some(r)),
            Err(object_store::Error::Generic { source, .. })
                if source.to_string().contains("range") =>
            {
                Ok(None)
            }
            Err(e) => Err(self.err(path, e)),
        }
    }

    /// Every object below `path` (recursively).
    async fn objects_under(&self, path: &str) -> UfsResult<Vec<ObjectMeta>> {
        let key = self.key(path);
        let prefix = if key.as_ref().is_empty() {
            None
        } else {
            Some(&key)
        };
        self.store
            .list(prefix)
            .try_collect()
            .await
            .map_err(|e| self.err(path, e))
    }
}

fn last_component(p: &Path) -> String {
    p.filename().unwrap_or_default().to_string()
}

/// The entries of one listing (or page), one per name (a prefix and a
/// marker may both say "directory"), sorted like every other listing.
fn entries_of(listing: &ListResult) -> Vec<UfsStatus> {
    let mut entries: BTreeMap<String, UfsStatus> = BTreeMap::new();
    for dir in &listing.common_prefixes {
        let name = last_component(dir);
        entries.insert(name.clone(), ObjectStoreUfs::dir_status(&name));
    }
    for meta in &listing.objects {
        let name = last_component(&meta.location);
        if let Some(dir) = name.strip_suffix(DIR_MARKER_SUFFIX) {
            entries.insert(dir.to_string(), ObjectStoreUfs::dir_status(dir));
        } else if !name.is_empty() {
            entries.insert(name.clone(), ObjectStoreUfs::file_status(&name, meta));
        }
    }
    entries.into_values().collect()
}

#[async_trait]
impl UnderFileSystem for ObjectStoreUfs {
    fn uri(&self) -> &str {
        &self.uri
    }

    fn kind(&self) -> &'static str {
        self.kind
    }

    async fn check_reachable(&self) -> UfsResult<()> {
        let key = self.key("");
        let prefix = if key.as_ref().is_empty() {
            None
        } else {
            Some(&key)
        };
        self.store
            .list_with_delimiter(prefix)
            .await
            .map(|_| ())
            .map_err(|e| UfsError::Unreachable {
                uri: self.uri.clone(),
                reason: e.to_string(),
            })
    }

    async fn status(&self, path: &str) -> UfsResult<Option<UfsStatus>> {
        let name = path.rsplit('/').next().unwrap_or("");
        if path.is_empty() {
            return Ok(Some(Self::dir_status("")));
        }
        match self.store.head(&self.key(path)).await {
            Ok(meta) => return Ok(Some(Self::file_status(name, &meta))),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.err(path, e)),
        }
        match self.store.head(&self.marker_key(path)).await {
            Ok(_) => return Ok(Some(Self::dir_status(name))),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.err(path, e)),
        }
        let listing = self
            .store
            .list_with_delimiter(Some(&self.key(path)))
            .await
            .map_err(|e| self.err(path, e))?;
        if listing.objects.is_empty() && listing.common_prefixes.is_empty() {
            Ok(None)
        } else {
            Ok(Some(Self::dir_status(name)))
        }
    }

    async fn list(&self, path: &str) -> UfsResult<Vec<UfsStatus>> {
        let key = self.key(path);
        let prefix = if key.as_ref().is_empty() {
            None
        } else {
            Some(&key)
        };
        let listing = self
            .store
            .list_with_delimiter(prefix)
            .await
            .map_err(|e| self.err(path, e))?;
        let entries = entries_of(&listing);
        if entries.is_empty() {
            self.exists_or_not_found(path).await?;
        }
        Ok(entries)
    }

    async fn list_pages(&self, path: &str, page_size: usize) -> UfsResult<ListPages> {
        let Some(pages) = self.pages.clone() else {
            return Ok(pages_of(self.list(path).await?, page_size));
        };
        let key = self.key(path);
        // Unlike `list_with_delimiter`, a paged listing takes the prefix as
        // it is: the trailing `/` keeps `a/bc` out of a listing of `a/b`.
        let prefix = (!key.as_ref().is_empty()).then(|| format!("{key}/"));
        let (uri, shown) = (self.uri.clone(), self.display(path));
        let fetch = move |token: Option<String>| {
            let (pages, prefix, uri, shown) =
                (pages.clone(), prefix.clone(), uri.clone(), shown.clone());
            async move {
                let options = PaginatedListOptions {
                    delimiter: Some("/".into()),
                    max_keys: Some(page_size.max(1)),
                    page_token: token,
                    ..Default::default()
                };
                let page = pages
                    .list_paginated(prefix.as_deref(), options)
                    .await
                    .map_err(|e| UfsError::Other {
                        uri,
                        reason: format!("{shown}: {e}"),
                    })?;
                Ok::<_, UfsError>((entries_of(&page.result), page.page_token))
            }
        };
        // The first page decides whether the directory exists at all.
        let (first, next) = fetch(None).await?;
        if first.is_empty() && next.is_none() {
            self.exists_or_not_found(path).await?;
        }
        let rest = futures::stream::try_unfold(next, move |token| {
            let fetch = fetch.clone();
            async move {
                match token {
                    None => Ok(None),
                    Some(token) => {
                        let (entries, next) = fetch(Some(token)).await?;
                        Ok(Some((entries, next)))
                    }
                }
            }
        });
        Ok(Box::pin(
            futures::stream::once(async { Ok(first) }).chain(rest),
        ))
    }

    async fn read_range(&self, path: &str, range: Range<u64>) -> UfsResult<Bytes> {
        match self.get_range(path, range).await? {
            Some(result) => result.bytes().await.map_err(|e| self.err(path, e)),
            None => Ok(Bytes::new()),
        }
    }

    async fn read_stream(&self, path: &str, range: Range<u64>) -> UfsResult<crate::ByteStream> {
        let Some(result) = self.get_range(path, range).await? else {
            return Ok(Box::pin(futures::stream::empty()));
        };
        let uri = self.display(path);
        let base = self.uri.clone();
        Ok(Box::pin(result.into_stream().map(move |piece| {
            piece.map_err(|e| UfsError::Other {
                uri: base.clone(),
                reason: format!("{uri}: {e}"),
            })
        })))
    }

    async fn signed_read_url(&self, path: &str, valid_for: Duration) -> UfsResult<Option<String>> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        let url = signer
            .signed_url(Method::GET, &self.key(path), valid_for)
            .await
            .map_err(|e| self.err(path, e))?;
        Ok(Some(url.to_string()))
    }

    async fn create(&self, path: &str) -> UfsResult<Box<dyn UfsWriter>> {
        let writer =
            BufWriter::with_capacity(self.store.clone(), self.key(path), UPLOAD_PART_BYTES);
        Ok(Box::new(ObjectWriter {
            writer,
            store: self.store.clone(),
            key: self.key(path),
            name: path.rsplit('/').next().unwrap_or("").to_string(),
            uri: self.display(path),
        }))
    }

    async fn mkdirs(&self, path: &str) -> UfsResult<()> {
        if path.is_empty() {
            return Ok(());
        }
        if let Ok(meta) = self.store.head(&self.key(path)).await {
            if meta.size > 0 || !meta.location.as_ref().ends_with('/') {
                return Err(UfsError::AlreadyExists(self.display(path)));
            }
        }
        self.store
            .put(&self.marker_key(path), Bytes::new().into())
            .await
            .map(|_| ())
            .map_err(|e| self.err(path, e))
    }

    async fn delete_file(&self, path: &str) -> UfsResult<()> {
        let key = self.key(path);
        // S3 deletes of missing keys succeed; report NotFound like a file system.
        self.store.head(&key).await.map_err(|e| self.err(path, e))?;
        self.store.delete(&key).await.map_err(|e| self.err(path, e))
    }

    async fn delete_directory(&self, path: &str, recursive: bool) -> UfsResult<()> {
        let objects = self.objects_under(path).await?;
        if !objects.is_empty() && !recursive {
            return Err(UfsError::DirectoryNotEmpty(self.display(path)));
        }
        let locations = futures::stream::iter(objects.into_iter().map(|m| Ok(m.location))).boxed();
        self.store
            .delete_stream(locations)
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e| self.err(path, e))?;
        match self.store.delete(&self.marker_key(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(path, e)),
        }
    }

    async fn rename(&self, src: &str, dst: &str) -> UfsResult<()> {
        let src_key = self.key(src);
        if self.store.head(&src_key).await.is_ok() {
            return self
                .store
                .rename(&src_key, &self.key(dst))
                .await
                .map_err(|e| self.err(src, e));
        }
        // A directory: move every object below it, then its marker.
        let src_prefix = format!("{}/", src_key.as_ref());
        let dst_key = self.key(dst);
        let objects = self.objects_under(src).await?;
        let had_marker = self.store.head(&self.marker_key(src)).await.is_ok();
        if objects.is_empty() && !had_marker {
            return Err(UfsError::NotFound(self.display(src)));
        }
        for meta in objects {
            let rest = meta
                .location
                .as_ref()
                .strip_prefix(&src_prefix)
                .unwrap_or_default();
            let target = Path::from(format!("{}/{rest}", dst_key.as_ref()).as_str());
            self.store
                .rename(&meta.location, &target)
                .await
                .map_err(|e| self.err(src, e))?;
        }
        if had_marker {
            self.store
                .rename(&self.marker_key(src), &self.marker_key(dst))
                .await
                .map_err(|e| self.err(src, e))?;
        }
        Ok(())
    }
}

struct ObjectWriter {
    writer: BufWriter,
    store: Arc<dyn ObjectStore>,
    key: Path,
    name: String,
    uri: String,
}

impl ObjectWriter {
    fn err(&self, e: impl std::fmt::Display) -> UfsError {
        UfsError::Other {
            uri: self.uri.clone(),
            reason: format!("write failed: {e}"),
        }
    }
}

#[async_trait]
impl UfsWriter for ObjectWriter {
    async fn write(&mut self, data: Bytes) -> UfsResult<()> {
        let result = self.writer.write_all(&data).await;
        result.map_err(|e| self.err(e))
    }

    async fn complete(mut self: Box<Self>) -> UfsResult<UfsStatus> {
        let result = self.writer.shutdown().await;
        result.map_err(|e| self.err(e))?;
        let meta = self.store.head(&self.key).await.map_err(|e| self.err(e))?;
        Ok(ObjectStoreUfs::file_status(&self.name, &meta))
    }

    async fn abort(mut self: Box<Self>) -> UfsResult<()> {
        let result = self.writer.abort().await;
        result.map_err(|e| self.err(e))
    }
}
