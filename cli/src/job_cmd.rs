//! `alluxio job ...`: load jobs run by the cluster. `job load` submits
//! and follows the job's progress until it ends (`--detach` only submits);
//! `job ls`, `job stat`, `job stop` inspect and stop jobs. `fs load` is
//! `job load` with its defaults.

use crate::output::print_json;
use crate::Context;
use alluxio_client::MasterClient;
use alluxio_common::format::{format_bytes, format_time_ms};
use alluxio_common::units::ByteSize;
use alluxio_common::AlluxioError;
use alluxio_proto::grpc::{JobInfo, JobState, LoadOptions};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Args)]
pub struct JobArgs {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: JobCommand,
}

#[derive(Subcommand)]
enum JobCommand {
    /// Load PATH (a file or a directory tree) into the workers' caches.
    Load {
        path: String,
        #[command(flatten)]
        options: LoadArgs,
        /// Submit and print the job id without waiting for it.
        #[arg(long)]
        detach: bool,
    },
    /// Load the metadata of everything under PATH from the under storage
    /// (directory listings page by page), caching no block.
    #[command(name = "loadMetadata")]
    LoadMetadata {
        path: String,
        /// Submit and print the job id without waiting for it.
        #[arg(long)]
        detach: bool,
    },
    /// Free the cached blocks of every file under PATH; files that cannot
    /// be freed (pinned, or not persisted) are reported.
    Free {
        path: String,
        /// Free pinned files too.
        #[arg(long)]
        forced: bool,
        /// Submit and print the job id without waiting for it.
        #[arg(long)]
        detach: bool,
    },
    /// List jobs, newest first.
    Ls,
    /// Show one job's progress.
    Stat { id: u64 },
    /// Stop a running job.
    Stop { id: u64 },
}

#[derive(Args, Clone, Debug, Default)]
pub struct LoadArgs {
    /// Workers that should hold each block.
    #[arg(long, default_value_t = 1)]
    replicas: u32,
    /// Most bytes per second to fetch from the under storage, e.g. 200MiB/s.
    #[arg(long, value_parser = parse_bandwidth)]
    bandwidth: Option<u64>,
    /// Start loading while listing instead of counting the files first.
    #[arg(long)]
    partial_listing: bool,
    /// Check afterwards that every block is cached on enough workers.
    #[arg(long)]
    verify: bool,
}

impl LoadArgs {
    pub fn options(&self) -> LoadOptions {
        LoadOptions {
            replicas: self.replicas,
            bandwidth_bytes_per_sec: self.bandwidth.unwrap_or(0),
            partial_listing: self.partial_listing,
            verify: self.verify,
            ..Default::default()
        }
    }
}

/// `200MiB/s`, `1g`, `500MB/s`: bytes per second.
fn parse_bandwidth(raw: &str) -> Result<u64, String> {
    ByteSize::parse_per_second(raw)
}

pub async fn run(ctx: &Context, args: JobArgs) -> Result<(), AlluxioError> {
    let master = ctx.master().await?;
    match args.command {
        JobCommand::Load {
            path,
            options,
            detach,
        } => submit_and_follow(&master, &path, options.options(), detach, args.json).await,
        JobCommand::LoadMetadata { path, detach } => {
            let options = LoadOptions {
                metadata_only: true,
                ..Default::default()
            };
            submit_and_follow(&master, &path, options, detach, args.json).await
        }
        JobCommand::Free {
            path,
            forced,
            detach,
        } => {
            let options = LoadOptions {
                free: true,
                forced,
                ..Default::default()
            };
            submit_and_follow(&master, &path, options, detach, args.json).await
        }
        JobCommand::Ls => {
            let jobs = master.list_jobs().await?;
            if args.json {
                print_json(&Value::Array(jobs.iter().map(job_json).collect()));
            } else {
                println!(
                    "{:>6}  {:<10} {:<9} {:>7}  PATH",
                    "ID", "STATE", "PHASE", "DONE"
                );
                for job in &jobs {
                    println!(
                        "{:>6}  {:<10} {:<9} {:>6}%  {}",
                        job.job_id,
                        state_name(job.state()),
                        job.phase,
                        percent(job),
                        job.path
                    );
                }
            }
            Ok(())
        }
        JobCommand::Stat { id } => {
            let job = master.get_job(id).await?;
            if args.json {
                print_json(&job_json(&job));
            } else {
                print!("{}", stat_text(&job));
            }
            Ok(())
        }
        JobCommand::Stop { id } => {
            let job = master.stop_job(id).await?;
            if args.json {
                print_json(&job_json(&job));
            } else {
                println!("job {id}: {}", state_name(job.state()));
            }
            Ok(())
        }
    }
}

/// Submits a load and, unless `detach`, follows it with a progress bar
/// until it ends; an error when files failed or the job was stopped.
pub async fn submit_and_follow(
    master: &MasterClient,
    path: &str,
    options: LoadOptions,
    detach: bool,
    json: bool,
) -> Result<(), AlluxioError> {
    let submitted = master.submit_load(path, options).await?;
    let job = submitted.job.unwrap_or_default();
    let id = job.job_id;
    if detach {
        if json {
            print_json(&json!({"jobId": id, "joined": submitted.joined}));
        } else if submitted.joined {
            println!("joined job {id}, already loading {path}");
        } else {
            println!("submitted job {id}");
        }
        return Ok(());
    }
    if submitted.joined && !json {
        eprintln!("following job {id}, already loading {path}");
    }
    let counts_only = options.metadata_only || options.free;
    let bar = if counts_only {
        crate::progress::count_spinner(json)
    } else {
        crate::progress::bytes_bar(job.bytes_total, json)
    };
    let job = loop {
        let job = master.get_job(id).await?;
        let note = if job.message.is_empty() {
            String::new()
        } else {
            format!(" ({})", job.message)
        };
        if counts_only {
            bar.set_message(format!("{} files{note}", job.files_done));
        } else {
            bar.set_length(job.bytes_total.max(job.bytes_done));
            bar.set_position(job.bytes_done);
            bar.set_message(format!(
                "{}/{} files{note}",
                job.files_done, job.files_total
            ));
        }
        if job.state() != JobState::Running {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    bar.finish_and_clear();
    if json {
        print_json(&job_json(&job));
    } else {
        println!("{}", summary(path, &options, &job));
        for f in &job.failures {
            eprintln!("  failed: {}: {}", f.path, f.reason);
        }
    }
    match job.state() {
        JobState::Succeeded => Ok(()),
        JobState::Stopped => Err(AlluxioError::FailedPrecondition(format!(
            "job {id} {}",
            job.message
        ))),
        _ => Err(AlluxioError::Internal(format!("job {id}: {}", job.message))),
    }
}

/// The line a finished job of `options` prints.
fn summary(path: &str, options: &LoadOptions, job: &JobInfo) -> String {
    let handled = job.files_done - job.files_failed;
    let elapsed = elapsed_text(job);
    if options.free {
        format!(
            "{path}: {handled} files freed ({} were cached){elapsed}",
            format_bytes(job.bytes_done)
        )
    } else if options.metadata_only {
        format!(
            "{path}: metadata of {} files loaded ({} in them){elapsed}",
            job.files_done,
            format_bytes(job.bytes_total)
        )
    } else {
        format!(
            "{path} loaded: {handled} files, {} ({} fetched from the UFS){elapsed}",
            format_bytes(job.bytes_done),
            format_bytes(job.bytes_fetched)
        )
    }
}

fn elapsed_text(job: &JobInfo) -> String {
    if job.end_time_ms <= job.submit_time_ms {
        return String::new();
    }
    let secs = (job.end_time_ms - job.submit_time_ms) as f64 / 1000.0;
    format!(
        " in {secs:.1}s ({}/s)",
        format_bytes((job.bytes_done as f64 / secs.max(1e-3)) as u64)
    )
}

pub fn state_name(state: JobState) -> &'static str {
    match state {
        JobState::Running => "RUNNING",
        JobState::Succeeded => "SUCCEEDED",
        JobState::Failed => "FAILED",
        JobState::Stopped => "STOPPED",
        JobState::Unspecified => "UNKNOWN",
    }
}

/// The command that submits a job like `job`.
fn kind(job: &JobInfo) -> &'static str {
    match job.options.unwrap_or_default() {
        o if o.free => "free",
        o if o.metadata_only => "loadMetadata",
        _ => "load",
    }
}

fn percent(job: &JobInfo) -> u64 {
    if kind(job) != "load" {
        // Nothing says how much is left to list until the listing ends.
        return if job.state() == JobState::Running {
            0
        } else {
            100
        };
    }
    match (job.bytes_total, job.files_total) {
        (0, 0) if job.state() == JobState::Running => 0,
        (0, 0) => 100,
        (0, files) => job.files_done * 100 / files,
        (bytes, _) => (job.bytes_done.min(bytes) * 100) / bytes,
    }
}

fn stat_text(job: &JobInfo) -> String {
    let mut out = format!(
        "Job {} {} {}\n  State: {} ({})\n  Owner: {}\n  Submitted: {}\n",
        job.job_id,
        kind(job),
        job.path,
        state_name(job.state()),
        job.phase,
        job.owner,
        format_time_ms(job.submit_time_ms)
    );
    if job.end_time_ms > 0 {
        out += &format!("  Ended: {}\n", format_time_ms(job.end_time_ms));
    }
    out += &format!(
        "  Files: {} of {}{} ({} failed)\n  Bytes: {} of {} ({}%), {} fetched from the UFS\n",
        job.files_done,
        job.files_total,
        if job.listing_done {
            ""
        } else {
            "+ (still listing)"
        },
        job.files_failed,
        format_bytes(job.bytes_done),
        format_bytes(job.bytes_total),
        percent(job),
        format_bytes(job.bytes_fetched)
    );
    if job.state() == JobState::Running {
        out += &format!(
            "  Throughput: {}/s\n  ETA: {}\n",
            format_bytes(job.throughput_bytes_per_sec as u64),
            if job.eta_ms < 0 {
                "unknown".to_string()
            } else {
                format!("{}s", job.eta_ms / 1000)
            }
        );
    }
    if !job.message.is_empty() {
        out += &format!("  Message: {}\n", job.message);
    }
    for f in &job.failures {
        out += &format!("  Failed: {}: {}\n", f.path, f.reason);
    }
    out
}

pub fn job_json(job: &JobInfo) -> Value {
    let options = job.options.unwrap_or_default();
    json!({
        "jobId": job.job_id,
        "path": job.path,
        "state": state_name(job.state()),
        "phase": job.phase,
        "owner": job.owner,
        "replicas": options.replicas,
        "bandwidthBytesPerSec": options.bandwidth_bytes_per_sec,
        "partialListing": options.partial_listing,
        "verify": options.verify,
        "kind": kind(job),
        "metadataOnly": options.metadata_only,
        "forced": options.forced,
        "submitTimeMs": job.submit_time_ms,
        "endTimeMs": job.end_time_ms,
        "filesTotal": job.files_total,
        "bytesTotal": job.bytes_total,
        "listingDone": job.listing_done,
        "filesDone": job.files_done,
        "bytesDone": job.bytes_done,
        "bytesFetched": job.bytes_fetched,
        "filesFailed": job.files_failed,
        "percent": percent(job),
        "throughputBytesPerSec": job.throughput_bytes_per_sec,
        "etaMs": job.eta_ms,
        "message": job.message,
        "failures": job.failures.iter().map(|f| json!({"path": f.path, "reason": f.reason})).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidths_read_like_sizes_per_second() {
        assert_eq!(parse_bandwidth("200MiB/s"), Ok(200 << 20));
        assert_eq!(parse_bandwidth("1g"), Ok(1 << 30));
        assert!(parse_bandwidth("0/s").is_err());
        assert!(parse_bandwidth("fast").is_err());
    }

    #[test]
    fn percent_follows_bytes_then_files() {
        let mut job = JobInfo {
            bytes_total: 200,
            bytes_done: 50,
            files_total: 4,
            files_done: 3,
            state: JobState::Running as i32,
            ..Default::default()
        };
        assert_eq!(percent(&job), 25);
        job.bytes_total = 0;
        assert_eq!(percent(&job), 75);
        job.files_total = 0;
        assert_eq!(percent(&job), 0);
        job.state = JobState::Succeeded as i32;
        assert_eq!(percent(&job), 100);
    }
}
