//! `alluxio fs ...`: file-system commands, named and shaped like Alluxio's.
//!
//! `run` parses the options every command shares into a [`Session`] and
//! hands the subcommand to one method of it: metadata commands in `meta`,
//! the mount table in `mounts`, data commands in `crate::data_cmd`.

mod meta;
mod mounts;

use crate::data_cmd::{self, Range};
use crate::progress::CopyProgress;
use crate::Context;
use alluxio_client::{FileSystem, MasterClient};
use alluxio_common::units::SyncInterval;
use alluxio_common::{AlluxioError, AlluxioPath};
use alluxio_proto::grpc::{ReadType, WriteType};
use clap::{Args, Subcommand};
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
    /// Cache files in the workers: a load job run by the cluster (see
    /// `alluxio job load`), or with --local by this command itself.
    Load {
        /// Only into a worker on this host, driven by this command.
        #[arg(long)]
        local: bool,
        #[command(flatten)]
        options: crate::job_cmd::LoadArgs,
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

/// What every `fs` subcommand shares: the clients and the global options.
struct Session {
    master: MasterClient,
    fs: FileSystem,
    /// `--sync-interval`, in milliseconds.
    sync: Option<i64>,
    json: bool,
    read_type: Option<ReadType>,
    write_type: Option<WriteType>,
    /// `user.write_type`, for commands that create without `--write-type`.
    default_write_type: WriteType,
}

impl Session {
    /// Prints `text` unless the output is JSON (commands that report
    /// nothing but success print nothing then).
    fn say(&self, text: impl std::fmt::Display) {
        if !self.json {
            println!("{text}");
        }
    }
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
    let s = Session {
        default_write_type: fs.settings().write_type,
        master,
        fs,
        sync: parse_sync_interval(&args.sync_interval)?,
        json: args.json,
        read_type,
        write_type,
    };
    use FsCommand as C;
    match args.command {
        C::Ls {
            recursive,
            human,
            path,
            ..
        } => s.ls(&check_path(&path)?, recursive, human).await,
        C::Stat { path } => s.stat(&check_path(&path)?).await,
        C::Mkdir { parents, paths } => s.mkdir(&paths, parents).await,
        C::Touch { paths } => s.touch(&paths).await,
        C::Rm {
            recursive,
            alluxio_only,
            paths,
        } => s.rm(&paths, recursive, alluxio_only).await,
        C::Mv { src, dst } => s.mv(&check_path(&src)?, &check_path(&dst)?).await,
        C::Mount {
            readonly,
            shared,
            options,
            alluxio_path,
            ufs_uri,
        } => {
            s.mount(alluxio_path, ufs_uri, readonly, shared, &options)
                .await
        }
        C::Unmount { alluxio_path } => s.unmount(&alluxio_path).await,
        C::UpdateMount {
            readonly,
            shared,
            options,
            alluxio_path,
        } => {
            s.update_mount(&alluxio_path, readonly, shared, &options)
                .await
        }
        C::Count { path } => s.count(&check_path(&path)?).await,
        C::Du {
            summarize,
            human,
            path,
            ..
        } => s.du(&check_path(&path)?, summarize, human).await,
        C::Chmod {
            recursive,
            mode,
            path,
        } => s.chmod(&path, &mode, recursive).await,
        C::Chown {
            recursive,
            owner,
            path,
        } => s.chown(&path, &owner, recursive).await,
        C::Pin { path } => s.pin(&path, true).await,
        C::Unpin { path } => s.pin(&path, false).await,
        C::SetTtl { action, path, ttl } => s.set_ttl(&path, &ttl, &action).await,
        C::UnsetTtl { path } => s.unset_ttl(&path).await,
        C::Cat { path } => s.print(&path, Range::All).await,
        C::Head { bytes, path } => s.print(&path, Range::Head(bytes)).await,
        C::Tail { bytes, path } => s.print(&path, Range::Tail(bytes)).await,
        C::CopyFromLocal { src, dst } => s.copy_from_local(&src, &dst).await,
        C::CopyToLocal { src, dst } => s.copy_to_local(&src, &dst).await,
        C::Cp { src, dst } => s.cp(&src, &dst).await,
        C::Load {
            local: true, path, ..
        } => data_cmd::load_here(&s.fs, &check_path(&path)?, s.json).await,
        C::Load { options, path, .. } => {
            let path = check_path(&path)?;
            crate::job_cmd::submit_and_follow(&s.master, &path, options.options(), false, s.json)
                .await
        }
        C::Location { path } => data_cmd::location(&s.fs, &check_path(&path)?, s.json).await,
        C::Checksum { path } => {
            data_cmd::checksum(&s.fs, &check_path(&path)?, s.read_type, s.json).await
        }
        C::Free { force, path } => s.free(&check_path(&path)?, force).await,
    }
}

/// The data commands that print a summary line.
impl Session {
    async fn print(&self, path: &str, range: Range) -> Result<(), AlluxioError> {
        data_cmd::print_range(&self.fs, &check_path(path)?, self.read_type, range).await
    }

    async fn copy_from_local(&self, src: &str, dst: &str) -> Result<(), AlluxioError> {
        let local = data_cmd::local_path(src);
        let progress = CopyProgress::new(self.json);
        if progress.visible() {
            let (files, bytes) = data_cmd::local_totals(&local);
            progress.set_totals(files, bytes);
        }
        let n = data_cmd::copy_from_local(
            &self.fs,
            &local,
            &check_path(dst)?,
            self.write_type,
            &progress,
        )
        .await;
        progress.finish();
        let n = n?;
        self.say(format!("Copied {src} to {dst} ({n} bytes)"));
        Ok(())
    }

    async fn copy_to_local(&self, src: &str, dst: &str) -> Result<(), AlluxioError> {
        let local = data_cmd::local_path(dst);
        let src_path = check_path(src)?;
        let progress = self.copy_progress(&src_path).await?;
        let n =
            data_cmd::copy_to_local(&self.fs, &src_path, &local, self.read_type, &progress).await;
        progress.finish();
        let n = n?;
        self.say(format!("Copied {src} to {dst} ({n} bytes)"));
        Ok(())
    }

    async fn cp(&self, src: &str, dst: &str) -> Result<(), AlluxioError> {
        let (from, to) = (check_path(src)?, check_path(dst)?);
        let progress = self.copy_progress(&from).await?;
        let n = data_cmd::copy(
            &self.fs,
            &from,
            &to,
            self.read_type,
            self.write_type,
            &progress,
        )
        .await;
        progress.finish();
        let n = n?;
        self.say(format!("Copied {src} to {dst} ({n} bytes)"));
        Ok(())
    }

    /// A progress bar for copying Alluxio path `src` (its totals listed
    /// only when the bar is drawn).
    async fn copy_progress(&self, src: &str) -> Result<CopyProgress, AlluxioError> {
        let progress = CopyProgress::new(self.json);
        if progress.visible() {
            let (files, bytes) = data_cmd::alluxio_totals(&self.fs, src).await?;
            progress.set_totals(files, bytes);
        }
        Ok(progress)
    }
}

pub(crate) fn parse_options(raw: &[String]) -> Result<HashMap<String, String>, AlluxioError> {
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
