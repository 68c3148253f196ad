//! Changing the number of fault-tolerant masters (`spec.master.replicas`
//! 3 <-> 5) without weakening the Raft group: pure decisions from the
//! spec, the StatefulSet's current size and the leader's quorum info.
//!
//! Growing needs nothing from the operator: the StatefulSet's new pods
//! start with the longer address list and join the group by themselves
//! (as learners, then voters). Shrinking must not simply delete pods: the
//! group would keep counting the deleted masters as voters, so a group of
//! five shrunk to three pods would need all three of them for a quorum.
//! So before the StatefulSet shrinks, each master above the new size
//! leaves the group (`quorum remove`), the leader first handing its
//! leadership to a master that stays (`quorum elect`). The StatefulSet
//! keeps its size until no master above the new size is a member.
//!
//! Between one master and a group the journal changes form, so a running
//! cluster is not switched either way: the StatefulSet stays as it is and
//! an Event says why.

use crate::build::names::Names;
use alluxio_proto::grpc::GetQuorumInfoResponse;

/// The next change the group needs before the StatefulSet may shrink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipStep {
    /// Make the master at this Raft address the leader.
    Elect { raft_address: String },
    /// Drop the master at this Raft address from the group.
    Remove { raft_address: String },
}

/// What the reconcile does about the masters' count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipPlan {
    /// The StatefulSet's replicas for now.
    pub statefulset_replicas: i32,
    /// A change of the group to make first, if any.
    pub step: Option<MembershipStep>,
    /// Why the spec's count is not followed at all (said in an Event).
    pub refused: Option<String>,
}

/// Between one master and a group the journal changes form (a single
/// master's log, a Raft log): a running cluster is not switched.
const NOT_SWITCHED: &str = "a running cluster is not switched between one master and a \
    Raft group: its journal would be left behind (a new group would start with an empty \
    namespace). Set spec.master.replicas back, or move the journal by hand (README: \
    Fault-tolerant masters, from a single master)";

/// The StatefulSet ordinal of a member, from its Raft address
/// (`<statefulset>-<ordinal>.<headless service>...:port`); `None` for an
/// address that is not one of this cluster's master pods.
pub fn member_ordinal(names: &Names, raft_address: &str) -> Option<i32> {
    let host = raft_address
        .rsplit_once(':')
        .map_or(raft_address, |(h, _)| h);
    let (pod, domain) = host.split_once('.')?;
    let expected_domain = names.master_pod_host(0);
    let expected_domain = expected_domain.split_once('.')?.1;
    if domain != expected_domain {
        return None;
    }
    pod.strip_prefix(&format!("{}-", names.master_statefulset()))?
        .parse()
        .ok()
        .filter(|n: &i32| *n >= 0)
}

/// The plan for `desired` masters when the StatefulSet has `current`
/// replicas and the leader answered `quorum` (`None`: no answer).
pub fn membership_plan(
    names: &Names,
    desired: i32,
    current: Option<i32>,
    quorum: Option<&GetQuorumInfoResponse>,
) -> MembershipPlan {
    let current = current.unwrap_or(desired);
    if (current == 1) != (desired == 1) {
        return MembershipPlan {
            statefulset_replicas: current,
            step: None,
            refused: Some(NOT_SWITCHED.to_string()),
        };
    }
    let keep = |statefulset_replicas| MembershipPlan {
        statefulset_replicas,
        step: None,
        refused: None,
    };
    if desired >= current {
        // Growing (new masters join by themselves), or steady.
        return keep(desired);
    }
    // Shrinking: only with the leader's complete view of the group.
    let Some(quorum) = quorum.filter(|q| q.fault_tolerant && q.serving) else {
        return keep(current);
    };
    let leaving: Vec<_> = quorum
        .members
        .iter()
        .filter(|m| member_ordinal(names, &m.raft_address).is_some_and(|n| n >= desired))
        .collect();
    let Some(first) = leaving.first() else {
        return keep(desired);
    };
    if let Some(leader) = leaving.iter().find(|m| m.id == quorum.leader_id) {
        // The leader cannot remove itself: hand over to the lowest
        // ordinal that stays and is a voter in step with it.
        let successor = quorum
            .members
            .iter()
            .filter(|m| m.role == "FOLLOWER")
            .filter_map(|m| Some((member_ordinal(names, &m.raft_address)?, m)))
            .filter(|(n, _)| *n < desired)
            .min_by_key(|(n, _)| *n);
        let step = successor.map(|(_, m)| MembershipStep::Elect {
            raft_address: m.raft_address.clone(),
        });
        if step.is_none() {
            tracing::info!(
                leader = leader.raft_address,
                "the leader leaves the group, but no staying master is a follower in step yet"
            );
        }
        return MembershipPlan {
            statefulset_replicas: current,
            step,
            refused: None,
        };
    }
    MembershipPlan {
        statefulset_replicas: current,
        step: Some(MembershipStep::Remove {
            raft_address: first.raft_address.clone(),
        }),
        refused: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alluxio_proto::grpc::QuorumMember;

    fn names() -> Names {
        Names::new("ha", "ns")
    }

    fn member(id: u64, ordinal: i32, role: &str) -> QuorumMember {
        QuorumMember {
            id,
            raft_address: format!("{}:19200", names().master_pod_host(ordinal)),
            role: role.to_string(),
            ..Default::default()
        }
    }

    fn quorum(leader_id: u64, members: Vec<QuorumMember>) -> GetQuorumInfoResponse {
        GetQuorumInfoResponse {
            fault_tolerant: true,
            serving: true,
            leader_id,
            members,
            ..Default::default()
        }
    }

    fn five(leader_ordinal: i32) -> GetQuorumInfoResponse {
        let members = (0..5)
            .map(|n| {
                let role = if n == leader_ordinal {
                    "LEADER"
                } else {
                    "FOLLOWER"
                };
                member(n as u64 + 1, n, role)
            })
            .collect();
        quorum(leader_ordinal as u64 + 1, members)
    }

    #[test]
    fn ordinals_come_from_this_clusters_pod_addresses_only() {
        let n = names();
        assert_eq!(
            member_ordinal(&n, &format!("{}:19200", n.master_pod_host(4))),
            Some(4)
        );
        assert_eq!(member_ordinal(&n, &n.master_pod_host(12)), Some(12));
        let other = Names::new("other", "ns");
        assert_eq!(
            member_ordinal(&n, &format!("{}:19200", other.master_pod_host(1))),
            None
        );
        assert_eq!(member_ordinal(&n, "ha-master-1.elsewhere:19200"), None);
        assert_eq!(member_ordinal(&n, "10.0.0.7:19200"), None);
    }

    #[test]
    fn growing_or_staying_needs_no_change_of_the_group() {
        for (desired, current) in [(5, Some(3)), (3, Some(3)), (3, None), (1, Some(1))] {
            assert_eq!(
                membership_plan(&names(), desired, current, None),
                MembershipPlan {
                    statefulset_replicas: desired,
                    step: None,
                    refused: None
                }
            );
        }
    }

    #[test]
    fn shrinking_removes_the_masters_above_the_new_size_first() {
        let plan = membership_plan(&names(), 3, Some(5), Some(&five(0)));
        assert_eq!(plan.statefulset_replicas, 5);
        assert_eq!(
            plan.step,
            Some(MembershipStep::Remove {
                raft_address: format!("{}:19200", names().master_pod_host(3))
            })
        );
        // Once they are gone from the group, the StatefulSet shrinks.
        let mut q = five(0);
        q.members.truncate(3);
        assert_eq!(
            membership_plan(&names(), 3, Some(5), Some(&q)),
            MembershipPlan {
                statefulset_replicas: 3,
                step: None,
                refused: None
            }
        );
    }

    #[test]
    fn a_leaving_leader_hands_over_to_the_lowest_staying_follower() {
        let plan = membership_plan(&names(), 3, Some(5), Some(&five(4)));
        assert_eq!(plan.statefulset_replicas, 5);
        assert_eq!(
            plan.step,
            Some(MembershipStep::Elect {
                raft_address: format!("{}:19200", names().master_pod_host(0))
            })
        );
        // No staying follower in step: wait, change nothing.
        let mut q = five(4);
        for m in &mut q.members {
            if m.role == "FOLLOWER" {
                m.role = "LAGGING".into();
            }
        }
        assert_eq!(
            membership_plan(&names(), 3, Some(5), Some(&q)),
            MembershipPlan {
                statefulset_replicas: 5,
                step: None,
                refused: None
            }
        );
    }

    #[test]
    fn a_running_cluster_is_not_switched_between_one_master_and_a_group() {
        for (desired, current) in [(3, 1), (1, 3), (5, 1)] {
            let plan = membership_plan(&names(), desired, Some(current), Some(&five(0)));
            assert_eq!(plan.statefulset_replicas, current);
            assert_eq!(plan.step, None);
            assert!(plan.refused.unwrap().contains("not switched"));
        }
    }

    #[test]
    fn without_the_leaders_view_the_statefulset_keeps_its_size() {
        let mut follower_view = five(0);
        follower_view.serving = false;
        for quorum in [None, Some(&follower_view)] {
            assert_eq!(
                membership_plan(&names(), 3, Some(5), quorum),
                MembershipPlan {
                    statefulset_replicas: 5,
                    step: None,
                    refused: None
                }
            );
        }
    }
}
