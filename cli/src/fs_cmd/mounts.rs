//! `fs mount` (and the mount table), `fs unmount`, `fs updateMount`.

use super::{check_path, parse_options, Session};
use crate::output::{mount_json, mount_line, print_json};
use alluxio_common::AlluxioError;
use alluxio_proto::grpc::{MountPointInfo, MountRequest, UpdateMountRequest};
use serde_json::json;

impl Session {
    /// With both arguments, mounts `ufs_uri` at `alluxio_path`; with none,
    /// lists the mount table.
    pub(super) async fn mount(
        &self,
        alluxio_path: Option<String>,
        ufs_uri: Option<String>,
        read_only: bool,
        shared: bool,
        options: &[String],
    ) -> Result<(), AlluxioError> {
        let (path, uri) = match (alluxio_path, ufs_uri) {
            (None, None) => return self.mount_table().await,
            (Some(path), Some(uri)) => (path, uri),
            _ => {
                return Err(AlluxioError::InvalidArgument(
                    "usage: alluxio fs mount [--readonly] [--shared] [--option k=v] <alluxioPath> <ufsURI>"
                        .to_string(),
                ))
            }
        };
        let info = self
            .master
            .mount(MountRequest {
                alluxio_path: check_path(&path)?,
                ufs_uri: uri.clone(),
                read_only,
                shared,
                options: parse_options(options)?,
            })
            .await?;
        self.print_mount(&info, format!("Mounted {uri} at {path}"));
        Ok(())
    }

    async fn mount_table(&self) -> Result<(), AlluxioError> {
        let mounts = self.master.mount_table().await?;
        if self.json {
            print_json(&json!(mounts.iter().map(mount_json).collect::<Vec<_>>()));
        } else {
            for m in &mounts {
                println!("{}", mount_line(m));
            }
        }
        Ok(())
    }

    pub(super) async fn unmount(&self, alluxio_path: &str) -> Result<(), AlluxioError> {
        self.master.unmount(&check_path(alluxio_path)?).await?;
        self.say(format!("Unmounted {alluxio_path}"));
        Ok(())
    }

    pub(super) async fn update_mount(
        &self,
        alluxio_path: &str,
        read_only: bool,
        shared: bool,
        options: &[String],
    ) -> Result<(), AlluxioError> {
        let info = self
            .master
            .update_mount(UpdateMountRequest {
                alluxio_path: check_path(alluxio_path)?,
                read_only,
                shared,
                options: parse_options(options)?,
            })
            .await?;
        self.print_mount(&info, format!("Updated mount {alluxio_path}"));
        Ok(())
    }

    /// A mount as JSON, or `text`.
    fn print_mount(&self, info: &MountPointInfo, text: String) {
        if self.json {
            print_json(&mount_json(info));
        } else {
            println!("{text}");
        }
    }
}
