//! The journaled table of load jobs: the last `LoadJobEntry` of each job
//! id, and the id counter. Finished jobs are kept for `job ls` until more
//! than [`FINISHED_JOBS_KEPT`] have finished; the oldest are dropped then,
//! inside `apply`, so every replica and every replay drops the same ones.

use alluxio_proto::grpc::JobState;
use alluxio_proto::journal::LoadJobEntry;
use std::collections::BTreeMap;

/// Finished jobs remembered for `job ls` / `job stat`.
pub const FINISHED_JOBS_KEPT: usize = 100;

#[derive(Default)]
pub struct JobTable {
    jobs: BTreeMap<u64, LoadJobEntry>,
    next_id: u64,
}

/// The id a journal record is about (0 when it carries no job).
pub fn job_id(entry: &LoadJobEntry) -> u64 {
    entry.job.as_ref().map_or(0, |j| j.job_id)
}

pub fn is_running(entry: &LoadJobEntry) -> bool {
    entry.job.as_ref().map(|j| j.state()) == Some(JobState::Running)
}

impl JobTable {
    /// Records the newest state of a job.
    pub fn apply(&mut self, entry: &LoadJobEntry) {
        let id = job_id(entry);
        if id == 0 {
            return;
        }
        self.raise_next_id(id + 1);
        self.jobs.insert(id, entry.clone());
        let finished: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, e)| !is_running(e))
            .map(|(id, _)| *id)
            .collect();
        let excess = finished.len().saturating_sub(FINISHED_JOBS_KEPT);
        for id in &finished[..excess] {
            self.jobs.remove(id);
        }
    }

    /// Never hands out an id below `id` (checkpoints carry the counter, so
    /// the ids of dropped jobs are not reused).
    pub fn raise_next_id(&mut self, id: u64) {
        self.next_id = self.next_id.max(id);
    }

    /// The id the next submitted job gets (ids start at 1).
    pub fn next_id(&self) -> u64 {
        self.next_id.max(1)
    }

    pub fn get(&self, id: u64) -> Option<&LoadJobEntry> {
        self.jobs.get(&id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &LoadJobEntry> {
        self.jobs.values()
    }

    /// The running job of `path` that a new job of `mode` joins: the
    /// same mode, or, for a metadata load, a load of the blocks (which
    /// walks the same metadata).
    pub fn running_load_of(&self, path: &str, mode: JobMode) -> Option<&LoadJobEntry> {
        self.jobs.values().find(|e| {
            is_running(e)
                && e.job.as_ref().is_some_and(|j| {
                    let running = JobMode::of(j.options.unwrap_or_default());
                    j.path == path
                        && (running == mode
                            || (mode == JobMode::LoadMetadata && running == JobMode::Load))
                })
        })
    }

    pub fn running_ids(&self) -> Vec<u64> {
        self.jobs
            .iter()
            .filter(|(_, e)| is_running(e))
            .map(|(id, _)| *id)
            .collect()
    }
}

/// What a job does, by its options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobMode {
    Load,
    LoadMetadata,
    Free,
}

impl JobMode {
    pub fn of(options: alluxio_proto::grpc::LoadOptions) -> JobMode {
        if options.free {
            JobMode::Free
        } else if options.metadata_only {
            JobMode::LoadMetadata
        } else {
            JobMode::Load
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alluxio_proto::grpc::JobInfo;

    fn record(id: u64, state: JobState, path: &str) -> LoadJobEntry {
        LoadJobEntry {
            job: Some(JobInfo {
                job_id: id,
                path: path.to_string(),
                state: state as i32,
                ..Default::default()
            }),
            cursor: String::new(),
        }
    }

    #[test]
    fn the_last_record_of_a_job_wins() {
        let mut t = JobTable::default();
        t.apply(&record(1, JobState::Running, "/a"));
        t.apply(&record(1, JobState::Stopped, "/a"));
        assert_eq!(
            t.get(1).unwrap().job.as_ref().unwrap().state(),
            JobState::Stopped
        );
        assert!(t.running_load_of("/a", JobMode::Load).is_none());
        assert_eq!(t.next_id(), 2);
    }

    #[test]
    fn only_the_newest_finished_jobs_are_kept_and_running_ones_never_dropped() {
        let mut t = JobTable::default();
        t.apply(&record(1, JobState::Running, "/busy"));
        for id in 2..(FINISHED_JOBS_KEPT as u64 + 12) {
            t.apply(&record(id, JobState::Succeeded, "/x"));
        }
        assert!(t.get(1).is_some(), "a running job is never dropped");
        assert!(t.get(2).is_none(), "the oldest finished job is dropped");
        assert_eq!(t.iter().count(), FINISHED_JOBS_KEPT + 1);
        assert_eq!(
            t.running_load_of("/busy", JobMode::Load).map(job_id),
            Some(1)
        );
        assert_eq!(t.running_ids(), vec![1]);
    }

    #[test]
    fn jobs_join_a_running_job_of_their_path_and_mode_and_metadata_loads_also_a_load() {
        let mut t = JobTable::default();
        let mut metadata = record(1, JobState::Running, "/m");
        metadata.job.as_mut().unwrap().options = Some(alluxio_proto::grpc::LoadOptions {
            metadata_only: true,
            ..Default::default()
        });
        t.apply(&metadata);
        assert!(t.running_load_of("/m", JobMode::Load).is_none());
        assert!(t.running_load_of("/m", JobMode::Free).is_none());
        assert_eq!(
            t.running_load_of("/m", JobMode::LoadMetadata).map(job_id),
            Some(1)
        );
        t.apply(&record(2, JobState::Running, "/b"));
        assert_eq!(
            t.running_load_of("/b", JobMode::LoadMetadata).map(job_id),
            Some(2)
        );
        assert_eq!(t.running_load_of("/b", JobMode::Load).map(job_id), Some(2));
        assert!(t.running_load_of("/b", JobMode::Free).is_none());
        let mut free = record(3, JobState::Running, "/f");
        free.job.as_mut().unwrap().options = Some(alluxio_proto::grpc::LoadOptions {
            free: true,
            ..Default::default()
        });
        t.apply(&free);
        assert_eq!(t.running_load_of("/f", JobMode::Free).map(job_id), Some(3));
        assert!(t.running_load_of("/f", JobMode::Load).is_none());
        assert!(t.running_load_of("/f", JobMode::LoadMetadata).is_none());
    }

    #[test]
    fn the_counter_never_goes_back() {
        let mut t = JobTable::default();
        t.raise_next_id(40);
        t.apply(&record(7, JobState::Succeeded, "/x"));
        assert_eq!(t.next_id(), 40);
        t.apply(&LoadJobEntry::default());
        assert_eq!(t.iter().count(), 1, "a record without a job is ignored");
    }
}
