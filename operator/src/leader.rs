//! Leader election with a `coordination.k8s.io/v1` Lease, as client-go's
//! leaderelection does it: the holder renews `renewTime` every
//! [`RENEW_EVERY`]; another replica takes the Lease over once it has not
//! been renewed for `leaseDurationSeconds`. Every write carries the
//! resourceVersion it read, so two candidates never both win: the loser
//! gets a 409 Conflict and tries again later.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use std::time::{Duration, Instant};

pub const LEASE_DURATION: Duration = Duration::from_secs(15);
pub const RENEW_EVERY: Duration = Duration::from_secs(5);
/// A leader that could not renew for this long stops leading (before the
/// Lease expires and another replica may take it).
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
const RETRY_EVERY: Duration = Duration::from_secs(2);

pub struct LeaderElector {
    leases: Api<Lease>,
    name: String,
    identity: String,
}

#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Acquired,
    HeldByOther(String),
}

impl LeaderElector {
    pub fn new(client: kube::Client, namespace: &str, name: &str, identity: &str) -> Self {
        LeaderElector {
            leases: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
        }
    }

    /// Waits until this replica holds the Lease. `on_contact` is called
    /// once the API server has answered (the process is then ready).
    pub async fn acquire(&self, on_contact: impl Fn()) {
        let mut last_holder = None;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Acquired) => {
                    on_contact();
                    tracing::info!(lease = self.name, identity = self.identity, "became leader");
                    return;
                }
                Ok(Attempt::HeldByOther(holder)) => {
                    on_contact();
                    if last_holder.as_ref() != Some(&holder) {
                        tracing::info!(lease = self.name, holder, "waiting for the leader lease");
                        last_holder = Some(holder);
                    }
                }
                Err(e) => tracing::warn!(lease = self.name, "cannot read the leader lease: {e}"),
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }

    /// Renews the Lease until renewing fails for [`RENEW_DEADLINE`] or
    /// another holder shows up; returns when leadership is lost.
    pub async fn hold(&self) {
        let mut last_renewed = Instant::now();
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Acquired) => last_renewed = Instant::now(),
                Ok(Attempt::HeldByOther(holder)) => {
                    tracing::error!(lease = self.name, holder, "lost the leader lease");
                    return;
                }
                Err(e) => {
                    tracing::warn!(lease = self.name, "cannot renew the leader lease: {e}");
                    if last_renewed.elapsed() >= RENEW_DEADLINE {
                        tracing::error!(lease = self.name, "leader lease not renewed in time");
                        return;
                    }
                }
            }
        }
    }

    /// Gives the Lease up so a standby takes over at once instead of
    /// after it expires.
    pub async fn release(&self) {
        let Ok(mut lease) = self.leases.get(&self.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(&self.identity) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        if let Err(e) = self
            .leases
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(lease = self.name, "cannot release the leader lease: {e}");
        } else {
            tracing::info!(lease = self.name, "released the leader lease");
        }
    }

    async fn try_acquire_or_renew(&self) -> Result<Attempt, kube::Error> {
        let now = Timestamp::now();
        let Some(mut lease) = self.leases.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.leases.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Acquired),
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    Ok(Attempt::HeldByOther("another candidate".into()))
                }
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        if holder != self.identity && !holder.is_empty() && !expired(spec, now) {
            return Ok(Attempt::HeldByOther(holder));
        }
        if holder != self.identity {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.lease_duration_seconds = Some(LEASE_DURATION.as_secs() as i32);
        spec.renew_time = Some(MicroTime(now));
        match self
            .leases
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Attempt::Acquired),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                Ok(Attempt::HeldByOther("another candidate".into()))
            }
            Err(e) => Err(e),
        }
    }
}

/// Whether the holder has not renewed within the Lease's duration.
fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(MicroTime(renewed)) = spec.renew_time else {
        return true;
    };
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    renewed + duration < now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_expires_after_its_duration_without_renewal() {
        let now = Timestamp::now();
        let spec = |ago: i64| LeaseSpec {
            holder_identity: Some("a".into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(now - SignedDuration::from_secs(ago))),
            ..Default::default()
        };
        assert!(!expired(&spec(5), now));
        assert!(expired(&spec(16), now));
        assert!(expired(&LeaseSpec::default(), now));
    }
}
