//! What a `Load` asks for next, decided by pure functions: the spec
//! checked into job options and a schedule, the next action from the spec,
//! the status and the time, and the status that a job's progress gives.

use crate::build::schedule::Schedule;
use crate::crd::load::{FailedFile, LoadPolicy, LoadSpec, LoadStatus};
use alluxio_common::format::format_bytes;
use alluxio_common::units::ByteSize;
use alluxio_proto::grpc::{JobInfo, JobState, LoadOptions};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use std::time::Duration;

/// How often `OnChange` without a schedule looks for changes.
pub const CHANGE_CHECK: Duration = Duration::from_secs(60);
/// Failed files kept in the status.
pub const FAILED_FILES_SHOWN: usize = 10;

/// Where the data to load is named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Path(String),
    Mount(String),
}

/// A checked spec.
#[derive(Clone, Debug)]
pub struct ValidLoad {
    pub target: Target,
    pub options: LoadOptions,
    pub schedule: Option<Schedule>,
    pub policy: LoadPolicy,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error("set exactly one of spec.path and spec.mount")]
    Target,
    #[error("spec.path {0:?} is not an absolute Alluxio path")]
    Path(String),
    #[error("spec.bandwidth: {0}")]
    Bandwidth(String),
    #[error("spec.schedule: {0}")]
    Schedule(String),
}

pub fn validate(spec: &LoadSpec) -> Result<ValidLoad, SpecError> {
    let target = match (&spec.path, &spec.mount) {
        (Some(p), None) => {
            alluxio_common::AlluxioPath::new(p).map_err(|_| SpecError::Path(p.clone()))?;
            Target::Path(p.clone())
        }
        (None, Some(m)) if !m.is_empty() => Target::Mount(m.clone()),
        _ => return Err(SpecError::Target),
    };
    let bandwidth = spec
        .bandwidth
        .as_deref()
        .map(ByteSize::parse_per_second)
        .transpose()
        .map_err(SpecError::Bandwidth)?;
    let schedule = spec
        .schedule
        .as_deref()
        .map(Schedule::parse)
        .transpose()
        .map_err(SpecError::Schedule)?;
    Ok(ValidLoad {
        target,
        options: LoadOptions {
            replicas: spec.replicas,
            bandwidth_bytes_per_sec: bandwidth.unwrap_or(0),
            partial_listing: false,
            verify: spec.verify,
            ..Default::default()
        },
        schedule,
        policy: spec.policy,
    })
}

#[derive(Clone, Debug, PartialEq)]
pub enum LoadAction {
    /// Start a run.
    Submit,
    /// Keep the status in step with the running job.
    Follow(u64),
    /// Compare the dataset with the fingerprint of the last run; run if it
    /// changed.
    CheckForChange,
    /// Nothing until this time (the next scheduled run).
    WaitUntil(Timestamp),
    /// Nothing until the spec changes.
    Idle,
}

pub const PHASE_RUNNING: &str = "Running";

/// The next thing to do for a Load with `status`, at `now`.
pub fn next_action(
    load: &ValidLoad,
    status: &LoadStatus,
    generation: i64,
    now: Timestamp,
) -> LoadAction {
    if status.phase.as_deref() == Some(PHASE_RUNNING) {
        if let Some(id) = status.job_id {
            return LoadAction::Follow(id);
        }
    }
    if status.observed_generation != Some(generation) || status.job_id.is_none() {
        return LoadAction::Submit;
    }
    let due = match (&load.schedule, &status.next_run) {
        (Some(_), Some(next)) if now < next.0 => return LoadAction::WaitUntil(next.0),
        (Some(_), Some(_)) => true,
        (Some(schedule), None) => match schedule.next_after(now) {
            Some(next) => return LoadAction::WaitUntil(next),
            None => return LoadAction::Idle,
        },
        (None, _) => false,
    };
    match (load.policy, due) {
        (LoadPolicy::OnChange, _) => LoadAction::CheckForChange,
        (LoadPolicy::Once, true) => LoadAction::Submit,
        (LoadPolicy::Once, false) => LoadAction::Idle,
    }
}

/// The status of a run just submitted as job `id`.
pub fn submitted(
    previous: &LoadStatus,
    id: u64,
    path: &str,
    generation: i64,
    fingerprint: Option<String>,
    now: Timestamp,
) -> LoadStatus {
    LoadStatus {
        phase: Some(PHASE_RUNNING.to_string()),
        job_id: Some(id),
        path: Some(path.to_string()),
        observed_generation: Some(generation),
        start_time: Some(Time(now)),
        completion_time: None,
        next_run: None,
        dataset_fingerprint: fingerprint.or_else(|| previous.dataset_fingerprint.clone()),
        runs: previous.runs + 1,
        conditions: previous.conditions.clone(),
        ..Default::default()
    }
}

/// The phase a job's state shows as.
pub fn phase_of(state: JobState) -> &'static str {
    match state {
        JobState::Running | JobState::Unspecified => PHASE_RUNNING,
        JobState::Succeeded => "Succeeded",
        JobState::Failed => "Failed",
        JobState::Stopped => "Stopped",
    }
}

/// `previous` with the progress of `job`; a finished job also sets the
/// completion time and, with a schedule, the next run after it.
pub fn with_progress(
    previous: &LoadStatus,
    job: &JobInfo,
    schedule: Option<&Schedule>,
    now: Timestamp,
) -> LoadStatus {
    let percent = match (job.bytes_total, job.files_total) {
        (0, 0) => u32::from(job.state() != JobState::Running) * 100,
        (0, files) => (job.files_done * 100 / files) as u32,
        (bytes, _) => (job.bytes_done.min(bytes) * 100 / bytes) as u32,
    };
    let running = job.state() == JobState::Running;
    let mut status = LoadStatus {
        phase: Some(phase_of(job.state()).to_string()),
        files_done: job.files_done,
        files_total: job.files_total,
        files_failed: job.files_failed,
        bytes_done: job.bytes_done,
        bytes_total: job.bytes_total,
        bytes_fetched: job.bytes_fetched,
        percent,
        progress: Some(format!("{percent}%")),
        throughput: running
            .then(|| format!("{}/s", format_bytes(job.throughput_bytes_per_sec as u64))),
        eta: (running && job.eta_ms >= 0).then(|| format!("{}s", job.eta_ms / 1000)),
        failed_files: job
            .failures
            .iter()
            .take(FAILED_FILES_SHOWN)
            .map(|f| FailedFile {
                path: f.path.clone(),
                reason: f.reason.clone(),
            })
            .collect(),
        ..previous.clone()
    };
    if !running && previous.completion_time.is_none() {
        status.completion_time = Some(Time(now));
        status.next_run = schedule.and_then(|s| s.next_after(now)).map(Time);
    }
    status
}

/// What `OnChange` compares: files, bytes and the newest modification.
pub fn fingerprint(files: &[alluxio_proto::grpc::FileInfo]) -> String {
    let files = files.iter().filter(|f| !f.folder);
    let (mut count, mut bytes, mut newest) = (0u64, 0u64, 0i64);
    for f in files {
        count += 1;
        bytes += f.length;
        newest = newest.max(f.last_modification_time_ms);
    }
    format!("{count} files, {bytes} bytes, newest {newest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LoadSpec {
        LoadSpec {
            cluster: "demo".into(),
            path: Some("/data".into()),
            mount: None,
            replicas: 1,
            bandwidth: None,
            schedule: None,
            policy: LoadPolicy::Once,
            verify: false,
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_spec_is_checked() {
        let v = validate(&LoadSpec {
            bandwidth: Some("200MiB/s".into()),
            ..spec()
        })
        .unwrap();
        assert_eq!(v.options.bandwidth_bytes_per_sec, 200 << 20);
        assert_eq!(v.target, Target::Path("/data".into()));
        let both = LoadSpec {
            mount: Some("m".into()),
            ..spec()
        };
        assert_eq!(validate(&both).unwrap_err(), SpecError::Target);
        let neither = LoadSpec {
            path: None,
            ..spec()
        };
        assert_eq!(validate(&neither).unwrap_err(), SpecError::Target);
        let mount = LoadSpec {
            path: None,
            mount: Some("m".into()),
            ..spec()
        };
        assert_eq!(validate(&mount).unwrap().target, Target::Mount("m".into()));
        assert!(matches!(
            validate(&LoadSpec {
                bandwidth: Some("fast".into()),
                ..spec()
            }),
            Err(SpecError::Bandwidth(_))
        ));
        assert!(matches!(
            validate(&LoadSpec {
                schedule: Some("daily".into()),
                ..spec()
            }),
            Err(SpecError::Schedule(_))
        ));
        assert!(matches!(
            validate(&LoadSpec {
                path: Some("relative".into()),
                ..spec()
            }),
            Err(SpecError::Path(_))
        ));
    }

    #[test]
    fn a_new_or_changed_load_runs_once_then_rests() {
        let v = validate(&spec()).unwrap();
        let now = at("2026-12-02T10:00:00Z");
        assert_eq!(
            next_action(&v, &LoadStatus::default(), 1, now),
            LoadAction::Submit
        );
        let running = submitted(&LoadStatus::default(), 7, "/data", 1, None, now);
        assert_eq!(running.runs, 1);
        assert_eq!(next_action(&v, &running, 1, now), LoadAction::Follow(7));
        let job = JobInfo {
            job_id: 7,
            state: JobState::Succeeded as i32,
            files_done: 2,
            files_total: 2,
            ..Default::default()
        };
        let done = with_progress(&running, &job, None, now);
        assert_eq!(done.phase.as_deref(), Some("Succeeded"));
        assert_eq!(done.progress.as_deref(), Some("100%"));
        assert!(done.completion_time.is_some() && done.throughput.is_none());
        assert_eq!(next_action(&v, &done, 1, now), LoadAction::Idle);
        assert_eq!(
            next_action(&v, &done, 2, now),
            LoadAction::Submit,
            "the spec changed"
        );
    }

    #[test]
    fn a_scheduled_load_waits_for_its_time() {
        let v = validate(&LoadSpec {
            schedule: Some("0 3 * * *".into()),
            ..spec()
        })
        .unwrap();
        let now = at("2026-12-02T10:00:00Z");
        let running = submitted(&LoadStatus::default(), 7, "/data", 1, None, now);
        let job = JobInfo {
            state: JobState::Failed as i32,
            ..Default::default()
        };
        let done = with_progress(&running, &job, v.schedule.as_ref(), now);
        let next = at("2026-12-03T03:00:00Z");
        assert_eq!(done.next_run, Some(Time(next)));
        assert_eq!(next_action(&v, &done, 1, now), LoadAction::WaitUntil(next));
        assert_eq!(next_action(&v, &done, 1, next), LoadAction::Submit);
        let on_change = ValidLoad {
            policy: LoadPolicy::OnChange,
            ..v
        };
        assert_eq!(
            next_action(&on_change, &done, 1, next),
            LoadAction::CheckForChange
        );
    }

    #[test]
    fn progress_shows_percent_throughput_and_eta_while_running() {
        let running = submitted(
            &LoadStatus::default(),
            7,
            "/data",
            1,
            None,
            at("2026-12-02T10:00:00Z"),
        );
        let job = JobInfo {
            state: JobState::Running as i32,
            bytes_total: 4 << 20,
            bytes_done: 1 << 20,
            throughput_bytes_per_sec: (2 << 20) as f64,
            eta_ms: 1500,
            ..Default::default()
        };
        let s = with_progress(&running, &job, None, at("2026-12-02T10:00:01Z"));
        assert_eq!((s.percent, s.progress.as_deref()), (25, Some("25%")));
        assert_eq!(s.throughput.as_deref(), Some("2.00MB/s"));
        assert_eq!(s.eta.as_deref(), Some("1s"));
        assert!(s.completion_time.is_none());
    }
}
