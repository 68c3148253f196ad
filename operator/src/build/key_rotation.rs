//! Rotating a cluster's key, driven by the operator: the README's three
//! steps (`add` a new key, `sign` with it, `drop` the old one) applied to
//! the cluster's Secret one at a time, each once every pod has had time to
//! read the previous one (the kubelet updates mounted Secrets within about
//! a minute, the processes read their key file every 10 s).
//!
//! A user asks for a rotation by setting the cluster's annotation
//! `alluxio.rs/rotate-key` to a new value (any: a date, a counter); the
//! wait between steps is `alluxio.rs/key-rotation-interval` (default 2m).
//! Progress is kept on the Secret's annotations (the request handled, the
//! last step and when it was applied), so an operator restart picks it up
//! where it was. Pure: the decision only.

use alluxio_common::auth::RotationStep;
use std::collections::BTreeMap;
use std::time::Duration;

/// Cluster annotation: a new value asks for a rotation.
pub const ROTATE_KEY: &str = "alluxio.rs/rotate-key";
/// Cluster annotation: the wait between two steps (humantime, e.g. `2m`).
pub const ROTATION_INTERVAL: &str = "alluxio.rs/key-rotation-interval";
/// Secret annotations: the request handled, its last step, and when.
pub const ROTATION_REQUEST: &str = "alluxio.rs/key-rotation";
pub const ROTATION_STEP: &str = "alluxio.rs/key-rotation-step";
pub const ROTATION_AT: &str = "alluxio.rs/key-rotation-at";

const DEFAULT_INTERVAL: Duration = Duration::from_secs(120);

/// What to do about a rotation now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotationPlan {
    /// No rotation asked for, or the last one is done.
    Idle,
    /// Apply this step of the rotation asked for as `request` now.
    Step { step: RotationStep, request: String },
    /// A step was applied; the next one is due after this long.
    Wait(Duration),
}

/// The wait between steps the cluster asks for; an unreadable value is
/// refused by name.
pub fn rotation_interval(cluster: &BTreeMap<String, String>) -> Result<Duration, String> {
    match cluster.get(ROTATION_INTERVAL) {
        None => Ok(DEFAULT_INTERVAL),
        Some(v) => humantime::parse_duration(v)
            .map_err(|e| format!("annotation {ROTATION_INTERVAL}: {v:?}: {e}")),
    }
}

/// The next move, from the cluster's annotations, the Secret's and the
/// time now (seconds since the epoch). A rotation under way is finished
/// before a newer request starts another.
pub fn rotation_plan(
    cluster: &BTreeMap<String, String>,
    secret: &BTreeMap<String, String>,
    interval: Duration,
    now_s: u64,
) -> RotationPlan {
    let recorded = secret.get(ROTATION_REQUEST).cloned().unwrap_or_default();
    let next = match secret.get(ROTATION_STEP).map(String::as_str) {
        Some("add") => RotationStep::Sign,
        Some("sign") => RotationStep::Drop,
        _ => {
            return match cluster.get(ROTATE_KEY).filter(|r| !r.is_empty()) {
                Some(requested) if *requested != recorded => RotationPlan::Step {
                    step: RotationStep::Add,
                    request: requested.clone(),
                },
                _ => RotationPlan::Idle,
            }
        }
    };
    let at: u64 = secret
        .get(ROTATION_AT)
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let due = at.saturating_add(interval.as_secs());
    if now_s >= due {
        RotationPlan::Step {
            step: next,
            request: recorded,
        }
    } else {
        RotationPlan::Wait(Duration::from_secs(due - now_s))
    }
}

/// The Secret's annotations after `step` of `requested` at `now_s`.
pub fn rotation_record(
    requested: &str,
    step: RotationStep,
    now_s: u64,
) -> BTreeMap<String, String> {
    let step = match step {
        RotationStep::Add => "add",
        RotationStep::Sign => "sign",
        RotationStep::Drop => "done",
    };
    BTreeMap::from([
        (ROTATION_REQUEST.to_string(), requested.to_string()),
        (ROTATION_STEP.to_string(), step.to_string()),
        (ROTATION_AT.to_string(), now_s.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(request: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(ROTATE_KEY.to_string(), request.to_string())])
    }

    const MIN: Duration = Duration::from_secs(60);

    fn step(step: RotationStep, request: &str) -> RotationPlan {
        RotationPlan::Step {
            step,
            request: request.to_string(),
        }
    }

    #[test]
    fn a_rotation_goes_add_sign_drop_one_interval_apart() {
        let none = BTreeMap::new();
        assert_eq!(rotation_plan(&none, &none, MIN, 0), RotationPlan::Idle);
        let asked = cluster("2026-12-07");
        assert_eq!(
            rotation_plan(&asked, &none, MIN, 1000),
            step(RotationStep::Add, "2026-12-07")
        );
        let added = rotation_record("2026-12-07", RotationStep::Add, 1000);
        assert_eq!(
            rotation_plan(&asked, &added, MIN, 1030),
            RotationPlan::Wait(Duration::from_secs(30))
        );
        assert_eq!(
            rotation_plan(&asked, &added, MIN, 1060),
            step(RotationStep::Sign, "2026-12-07")
        );
        let signing = rotation_record("2026-12-07", RotationStep::Sign, 1060);
        assert_eq!(
            rotation_plan(&asked, &signing, MIN, 1100),
            RotationPlan::Wait(Duration::from_secs(20))
        );
        assert_eq!(
            rotation_plan(&asked, &signing, MIN, 1200),
            step(RotationStep::Drop, "2026-12-07")
        );
        let done = rotation_record("2026-12-07", RotationStep::Drop, 1200);
        assert_eq!(rotation_plan(&asked, &done, MIN, 5000), RotationPlan::Idle);
        // A new request starts another once the last one is done; one
        // under way is finished first, whatever the request says now.
        let again = cluster("again");
        assert_eq!(
            rotation_plan(&again, &done, MIN, 5000),
            step(RotationStep::Add, "again")
        );
        assert_eq!(
            rotation_plan(&again, &signing, MIN, 5000),
            step(RotationStep::Drop, "2026-12-07")
        );
        // Taking the request away stops nothing under way either.
        assert_eq!(
            rotation_plan(&none, &added, MIN, 5000),
            step(RotationStep::Sign, "2026-12-07")
        );
    }

    #[test]
    fn the_interval_comes_from_an_annotation() {
        let mut c = cluster("x");
        assert_eq!(rotation_interval(&c), Ok(Duration::from_secs(120)));
        c.insert(ROTATION_INTERVAL.into(), "15s".into());
        assert_eq!(rotation_interval(&c), Ok(Duration::from_secs(15)));
        c.insert(ROTATION_INTERVAL.into(), "soon".into());
        assert!(rotation_interval(&c)
            .unwrap_err()
            .contains(ROTATION_INTERVAL));
    }
}
