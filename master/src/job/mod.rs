//! Load jobs: warming the cache with a path's blocks, run by the master
//! on the workers rather than by a client (`alluxio job load`, `fs load`,
//! the operator's `Load` resource).
//!
//! A job is journaled (`table`): submitting, progress and the end are
//! `LoadJobEntry` records, so a restarted master, or a new leader of a
//! fault-tolerant cluster, knows every job and resumes the running ones
//! after their last handled file. Only the leader runs jobs: `supervise`
//! (every second) starts a runner (`load`) for each running job that has
//! none, and stops all runners on a master that is not the leader.

pub mod load;
pub mod table;
pub mod walk;
pub mod workers;

use crate::fs_master::FileSystemMaster;
use alluxio_common::auth::Credentials;
use alluxio_common::config::JobConfig;
use alluxio_common::{now_ms, AlluxioError, AlluxioPath, Result};
use alluxio_proto::grpc::{JobInfo, JobState, LoadOptions, PersistenceState};
use alluxio_proto::journal::{journal_entry::Entry, LoadJobEntry};
use load::{
    LoadRun, RunError, PHASE_COUNTING, PHASE_DONE, PHASE_FREEING, PHASE_LISTING, PHASE_LOADING,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use table::JobMode;
use tokio::sync::watch;
use workers::WorkerClients;

/// Most workers a block may be asked to be cached on.
pub const MAX_REPLICAS: u32 = 16;

#[derive(Clone, Debug)]
pub struct JobSettings {
    pub worker_concurrency: usize,
    pub attempts: usize,
    pub progress_interval: Duration,
}

impl JobSettings {
    pub fn from_config(c: &JobConfig) -> Self {
        JobSettings {
            worker_concurrency: c.worker_concurrency,
            attempts: c.attempts,
            progress_interval: c.progress_interval.0,
        }
    }
}

struct Runner {
    stop: watch::Sender<bool>,
    live: Arc<Mutex<JobInfo>>,
    task: tokio::task::JoinHandle<()>,
}

pub struct JobMaster {
    fs: Arc<FileSystemMaster>,
    workers: Arc<WorkerClients>,
    settings: JobSettings,
    runners: Mutex<HashMap<u64, Runner>>,
}

impl JobMaster {
    /// Jobs of `fs`, calling workers with `credentials` (the master's own).
    pub fn new(fs: Arc<FileSystemMaster>, credentials: Credentials, settings: JobSettings) -> Self {
        JobMaster {
            fs,
            workers: Arc::new(WorkerClients::new(credentials)),
            settings,
            runners: Mutex::new(HashMap::new()),
        }
    }

    fn runners(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Runner>> {
        self.runners.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a load of `path` for `owner`, or joins the running load of
    /// the same path (the second flag). Refused: a path that does not
    /// exist, and a single file that cannot be loaded (not persisted and
    /// not cached, or still being written).
    pub async fn submit_load(
        &self,
        owner: &str,
        path: &AlluxioPath,
        options: LoadOptions,
    ) -> Result<(JobInfo, bool)> {
        let options = validate_options(options)?;
        let info = self
            .fs
            .get_status(path, self.fs.sync_interval(path.as_str(), None))
            .await?;
        let mode = JobMode::of(options);
        if !info.folder && mode == JobMode::Load {
            if !info.completed {
                return Err(AlluxioError::FailedPrecondition(format!(
                    "{path} is still being written"
                )));
            }
            let cached = info.in_alluxio_percentage >= 100;
            if info.persistence_state != PersistenceState::Persisted as i32 && !cached {
                return Err(AlluxioError::FailedPrecondition(format!(
                    "{path} is not persisted, so there is nothing to load it from"
                )));
            }
        }
        let (path_text, owner) = (path.to_string(), owner.to_string());
        let (record, joined) = self
            .fs
            .commit(move |txn| {
                if let Some(running) = txn.state.jobs.running_load_of(&path_text, mode) {
                    return Ok((running.clone(), true));
                }
                let record = new_load_record(txn.state.jobs.next_id(), &path_text, &owner, options);
                txn.apply(Entry::LoadJob(record.clone()))?;
                Ok((record, false))
            })
            .await?;
        let id = table::job_id(&record);
        if joined {
            tracing::info!(job = id, %path, "load joined the running job of the same path");
        } else {
            tracing::info!(job = id, %path, "load job submitted");
            self.start_runner(record, false);
        }
        Ok((self.get(id)?, joined))
    }

    /// Every job the master remembers, newest first.
    pub fn list(&self) -> Vec<JobInfo> {
        let records: Vec<LoadJobEntry> = self.fs.read_state().jobs.iter().cloned().collect();
        let mut jobs: Vec<JobInfo> = records.iter().map(|r| self.view(r)).collect();
        jobs.reverse();
        jobs
    }

    pub fn get(&self, id: u64) -> Result<JobInfo> {
        let record = self.fs.read_state().jobs.get(id).cloned();
        record
            .map(|r| self.view(&r))
            .ok_or_else(|| AlluxioError::NotFound(format!("job {id} does not exist")))
    }

    /// The live view of a job this master runs, else its journaled state.
    fn view(&self, record: &LoadJobEntry) -> JobInfo {
        let journaled = record.job.clone().unwrap_or_default();
        if journaled.state() != JobState::Running {
            return journaled;
        }
        match self.runners().get(&journaled.job_id) {
            Some(r) => r.live.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            None => JobInfo {
                eta_ms: -1,
                ..journaled
            },
        }
    }

    /// Stops a running job (a finished one is left as it is), keeping its
    /// progress as it was at that moment.
    pub async fn stop(&self, id: u64, by: &str) -> Result<JobInfo> {
        let live = self.get(id)?;
        let message = format!("stopped by {by}");
        self.fs
            .commit(move |txn| {
                let Some(record) = txn.state.jobs.get(id).cloned() else {
                    return Err(AlluxioError::NotFound(format!("job {id} does not exist")));
                };
                if !table::is_running(&record) {
                    return Ok(());
                }
                let job = JobInfo {
                    state: JobState::Stopped as i32,
                    phase: PHASE_DONE.to_string(),
                    end_time_ms: now_ms(),
                    message,
                    throughput_bytes_per_sec: 0.0,
                    eta_ms: 0,
                    ..live
                };
                txn.apply(Entry::LoadJob(LoadJobEntry {
                    job: Some(job),
                    cursor: record.cursor,
                }))
            })
            .await?;
        if let Some(runner) = self.runners().remove(&id) {
            let _ = runner.stop.send(true);
        }
        tracing::info!(job = id, by, "load job stopped");
        self.get(id)
    }

    fn start_runner(&self, record: LoadJobEntry, resumed: bool) {
        let id = table::job_id(&record);
        let (stop, stop_rx) = watch::channel(false);
        let live = Arc::new(Mutex::new(JobInfo {
            eta_ms: -1,
            ..record.job.clone().unwrap_or_default()
        }));
        let run = LoadRun {
            fs: self.fs.clone(),
            workers: self.workers.clone(),
            settings: self.settings.clone(),
            record,
            live: live.clone(),
            stop: stop_rx,
            resumed,
        };
        let task = tokio::spawn(async move {
            match run.run().await {
                Ok(()) | Err(RunError::Stopped) => {}
                // Not the leader any more, or the journal refused: the
                // supervisor starts it again where a leader can run it.
                Err(RunError::Master(e)) => {
                    tracing::warn!(job = id, error = %e, "load job interrupted; it will resume")
                }
            }
        });
        self.runners().insert(id, Runner { stop, live, task });
    }

    /// Runs every running job on the leader, none elsewhere.
    pub fn supervise(&self) {
        if !self.fs.is_leader() {
            drop(self.stop_runners());
            return;
        }
        let running = self.fs.read_state().jobs.running_ids();
        let to_start: Vec<LoadJobEntry> = {
            let mut runners = self.runners();
            runners.retain(|id, r| {
                let keep = running.contains(id) && !r.task.is_finished();
                if !keep {
                    let _ = r.stop.send(true);
                }
                keep
            });
            let state = self.fs.read_state();
            running
                .iter()
                .filter(|id| !runners.contains_key(id))
                .filter_map(|id| state.jobs.get(*id).cloned())
                .collect()
        };
        for record in to_start {
            tracing::info!(job = table::job_id(&record), "resuming load job");
            self.start_runner(record, true);
        }
    }

    /// Stops every runner of this master (lost leadership); the jobs stay
    /// running in the journal.
    pub fn stop_runners(&self) -> Vec<tokio::task::JoinHandle<()>> {
        self.runners()
            .drain()
            .map(|(_, runner)| {
                let _ = runner.stop.send(true);
                runner.task
            })
            .collect()
    }

    /// Stops every runner and waits until none can write to the journal
    /// any more (a master restarted in the same process reopens it).
    pub async fn shutdown(&self) {
        for task in self.stop_runners() {
            let _ = task.await;
        }
    }
}

fn validate_options(mut options: LoadOptions) -> Result<LoadOptions> {
    options.replicas = options.replicas.max(1);
    if options.metadata_only && options.free {
        return Err(AlluxioError::InvalidArgument(
            "a job loads metadata or frees blocks, not both".to_string(),
        ));
    }
    if (options.metadata_only || options.free) && options.verify {
        return Err(AlluxioError::InvalidArgument(
            "only a load of the blocks can be verified".to_string(),
        ));
    }
    if options.forced && !options.free {
        return Err(AlluxioError::InvalidArgument(
            "forced applies to freeing only".to_string(),
        ));
    }
    if options.replicas > MAX_REPLICAS {
        return Err(AlluxioError::InvalidArgument(format!(
            "replicas must be between 1 and {MAX_REPLICAS}, not {}",
            options.replicas
        )));
    }
    Ok(options)
}

/// The first record of a new load job.
fn new_load_record(id: u64, path: &str, owner: &str, options: LoadOptions) -> LoadJobEntry {
    let phase = if options.free {
        PHASE_FREEING
    } else if options.metadata_only {
        PHASE_LISTING
    } else if options.partial_listing {
        PHASE_LOADING
    } else {
        PHASE_COUNTING
    };
    LoadJobEntry {
        job: Some(JobInfo {
            job_id: id,
            path: path.to_string(),
            options: Some(options),
            state: JobState::Running as i32,
            phase: phase.to_string(),
            owner: owner.to_string(),
            submit_time_ms: now_ms(),
            eta_ms: -1,
            ..Default::default()
        }),
        cursor: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_and_defaulted() {
        assert_eq!(
            validate_options(LoadOptions::default()).unwrap().replicas,
            1
        );
        let too_many = LoadOptions {
            replicas: MAX_REPLICAS + 1,
            ..Default::default()
        };
        assert!(matches!(
            validate_options(too_many),
            Err(AlluxioError::InvalidArgument(_))
        ));
    }

    #[test]
    fn a_partial_listing_skips_counting() {
        let counted = new_load_record(3, "/d", "alice", LoadOptions::default());
        assert_eq!(counted.job.as_ref().unwrap().phase, PHASE_COUNTING);
        let partial = new_load_record(
            4,
            "/d",
            "alice",
            LoadOptions {
                partial_listing: true,
                ..Default::default()
            },
        );
        let job = partial.job.unwrap();
        assert_eq!(
            (job.job_id, job.phase.as_str(), job.state()),
            (4, PHASE_LOADING, JobState::Running)
        );
    }
}
