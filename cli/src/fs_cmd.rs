//! `alluxio fs ...`: file-system commands, named and shaped like Alluxio's.

use crate::data_cmd;
use crate::output::{self, file_info_json, ls_line, mount_json, mount_line, print_json, stat_text};
use crate::Context;
use alluxio_client::FileSystem;
use alluxio_common::format::format_bytes;
use alluxio_common::units::SyncInterval;
use alluxio_common::{AlluxioError, AlluxioPath};
use alluxio_proto::grpc::{
    CreateDirectoryRequest, FileInfo, MountRequest, SetAttributeRequest, TtlAction,
    UpdateMountRequest, WriteType,
};
use clap::{Args, Subcommand};
use serde_json::json;
use std::collections::HashMap;

#[derive(Args)]
pub struct FsArgs {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Metadata sync interval for this command (-1 never, 0 always, or a
    /// duration such as 30s).
    #[arg(long = "sync-interval", global = true, allow_hyphen_values = true)]
    sync_interval: Option<String>,
    /// Read type: CACHE, CACHE_PROMOTE or NO_CACHE (default: user.read_type).
    #[arg(long = "read-type", global = true)]
    read_type: Option<String>,
    /// Write type: MUST_CACHE, CACHE_THROUGH, THROUGH or ASYNC_THROUGH
    /// (default: user.write_type).
    #[arg(long = "write-type", global = true)]
    write_type: Option<String>,
    #[command(subcommand)]
    command: FsCommand,
}

#[derive(Subcommand)]
enum FsCommand {
    /// List a directory (or show a file).
    #[command(disable_help_flag = true)]
    Ls {
        #[arg(long, action = clap::ArgAction::Help)]
        help: Option<bool>,
        #[arg(short = 'R')]
        recursive: bool,
        /// Human-readable sizes.
        #[arg(short = 'h')]
        human: bool,
        path: String,
    },
    /// Show everything about one path.
    Stat {
        path: String,
    },
    /// Create directories.
    Mkdir {
        /// Create missing parents; no error if it exists.
        #[arg(short = 'p')]
        parents: bool,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Create empty files.
    Touch {
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Remove files or directories.
    Rm {
        #[arg(short = 'R')]
        recursive: bool,
        /// Remove from Alluxio only; keep the data in the UFS.
        #[arg(long = "alluxioOnly")]
        alluxio_only: bool,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Rename a file or directory.
    Mv {
        src: String,
        dst: String,
    },
    /// Mount a UFS (no arguments: list the mount table).
    Mount {
        #[arg(long)]
        readonly: bool,
        #[arg(long)]
        shared: bool,
        /// UFS option, e.g. --option endpoint=http://127.0.0.1:9000
        #[arg(long = "option", value_name = "KEY=VALUE")]
        options: Vec<String>,
        alluxio_path: Option<String>,
        ufs_uri: Option<String>,
    },
    /// Remove a mount (and Alluxio's metadata below it).
    Unmount {
        alluxio_path: String,
    },
    /// Replace a mount's options.
    #[command(name = "updateMount")]
    UpdateMount {
        #[arg(long)]
        readonly: bool,
        #[arg(long)]
        shared: bool,
        #[arg(long = "option", value_name = "KEY=VALUE")]
        options: Vec<String>,
        alluxio_path: String,
    },
    /// Count files, folders and bytes below a path.
    Count {
        path: String,
    },
    /// Sizes of files below a path, and how much of them is cached.
    #[command(disable_help_flag = true)]
    Du {
        #[arg(long, action = clap::ArgAction::Help)]
        help: Option<bool>,
        /// One summary line.
        #[arg(short = 's')]
        summarize: bool,
        #[arg(short = 'h')]
        human: bool,
        path: String,
    },
    /// Change the mode (octal, e.g. 755).
    Chmod {
        #[arg(short = 'R')]
        recursive: bool,
        mode: String,
        path: String,
    },
    /// Change owner (and group with owner:group).
    Chown {
        #[arg(short = 'R')]
        recursive: bool,
        owner: String,
        path: String,
    },
    /// Keep a file's blocks from being evicted.
    Pin {
        path: String,
    },
    Unpin {
        path: String,
    },
    /// Set a time to live (milliseconds or a duration like 1h).
    #[command(name = "setTtl")]
    SetTtl {
        /// delete (Alluxio and UFS), free, or delete_alluxio.
        #[arg(long, default_value = "delete")]
        action: String,
        path: String,
        ttl: String,
    },
    #[command(name = "unsetTtl")]
    UnsetTtl {
        path: String,
    },
    /// Print a file.
    Cat {
        path: String,
    },
    /// Print the first bytes of a file.
    Head {
        /// Bytes to print.
        #[arg(short = 'c', default_value_t = 1024)]
        bytes: u64,
        path: String,
    },
    /// Print the last bytes of a file.
    Tail {
        #[arg(short = 'c', default_value_t = 1024)]
        bytes: u64,
        path: String,
    },
    /// Copy local files or directories into Alluxio.
    #[command(name = "copyFromLocal")]
    CopyFromLocal {
        src: String,
        dst: String,
    },
    /// Copy Alluxio files or directories to the local file system.
    #[command(name = "copyToLocal")]
    CopyToLocal {
        src: String,
        dst: String,
    },
    /// Copy within Alluxio.
    Cp {
        src: String,
        dst: String,
    },
    /// Cache files in the workers.
    Load {
        /// Only into a worker on this host.
        #[arg(long)]
        local: bool,
        path: String,
    },
    /// Show which workers hold a file's blocks.
    Location {
        path: String,
    },
    /// MD5 of a file's content.
    Checksum {
        path: String,
    },
    /// Drop cached blocks of a path from the workers.
    Free {
        /// Also free pinned files.
        #[arg(short = 'f')]
        force: bool,
        path: String,
    },
}

fn parse_options(raw: &[String]) -> Result<HashMap<String, String>, AlluxioError> {
    raw.iter()
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| {
                    AlluxioError::InvalidArgument(format!(
                        "invalid option {item:?}: expected KEY=VALUE"
                    ))
                })
        })
        .collect()
}

fn parse_sync_interval(raw: &Option<String>) -> Result<Option<i64>, AlluxioError> {
    raw.as_deref()
        .map(|r| r.parse::<SyncInterval>().map(SyncInterval::as_millis))
        .transpose()
        .map_err(AlluxioError::InvalidArgument)
}

fn check_path(raw: &str) -> Result<String, AlluxioError> {
    Ok(AlluxioPath::new(raw)?.to_string())
}

pub async fn run(ctx: &Context, args: FsArgs) -> Result<(), AlluxioError> {
    let master = ctx.master().await?;
    let fs = FileSystem::with_config(master.clone(), &ctx.config);
    let read_type = args
        .read_type
        .as_deref()
        .map(alluxio_client::parse_read_type)
        .transpose()?;
    let write_type = args
        .write_type
        .as_deref()
        .map(alluxio_client::parse_write_type)
        .transpose()?;
    let sync = parse_sync_interval(&args.sync_interval)?;
    let json = args.json;
    match args.command {
        FsCommand::Ls { recursive, human, path, .. } => {
            let infos = master.list_status(&check_path(&path)?, recursive, sync).await?;
            if json {
                print_json(&json!(infos.iter().map(file_info_json).collect::<Vec<_>>()));
            } else {
                for info in &infos {
                    println!("{}", ls_line(info, human));
                }
            }
        }
        FsCommand::Stat { path } => {
            let info = master.get_status(&check_path(&path)?, sync).await?;
            if json {
                print_json(&file_info_json(&info));
            } else {
                print!("{}", stat_text(&info));
            }
        }
        FsCommand::Mkdir { parents, paths } => {
            for path in paths {
                let path = check_path(&path)?;
                master
                    .create_directory(CreateDirectoryRequest {
                        path: path.clone(),
                        recursive: parents,
                        allow_exists: parents,
                        write_type: default_write_type(ctx) as i32,
                        owner: fs.user.clone(),
                        group: fs.group.clone(),
                        ..Default::default()
                    })
                    .await?;
                if !json {
                    println!("Successfully created directory {path}");
                }
            }
        }
        FsCommand::Touch { paths } => {
            for path in paths {
                let path = check_path(&path)?;
                fs.write_file(&path, write_type.unwrap_or(default_write_type(ctx)), Vec::new()).await?;
                if !json {
                    println!("{path} has been created");
                }
            }
        }
        FsCommand::Rm { recursive, alluxio_only, paths } => {
            for path in paths {
                let path = check_path(&path)?;
                master.delete(&path, recursive, alluxio_only).await?;
                if !json {
                    println!("{path} has been removed");
                }
            }
        }
        FsCommand::Mv { src, dst } => {
            let (src, dst) = (check_path(&src)?, check_path(&dst)?);
            master.rename(&src, &dst).await?;
            if !json {
                println!("Renamed {src} to {dst}");
            }
        }
        FsCommand::Mount { readonly, shared, options, alluxio_path, ufs_uri } => match (alluxio_path, ufs_uri) {
            (None, None) => {
                let mounts = master.mount_table().await?;
                if json {
                    print_json(&json!(mounts.iter().map(mount_json).collect::<Vec<_>>()));
                } else {
                    for m in &mounts {
                        println!("{}", mount_line(m));
                    }
                }
            }
            (Some(path), Some(uri)) => {
                let info = master
                    .mount(MountRequest {
                        alluxio_path: check_path(&path)?,
                        ufs_uri: uri.clone(),
                        read_only: readonly,
                        shared,
                        options: parse_options(&options)?,
                    })
                    .await?;
                if json {
                    print_json(&mount_json(&info));
                } else {
                    println!("Mounted {uri} at {path}");
                }
            }
            _ => {
                return Err(AlluxioError::InvalidArgument(
                    "usage: alluxio fs mount [--readonly] [--shared] [--option k=v] <alluxioPath> <ufsURI>".to_string(),
                ))
            }
        },
        FsCommand::Unmount { alluxio_path } => {
            master.unmount(&check_path(&alluxio_path)?).await?;
            if !json {
                println!("Unmounted {alluxio_path}");
            }
        }
        FsCommand::UpdateMount { readonly, shared, options, alluxio_path } => {
            let info = master
                .update_mount(UpdateMountRequest {
                    alluxio_path: check_path(&alluxio_path)?,
                    read_only: readonly,
                    shared,
                    options: parse_options(&options)?,
                })
                .await?;
            if json {
                print_json(&mount_json(&info));
            } else {
                println!("Updated mount {alluxio_path}");
            }
        }
        FsCommand::Count { path } => {
            let (files, folders, bytes) = count(&master, &check_path(&path)?, sync).await?;
            if json {
                print_json(&json!({"fileCount": files, "folderCount": folders, "folderSize": bytes}));
            } else {
                println!("{:<16}{:<16}Folder Size", "File Count", "Folder Count");
                println!("{files:<16}{folders:<16}{bytes}");
            }
        }
        FsCommand::Du { summarize, human, path, .. } => du(&master, &check_path(&path)?, sync, summarize, human, json).await?,
        FsCommand::Chmod { recursive, mode, path } => {
            let mode = u32::from_str_radix(&mode, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| AlluxioError::InvalidArgument(format!("invalid mode {mode:?}: expected octal like 755")))?;
            set_attr(&master, &path, recursive, |r| r.mode = Some(mode)).await?;
            if !json {
                println!("Changed permission of {path} to {mode:o}");
            }
        }
        FsCommand::Chown { recursive, owner, path } => {
            let (user, group) = match owner.split_once(':') {
                Some((u, g)) => (u.to_string(), Some(g.to_string())),
                None => (owner.clone(), None),
            };
            set_attr(&master, &path, recursive, |r| {
                r.owner = Some(user.clone());
                r.group = group.clone();
            })
            .await?;
            if !json {
                println!("Changed owner of {path} to {owner}");
            }
        }
        FsCommand::Pin { path } => {
            set_attr(&master, &path, true, |r| r.pinned = Some(true)).await?;
            if !json {
                println!("File '{path}' was successfully pinned.");
            }
        }
        FsCommand::Unpin { path } => {
            set_attr(&master, &path, true, |r| r.pinned = Some(false)).await?;
            if !json {
                println!("File '{path}' was successfully unpinned.");
            }
        }
        FsCommand::SetTtl { action, path, ttl } => {
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
                .or_else(|| humantime::parse_duration(&ttl).ok().map(|d| d.as_millis() as i64))
                .ok_or_else(|| AlluxioError::InvalidArgument(format!("invalid TTL {ttl:?}")))?;
            set_attr(&master, &path, false, |r| {
                r.ttl_ms = Some(ms);
                r.ttl_action = Some(action as i32);
            })
            .await?;
            if !json {
                println!("TTL of path '{path}' was successfully set to {ms} milliseconds, with expiry action set to {}", output::ttl_action_name(action as i32));
            }
        }
        FsCommand::UnsetTtl { path } => {
            set_attr(&master, &path, false, |r| r.ttl_ms = Some(-1)).await?;
            if !json {
                println!("TTL of path '{path}' was successfully removed.");
            }
        }
        FsCommand::Cat { path } => data_cmd::print_range(&fs, &check_path(&path)?, read_type, data_cmd::Range::All).await?,
        FsCommand::Head { bytes, path } => {
            data_cmd::print_range(&fs, &check_path(&path)?, read_type, data_cmd::Range::Head(bytes)).await?
        }
        FsCommand::Tail { bytes, path } => {
            data_cmd::print_range(&fs, &check_path(&path)?, read_type, data_cmd::Range::Tail(bytes)).await?
        }
        FsCommand::CopyFromLocal { src, dst } => {
            let n = data_cmd::copy_from_local(&fs, &data_cmd::local_path(&src), &check_path(&dst)?, write_type).await?;
            if !json {
                println!("Copied {src} to {dst} ({n} bytes)");
            }
        }
        FsCommand::CopyToLocal { src, dst } => {
            let n = data_cmd::copy_to_local(&fs, &check_path(&src)?, &data_cmd::local_path(&dst), read_type).await?;
            if !json {
                println!("Copied {src} to {dst} ({n} bytes)");
            }
        }
        FsCommand::Cp { src, dst } => {
            let n = data_cmd::copy(&fs, &check_path(&src)?, &check_path(&dst)?, read_type, write_type).await?;
            if !json {
                println!("Copied {src} to {dst} ({n} bytes)");
            }
        }
        FsCommand::Load { local, path } => data_cmd::load(&fs, &check_path(&path)?, local, json).await?,
        FsCommand::Location { path } => data_cmd::location(&fs, &check_path(&path)?, json).await?,
        FsCommand::Checksum { path } => data_cmd::checksum(&fs, &check_path(&path)?, read_type, json).await?,
        FsCommand::Free { force, path } => {
            let blocks = master.free(&check_path(&path)?, true, force).await?;
            if json {
                print_json(&json!({"path": path, "blocksFreed": blocks}));
            } else {
                println!("{path} was successfully freed from Alluxio space ({blocks} block copies).");
            }
        }
    }
    Ok(())
}

fn default_write_type(ctx: &Context) -> WriteType {
    use alluxio_common::config::WriteTypeConfig as W;
    match ctx.config.user.write_type {
        W::MustCache => WriteType::MustCache,
        W::CacheThrough => WriteType::CacheThrough,
        W::Through => WriteType::Through,
        W::AsyncThrough => WriteType::AsyncThrough,
    }
}

async fn set_attr(
    master: &alluxio_client::MasterClient,
    path: &str,
    recursive: bool,
    fill: impl FnOnce(&mut SetAttributeRequest),
) -> Result<(), AlluxioError> {
    let mut req = SetAttributeRequest {
        path: check_path(path)?,
        recursive,
        ..Default::default()
    };
    fill(&mut req);
    master.set_attribute(req).await
}

async fn all_below(
    master: &alluxio_client::MasterClient,
    path: &str,
    sync: Option<i64>,
) -> Result<(FileInfo, Vec<FileInfo>), AlluxioError> {
    let root = master.get_status(path, sync).await?;
    let below = if root.folder {
        master.list_status(path, true, sync).await?
    } else {
        vec![root.clone()]
    };
    Ok((root, below))
}

async fn count(
    master: &alluxio_client::MasterClient,
    path: &str,
    sync: Option<i64>,
) -> Result<(u64, u64, u64), AlluxioError> {
    let (root, below) = all_below(master, path, sync).await?;
    let files = below.iter().filter(|i| !i.folder).count() as u64;
    let folders = below.iter().filter(|i| i.folder).count() as u64 + u64::from(root.folder);
    let bytes = below.iter().filter(|i| !i.folder).map(|i| i.length).sum();
    Ok((files, folders, bytes))
}

async fn du(
    master: &alluxio_client::MasterClient,
    path: &str,
    sync: Option<i64>,
    summarize: bool,
    human: bool,
    json: bool,
) -> Result<(), AlluxioError> {
    let (_, below) = all_below(master, path, sync).await?;
    let files: Vec<&FileInfo> = below.iter().filter(|i| !i.folder).collect();
    let cached = |i: &FileInfo| i.length * i.in_alluxio_percentage as u64 / 100;
    let size = |n: u64| {
        if human {
            format_bytes(n)
        } else {
            n.to_string()
        }
    };
    if json {
        let rows: Vec<_> = files
            .iter()
            .map(|i| json!({"path": i.path, "size": i.length, "inAlluxio": cached(i)}))
            .collect();
        let total: u64 = files.iter().map(|i| i.length).sum();
        let total_cached: u64 = files.iter().map(|i| cached(i)).sum();
        print_json(&json!({"path": path, "size": total, "inAlluxio": total_cached, "files": rows}));
        return Ok(());
    }
    println!("{:<16}{:<20}Path", "File Size", "In Alluxio");
    if summarize {
        let total: u64 = files.iter().map(|i| i.length).sum();
        let total_cached: u64 = files.iter().map(|i| cached(i)).sum();
        let pct = (total_cached * 100).checked_div(total).unwrap_or(100);
        println!(
            "{:<16}{:<20}{}",
            size(total),
            format!("{} ({pct}%)", size(total_cached)),
            path
        );
    } else {
        for i in files {
            println!(
                "{:<16}{:<20}{}",
                size(i.length),
                format!("{} ({}%)", size(cached(i)), i.in_alluxio_percentage),
                i.path
            );
        }
    }
    Ok(())
}
