//! [`FileSystem`]: the user-level API over the master and the workers.
//!
//! A facade over the [`ClientCore`]: metadata goes to the master; data goes
//! to workers (see `reader.rs`, `writer.rs`), or straight to the UFS when no
//! worker can serve it.

use crate::block::cache_block_request;
use crate::core::{ClientCore, ClientSettings};
use crate::local_file::LocalFile;
use crate::master_client::deadline;
use crate::reader::FileReader;
use crate::writer::FileWriter;
use crate::MasterClient;
use alluxio_common::config::AlluxioConfig;
use alluxio_common::{AlluxioError, Result};
use alluxio_proto::grpc::{CreateFileRequest, FileInfo, PersistenceState, ReadType, WriteType};
use bytes::Bytes;

/// How [`FileSystem::create_with`] creates a file.
#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// `None`: the file system's configured write type.
    pub write_type: Option<WriteType>,
    /// Permission bits; `None`: the master's default.
    pub mode: Option<u32>,
    /// Create missing parent directories.
    pub recursive: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            write_type: None,
            mode: None,
            recursive: true,
        }
    }
}

/// The user-facing API. Holds a [`ClientCore`] and nothing else: readers
/// and writers it opens hold the same core.
#[derive(Clone)]
pub struct FileSystem {
    core: ClientCore,
}

impl FileSystem {
    /// A file system with default client settings.
    pub fn new(master: MasterClient) -> Self {
        Self::with_config(master, &AlluxioConfig::default())
    }

    pub fn with_config(master: MasterClient, config: &AlluxioConfig) -> Self {
        FileSystem {
            core: ClientCore::new(master, config),
        }
    }

    /// The master client, for metadata calls the facade does not wrap.
    pub fn master(&self) -> &MasterClient {
        &self.core.master
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.core.settings
    }

    /// The same file system, recording `user` and `group` as the owner of
    /// what it creates (the FUSE daemon acts for each caller).
    pub fn as_identity(&self, user: String, group: String) -> FileSystem {
        let mut fs = self.clone();
        fs.core.settings.user = user;
        fs.core.settings.group = group;
        fs
    }

    /// Opens a file for reading with `read_type` (or the configured one).
    pub async fn open(&self, path: &str, read_type: Option<ReadType>) -> Result<FileReader> {
        let info = self.core.master.get_status(path, None).await?;
        self.reader(info, read_type)
    }

    /// A reader of the file `info` describes (what the master said of it,
    /// with the caller's capability), without asking the master again.
    pub fn reader(&self, info: FileInfo, read_type: Option<ReadType>) -> Result<FileReader> {
        if info.folder {
            return Err(AlluxioError::InvalidArgument(format!(
                "{} is a directory",
                info.path
            )));
        }
        if !info.completed {
            return Err(AlluxioError::FailedPrecondition(format!(
                "{} is still being written",
                info.path
            )));
        }
        let read_type = read_type.unwrap_or(self.core.settings.read_type);
        Ok(FileReader::new(self.core.clone(), info, read_type))
    }

    /// Creates a file for writing with `write_type` (or the configured one).
    pub async fn create(&self, path: &str, write_type: Option<WriteType>) -> Result<FileWriter> {
        self.create_with(
            path,
            CreateOptions {
                write_type,
                ..Default::default()
            },
        )
        .await
    }

    /// Creates a file for writing with explicit options.
    pub async fn create_with(&self, path: &str, options: CreateOptions) -> Result<FileWriter> {
        let settings = &self.core.settings;
        let write_type = options.write_type.unwrap_or(settings.write_type);
        let info = self
            .core
            .master
            .create_file(CreateFileRequest {
                path: path.to_string(),
                recursive: options.recursive,
                block_size_bytes: settings.block_size,
                mode: options.mode,
                write_type: write_type as i32,
                owner: settings.user.clone(),
                group: settings.group.clone(),
                ..Default::default()
            })
            .await?;
        match FileWriter::start(self.core.clone(), info, write_type).await {
            Ok(w) => Ok(w),
            Err(e) => {
                let _ = self.core.master.delete(path, false, true).await;
                Err(e)
            }
        }
    }

    /// Creates `path` with `chunks` as its content.
    pub async fn write_file(
        &self,
        path: &str,
        write_type: WriteType,
        chunks: impl IntoIterator<Item = Bytes>,
    ) -> Result<FileInfo> {
        let mut writer = self.create(path, Some(write_type)).await?;
        for chunk in chunks {
            if let Err(e) = writer.write(chunk).await {
                writer.abandon().await;
                return Err(e);
            }
        }
        writer.close().await
    }

    /// Caches every block of a persisted file on a worker (`local`: a worker
    /// on this host). Returns the bytes newly fetched; calls `progress`
    /// with the bytes done so far.
    pub async fn load(
        &self,
        info: &FileInfo,
        local: bool,
        mut progress: impl FnMut(u64),
    ) -> Result<u64> {
        if info.persistence_state != PersistenceState::Persisted as i32 {
            return Err(AlluxioError::FailedPrecondition(format!(
                "{} is not persisted, so there is nothing to load it from",
                info.path
            )));
        }
        let pool = &self.core.workers;
        let mut workers = pool.choose(&self.core.live_workers().await);
        if local {
            workers.retain(|w| pool.is_local(w));
        }
        if workers.is_empty() {
            return Err(AlluxioError::Unavailable(if local {
                "no worker on this host".to_string()
            } else {
                "no worker is available".to_string()
            }));
        }
        let mut fetched = 0;
        let mut done = 0;
        for (i, fbi) in info.file_block_infos.iter().enumerate() {
            let block = fbi.block_info.clone().unwrap_or_default();
            let on_target = block
                .locations
                .iter()
                .any(|l| !local || l.host == workers[0].host);
            if !on_target {
                let worker = &workers[i % workers.len()];
                let mut client = pool.client(worker)?;
                let response = client
                    .cache_block(deadline(cache_block_request(info, fbi)))
                    .await?
                    .into_inner();
                if response.fetched {
                    fetched += block.length;
                }
            }
            done += block.length;
            progress(done);
        }
        Ok(fetched)
    }

    /// The file's UFS object itself, opened for reading, when its mount is
    /// a directory this host sees and the object there is still the one
    /// the master knows (same length and modification time); `None`
    /// otherwise. Only for completed, persisted files: an object that
    /// cannot be checked (no known modification time) is not trusted.
    pub async fn open_ufs_file(&self, info: &FileInfo) -> Result<Option<std::fs::File>> {
        let checkable = info.completed
            && !info.folder
            && info.persistence_state == PersistenceState::Persisted as i32
            && info.ufs_mtime_ms != 0;
        if !checkable {
            return Ok(None);
        }
        let (ufs, path) = self.core.ufs_for(info).await?;
        let Some(file) = ufs.open_host_file(&path).await? else {
            return Ok(None);
        };
        let meta = file.metadata()?;
        let mtime_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        let same = meta.is_file() && meta.len() == info.length && mtime_ms == info.ufs_mtime_ms;
        Ok(same.then_some(file))
    }

    /// The local copy of a completed file, when one worker on this host
    /// caches all of its blocks in one data file; `None` otherwise (see
    /// [`LocalFile`]).
    pub async fn open_local_file(&self, info: &FileInfo) -> Result<Option<LocalFile>> {
        LocalFile::open(&self.core, info).await
    }
}

pub fn parse_read_type(raw: &str) -> Result<ReadType, AlluxioError> {
    match raw.to_ascii_uppercase().as_str() {
        "CACHE" => Ok(ReadType::Cache),
        "CACHE_PROMOTE" => Ok(ReadType::CachePromote),
        "NO_CACHE" => Ok(ReadType::NoCache),
        _ => Err(AlluxioError::InvalidArgument(format!(
            "unknown read type {raw:?}: CACHE, CACHE_PROMOTE or NO_CACHE"
        ))),
    }
}

pub fn parse_write_type(raw: &str) -> Result<WriteType, AlluxioError> {
    match raw.to_ascii_uppercase().as_str() {
        "MUST_CACHE" => Ok(WriteType::MustCache),
        "CACHE_THROUGH" => Ok(WriteType::CacheThrough),
        "THROUGH" => Ok(WriteType::Through),
        "ASYNC_THROUGH" => Ok(WriteType::AsyncThrough),
        _ => Err(AlluxioError::InvalidArgument(format!(
            "unknown write type {raw:?}: MUST_CACHE, CACHE_THROUGH, THROUGH or ASYNC_THROUGH"
        ))),
    }
}
