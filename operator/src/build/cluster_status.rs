//! An AlluxioCluster's status, computed by a pure function from what the
//! reconciler observed: the spec could be built or not, how many master
//! and worker pods are ready, and what the master reports about workers.
//!
//! Conditions keep their `lastTransitionTime` while their status stays the
//! same, as the Kubernetes API conventions ask.

use crate::crd::cluster::{AlluxioClusterStatus, ClusterPhase, MasterMemberStatus, TierStatus};
use crate::crd::Condition;
use alluxio_proto::grpc::{GetQuorumInfoResponse, WorkerInfo};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// What the reconciler saw this time.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub generation: i64,
    /// Why the spec could not be turned into objects, if it could not.
    pub invalid: Option<String>,
    pub masters_ready: i32,
    pub masters_desired: i32,
    pub workers_ready: i32,
    pub workers_desired: i32,
    /// `None` when the master did not answer.
    pub workers: Option<Vec<WorkerInfo>>,
    pub master_endpoint: String,
    /// Fault-tolerant masters: the group as the leader reports it.
    pub quorum: Option<GetQuorumInfoResponse>,
}

fn condition(
    previous: &[Condition],
    kind: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: i64,
    now: &Time,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let since = previous
        .iter()
        .find(|c| c.type_ == kind && c.status == status)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    Condition {
        type_: kind.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        observed_generation: Some(generation),
        last_transition_time: since,
    }
}

pub fn cluster_status(
    previous: &AlluxioClusterStatus,
    o: &Observed,
    now: Time,
) -> AlluxioClusterStatus {
    let prev = &previous.conditions;
    let g = o.generation;
    if let Some(why) = &o.invalid {
        return AlluxioClusterStatus {
            phase: Some(ClusterPhase::Failed),
            conditions: vec![condition(
                prev,
                "Ready",
                false,
                "InvalidSpec",
                why.clone(),
                g,
                &now,
            )],
            observed_generation: Some(g),
            ..previous.clone()
        };
    }
    let masters_ok = o.masters_desired > 0 && o.masters_ready >= o.masters_desired;
    let live: Vec<&WorkerInfo> = o
        .workers
        .iter()
        .flatten()
        .filter(|w| w.state == "LIVE")
        .collect();
    let lost = o
        .workers
        .iter()
        .flatten()
        .filter(|w| w.state != "LIVE")
        .count();
    let workers_ok = o.workers_desired > 0
        && o.workers_ready >= o.workers_desired
        && live.len() as i32 >= o.workers_desired;
    let master_answers = o.workers.is_some();
    let mut tiers: Vec<TierStatus> = Vec::new();
    for t in live.iter().flat_map(|w| w.tiers.iter()) {
        match tiers.iter_mut().find(|x| x.alias == t.tier_alias) {
            Some(x) => {
                x.capacity_bytes += t.capacity_bytes;
                x.used_bytes += t.used_bytes;
            }
            None => tiers.push(TierStatus {
                alias: t.tier_alias.clone(),
                capacity_bytes: t.capacity_bytes,
                used_bytes: t.used_bytes,
            }),
        }
    }
    let capacity: u64 = tiers.iter().map(|t| t.capacity_bytes).sum();
    let degraded = (masters_ok && !master_answers) || lost > 0;
    let ready = masters_ok && master_answers && workers_ok;
    let phase = if ready && degraded {
        ClusterPhase::Degraded
    } else if ready {
        ClusterPhase::Ready
    } else if o.masters_ready > 0 || o.workers_ready > 0 {
        ClusterPhase::Running
    } else {
        ClusterPhase::Pending
    };
    let conditions = vec![
        condition(
            prev,
            "Ready",
            ready,
            if ready { "ClusterReady" } else { "NotReady" },
            format!(
                "masters {}/{}, workers {}/{} (live at the master: {})",
                o.masters_ready,
                o.masters_desired,
                o.workers_ready,
                o.workers_desired,
                live.len()
            ),
            g,
            &now,
        ),
        condition(
            prev,
            "MasterReady",
            masters_ok && master_answers,
            if !masters_ok {
                "PodsNotReady"
            } else if !master_answers {
                "Unreachable"
            } else {
                "Serving"
            },
            format!(
                "{}/{} master pods ready",
                o.masters_ready, o.masters_desired
            ),
            g,
            &now,
        ),
        condition(
            prev,
            "WorkersReady",
            workers_ok,
            if workers_ok {
                "AllRegistered"
            } else {
                "Waiting"
            },
            format!(
                "{}/{} worker pods ready, {} registered with the master",
                o.workers_ready,
                o.workers_desired,
                live.len()
            ),
            g,
            &now,
        ),
        condition(
            prev,
            "Degraded",
            degraded,
            if lost > 0 {
                "WorkersLost"
            } else if degraded {
                "MasterUnreachable"
            } else {
                "Healthy"
            },
            if lost > 0 {
                format!("{lost} workers lost")
            } else {
                String::new()
            },
            g,
            &now,
        ),
    ];
    AlluxioClusterStatus {
        phase: Some(phase),
        conditions,
        observed_generation: Some(g),
        master_endpoint: Some(o.master_endpoint.clone()),
        workers_ready: o.workers_ready,
        workers_desired: o.workers_desired,
        workers: Some(format!("{}/{}", o.workers_ready, o.workers_desired)),
        capacity: Some(alluxio_common::format::format_bytes(capacity)),
        tiers,
        leader: o
            .quorum
            .as_ref()
            .map(|q| q.leader_rpc_address.clone())
            .filter(|l| !l.is_empty()),
        masters: o
            .quorum
            .iter()
            .flat_map(|q| &q.members)
            .map(|m| MasterMemberStatus {
                address: m.rpc_address.clone(),
                role: m.role.clone(),
                lag: m.lag,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alluxio_proto::grpc::TierUsage;

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    fn worker(state: &str, gib: u64) -> WorkerInfo {
        WorkerInfo {
            state: state.into(),
            tiers: vec![TierUsage {
                tier_alias: "MEM".into(),
                capacity_bytes: gib << 30,
                used_bytes: 1 << 30,
            }],
            ..Default::default()
        }
    }

    fn observed() -> Observed {
        Observed {
            generation: 3,
            masters_ready: 1,
            masters_desired: 1,
            workers_ready: 2,
            workers_desired: 2,
            workers: Some(vec![worker("LIVE", 4), worker("LIVE", 4)]),
            master_endpoint: "demo-master.data.svc.cluster.local:19998".into(),
            ..Default::default()
        }
    }

    fn find<'a>(s: &'a AlluxioClusterStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn a_healthy_cluster_is_ready_with_capacity_per_tier() {
        let s = cluster_status(
            &Default::default(),
            &observed(),
            time("2026-01-01T00:00:00Z"),
        );
        assert_eq!(s.phase, Some(ClusterPhase::Ready));
        assert_eq!(find(&s, "Ready").status, "True");
        assert_eq!(find(&s, "Degraded").status, "False");
        assert_eq!(s.workers.as_deref(), Some("2/2"));
        assert_eq!(s.tiers[0].capacity_bytes, 8 << 30);
        assert_eq!(s.tiers[0].used_bytes, 2 << 30);
        assert_eq!(s.observed_generation, Some(3));
        assert!(s.capacity.unwrap().contains('8'));
    }

    #[test]
    fn phases_follow_what_is_ready() {
        let mut o = observed();
        o.masters_ready = 0;
        o.workers_ready = 0;
        o.workers = None;
        let s = cluster_status(&Default::default(), &o, time("2026-01-01T00:00:00Z"));
        assert_eq!(s.phase, Some(ClusterPhase::Pending));
        o.masters_ready = 1;
        let s = cluster_status(&Default::default(), &o, time("2026-01-01T00:00:00Z"));
        assert_eq!(s.phase, Some(ClusterPhase::Running));
        assert_eq!(find(&s, "MasterReady").reason, "Unreachable");
        let mut o = observed();
        o.workers.as_mut().unwrap().push(worker("LOST", 4));
        let s = cluster_status(&Default::default(), &o, time("2026-01-01T00:00:00Z"));
        assert_eq!(s.phase, Some(ClusterPhase::Degraded));
        assert_eq!(find(&s, "Degraded").reason, "WorkersLost");
        let mut o = observed();
        o.invalid = Some("spec.worker.tiers[0].quota: \"lots\" is not a byte quantity".into());
        let s = cluster_status(&Default::default(), &o, time("2026-01-01T00:00:00Z"));
        assert_eq!(s.phase, Some(ClusterPhase::Failed));
        assert_eq!(find(&s, "Ready").reason, "InvalidSpec");
        assert!(find(&s, "Ready").message.contains("tiers[0].quota"));
    }

    #[test]
    fn transition_times_change_only_with_the_status() {
        let first = cluster_status(
            &Default::default(),
            &observed(),
            time("2026-01-01T00:00:00Z"),
        );
        let again = cluster_status(&first, &observed(), time("2026-01-01T01:00:00Z"));
        assert_eq!(
            find(&again, "Ready").last_transition_time,
            time("2026-01-01T00:00:00Z")
        );
        let mut o = observed();
        o.workers_ready = 1;
        let later = cluster_status(&again, &o, time("2026-01-01T02:00:00Z"));
        assert_eq!(find(&later, "Ready").status, "False");
        assert_eq!(
            find(&later, "Ready").last_transition_time,
            time("2026-01-01T02:00:00Z")
        );
    }
}
