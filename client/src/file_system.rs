//! [`FileSystem`]: the user-level API over the master and the workers.
//!
//! Metadata goes to the master; data goes to workers (see `reader.rs`,
//! `writer.rs`), or straight to the UFS when no worker can serve it.

use crate::reader::FileReader;
use crate::workers::WorkerPool;
use crate::writer::FileWriter;
use crate::MasterClient;
use alluxio_common::config::{AlluxioConfig, ReadTypeConfig, WriteTypeConfig};
use alluxio_common::{AlluxioError, Result};
use alluxio_proto::grpc::{
    CacheBlockRequest, CreateFileRequest, FileBlockInfo, FileInfo, PersistenceState, ReadType,
    UfsBlockSource, WorkerInfo, WriteType,
};
use alluxio_ufs::UnderFileSystem;
use bytes::Bytes;
use std::sync::Arc;

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

#[derive(Clone)]
pub struct FileSystem {
    pub master: MasterClient,
    pub(crate) workers: Arc<WorkerPool>,
    /// Owner and group recorded on new files and directories.
    pub user: String,
    pub group: String,
    pub block_size: u64,
    pub write_type: WriteType,
    pub read_type: ReadType,
    pub short_circuit: bool,
    /// Read cached blocks of other workers over their raw TCP data port.
    pub data_port_reads: bool,
}

impl FileSystem {
    /// A file system with default client settings.
    pub fn new(master: MasterClient) -> Self {
        Self::with_config(master, &AlluxioConfig::default())
    }

    pub fn with_config(master: MasterClient, config: &AlluxioConfig) -> Self {
        let user = std::env::var("USER").unwrap_or_else(|_| "root".to_string());
        let u = &config.user;
        FileSystem {
            master,
            workers: Arc::new(WorkerPool::new(u.location_policy, u.hostname.clone())),
            group: user.clone(),
            user,
            block_size: u.block_size.0,
            write_type: match u.write_type {
                WriteTypeConfig::MustCache => WriteType::MustCache,
                WriteTypeConfig::CacheThrough => WriteType::CacheThrough,
                WriteTypeConfig::Through => WriteType::Through,
                WriteTypeConfig::AsyncThrough => WriteType::AsyncThrough,
            },
            read_type: match u.read_type {
                ReadTypeConfig::Cache => ReadType::Cache,
                ReadTypeConfig::CachePromote => ReadType::CachePromote,
                ReadTypeConfig::NoCache => ReadType::NoCache,
            },
            short_circuit: u.short_circuit,
            data_port_reads: u.data_port_reads,
        }
    }

    pub(crate) async fn live_workers(&self) -> Vec<WorkerInfo> {
        match self.master.worker_infos().await {
            Ok(w) => w,
            Err(e) => {
                tracing::debug!(error = %e, "cannot list workers");
                Vec::new()
            }
        }
    }

    /// The UFS of a file and the file's path inside it.
    pub(crate) async fn ufs_for(
        &self,
        info: &FileInfo,
    ) -> Result<(Arc<dyn UnderFileSystem>, String)> {
        let ufs_info = self.master.ufs_info(info.mount_id).await?;
        let ufs =
            alluxio_ufs::create_ufs(&ufs_info.ufs_uri, &ufs_info.options.into_iter().collect())?;
        let base = ufs_info.ufs_uri.trim_end_matches('/');
        let relative = info
            .ufs_path
            .strip_prefix(base)
            .map(|r| r.trim_start_matches('/').to_string())
            .ok_or_else(|| {
                AlluxioError::Internal(format!(
                    "{} is not below {}",
                    info.ufs_path, ufs_info.ufs_uri
                ))
            })?;
        Ok((ufs, relative))
    }

    /// Opens a file for reading with `read_type` (or the configured one).
    pub async fn open(&self, path: &str, read_type: Option<ReadType>) -> Result<FileReader> {
        let info = self.master.get_status(path, None).await?;
        if info.folder {
            return Err(AlluxioError::InvalidArgument(format!(
                "{path} is a directory"
            )));
        }
        if !info.completed {
            return Err(AlluxioError::FailedPrecondition(format!(
                "{path} is still being written"
            )));
        }
        Ok(FileReader::new(
            self.clone(),
            info,
            read_type.unwrap_or(self.read_type),
        ))
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
        let write_type = options.write_type.unwrap_or(self.write_type);
        let info = self
            .master
            .create_file(CreateFileRequest {
                path: path.to_string(),
                recursive: options.recursive,
                block_size_bytes: self.block_size,
                mode: options.mode,
                write_type: write_type as i32,
                owner: self.user.clone(),
                group: self.group.clone(),
                ..Default::default()
            })
            .await?;
        match FileWriter::start(self.clone(), info, write_type).await {
            Ok(w) => Ok(w),
            Err(e) => {
                let _ = self.master.delete(path, false, true).await;
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
        let mut workers = self.workers.choose(&self.live_workers().await);
        if local {
            workers.retain(|w| self.workers.is_local(w));
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
                let mut client = self.workers.client(worker)?;
                let response = client
                    .cache_block(cache_block_request(info, fbi))
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
}

/// Where a file's block lives in its UFS, for a worker to read it through.
pub(crate) fn ufs_block_source(info: &FileInfo, fbi: &FileBlockInfo) -> UfsBlockSource {
    UfsBlockSource {
        mount_id: info.mount_id,
        ufs_path: info.ufs_path.clone(),
        offset_in_file: fbi.offset,
    }
}

/// Asks a worker to cache one block of a persisted file from the UFS.
pub(crate) fn cache_block_request(info: &FileInfo, fbi: &FileBlockInfo) -> CacheBlockRequest {
    let block = fbi.block_info.clone().unwrap_or_default();
    CacheBlockRequest {
        block_id: block.block_id,
        block_length: block.length,
        block_offset_in_file: fbi.offset,
        ufs: Some(ufs_block_source(info, fbi)),
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
