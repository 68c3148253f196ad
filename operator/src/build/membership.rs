//! Changing the number of masters (`spec.master.replicas` 1, 3 or 5)
//! without losing the journal or weakening the Raft group: pure decisions
//! from the spec, the masters the StatefulSet has now and the leader's
//! quorum info.
//!
//! Growing a group needs nothing from the operator: the StatefulSet's new
//! pods start with the longer address list and join the group by
//! themselves (as learners, then voters). Shrinking must not simply
//! delete pods: the group would keep counting the deleted masters as
//! voters, so a group of five shrunk to three pods would need all three
//! of them for a quorum. So before the StatefulSet shrinks, each master
//! above the new size leaves the group (`quorum remove`), the leader
//! first handing its leadership to a master that stays (`quorum elect`).
//! The StatefulSet keeps its size until no master above the new size is
//! a member.
//!
//! A single master keeps its own journal, which other masters cannot
//! join. From one master to more, it first restarts as a Raft group of
//! one that takes its journal over (the master does that when its address
//! list names only itself); once it leads that group, the others start
//! and join it. A group shrunk to one master stays a group of one (a
//! Raft journal does not turn back into a single master's), and grows
//! again the same way.

use crate::build::config::Masters;
use crate::build::names::Names;
use alluxio_proto::grpc::GetQuorumInfoResponse;

/// The next change the masters need before the StatefulSet may change
/// its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipStep {
    /// Make the master at this Raft address the leader.
    Elect { raft_address: String },
    /// Drop the master at this Raft address from the group.
    Remove { raft_address: String },
    /// The single master restarts as a Raft group of one that takes its
    /// journal over (done by applying the plan's `masters`).
    TakeOverJournal,
}

/// What the reconcile does about the masters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipPlan {
    /// The masters to build the objects for now.
    pub masters: Masters,
    /// A change to make first, if any.
    pub step: Option<MembershipStep>,
}

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

/// Whether `quorum` is the leader's complete view of a Raft group.
fn leaders_view(quorum: Option<&GetQuorumInfoResponse>) -> Option<&GetQuorumInfoResponse> {
    quorum.filter(|q| q.fault_tolerant && q.serving)
}

/// The plan for `desired` masters when the StatefulSet has `current`
/// (`None`: a new cluster) and the leader answered `quorum` (`None`: no
/// answer, or a single master's).
pub fn membership_plan(
    names: &Names,
    desired: i32,
    current: Option<Masters>,
    quorum: Option<&GetQuorumInfoResponse>,
) -> MembershipPlan {
    let keep = |masters| MembershipPlan {
        masters,
        step: None,
    };
    let Some(current) = current else {
        return keep(Masters::new_cluster(desired));
    };
    let group = |count| Masters { count, raft: true };
    if !current.raft {
        if desired <= 1 {
            return keep(current);
        }
        return MembershipPlan {
            masters: group(1),
            step: Some(MembershipStep::TakeOverJournal),
        };
    }
    if desired >= current.count {
        // A group of one grows once it leads: until then it may still be
        // the single master that has not restarted yet (whose journal
        // masters with a longer list would refuse).
        if current.count == 1 && desired > 1 && leaders_view(quorum).is_none() {
            return keep(current);
        }
        // New masters join by themselves.
        return keep(group(desired));
    }
    // Shrinking: only with the leader's complete view of the group.
    let Some(quorum) = leaders_view(quorum) else {
        return keep(current);
    };
    let leaving: Vec<_> = quorum
        .members
        .iter()
        .filter(|m| member_ordinal(names, &m.raft_address).is_some_and(|n| n >= desired))
        .collect();
    let Some(first) = leaving.first() else {
        return keep(group(desired));
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
            masters: current,
            step,
        };
    }
    MembershipPlan {
        masters: current,
        step: Some(MembershipStep::Remove {
            raft_address: first.raft_address.clone(),
        }),
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

    fn group(count: i32) -> Masters {
        Masters { count, raft: true }
    }

    fn keep(masters: Masters) -> MembershipPlan {
        MembershipPlan {
            masters,
            step: None,
        }
    }

    fn one_leader() -> GetQuorumInfoResponse {
        let mut q = five(0);
        q.members.truncate(1);
        q
    }

    #[test]
    fn growing_a_group_or_staying_needs_no_change_of_the_group() {
        for (desired, current) in [(5, group(3)), (3, group(3)), (1, group(1))] {
            assert_eq!(
                membership_plan(&names(), desired, Some(current), None),
                keep(group(desired))
            );
        }
        // A new cluster: a group for more than one master.
        for desired in [1, 3, 5] {
            assert_eq!(
                membership_plan(&names(), desired, None, None),
                keep(Masters::new_cluster(desired))
            );
        }
        let single = Masters::new_cluster(1);
        assert_eq!(
            membership_plan(&names(), 1, Some(single), None),
            keep(single)
        );
    }

    #[test]
    fn shrinking_removes_the_masters_above_the_new_size_first() {
        let plan = membership_plan(&names(), 3, Some(group(5)), Some(&five(0)));
        assert_eq!(plan.masters, group(5));
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
            membership_plan(&names(), 3, Some(group(5)), Some(&q)),
            keep(group(3))
        );
    }

    #[test]
    fn a_leaving_leader_hands_over_to_the_lowest_staying_follower() {
        let plan = membership_plan(&names(), 3, Some(group(5)), Some(&five(4)));
        assert_eq!(plan.masters, group(5));
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
            membership_plan(&names(), 3, Some(group(5)), Some(&q)),
            keep(group(5))
        );
    }

    #[test]
    fn a_single_master_becomes_a_group_of_one_before_others_join() {
        let single = Masters::new_cluster(1);
        for desired in [3, 5] {
            // Whatever the master says: it restarts as a group of one.
            for quorum in [None, Some(&five(0))] {
                assert_eq!(
                    membership_plan(&names(), desired, Some(single), quorum),
                    MembershipPlan {
                        masters: group(1),
                        step: Some(MembershipStep::TakeOverJournal)
                    }
                );
            }
            // Until it leads that group, no other master starts.
            let mut still_single = one_leader();
            still_single.fault_tolerant = false;
            for quorum in [None, Some(&still_single)] {
                assert_eq!(
                    membership_plan(&names(), desired, Some(group(1)), quorum),
                    keep(group(1))
                );
            }
            assert_eq!(
                membership_plan(&names(), desired, Some(group(1)), Some(&one_leader())),
                keep(group(desired))
            );
        }
    }

    #[test]
    fn a_group_shrinks_to_one_master_and_stays_a_group() {
        let mut q = five(0);
        q.members.truncate(3);
        let plan = membership_plan(&names(), 1, Some(group(3)), Some(&q));
        assert_eq!(plan.masters, group(3));
        assert_eq!(
            plan.step,
            Some(MembershipStep::Remove {
                raft_address: format!("{}:19200", names().master_pod_host(1))
            })
        );
        assert_eq!(
            membership_plan(&names(), 1, Some(group(3)), Some(&one_leader())),
            keep(group(1))
        );
    }

    #[test]
    fn without_the_leaders_view_the_statefulset_keeps_its_size() {
        let mut follower_view = five(0);
        follower_view.serving = false;
        for quorum in [None, Some(&follower_view)] {
            assert_eq!(
                membership_plan(&names(), 3, Some(group(5)), quorum),
                keep(group(5))
            );
        }
    }
}
