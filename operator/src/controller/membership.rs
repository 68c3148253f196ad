//! The impure half of `build/membership.rs`: reads the masters the
//! StatefulSet has and the leader's quorum info, makes the next change
//! the plan asks for (with an Event), and tells the cluster reconcile
//! which masters to apply for now.

use super::cluster::{ApplyError, ClusterRef};
use super::masters::MASTER_TIMEOUT;
use super::Context;
use crate::build::config::Masters;
use crate::build::membership::{membership_plan, MembershipStep};
use crate::build::workloads::masters_of;
use crate::crd::AlluxioCluster;
use alluxio_client::MasterClient;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::Api;
use kube::ResourceExt;

/// The masters to apply in this reconcile: as `spec.master.replicas`
/// says, or on the way there (a single master turning into a Raft group
/// of one, a group shrinking member by member).
pub async fn masters_for_now(
    cx: &Context,
    target: &ClusterRef,
    cluster: &AlluxioCluster,
) -> Result<Masters, ApplyError> {
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
        .and_then(|sts| masters_of(&sts));
    // Only a group changing its size needs the leader's view.
    let master = match current {
        Some(current) if current.raft && current.count != desired => {
            cx.masters.of(&cx.client, cluster).await.ok()
        }
        _ => None,
    };
    let quorum = match &master {
        Some(master) => tokio::time::timeout(MASTER_TIMEOUT, master.quorum_info())
            .await
            .ok()
            .and_then(Result::ok),
        None => None,
    };
    let plan = membership_plan(names, desired, current, quorum.as_ref());
    match (plan.step, master) {
        (Some(MembershipStep::TakeOverJournal), _) => {
            let note = format!(
                "the single master restarts as a Raft group of one that takes its journal \
                 over; the other masters join once it leads (spec.master.replicas is {desired})"
            );
            tracing::info!(cluster = cluster.name_any(), "{note}");
            cx.events
                .normal(cluster, "JournalTakenOver", "Scale", note)
                .await;
        }
        (Some(step), Some(master)) => change_membership(cx, cluster, &master, step).await,
        _ => {}
    }
    Ok(plan.masters)
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
        // Applied with the objects; `masters_for_now` says so.
        MembershipStep::TakeOverJournal => return,
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
