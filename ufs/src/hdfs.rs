//! [`HdfsUfs`]: HDFS through the pure-Rust `hdfs-native` client (cargo
//! feature `hdfs`). Like a local directory it has real directories and
//! atomic renames; new files are written under a temporary name and renamed
//! into place on completion.

use crate::{join_relative, UfsError, UfsResult, UfsStatus, UfsUri, UfsWriter, UnderFileSystem};
use async_trait::async_trait;
use bytes::Bytes;
use hdfs_native::{Client, ClientBuilder, HdfsError, WriteOptions};
use std::ops::Range;
use std::sync::Arc;

pub struct HdfsUfs {
    uri: String,
    client: Arc<Client>,
    /// Absolute HDFS path of the mount root.
    root: String,
}

impl std::fmt::Debug for HdfsUfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HdfsUfs").field("uri", &self.uri).finish()
    }
}

impl HdfsUfs {
    /// Builds a client for `hdfs://host:port/path`; no I/O happens yet.
    pub fn connect(uri: String, parsed: &UfsUri) -> UfsResult<HdfsUfs> {
        let client = ClientBuilder::new()
            .with_url(format!("hdfs://{}", parsed.authority))
            .build()
            .map_err(|e| UfsError::InvalidUri {
                uri: uri.clone(),
                reason: e.to_string(),
            })?;
        Ok(HdfsUfs {
            uri,
            client: Arc::new(client),
            root: format!("/{}", parsed.path),
        })
    }

    fn full(&self, path: &str) -> String {
        if path.is_empty() {
            self.root.clone()
        } else {
            format!("{}/{path}", self.root.trim_end_matches('/'))
        }
    }

    fn err(&self, path: &str, e: HdfsError) -> UfsError {
        let display = join_relative(&self.uri, path);
        match e {
            HdfsError::FileNotFound(_) => UfsError::NotFound(display),
            HdfsError::AlreadyExists(_) => UfsError::AlreadyExists(display),
            other => UfsError::Other {
                uri: self.uri.clone(),
                reason: format!("{display}: {other}"),
            },
        }
    }
}

fn status_of(name: &str, s: &hdfs_native::client::FileStatus) -> UfsStatus {
    UfsStatus {
        name: name.to_string(),
        is_dir: s.isdir,
        length: if s.isdir { 0 } else { s.length as u64 },
        mtime_ms: s.modification_time as i64,
        fingerprint: format!("{}-{}", s.length, s.modification_time),
    }
}

#[async_trait]
impl UnderFileSystem for HdfsUfs {
    fn uri(&self) -> &str {
        &self.uri
    }

    fn kind(&self) -> &'static str {
        "hdfs"
    }

    async fn check_reachable(&self) -> UfsResult<()> {
        self.client
            .get_file_info(&self.root)
            .await
            .map(|_| ())
            .map_err(|e| UfsError::Unreachable {
                uri: self.uri.clone(),
                reason: e.to_string(),
            })
    }

    async fn status(&self, path: &str) -> UfsResult<Option<UfsStatus>> {
        let name = path.rsplit('/').next().unwrap_or("");
        match self.client.get_file_info(&self.full(path)).await {
            Ok(s) => Ok(Some(status_of(name, &s))),
            Err(HdfsError::FileNotFound(_)) => Ok(None),
            Err(e) => Err(self.err(path, e)),
        }
    }

    async fn list(&self, path: &str) -> UfsResult<Vec<UfsStatus>> {
        let entries = self
            .client
            .list_status(&self.full(path), false)
            .await
            .map_err(|e| self.err(path, e))?;
        let mut out: Vec<UfsStatus> = entries
            .iter()
            .filter_map(|s| {
                let name = s.path.rsplit('/').next()?.to_string();
                (!name.contains(".alluxio_tmp_")).then(|| status_of(&name, s))
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn read_range(&self, path: &str, range: Range<u64>) -> UfsResult<Bytes> {
        let reader = self
            .client
            .read(&self.full(path))
            .await
            .map_err(|e| self.err(path, e))?;
        let len = reader.file_length() as u64;
        let start = range.start.min(len);
        let end = range.end.min(len);
        reader
            .read_range(start as usize, (end - start) as usize)
            .await
            .map_err(|e| self.err(path, e))
    }

    async fn create(&self, path: &str) -> UfsResult<Box<dyn UfsWriter>> {
        let target = self.full(path);
        let tmp = format!("{target}.alluxio_tmp_{}", std::process::id());
        let options = WriteOptions {
            overwrite: true,
            create_parent: true,
            ..WriteOptions::default()
        };
        let writer = self
            .client
            .create(&tmp, options)
            .await
            .map_err(|e| self.err(path, e))?;
        Ok(Box::new(HdfsWriter {
            writer,
            client: self.client.clone(),
            tmp,
            target,
            name: path.rsplit('/').next().unwrap_or("").to_string(),
            uri: join_relative(&self.uri, path),
        }))
    }

    async fn mkdirs(&self, path: &str) -> UfsResult<()> {
        self.client
            .mkdirs(&self.full(path), 0o755, true)
            .await
            .map_err(|e| self.err(path, e))
    }

    async fn delete_file(&self, path: &str) -> UfsResult<()> {
        match self.client.delete(&self.full(path), false).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(UfsError::NotFound(join_relative(&self.uri, path))),
            Err(e) => Err(self.err(path, e)),
        }
    }

    async fn delete_directory(&self, path: &str, recursive: bool) -> UfsResult<()> {
        if !recursive && !self.list(path).await?.is_empty() {
            return Err(UfsError::DirectoryNotEmpty(join_relative(&self.uri, path)));
        }
        self.client
            .delete(&self.full(path), true)
            .await
            .map(|_| ())
            .map_err(|e| self.err(path, e))
    }

    async fn rename(&self, src: &str, dst: &str) -> UfsResult<()> {
        if let Some((parent, _)) = dst.rsplit_once('/') {
            self.mkdirs(parent).await?;
        }
        self.client
            .rename(&self.full(src), &self.full(dst), false)
            .await
            .map_err(|e| self.err(src, e))
    }
}

struct HdfsWriter {
    writer: hdfs_native::file::FileWriter,
    client: Arc<Client>,
    tmp: String,
    target: String,
    name: String,
    uri: String,
}

impl HdfsWriter {
    fn err(&self, e: HdfsError) -> UfsError {
        UfsError::Other {
            uri: self.uri.clone(),
            reason: format!("write failed: {e}"),
        }
    }
}

#[async_trait]
impl UfsWriter for HdfsWriter {
    async fn write(&mut self, data: Bytes) -> UfsResult<()> {
        let result = self.writer.write_bytes(data).await;
        result.map(|_| ()).map_err(|e| self.err(e))
    }

    async fn complete(mut self: Box<Self>) -> UfsResult<UfsStatus> {
        let closed = self.writer.close().await;
        closed.map_err(|e| self.err(e))?;
        let renamed = self.client.rename(&self.tmp, &self.target, true).await;
        renamed.map_err(|e| self.err(e))?;
        let status = self.client.get_file_info(&self.target).await;
        let status = status.map_err(|e| self.err(e))?;
        Ok(status_of(&self.name, &status))
    }

    async fn abort(mut self: Box<Self>) -> UfsResult<()> {
        let _ = self.writer.close().await;
        let deleted = self.client.delete(&self.tmp, false).await;
        deleted.map(|_| ()).map_err(|e| self.err(e))
    }
}
