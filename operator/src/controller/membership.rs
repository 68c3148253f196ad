//! The impure half of `build/membership.rs`: reads the master
//! StatefulSet's size and the leader's quorum info, makes the next change
//! of the Raft group the plan asks for (with an Event), and tells the
//! cluster reconcile how many masters to apply for now.

use super::cluster::{ApplyError, ClusterRef};
use super::masters::MASTER_TIMEOUT;
use super::Context;
use crate::build::membership::{membership_plan, MembershipStep};
use crate::crd::AlluxioCluster;
use alluxio_client::MasterClient;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::Api;
use kube::ResourceExt;

/// The masters to apply in this reconcile: `spec.master.replicas`, or
/// while the group shrinks, the StatefulSet's current size (after the next
/// member above the new size has been asked to leave).
pub async fn masters_for_now(
    cx: &Context,
    target: &ClusterRef,
    cluster: &AlluxioCluster,
) -> Result<i32, ApplyError> {
    let desired = cluster.spec.master.replicas;
    let names = &target.names;
    let statefulsets: Api<StatefulSet> = Api::namespaced(cx.client.clone(), &names.namespace);
    let current = statefulsets
        .get_opt(&names.master_statefulset())
        .await
        .map_err(|source| ApplyError::Observe {
            kind: "StatefulSet",
            name: names.master_statefulset(),
            source,
        })?
        .and_then(|sts| sts.spec?.replicas);
    let switching = current.is_some_and(|current| (current == 1) != (desired == 1));
    if !switching && current.is_none_or(|current| desired >= current) {
        return Ok(desired);
    }
    // Switching is refused whatever the masters say: no need to ask them.
    let master = match switching {
        true => None,
        false => cx.masters.of(&cx.client, cluster).await.ok(),
    };
    let quorum = match &master {
        Some(master) => tokio::time::timeout(MASTER_TIMEOUT, master.quorum_info())
            .await
            .ok()
            .and_then(Result::ok),
        None => None,
    };
    let plan = membership_plan(names, desired, current, quorum.as_ref());
    if let Some(why) = plan.refused {
        tracing::warn!(cluster = cluster.name_any(), "{why}");
        cx.events
            .warning(cluster, "ReplicasRefused", "Scale", why)
            .await;
        return Ok(plan.statefulset_replicas);
    }
    if let (Some(step), Some(master)) = (plan.step, master) {
        change_membership(cx, cluster, &master, step).await;
    }
    Ok(plan.statefulset_replicas)
}

/// Makes one change of the group; a failure is an Event and a log line,
/// and the next reconcile tries again.
async fn change_membership(
    cx: &Context,
    cluster: &AlluxioCluster,
    master: &MasterClient,
    step: MembershipStep,
) {
    // One reason per kind of change: Events of one reason are folded into
    // a series that keeps the first note.
    let (reason, what, result) = match &step {
        MembershipStep::Elect { raft_address } => (
            "LeadershipTransferred",
            format!("leadership handed to {raft_address}, as the leader leaves the group"),
            master.transfer_leadership(raft_address).await,
        ),
        MembershipStep::Remove { raft_address } => (
            "MasterRemoved",
            format!(
                "{raft_address} removed from the masters' group (spec.master.replicas is {})",
                cluster.spec.master.replicas
            ),
            master.remove_quorum_member(raft_address).await,
        ),
    };
    match result {
        Ok(()) => {
            tracing::info!(cluster = cluster.name_any(), "{what}");
            cx.events.normal(cluster, reason, "Scale", what).await;
        }
        Err(e) => {
            let note = format!("{step:?} failed: {e}");
            tracing::warn!(cluster = cluster.name_any(), "{note}");
            cx.events
                .warning(cluster, "MembershipChangeFailed", "Scale", note)
                .await;
        }
    }
}
