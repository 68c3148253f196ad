//! Turning master answers into what users read: Alluxio-style text, or
//! JSON with `--json`.

use alluxio_common::format::{format_bytes, format_mode, format_time_ms};
use alluxio_proto::grpc::{
    BlockInfo, FileInfo, MountPointInfo, PersistenceState, TtlAction, WorkerInfo,
};
use serde_json::{json, Value};

pub fn persistence_name(state: i32) -> &'static str {
    match PersistenceState::try_from(state).unwrap_or(PersistenceState::NotPersisted) {
        PersistenceState::NotPersisted => "NOT_PERSISTED",
        PersistenceState::ToBePersisted => "TO_BE_PERSISTED",
        PersistenceState::Persisted => "PERSISTED",
    }
}

pub fn ttl_action_name(action: i32) -> &'static str {
    match TtlAction::try_from(action).unwrap_or(TtlAction::Delete) {
        TtlAction::Delete => "DELETE",
        TtlAction::Free => "FREE",
        TtlAction::DeleteAlluxio => "DELETE_ALLUXIO",
    }
}

/// One `ls` line, in the column layout of Alluxio's `ls`.
pub fn ls_line(info: &FileInfo, human: bool) -> String {
    let size = if human {
        format_bytes(info.length)
    } else {
        info.length.to_string()
    };
    let in_alluxio = if info.folder {
        "DIR".to_string()
    } else {
        format!("{}%", info.in_alluxio_percentage)
    };
    format!(
        "{:<11}{:<16}{:<16}{:>14} {:<16}{} {:>5} {}",
        format_mode(info.folder, info.mode),
        display_name(&info.owner),
        display_name(&info.group),
        size,
        persistence_name(info.persistence_state),
        format_time_ms(info.last_modification_time_ms),
        in_alluxio,
        info.path
    )
}

fn display_name(name: &str) -> &str {
    if name.is_empty() {
        "-"
    } else {
        name
    }
}

/// `host:port (TIER)` for each worker holding a block.
pub fn block_locations(block: &BlockInfo) -> Vec<String> {
    block
        .locations
        .iter()
        .map(|l| format!("{}:{} ({})", l.host, l.rpc_port, l.tier_alias))
        .collect()
}

pub fn stat_text(info: &FileInfo) -> String {
    let kind = if info.folder { "directory" } else { "file" };
    let mut s = format!("{} is a {kind} path.\n", info.path);
    let ttl = if info.ttl_ms < 0 {
        "none".to_string()
    } else {
        format!("{}ms ({})", info.ttl_ms, ttl_action_name(info.ttl_action))
    };
    let lines = [
        ("fileId", info.file_id.to_string()),
        ("name", info.name.clone()),
        ("path", info.path.clone()),
        ("ufsPath", info.ufs_path.clone()),
        ("length", info.length.to_string()),
        ("blockSizeBytes", info.block_size_bytes.to_string()),
        ("completed", info.completed.to_string()),
        ("folder", info.folder.to_string()),
        ("pinned", info.pinned.to_string()),
        ("owner", info.owner.clone()),
        ("group", info.group.clone()),
        (
            "mode",
            format!("{:o} ({})", info.mode, format_mode(info.folder, info.mode)),
        ),
        (
            "persistenceState",
            persistence_name(info.persistence_state).to_string(),
        ),
        ("mountPoint", info.mount_point.to_string()),
        ("creationTime", format_time_ms(info.creation_time_ms)),
        (
            "lastModificationTime",
            format_time_ms(info.last_modification_time_ms),
        ),
        ("ttl", ttl),
        (
            "inAlluxioPercentage",
            info.in_alluxio_percentage.to_string(),
        ),
    ];
    for (k, v) in lines {
        s.push_str(&format!("  {k:<22}{v}\n"));
    }
    if !info.folder {
        s.push_str(&format!(
            "Containing the following blocks ({}):\n",
            info.block_ids.len()
        ));
        for b in &info.file_block_infos {
            let block = b.block_info.clone().unwrap_or_default();
            let hosts = block_locations(&block);
            s.push_str(&format!(
                "  BlockInfo{{id={}, length={}, offset={}, locations=[{}]}}\n",
                block.block_id,
                block.length,
                b.offset,
                hosts.join(", ")
            ));
        }
    }
    s
}

pub fn file_info_json(info: &FileInfo) -> Value {
    json!({
        "fileId": info.file_id,
        "name": info.name,
        "path": info.path,
        "ufsPath": info.ufs_path,
        "folder": info.folder,
        "length": info.length,
        "blockSizeBytes": info.block_size_bytes,
        "blockIds": info.block_ids,
        "completed": info.completed,
        "owner": info.owner,
        "group": info.group,
        "mode": info.mode,
        "creationTimeMs": info.creation_time_ms,
        "lastModificationTimeMs": info.last_modification_time_ms,
        "persistenceState": persistence_name(info.persistence_state),
        "pinned": info.pinned,
        "ttlMs": info.ttl_ms,
        "ttlAction": ttl_action_name(info.ttl_action),
        "mountPoint": info.mount_point,
        "mountId": info.mount_id,
        "inAlluxioPercentage": info.in_alluxio_percentage,
    })
}

pub fn mount_line(m: &MountPointInfo) -> String {
    let mut options: Vec<String> = m.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
    options.sort();
    format!(
        "{}  on  {}  ({}, readonly={}, shared={}, properties={{{}}})",
        m.ufs_uri,
        m.alluxio_path,
        m.ufs_type,
        m.read_only,
        m.shared,
        options.join(", ")
    )
}

pub fn mount_json(m: &MountPointInfo) -> Value {
    json!({
        "alluxioPath": m.alluxio_path,
        "ufsUri": m.ufs_uri,
        "ufsType": m.ufs_type,
        "readOnly": m.read_only,
        "shared": m.shared,
        "mountId": m.mount_id,
        "options": m.options,
    })
}

pub fn worker_json(w: &WorkerInfo) -> Value {
    let address = w.address.clone().unwrap_or_default();
    json!({
        "workerId": w.worker_id,
        "host": address.host,
        "rpcPort": address.rpc_port,
        "webPort": address.web_port,
        "state": w.state,
        "lastHeartbeatMs": w.last_heartbeat_ms,
        "startTimeMs": w.start_time_ms,
        "blockCount": w.block_count,
        "tiers": w.tiers.iter().map(|t| json!({
            "alias": t.tier_alias,
            "capacityBytes": t.capacity_bytes,
            "usedBytes": t.used_bytes,
        })).collect::<Vec<_>>(),
    })
}

pub fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}
