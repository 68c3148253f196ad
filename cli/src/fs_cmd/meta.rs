//! Metadata commands: ls, stat, mkdir, touch, rm, mv, count, du, chmod,
//! chown, pin/unpin, setTtl/unsetTtl, free.

use super::{check_path, Session};
use crate::output::{self, file_info_json, ls_line, print_json, stat_text};
use alluxio_common::format::format_bytes;
use alluxio_common::AlluxioError;
use alluxio_proto::grpc::{CreateDirectoryRequest, FileInfo, SetAttributeRequest, TtlAction};
use serde_json::json;

type Result<T = ()> = std::result::Result<T, AlluxioError>;

impl Session {
    pub(super) async fn ls(&self, path: &str, recursive: bool, human: bool) -> Result {
        let infos = self.master.list_status(path, recursive, self.sync).await?;
        if self.json {
            print_json(&json!(infos.iter().map(file_info_json).collect::<Vec<_>>()));
        } else {
            for info in &infos {
                println!("{}", ls_line(info, human));
            }
        }
        Ok(())
    }

    pub(super) async fn stat(&self, path: &str) -> Result {
        let info = self.master.get_status(path, self.sync).await?;
        if self.json {
            print_json(&file_info_json(&info));
        } else {
            print!("{}", stat_text(&info));
        }
        Ok(())
    }

    pub(super) async fn mkdir(&self, paths: &[String], parents: bool) -> Result {
        for path in paths {
            let path = check_path(path)?;
            self.master
                .create_directory(CreateDirectoryRequest {
                    path: path.clone(),
                    recursive: parents,
                    allow_exists: parents,
                    write_type: self.default_write_type as i32,
                    owner: self.fs.settings().user.clone(),
                    group: self.fs.settings().group.clone(),
                    ..Default::default()
                })
                .await?;
            self.say(format!("Successfully created directory {path}"));
        }
        Ok(())
    }

    pub(super) async fn touch(&self, paths: &[String]) -> Result {
        let write_type = self.write_type.unwrap_or(self.default_write_type);
        for path in paths {
            let path = check_path(path)?;
            self.fs.write_file(&path, write_type, Vec::new()).await?;
            self.say(format!("{path} has been created"));
        }
        Ok(())
    }

    pub(super) async fn rm(&self, paths: &[String], recursive: bool, alluxio_only: bool) -> Result {
        for path in paths {
            let path = check_path(path)?;
            self.master.delete(&path, recursive, alluxio_only).await?;
            self.say(format!("{path} has been removed"));
        }
        Ok(())
    }

    pub(super) async fn mv(&self, src: &str, dst: &str) -> Result {
        self.master.rename(src, dst).await?;
        self.say(format!("Renamed {src} to {dst}"));
        Ok(())
    }

    pub(super) async fn count(&self, path: &str) -> Result {
        let (root, below) = self.all_below(path).await?;
        let files = below.iter().filter(|i| !i.folder).count() as u64;
        let folders = below.iter().filter(|i| i.folder).count() as u64 + u64::from(root.folder);
        let bytes: u64 = below.iter().filter(|i| !i.folder).map(|i| i.length).sum();
        if self.json {
            print_json(&json!({"fileCount": files, "folderCount": folders, "folderSize": bytes}));
        } else {
            println!("{:<16}{:<16}Folder Size", "File Count", "Folder Count");
            println!("{files:<16}{folders:<16}{bytes}");
        }
        Ok(())
    }

    pub(super) async fn du(&self, path: &str, summarize: bool, human: bool) -> Result {
        let (_, below) = self.all_below(path).await?;
        let files: Vec<&FileInfo> = below.iter().filter(|i| !i.folder).collect();
        let cached = |i: &FileInfo| i.length * i.in_alluxio_percentage as u64 / 100;
        let size = |n: u64| {
            if human {
                format_bytes(n)
            } else {
                n.to_string()
            }
        };
        let total: u64 = files.iter().map(|i| i.length).sum();
        let total_cached: u64 = files.iter().map(|i| cached(i)).sum();
        if self.json {
            let rows: Vec<_> = files
                .iter()
                .map(|i| json!({"path": i.path, "size": i.length, "inAlluxio": cached(i)}))
                .collect();
            print_json(
                &json!({"path": path, "size": total, "inAlluxio": total_cached, "files": rows}),
            );
            return Ok(());
        }
        println!("{:<16}{:<20}Path", "File Size", "In Alluxio");
        if summarize {
            let pct = (total_cached * 100).checked_div(total).unwrap_or(100);
            let in_alluxio = format!("{} ({pct}%)", size(total_cached));
            println!("{:<16}{:<20}{}", size(total), in_alluxio, path);
        } else {
            for i in files {
                let in_alluxio = format!("{} ({}%)", size(cached(i)), i.in_alluxio_percentage);
                println!("{:<16}{:<20}{}", size(i.length), in_alluxio, i.path);
            }
        }
        Ok(())
    }

    pub(super) async fn chmod(&self, path: &str, mode: &str, recursive: bool) -> Result {
        let mode = u32::from_str_radix(mode, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| {
                AlluxioError::InvalidArgument(format!(
                    "invalid mode {mode:?}: expected octal like 755"
                ))
            })?;
        self.set_attr(path, recursive, |r| r.mode = Some(mode))
            .await?;
        self.say(format!("Changed permission of {path} to {mode:o}"));
        Ok(())
    }

    pub(super) async fn chown(&self, path: &str, owner: &str, recursive: bool) -> Result {
        let (user, group) = match owner.split_once(':') {
            Some((u, g)) => (u.to_string(), Some(g.to_string())),
            None => (owner.to_string(), None),
        };
        self.set_attr(path, recursive, |r| {
            r.owner = Some(user);
            r.group = group;
        })
        .await?;
        self.say(format!("Changed owner of {path} to {owner}"));
        Ok(())
    }

    pub(super) async fn pin(&self, path: &str, pinned: bool) -> Result {
        self.set_attr(path, true, |r| r.pinned = Some(pinned))
            .await?;
        let done = if pinned { "pinned" } else { "unpinned" };
        self.say(format!("File '{path}' was successfully {done}."));
        Ok(())
    }

    pub(super) async fn set_ttl(&self, path: &str, ttl: &str, action: &str) -> Result {
        let action = match action.to_ascii_lowercase().as_str() {
            "delete" => TtlAction::Delete,
            "free" => TtlAction::Free,
            "delete_alluxio" => TtlAction::DeleteAlluxio,
            other => {
                return Err(AlluxioError::InvalidArgument(format!(
                    "unknown TTL action {other:?}: use delete, free or delete_alluxio"
                )))
            }
        };
        let ms = ttl
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .or_else(|| {
                humantime::parse_duration(ttl)
                    .ok()
                    .map(|d| d.as_millis() as i64)
            })
            .ok_or_else(|| AlluxioError::InvalidArgument(format!("invalid TTL {ttl:?}")))?;
        self.set_attr(path, false, |r| {
            r.ttl_ms = Some(ms);
            r.ttl_action = Some(action as i32);
        })
        .await?;
        self.say(format!(
            "TTL of path '{path}' was successfully set to {ms} milliseconds, with expiry action set to {}",
            output::ttl_action_name(action as i32)
        ));
        Ok(())
    }

    pub(super) async fn unset_ttl(&self, path: &str) -> Result {
        self.set_attr(path, false, |r| r.ttl_ms = Some(-1)).await?;
        self.say(format!("TTL of path '{path}' was successfully removed."));
        Ok(())
    }

    pub(super) async fn free(&self, path: &str, force: bool) -> Result {
        let blocks = self.master.free(path, true, force).await?;
        if self.json {
            print_json(&json!({"path": path, "blocksFreed": blocks}));
        } else {
            println!("{path} was successfully freed from Alluxio space ({blocks} block copies).");
        }
        Ok(())
    }

    async fn set_attr(
        &self,
        path: &str,
        recursive: bool,
        fill: impl FnOnce(&mut SetAttributeRequest),
    ) -> Result {
        let mut req = SetAttributeRequest {
            path: check_path(path)?,
            recursive,
            ..Default::default()
        };
        fill(&mut req);
        self.master.set_attribute(req).await
    }

    /// `path` and, when it is a directory, everything below it.
    async fn all_below(&self, path: &str) -> Result<(FileInfo, Vec<FileInfo>)> {
        let root = self.master.get_status(path, self.sync).await?;
        let below = if root.folder {
            self.master.list_status(path, true, self.sync).await?
        } else {
            vec![root.clone()]
        };
        Ok((root, below))
    }
}
