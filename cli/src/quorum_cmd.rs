//! `alluxio fsadmin journal quorum info|remove|elect`: the fault-tolerant
//! masters' Raft group — its leader and term, each member's role and lag as
//! the leader sees it — and its membership changes (Alluxio's commands of
//! the same names).

use crate::output::print_json;
use crate::Context;
use alluxio_common::AlluxioError;
use alluxio_proto::grpc::GetQuorumInfoResponse;
use serde_json::json;
use std::time::Duration;

/// The group as the leader sees it (members' progress is known only
/// there), or as the first master that answers sees it when there is no
/// leader.
pub async fn leaders_view(ctx: &Context) -> Result<GetQuorumInfoResponse, AlluxioError> {
    let master = ctx.master().await?;
    let info = master.quorum_info().await?;
    if !info.fault_tolerant || info.leader_id == 0 || info.leader_id == info.this_member {
        return Ok(info);
    }
    let leader = alluxio_client::MasterClient::connect(
        &info.leader_rpc_address,
        Duration::from_secs(5),
        ctx.credentials()?,
    )
    .await;
    match leader {
        Ok(leader) => leader.quorum_info().await.or(Ok(info)),
        Err(_) => Ok(info),
    }
}

pub async fn info(ctx: &Context, json_output: bool) -> Result<(), AlluxioError> {
    let info = leaders_view(ctx).await?;
    if !info.fault_tolerant {
        return Err(AlluxioError::FailedPrecondition(
            "this cluster runs a single master (no embedded journal quorum)".to_string(),
        ));
    }
    let leader = info.members.iter().find(|m| m.id == info.leader_id);
    if json_output {
        print_json(&json!({
            "quorumSize": info.members.len(),
            "leader": leader.map(|l| l.raft_address.clone()),
            "leaderRpcAddress": info.leader_rpc_address,
            "term": info.term,
            "lastLogIndex": info.last_log_index,
            "appliedIndex": info.applied_index,
            "snapshotIndex": info.snapshot_index,
            "members": info.members.iter().map(|m| json!({
                "id": m.id,
                "raftAddress": m.raft_address,
                "rpcAddress": m.rpc_address,
                "role": m.role,
                "matchedIndex": m.matched_index,
                "lag": m.lag,
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    println!("Journal domain\t: MASTER");
    println!("Quorum size\t: {}", info.members.len());
    match leader {
        Some(l) => println!("Quorum leader\t: {} (term {})", l.raft_address, info.term),
        None => println!("Quorum leader\t: none (election in progress, or no quorum)"),
    }
    println!();
    println!(
        "{:<13}| {:<22}| {:<22}| {:<10}| LAG",
        "STATE", "SERVER ADDRESS", "RPC ADDRESS", "MATCHED"
    );
    for m in &info.members {
        println!(
            "{:<13}| {:<22}| {:<22}| {:<10}| {}",
            m.role, m.raft_address, m.rpc_address, m.matched_index, m.lag
        );
    }
    Ok(())
}

pub async fn remove(ctx: &Context, address: &str) -> Result<(), AlluxioError> {
    ctx.master().await?.remove_quorum_member(address).await?;
    println!("Removed {address} from the quorum");
    Ok(())
}

pub async fn elect(ctx: &Context, address: &str) -> Result<(), AlluxioError> {
    ctx.master().await?.transfer_leadership(address).await?;
    println!("Transferred leadership to {address}");
    Ok(())
}
