//! `FileSystemMaster` gRPC service.

use crate::fs_master::{FileSystemMaster, NewInodeAttrs};
use crate::metrics::MasterMetrics;
use crate::permission::{Need, READ, WRITE};
use crate::service::access::AccessPolicy;
use crate::service::path;
use alluxio_common::auth::caller;
use alluxio_common::auth::capability::CapabilityIssuer;
use alluxio_common::AlluxioError;
use alluxio_proto::grpc::file_system_master_server::FileSystemMaster as FsService;
use alluxio_proto::grpc::*;
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

pub struct FileSystemService {
    pub fs: Arc<FileSystemMaster>,
    pub metrics: Arc<MasterMetrics>,
    pub access: Arc<AccessPolicy>,
    pub list_batch_size: usize,
    /// Signs the capabilities file infos carry (none with NOSASL).
    pub capabilities: Option<Arc<CapabilityIssuer>>,
}

/// `info` with the capability for its blocks, when `who` may read it (or
/// `created` it) and authentication is on.
fn grant(
    key: Option<&Arc<CapabilityIssuer>>,
    access: &AccessPolicy,
    who: &alluxio_common::auth::Identity,
    info: &mut FileInfo,
    created: bool,
) {
    if let Some(key) = key {
        if !info.folder && (created || access.may_read(who, info)) {
            info.capability = key.issue(info.file_id, &who.user);
        }
    }
}

/// Owner, group and mode of a new inode: the owner as the access policy
/// allows the caller to name it.
fn attrs(
    owner: (String, String),
    mode: Option<u32>,
    default_mode: u32,
) -> Result<NewInodeAttrs, AlluxioError> {
    let mode = mode.unwrap_or(default_mode);
    if mode > 0o7777 {
        return Err(AlluxioError::InvalidArgument(format!(
            "Invalid mode {mode:o}"
        )));
    }
    Ok(NewInodeAttrs {
        owner: owner.0,
        group: owner.1,
        mode,
    })
}

impl FileSystemService {
    /// The permission check of `op` at `path` for `who`.
    fn authorize(
        &self,
        who: &alluxio_common::auth::Identity,
        op: &str,
        path: &alluxio_common::AlluxioPath,
        need: Need,
        changes: bool,
    ) -> Result<(), AlluxioError> {
        self.access
            .authorize(&self.fs, who, op, path, need, changes)
    }
}

type ListStream = Pin<Box<dyn futures::Stream<Item = Result<ListStatusResponse, Status>> + Send>>;

#[tonic::async_trait]
impl FsService for FileSystemService {
    async fn create_file(
        &self,
        req: Request<CreateFileRequest>,
    ) -> Result<Response<CreateFileResponse>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        self.metrics
            .observe("CreateFile", async {
                let p = path(&r.path)?;
                self.authorize(&who, "CreateFile", &p, Need::CreateIn, true)?;
                let interval = self.fs.sync_interval(&r.path, r.common.as_ref());
                let write_type = WriteType::try_from(r.write_type).map_err(|_| {
                    AlluxioError::InvalidArgument(format!("Unknown write type {}", r.write_type))
                })?;
                let info = self
                    .fs
                    .create_file(
                        &p,
                        r.recursive,
                        r.block_size_bytes,
                        write_type,
                        if r.ttl_ms == 0 { -1 } else { r.ttl_ms },
                        r.ttl_action,
                        attrs(
                            self.access.new_inode_owner(&who, &r.owner, &r.group),
                            r.mode,
                            0o644,
                        )?,
                        interval,
                    )
                    .await?;
                let mut info = info;
                grant(
                    self.capabilities.as_ref(),
                    &self.access,
                    &who,
                    &mut info,
                    true,
                );
                Ok(CreateFileResponse {
                    file_info: Some(info),
                })
            })
            .await
    }

    async fn complete_file(
        &self,
        req: Request<CompleteFileRequest>,
    ) -> Result<Response<CompleteFileResponse>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        self.metrics
            .observe("CompleteFile", async {
                let p = path(&r.path)?;
                self.authorize(&who, "CompleteFile", &p, Need::Target(WRITE), true)?;
                let info = self
                    .fs
                    .complete_file(&p, r.length, r.persisted, r.ufs_mtime_ms)
                    .await?;
                let mut info = info;
                grant(
                    self.capabilities.as_ref(),
                    &self.access,
                    &who,
                    &mut info,
                    false,
                );
                Ok(CompleteFileResponse {
                    file_info: Some(info),
                })
            })
            .await
    }

    async fn create_directory(
        &self,
        req: Request<CreateDirectoryRequest>,
    ) -> Result<Response<CreateDirectoryResponse>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        self.metrics
            .observe("CreateDirectory", async {
                let p = path(&r.path)?;
                self.authorize(&who, "CreateDirectory", &p, Need::CreateIn, true)?;
                let interval = self.fs.sync_interval(&r.path, r.common.as_ref());
                let persist = r.write_type != WriteType::MustCache as i32;
                let info = self
                    .fs
                    .create_directory(
                        &p,
                        r.recursive,
                        r.allow_exists,
                        persist,
                        attrs(
                            self.access.new_inode_owner(&who, &r.owner, &r.group),
                            r.mode,
                            0o755,
                        )?,
                        interval,
                    )
                    .await?;
                Ok(CreateDirectoryResponse {
                    file_info: Some(info),
                })
            })
            .await
    }

    async fn get_status(
        &self,
        req: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        self.metrics
            .observe("GetStatus", async {
                let p = path(&r.path)?;
                self.authorize(&who, "GetStatus", &p, Need::Traverse, false)?;
                let interval = self.fs.sync_interval(&r.path, r.common.as_ref());
                let mut info = self.fs.get_status(&p, interval).await?;
                grant(
                    self.capabilities.as_ref(),
                    &self.access,
                    &who,
                    &mut info,
                    false,
                );
                Ok(GetStatusResponse {
                    file_info: Some(info),
                })
            })
            .await
    }

    type ListStatusStream = ListStream;

    async fn list_status(
        &self,
        req: Request<ListStatusRequest>,
    ) -> Result<Response<Self::ListStatusStream>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        let batch = self.list_batch_size.max(1);
        let mut ids = self
            .metrics
            .observe("ListStatus", async {
                let p = path(&r.path)?;
                self.authorize(&who, "ListStatus", &p, Need::List, false)?;
                let interval = self.fs.sync_interval(&r.path, r.common.as_ref());
                self.fs.sync_path(&p, interval).await?;
                // A directory about to be listed from the UFS answers as
                // its sync applies the listing, page by page.
                if !r.recursive && self.fs.children_sync_due(&p, interval) {
                    return Ok(self.fs.list_children_while_syncing(p, interval, batch));
                }
                let ids = self.fs.list_ids_below(&p, r.recursive, interval).await?;
                let (tx, rx) = tokio::sync::mpsc::channel(ids.len().div_ceil(batch).max(1));
                for chunk in ids.chunks(batch) {
                    let _ = tx.try_send(Ok(chunk.to_vec()));
                }
                Ok(rx)
            })
            .await?
            .into_inner();
        // Build and send file infos a batch at a time, so a huge directory
        // never sits in memory as one message.
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let fs = self.fs.clone();
        let (key, access) = (self.capabilities.clone(), self.access.clone());
        tokio::spawn(async move {
            while let Some(chunk) = ids.recv().await {
                let reply = chunk.map_err(Status::from).map(|chunk| {
                    let mut infos = fs.file_infos(&chunk);
                    for info in &mut infos {
                        grant(key.as_ref(), &access, &who, info, false);
                    }
                    ListStatusResponse { file_infos: infos }
                });
                if tx.send(reply).await.is_err() {
                    return; // Client went away.
                }
            }
        });
        Ok(Response::new(
            Box::pin(ReceiverStream::new(rx)) as ListStream
        ))
    }

    async fn delete(
        &self,
        req: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        self.metrics
            .observe("Delete", async {
                let p = path(&r.path)?;
                self.authorize(&who, "Delete", &p, Need::RemoveFromParent, true)?;
                let interval = self.fs.sync_interval(&r.path, r.common.as_ref());
                self.fs
                    .delete(&p, r.recursive, r.alluxio_only, interval)
                    .await?;
                Ok(DeleteResponse {})
            })
            .await
    }

    async fn rename(
        &self,
        req: Request<RenameRequest>,
    ) -> Result<Response<RenameResponse>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        self.metrics
            .observe("Rename", async {
                let (src, dst) = (path(&r.src)?, path(&r.dst)?);
                self.authorize(&who, "Rename", &src, Need::RemoveFromParent, true)?;
                self.authorize(&who, "Rename", &dst, Need::CreateIn, true)?;
                let interval = self.fs.sync_interval(&r.src, r.common.as_ref());
                self.fs.rename(&src, &dst, interval).await?;
                Ok(RenameResponse {})
            })
            .await
    }

    async fn set_attribute(
        &self,
        req: Request<SetAttributeRequest>,
    ) -> Result<Response<SetAttributeResponse>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        self.metrics
            .observe("SetAttribute", async {
                let p = path(&r.path)?;
                // chown: the superuser; chmod and chgrp: the owner; pin and
                // TTL: whoever may write it.
                if r.owner.is_some() {
                    self.access
                        .require_superuser(&who, "SetAttribute", &r.path)?;
                }
                if r.mode.is_some() || r.group.is_some() {
                    self.authorize(&who, "SetAttribute", &p, Need::Owner, true)?;
                }
                if r.pinned.is_some() || r.ttl_ms.is_some() || r.ttl_action.is_some() {
                    self.authorize(&who, "SetAttribute", &p, Need::Target(WRITE), true)?;
                }
                let interval = self.fs.sync_interval(&r.path, r.common.as_ref());
                self.fs.set_attribute(&r, interval).await?;
                Ok(SetAttributeResponse {})
            })
            .await
    }

    async fn free(&self, req: Request<FreeRequest>) -> Result<Response<FreeResponse>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        self.metrics
            .observe("Free", async {
                let p = path(&r.path)?;
                self.authorize(&who, "Free", &p, Need::Target(WRITE), true)?;
                let blocks_freed = self.fs.free(&p, r.recursive, r.forced).await?;
                Ok(FreeResponse { blocks_freed })
            })
            .await
    }

    async fn mount(&self, req: Request<MountRequest>) -> Result<Response<MountResponse>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        self.metrics
            .observe("Mount", async {
                self.access.require_admin(&who, "Mount", &r.alluxio_path)?;
                let info = self
                    .fs
                    .mount(
                        &path(&r.alluxio_path)?,
                        &r.ufs_uri,
                        r.read_only,
                        r.shared,
                        r.options.into_iter().collect(),
                    )
                    .await?;
                Ok(MountResponse { mount: Some(info) })
            })
            .await
    }

    async fn unmount(
        &self,
        req: Request<UnmountRequest>,
    ) -> Result<Response<UnmountResponse>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        self.metrics
            .observe("Unmount", async {
                self.access
                    .require_admin(&who, "Unmount", &r.alluxio_path)?;
                self.fs.unmount(&path(&r.alluxio_path)?).await?;
                Ok(UnmountResponse {})
            })
            .await
    }

    async fn update_mount(
        &self,
        req: Request<UpdateMountRequest>,
    ) -> Result<Response<UpdateMountResponse>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        self.metrics
            .observe("UpdateMount", async {
                self.access
                    .require_admin(&who, "UpdateMount", &r.alluxio_path)?;
                let info = self
                    .fs
                    .update_mount(
                        &path(&r.alluxio_path)?,
                        r.read_only,
                        r.shared,
                        r.options.into_iter().collect(),
                    )
                    .await?;
                Ok(UpdateMountResponse { mount: Some(info) })
            })
            .await
    }

    async fn get_mount_table(
        &self,
        _req: Request<GetMountTableRequest>,
    ) -> Result<Response<GetMountTableResponse>, Status> {
        self.metrics
            .observe("GetMountTable", async {
                Ok(GetMountTableResponse {
                    mounts: self.fs.mount_table(),
                })
            })
            .await
    }

    async fn commit_persisted(
        &self,
        req: Request<CommitPersistedRequest>,
    ) -> Result<Response<CommitPersistedResponse>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        self.metrics
            .observe("CommitPersisted", async {
                self.access.require_worker(&who, "CommitPersisted")?;
                self.fs.commit_persisted(r.file_id, r.ufs_mtime_ms).await?;
                Ok(CommitPersistedResponse {})
            })
            .await
    }

    async fn get_ufs_read_url(
        &self,
        req: Request<GetUfsReadUrlRequest>,
    ) -> Result<Response<GetUfsReadUrlResponse>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        self.metrics
            .observe("GetUfsReadUrl", async {
                let p = path(&r.path)?;
                self.authorize(&who, "GetUfsReadUrl", &p, Need::Target(READ), false)?;
                self.fs.ufs_read_url(&p).await
            })
            .await
    }

    async fn get_ufs_info(
        &self,
        req: Request<GetUfsInfoRequest>,
    ) -> Result<Response<GetUfsInfoResponse>, Status> {
        let with_secrets = self.access.may_see_secrets(&caller(&req)?);
        let r = req.into_inner();
        self.metrics
            .observe("GetUfsInfo", async {
                self.fs.ufs_info(r.mount_id, with_secrets)
            })
            .await
    }
}
