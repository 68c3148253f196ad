//! [`FileSystem`]: user-level operations over [`MasterClient`].
//!
//! Writing data: for write types that persist (CACHE_THROUGH, THROUGH) the
//! client streams the bytes to the file's UFS location itself, using the
//! mount's options from `GetUfsInfo`, then completes the file as persisted.
//! Caching written data in workers arrives with the workers; until then a
//! non-empty MUST_CACHE or ASYNC_THROUGH write is refused with a clear error.

use crate::MasterClient;
use alluxio_common::{AlluxioError, Result};
use alluxio_proto::grpc::{CompleteFileRequest, CreateFileRequest, FileInfo, WriteType};
use bytes::Bytes;

#[derive(Clone)]
pub struct FileSystem {
    pub master: MasterClient,
    /// Owner and group recorded on new files and directories.
    pub user: String,
    pub group: String,
}

impl FileSystem {
    pub fn new(master: MasterClient) -> Self {
        let user = std::env::var("USER").unwrap_or_else(|_| "root".to_string());
        FileSystem {
            master,
            group: user.clone(),
            user,
        }
    }

    /// Creates `path` with `chunks` as its content and completes it.
    pub async fn write_file(
        &self,
        path: &str,
        write_type: WriteType,
        chunks: impl IntoIterator<Item = Bytes>,
    ) -> Result<FileInfo> {
        let mut chunks = chunks.into_iter().peekable();
        let empty = chunks.peek().is_none();
        let persist = matches!(write_type, WriteType::CacheThrough | WriteType::Through);
        if !persist && !empty {
            return Err(AlluxioError::FailedPrecondition(format!(
                "cannot write {path} with {write_type:?}: no worker is available to cache the data"
            )));
        }
        let info = self
            .master
            .create_file(CreateFileRequest {
                path: path.to_string(),
                recursive: true,
                write_type: write_type as i32,
                owner: self.user.clone(),
                group: self.group.clone(),
                ..Default::default()
            })
            .await?;
        let (length, ufs_mtime_ms) = if persist {
            match self.write_to_ufs(&info, chunks).await {
                Ok(done) => done,
                Err(e) => {
                    // Do not leave an incomplete file behind.
                    let _ = self.master.delete(path, false, true).await;
                    return Err(e);
                }
            }
        } else {
            (0, 0)
        };
        self.master
            .complete_file(CompleteFileRequest {
                path: path.to_string(),
                length,
                persisted: persist,
                ufs_mtime_ms,
            })
            .await
    }

    async fn write_to_ufs(
        &self,
        info: &FileInfo,
        chunks: impl Iterator<Item = Bytes>,
    ) -> Result<(u64, i64)> {
        let ufs_info = self.master.ufs_info(info.mount_id).await?;
        let ufs =
            alluxio_ufs::create_ufs(&ufs_info.ufs_uri, &ufs_info.options.into_iter().collect())?;
        let relative = info
            .ufs_path
            .strip_prefix(ufs_info.ufs_uri.trim_end_matches('/'))
            .map(|r| r.trim_start_matches('/'))
            .ok_or_else(|| {
                AlluxioError::Internal(format!(
                    "{} is not below {}",
                    info.ufs_path, ufs_info.ufs_uri
                ))
            })?;
        let mut writer = ufs.create(relative).await?;
        let mut length = 0u64;
        for chunk in chunks {
            length += chunk.len() as u64;
            if let Err(e) = writer.write(chunk).await {
                let _ = writer.abort().await;
                return Err(e.into());
            }
        }
        let status = writer.complete().await?;
        Ok((length, status.mtime_ms))
    }
}
