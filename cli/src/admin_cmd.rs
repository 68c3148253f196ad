//! `alluxio fsadmin report`: the cluster at a glance.

use crate::output::{print_json, worker_json};
use crate::Context;
use alluxio_common::format::{format_bytes, format_time_ms};
use alluxio_common::AlluxioError;
use clap::{Args, Subcommand};
use serde_json::json;

#[derive(Args)]
pub struct AdminArgs {
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Master, workers, capacity and journal.
    Report,
}

pub async fn run(ctx: &Context, args: AdminArgs) -> Result<(), AlluxioError> {
    let master = ctx.master().await?;
    match args.command {
        AdminCommand::Report => {
            let info = master.master_info().await?;
            let workers = master.worker_infos().await?;
            let journal = info.journal.clone().unwrap_or_default();
            let capacity: u64 = info.capacity.iter().map(|t| t.capacity_bytes).sum();
            let used: u64 = info.capacity.iter().map(|t| t.used_bytes).sum();
            if args.json {
                print_json(&json!({
                    "masterAddress": info.address,
                    "webPort": info.web_port,
                    "version": info.version,
                    "startTimeMs": info.start_time_ms,
                    "files": info.files,
                    "directories": info.directories,
                    "mountPoints": info.mount_points,
                    "liveWorkers": info.live_workers,
                    "lostWorkers": info.lost_workers,
                    "capacityBytes": capacity,
                    "usedBytes": used,
                    "tiers": info.capacity.iter().map(|t| json!({
                        "alias": t.tier_alias, "capacityBytes": t.capacity_bytes, "usedBytes": t.used_bytes
                    })).collect::<Vec<_>>(),
                    "journal": {
                        "directory": journal.directory,
                        "lastSequence": journal.last_sequence,
                        "entriesSinceCheckpoint": journal.entries_since_checkpoint,
                        "lastCheckpointSequence": journal.last_checkpoint_sequence,
                        "lastCheckpointTimeMs": journal.last_checkpoint_time_ms,
                    },
                    "workers": workers.iter().map(worker_json).collect::<Vec<_>>(),
                }));
                return Ok(());
            }
            println!("Alluxio cluster summary:");
            println!("    Master Address: {}", info.address);
            println!("    Web Port: {}", info.web_port);
            println!("    Started: {}", format_time_ms(info.start_time_ms));
            println!("    Version: {}", info.version);
            println!(
                "    Files: {}  Directories: {}  Mount points: {}",
                info.files, info.directories, info.mount_points
            );
            println!("    Live Workers: {}", info.live_workers);
            println!("    Lost Workers: {}", info.lost_workers);
            println!("    Total Capacity: {}", format_bytes(capacity));
            for t in &info.capacity {
                println!(
                    "        Tier: {}  Size: {}",
                    t.tier_alias,
                    format_bytes(t.capacity_bytes)
                );
            }
            println!("    Used Capacity: {}", format_bytes(used));
            for t in &info.capacity {
                println!(
                    "        Tier: {}  Size: {}",
                    t.tier_alias,
                    format_bytes(t.used_bytes)
                );
            }
            println!("    Journal:");
            println!("        Directory: {}", journal.directory);
            println!("        Last Sequence: {}", journal.last_sequence);
            println!(
                "        Entries Since Checkpoint: {}",
                journal.entries_since_checkpoint
            );
            let when = if journal.last_checkpoint_time_ms > 0 {
                format_time_ms(journal.last_checkpoint_time_ms)
            } else {
                "never (this run)".to_string()
            };
            println!(
                "        Last Checkpoint: sequence {} at {when}",
                journal.last_checkpoint_sequence
            );
            if !workers.is_empty() {
                println!();
                println!(
                    "{:<22}{:<24}{:<7}{:<24}{:<24}Blocks",
                    "Worker Id", "Address", "State", "Capacity", "Used"
                );
                for w in &workers {
                    let a = w.address.clone().unwrap_or_default();
                    let cap: Vec<String> = w
                        .tiers
                        .iter()
                        .map(|t| format!("{}:{}", t.tier_alias, format_bytes(t.capacity_bytes)))
                        .collect();
                    let used: Vec<String> = w
                        .tiers
                        .iter()
                        .map(|t| format!("{}:{}", t.tier_alias, format_bytes(t.used_bytes)))
                        .collect();
                    println!(
                        "{:<22}{:<24}{:<7}{:<24}{:<24}{}",
                        w.worker_id,
                        format!("{}:{}", a.host, a.rpc_port),
                        w.state,
                        cap.join(" "),
                        used.join(" "),
                        w.block_count
                    );
                }
            }
        }
    }
    Ok(())
}
