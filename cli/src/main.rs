//! The `alluxio` command: `alluxio master` runs a master; `alluxio fs ...`
//! and `alluxio fsadmin ...` talk to a running one.
//!
//! Errors print one clear line on stderr and exit with status 1; usage
//! errors exit with status 2 (clap's convention).

mod admin_cmd;
mod data_cmd;
mod fs_cmd;
mod fuse_cmd;
mod job_cmd;
mod local_cmd;
mod master_cmd;
mod output;
mod progress;
mod quorum_cmd;
mod worker_cmd;

use alluxio_common::config::AlluxioConfig;
use alluxio_common::AlluxioError;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "alluxio",
    version,
    about = "alluxio-rs: a distributed cache between compute and storage"
)]
struct Cli {
    /// Configuration file (alluxio.yaml).
    #[arg(long, global = true, env = "ALLUXIO_CONF")]
    conf: Option<PathBuf>,
    /// Override one configuration value, e.g. -D master.rpc_port=20000.
    #[arg(short = 'D', global = true, value_name = "KEY=VALUE")]
    define: Vec<String>,
    /// Master address host:port (default: master.hostname:master.rpc_port).
    #[arg(long, global = true, env = "ALLUXIO_MASTER_ADDRESS")]
    master: Option<String>,
    /// A file holding this client's token (security.token_file).
    /// `ALLUXIO_TOKEN` takes precedence.
    #[arg(long, global = true, value_name = "PATH")]
    token_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a master process.
    Master(master_cmd::MasterArgs),
    /// Run a worker process.
    Worker(worker_cmd::WorkerArgs),
    /// Run a master and workers in this process (a whole local cluster).
    Local(local_cmd::LocalArgs),
    /// File-system commands against a running cluster.
    Fs(fs_cmd::FsArgs),
    /// Administration commands.
    Fsadmin(admin_cmd::AdminArgs),
    /// Jobs the cluster runs: loads into the cache.
    Job(job_cmd::JobArgs),
    /// Mount the namespace as a POSIX file system (FUSE).
    Fuse(fuse_cmd::FuseArgs),
}

/// What every client command needs: the configuration and where the
/// master is.
pub struct Context {
    pub config: AlluxioConfig,
    pub master_address: String,
}

impl Context {
    /// Who this command calls as (see `alluxio_common::auth::credentials`).
    pub fn credentials(&self) -> Result<alluxio_common::auth::Credentials, AlluxioError> {
        Ok(alluxio_common::auth::Credentials::for_client(&self.config)?)
    }

    pub async fn master(&self) -> Result<alluxio_client::MasterClient, AlluxioError> {
        alluxio_client::MasterClient::connect(
            &self.master_address,
            self.config.user.rpc_retry_timeout.0,
            self.credentials()?,
        )
        .await
    }
}

/// Data moves in 1-64 MiB buffers. glibc serves each such allocation with a
/// fresh mmap, so every buffer costs page faults and zeroing by the kernel
/// (a quarter of a worker's CPU in profiles). Keeping them on the heap, and
/// not trimming it eagerly, lets freed buffers be reused.
fn tune_allocator() {
    // SAFETY: mallopt only adjusts glibc's allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

fn main() {
    tune_allocator();
    let cli = Cli::parse();
    let mut config = match AlluxioConfig::load(cli.conf.as_deref(), &cli.define) {
        Ok(c) => c,
        Err(e) => fail(&e),
    };
    if let Some(path) = cli.token_file.clone() {
        config.security.token_file = Some(path);
    }
    alluxio_common::rpc::set_call_timeout(config.user.rpc_timeout.0);
    alluxio_common::rpc::set_failover_timeout(config.user.rpc_retry_timeout.0);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => fail(&AlluxioError::Internal(format!(
            "cannot start the async runtime: {e}"
        ))),
    };
    let master_address = cli
        .master
        .clone()
        .unwrap_or_else(|| config.master_address());
    let ctx = Context {
        config,
        master_address,
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Master(args) => master_cmd::run(ctx, args).await,
            Command::Worker(args) => worker_cmd::run(ctx, args).await,
            Command::Local(args) => local_cmd::run(ctx, args).await,
            Command::Fs(args) => fs_cmd::run(&ctx, args).await,
            Command::Fsadmin(args) => admin_cmd::run(&ctx, args).await,
            Command::Job(args) => job_cmd::run(&ctx, args).await,
            Command::Fuse(args) => fuse_cmd::run(ctx, args).await,
        }
    });
    if let Err(e) = result {
        fail(&e);
    }
}

fn fail(e: &AlluxioError) -> ! {
    eprintln!("Error: {}", e.message());
    std::process::exit(1);
}
