//! `alluxio fsadmin report`: the cluster at a glance. `alluxio fsadmin
//! token issue`: a token for a user, signed with the cluster key (for
//! whoever may not read the key itself). `alluxio fsadmin key rotate`: one
//! step of a key rotation on a key file.

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
    /// Tokens signed with the cluster key (security.key_file).
    #[command(subcommand)]
    Token(TokenCommand),
    /// The cluster key file (security.key_file).
    #[command(subcommand)]
    Key(KeyCommand),
    /// The embedded journal of fault-tolerant masters.
    #[command(subcommand)]
    Journal(JournalCommand),
}

#[derive(Subcommand)]
enum JournalCommand {
    /// The Raft group of the masters.
    #[command(subcommand)]
    Quorum(QuorumCommand),
}

#[derive(Subcommand)]
enum QuorumCommand {
    /// Leader, term, and each master's state and lag.
    Info,
    /// Removes a master from the group (not the leader: elect another
    /// first). A master is added by starting it with an
    /// embedded_journal.addresses list that names it: it joins by itself.
    Remove {
        /// The master's Raft address, host:19200.
        #[arg(long)]
        address: String,
    },
    /// Makes another master the leader.
    Elect {
        /// The master's Raft address, host:19200.
        #[arg(long)]
        address: String,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// One step of a rotation, in order: `add` a new key (accepted, not
    /// yet signing), then `sign` with it (the old one still accepted),
    /// then `drop` the old one. Running processes read the key file again
    /// within 10 s; wait for every one before the next step.
    Rotate {
        /// add, sign or drop.
        #[arg(long)]
        step: alluxio_common::auth::RotationStep,
        /// The key file to change (default: security.key_file).
        #[arg(long)]
        key_file: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Prints a token for a user; give it to them as ALLUXIO_TOKEN or in a
    /// file for --token-file.
    Issue {
        #[arg(long)]
        user: String,
        /// Groups (repeatable); the first is the group of what they create.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// user, worker, operator, proxy or admin.
        #[arg(long, default_value = "user")]
        role: alluxio_common::auth::Role,
        /// How long the token is valid.
        #[arg(long, default_value = "24h")]
        ttl: String,
    },
}

pub async fn run(ctx: &Context, args: AdminArgs) -> Result<(), AlluxioError> {
    match args.command {
        AdminCommand::Report => report(ctx, args.json).await,
        AdminCommand::Journal(JournalCommand::Quorum(command)) => match command {
            QuorumCommand::Info => crate::quorum_cmd::info(ctx, args.json).await,
            QuorumCommand::Remove { address } => crate::quorum_cmd::remove(ctx, &address).await,
            QuorumCommand::Elect { address } => crate::quorum_cmd::elect(ctx, &address).await,
        },
        AdminCommand::Key(KeyCommand::Rotate { step, key_file }) => {
            let path = key_file.unwrap_or_else(|| ctx.config.security.key_file.clone());
            rotate_key(&path, step)
        }
        AdminCommand::Token(TokenCommand::Issue {
            user,
            groups,
            role,
            ttl,
        }) => {
            let ttl = humantime::parse_duration(&ttl)
                .map_err(|e| AlluxioError::InvalidArgument(format!("--ttl {ttl}: {e}")))?;
            let key = alluxio_common::auth::ClusterKey::load(&ctx.config.security.key_file)?;
            println!("{}", key.issue(&user, &groups, role, ttl));
            Ok(())
        }
    }
}

/// `fsadmin key rotate`: the key file's keys after `step`, written in place
/// of the file at once.
fn rotate_key(
    path: &std::path::Path,
    step: alluxio_common::auth::RotationStep,
) -> Result<(), AlluxioError> {
    use alluxio_common::auth::{key_file, ClusterKey};
    let key = ClusterKey::load(path)?;
    let next = key
        .rotated(step)
        .map_err(|e| AlluxioError::FailedPrecondition(format!("{}: {e}", path.display())))?;
    key_file::replace(path, &next)?;
    println!(
        "{}: {step:?} done; signing key {}, {} key(s) accepted",
        path.display(),
        next.signing_id(),
        next.accepted()
    );
    Ok(())
}

async fn report(ctx: &Context, json_output: bool) -> Result<(), AlluxioError> {
    let quorum = crate::quorum_cmd::leaders_view(ctx).await?;
    // In a Raft group the leader's view is the cluster's.
    let master = if quorum.fault_tolerant && !quorum.leader_rpc_address.is_empty() {
        alluxio_client::MasterClient::connect(
            &quorum.leader_rpc_address,
            std::time::Duration::from_secs(5),
            ctx.credentials()?,
        )
        .await?
    } else {
        ctx.master().await?
    };
    let ha = if quorum.fault_tolerant {
        let available = quorum
            .members
            .iter()
            .filter(|m| m.role != "UNAVAILABLE")
            .count();
        format!(
            "fault tolerant, {} masters ({available} available), term {}",
            quorum.members.len(),
            quorum.term
        )
    } else {
        "single master".to_string()
    };
    {
        {
            let info = master.master_info().await?;
            let workers = master.worker_infos().await?;
            let journal = info.journal.clone().unwrap_or_default();
            let capacity: u64 = info.capacity.iter().map(|t| t.capacity_bytes).sum();
            let used: u64 = info.capacity.iter().map(|t| t.used_bytes).sum();
            if json_output {
                print_json(&json!({
                    "masterAddress": info.address,
                    "masterMode": ha,
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
            println!("    Master Mode: {ha}");
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
