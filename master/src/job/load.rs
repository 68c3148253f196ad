//! One load job running on the leader: list the path (`walk`), plan the
//! blocks that are not yet on enough workers, hand them to workers a few
//! at a time each (`workers`), retry failed blocks on other workers, and
//! journal the progress so a restarted master resumes after the last file
//! handled.
//!
//! Phases: `counting` (totals for percent and ETA; skipped with
//! `partial_listing`), `loading`, `verifying` (with `verify`), `done`.
//! `verifying` is a second pass like `loading` that loads again what is
//! missing (blocks lost with a worker, evicted meanwhile) and then checks
//! each file's blocks against the replicas asked for; its failures replace
//! those of the first pass, as the final word. Both passes journal their
//! progress; `counting` is an in-memory walk that a resumed job redoes.
//!
//! A worker's answer to CacheBlock says where the block is cached; the
//! master records that location at once instead of waiting for the
//! worker's next heartbeat, so checks and later readers see it.
//!
//! Files are handled in listing order through a bounded window: the
//! journaled cursor is the last file of the finished prefix, so whatever
//! was in flight when the master stopped is planned again on resume (the
//! workers answer "cached already" for what they finished).

use super::walk::{children_unknown, next_batch};
use super::workers::{ranked_for_block, Target, WorkerClients};
use super::JobSettings;
use crate::fs_master::FileSystemMaster;
use alluxio_common::block_source::cache_block_request;
use alluxio_common::{now_ms, AlluxioError, AlluxioPath};
use alluxio_proto::grpc::{
    CacheBlockRequest, CacheBlockResponse, FailedFile, FileInfo, JobInfo, JobState,
    PersistenceState,
};
use alluxio_proto::journal::{journal_entry::Entry, LoadJobEntry};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Failures kept with their reasons (the count goes on).
pub const FAILURES_KEPT: usize = 100;
/// Files listed and not yet finished, at most.
const WINDOW_FILES: usize = 1024;
/// Files per listing batch (one read-lock hold each).
const LIST_BATCH: usize = 256;
/// A resumed job waits until no worker has joined for this long, so that
/// blocks go to the workers that cached them before.
const RESUME_SETTLE: Duration = Duration::from_secs(3);

mod free;
mod metadata;

/// The phase of a job that frees blocks (`alluxio job free`).
pub const PHASE_FREEING: &str = "freeing";

/// The phase of a metadata-only job (`alluxio job loadMetadata`).
pub const PHASE_LISTING: &str = "listing";
pub const PHASE_COUNTING: &str = "counting";
pub const PHASE_LOADING: &str = "loading";
pub const PHASE_VERIFYING: &str = "verifying";
pub const PHASE_DONE: &str = "done";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the job was stopped")]
    Stopped,
    #[error(transparent)]
    Master(#[from] AlluxioError),
}

pub struct LoadRun {
    pub fs: Arc<FileSystemMaster>,
    pub workers: Arc<WorkerClients>,
    pub settings: JobSettings,
    /// The job as journaled last.
    pub record: LoadJobEntry,
    /// What `job stat` shows while this runs.
    pub live: Arc<Mutex<JobInfo>>,
    pub stop: watch::Receiver<bool>,
    /// Started again after a restart or a failover (not just submitted).
    pub resumed: bool,
}

/// Walks the job's path batch by batch, syncing never-listed directories
/// from the UFS on the way (each at most once per run).
struct Lister {
    root: AlluxioPath,
    /// The job's live view, for the progress of a long directory listing.
    live: Arc<Mutex<JobInfo>>,
    /// Whether directories never listed are listed from the UFS on the way
    /// (not for freeing: nothing under them is cached).
    sync_unlisted: bool,
    cursor: Option<AlluxioPath>,
    tried: HashSet<String>,
    done: bool,
}

/// What listing gave: file infos, or a directory that could not be listed.
enum Listed {
    Files(Vec<FileInfo>),
    Unlistable(FailedFile),
}

impl Lister {
    fn new(root: AlluxioPath, cursor: &str, live: Arc<Mutex<JobInfo>>) -> Lister {
        Lister {
            root,
            live,
            sync_unlisted: true,
            cursor: (!cursor.is_empty())
                .then(|| AlluxioPath::new(cursor).ok())
                .flatten(),
            tried: HashSet::new(),
            done: false,
        }
    }

    async fn next(&mut self, fs: &FileSystemMaster, limit: usize) -> Result<Listed, AlluxioError> {
        loop {
            let (files, needs_sync) = {
                let state = fs.read_state();
                let tried = &self.tried;
                let sync_unlisted = self.sync_unlisted;
                let unsynced = |i: &crate::inode::Inode| {
                    sync_unlisted
                        && children_unknown(i)
                        && state
                            .tree
                            .path_of(i.id)
                            .is_none_or(|p| !tried.contains(p.as_str()))
                };
                let batch = next_batch(&state, &self.root, self.cursor.as_ref(), limit, &unsynced)?;
                self.done = batch.done;
                if let Some((_, last)) = batch.files.last() {
                    self.cursor = Some(last.clone());
                }
                let infos: Vec<FileInfo> = batch
                    .files
                    .iter()
                    .map(|(id, _)| fs.file_info(&state, *id))
                    .collect();
                (infos, batch.needs_sync)
            };
            match needs_sync {
                Some(dir) if files.is_empty() => {
                    self.tried.insert(dir.to_string());
                    let interval = fs.sync_interval(dir.as_str(), None);
                    let listing = fs.sync_children(&dir, interval);
                    if let Err(e) = self.showing_progress(fs, &dir, listing).await {
                        return Ok(Listed::Unlistable(FailedFile {
                            path: dir.to_string(),
                            reason: format!("cannot list it from the UFS: {e}"),
                        }));
                    }
                }
                _ => return Ok(Listed::Files(files)),
            }
        }
    }

    /// Walks only what the master knows already.
    fn without_syncing(mut self) -> Lister {
        self.sync_unlisted = false;
        self
    }

    /// Waits for `listing` (the sync of `dir`), showing the entries it
    /// applied so far every second: a directory of millions of objects
    /// takes minutes.
    async fn showing_progress(
        &self,
        fs: &FileSystemMaster,
        dir: &AlluxioPath,
        listing: impl std::future::Future<Output = Result<(), AlluxioError>>,
    ) -> Result<(), AlluxioError> {
        tokio::pin!(listing);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                result = &mut listing => return result,
                _ = tick.tick() => {
                    if let Some(entries) = fs.sync_progress(dir) {
                        let mut job = self.live.lock().unwrap_or_else(|p| p.into_inner());
                        job.message = format!("listing {dir} from the UFS: {entries} entries so far");
                    }
                }
            }
        }
    }
}

/// Which of the two passes over the files is running.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Load,
    Verify,
}

/// A file of the window: listed, maybe with blocks still being cached.
struct Slot {
    path: String,
    length: u64,
    blocks: Vec<u64>,
    pending: usize,
    failure: Option<String>,
}

/// One copy of a block to be cached by one worker.
struct Copy {
    seq: u64,
    request: CacheBlockRequest,
    /// Workers that failed it already, and those holding the block.
    avoid: Vec<u64>,
    failures: usize,
}

/// Spaces out UFS fetches to a byte rate (0: no limit).
struct Pacer {
    bytes_per_sec: u64,
    next: Instant,
}

impl Pacer {
    /// How long a fetch of `bytes` must wait for its turn.
    fn reserve(&mut self, bytes: u64) -> Duration {
        if self.bytes_per_sec == 0 {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let start = self.next.max(now);
        self.next = start + Duration::from_secs_f64(bytes as f64 / self.bytes_per_sec as f64);
        start - now
    }
}

type Finished = (u64, Copy, Result<CacheBlockResponse, String>);

/// The loading phase's moving parts.
struct Loading {
    window: VecDeque<Slot>,
    /// Sequence number of `window[0]`.
    base: u64,
    queues: HashMap<u64, (Target, VecDeque<Copy>)>,
    in_flight: HashMap<u64, usize>,
    tasks: JoinSet<Finished>,
    pacer: Pacer,
    live_workers: Vec<Target>,
}

impl LoadRun {
    fn job(&self) -> &JobInfo {
        self.record.job.as_ref().expect("a job record has a job")
    }

    fn job_mut(&mut self) -> &mut JobInfo {
        self.record.job.as_mut().expect("a job record has a job")
    }

    pub async fn run(mut self) -> Result<(), RunError> {
        let root = AlluxioPath::new(&self.job().path)?;
        if self.job().phase == PHASE_LISTING {
            self.list_metadata(&root).await?;
        }
        if self.job().phase == PHASE_FREEING {
            self.free_all(&root).await?;
        }
        if self.job().phase == PHASE_COUNTING {
            self.count(&root).await?;
        }
        if self.job().phase == PHASE_LOADING {
            self.pass(&root, Pass::Load).await?;
        }
        if self.job().phase == PHASE_VERIFYING {
            self.pass(&root, Pass::Verify).await?;
        }
        self.finish().await
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Shows `job` (with live figures) to `job stat`.
    fn show(&self, job: JobInfo) {
        *self.live.lock().unwrap_or_else(|p| p.into_inner()) = job;
    }

    fn show_message(&self, message: &str) {
        let mut job = self.live.lock().unwrap_or_else(|p| p.into_inner());
        job.message = message.to_string();
    }

    /// Journals the record; refused when the job is no longer running
    /// (stopped meanwhile), which ends this run.
    async fn save(&self) -> Result<(), RunError> {
        let record = self.record.clone();
        let id = self.job().job_id;
        let saved = self
            .fs
            .commit(move |txn| {
                if !txn.state.jobs.get(id).is_some_and(super::table::is_running) {
                    return Ok(false);
                }
                txn.apply(Entry::LoadJob(record))?;
                Ok(true)
            })
            .await?;
        if saved {
            Ok(())
        } else {
            Err(RunError::Stopped)
        }
    }

    async fn count(&mut self, root: &AlluxioPath) -> Result<(), RunError> {
        self.show_message("counting the files to load");
        let mut lister = Lister::new(root.clone(), "", self.live.clone());
        let (mut files, mut bytes) = (0u64, 0u64);
        while !lister.done {
            if self.stopped() {
                return Err(RunError::Stopped);
            }
            if let Listed::Files(infos) = lister.next(&self.fs, LIST_BATCH).await? {
                files += infos.len() as u64;
                bytes += infos.iter().map(|f| f.length).sum::<u64>();
            }
            let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            live.files_total = files;
            live.bytes_total = bytes;
        }
        let job = self.job_mut();
        job.files_total = files;
        job.bytes_total = bytes;
        job.listing_done = true;
        job.phase = PHASE_LOADING.to_string();
        self.record.cursor.clear();
        self.save().await?;
        self.show(self.job().clone());
        Ok(())
    }

    /// Live workers, after waiting for at least one (and, on resume, for
    /// the set to settle).
    async fn wait_for_workers(&self, settle: bool) -> Result<Vec<Target>, RunError> {
        let mut seen = (usize::MAX, Instant::now());
        loop {
            let live = live_targets(&self.fs);
            if live.len() != seen.0 {
                seen = (live.len(), Instant::now());
            }
            if !live.is_empty() && (!settle || seen.1.elapsed() >= RESUME_SETTLE) {
                return Ok(live);
            }
            if live.is_empty() {
                self.show_message("waiting for a live worker");
            }
            if self.stopped() {
                return Err(RunError::Stopped);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// One pass over the files after the cursor: plan, dispatch, retire.
    async fn pass(&mut self, root: &AlluxioPath, pass: Pass) -> Result<(), RunError> {
        let live_workers = self.wait_for_workers(self.resumed).await?;
        self.show_message(if pass == Pass::Verify {
            "verifying"
        } else {
            ""
        });
        let mut lister = Lister::new(root.clone(), &self.record.cursor, self.live.clone());
        let mut l = Loading {
            window: VecDeque::new(),
            base: 0,
            queues: HashMap::new(),
            in_flight: HashMap::new(),
            tasks: JoinSet::new(),
            pacer: Pacer {
                bytes_per_sec: self.options().bandwidth_bytes_per_sec,
                next: Instant::now(),
            },
            live_workers,
        };
        let started = (Instant::now(), self.job().bytes_done);
        let mut saved_at = Instant::now();
        let mut stop = self.stop.clone();
        loop {
            if self.stopped() {
                return Err(RunError::Stopped);
            }
            l.live_workers = live_targets(&self.fs);
            self.requeue_from_lost_workers(&mut l);
            while !lister.done && l.window.len() < WINDOW_FILES && !l.live_workers.is_empty() {
                let room = (WINDOW_FILES - l.window.len()).min(LIST_BATCH);
                match lister.next(&self.fs, room).await? {
                    Listed::Files(infos) => {
                        for info in infos {
                            self.plan_file(&mut l, &info);
                        }
                    }
                    Listed::Unlistable(failed) => self.record_failure(failed),
                }
            }
            self.dispatch(&mut l);
            self.retire_finished_files(&mut l, pass);
            self.show_live(&l, lister.done, started, pass);
            if lister.done && l.window.is_empty() {
                break;
            }
            if saved_at.elapsed() >= self.settings.progress_interval {
                self.save_progress(lister.done).await?;
                saved_at = Instant::now();
            }
            tokio::select! {
                Some(joined) = l.tasks.join_next(), if !l.tasks.is_empty() => {
                    match joined {
                        Ok(finished) => self.on_copy_finished(&mut l, finished),
                        Err(e) => return Err(AlluxioError::Internal(format!("a load task failed: {e}")).into()),
                    }
                }
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = stop.changed() => {}
            }
        }
        let verify = pass == Pass::Load && self.options().verify;
        let job = self.job_mut();
        job.listing_done = true;
        job.files_total = job.files_total.max(job.files_done);
        job.bytes_total = job.bytes_total.max(job.bytes_done);
        if verify {
            // The verifying pass decides which files failed.
            job.phase = PHASE_VERIFYING.to_string();
            job.files_failed = 0;
            job.failures.clear();
        } else {
            job.phase = PHASE_DONE.to_string();
        }
        self.record.cursor.clear();
        self.save().await
    }

    fn options(&self) -> alluxio_proto::grpc::LoadOptions {
        self.job().options.unwrap_or_default()
    }

    /// Adds a listed file to the window with a copy for each block that
    /// is on fewer workers than asked.
    fn plan_file(&mut self, l: &mut Loading, info: &FileInfo) {
        let seq = l.base + l.window.len() as u64;
        let mut slot = Slot {
            path: info.path.clone(),
            length: info.length,
            blocks: info.block_ids.clone(),
            pending: 0,
            failure: None,
        };
        let replicas = self.options().replicas.max(1) as usize;
        let persisted = info.persistence_state == PersistenceState::Persisted as i32;
        for fbi in &info.file_block_infos {
            let block = fbi.block_info.clone().unwrap_or_default();
            let holders: Vec<u64> = block.locations.iter().map(|w| w.worker_id).collect();
            let missing = replicas.saturating_sub(holders.len());
            if missing == 0 {
                continue;
            }
            if !info.completed {
                slot.failure = Some("it is still being written".to_string());
                break;
            }
            if !persisted {
                slot.failure =
                    Some("it is not persisted, so there is nothing to load it from".to_string());
                break;
            }
            let targets: Vec<Target> = ranked_for_block(block.block_id, &l.live_workers)
                .into_iter()
                .filter(|w| !holders.contains(&w.worker_id))
                .take(missing)
                .collect();
            for target in targets {
                let copy = Copy {
                    seq,
                    request: cache_block_request(info, fbi),
                    avoid: holders.clone(),
                    failures: 0,
                };
                slot.pending += 1;
                enqueue(l, target, copy);
            }
        }
        l.window.push_back(slot);
    }

    /// Starts queued copies while their worker has room.
    fn dispatch(&self, l: &mut Loading) {
        let limit = self.settings.worker_concurrency.max(1);
        for (worker_id, (target, queue)) in l.queues.iter_mut() {
            let busy = l.in_flight.entry(*worker_id).or_insert(0);
            while *busy < limit {
                let Some(copy) = queue.pop_front() else { break };
                *busy += 1;
                let wait = l.pacer.reserve(copy.request.block_length);
                let (workers, address, worker_id) =
                    (self.workers.clone(), target.address.clone(), *worker_id);
                l.tasks.spawn(async move {
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    let result = workers.cache_block(&address, copy.request.clone()).await;
                    (worker_id, copy, result)
                });
            }
        }
        l.queues.retain(|_, (_, q)| !q.is_empty());
    }

    fn on_copy_finished(&mut self, l: &mut Loading, (worker_id, copy, result): Finished) {
        if let Some(n) = l.in_flight.get_mut(&worker_id) {
            *n = n.saturating_sub(1);
        }
        match result {
            Ok(cached) => {
                if cached.fetched {
                    self.job_mut().bytes_fetched += copy.request.block_length;
                }
                self.fs.block_master().commit_block(
                    worker_id,
                    copy.request.block_id,
                    cached.length,
                    &cached.tier_alias,
                );
                if let Some(slot) = slot_of(l, copy.seq) {
                    slot.pending -= 1;
                }
            }
            Err(reason) => self.retry_or_fail(l, copy, worker_id, reason),
        }
    }

    /// A copy that `worker_id` could not cache goes to the next worker in
    /// its ranking, until `attempts` workers have failed it; then its file
    /// is reported with the last reason.
    fn retry_or_fail(&self, l: &mut Loading, mut copy: Copy, worker_id: u64, reason: String) {
        copy.failures += 1;
        copy.avoid.push(worker_id);
        let next = if copy.failures < self.settings.attempts.max(1) {
            ranked_for_block(copy.request.block_id, &l.live_workers)
                .into_iter()
                .find(|w| !copy.avoid.contains(&w.worker_id))
        } else {
            None
        };
        match next {
            Some(target) => {
                tracing::debug!(block = copy.request.block_id, %reason, "retrying a block on another worker");
                enqueue(l, target, copy);
            }
            None => {
                if let Some(slot) = slot_of(l, copy.seq) {
                    slot.pending -= 1;
                    slot.failure = Some(reason);
                }
            }
        }
    }

    /// Copies queued for workers that are no longer live go to the next
    /// worker in their ranking (in-flight ones fail and retry by themselves).
    fn requeue_from_lost_workers(&self, l: &mut Loading) {
        let live: HashSet<u64> = l.live_workers.iter().map(|w| w.worker_id).collect();
        let lost: Vec<u64> = l
            .queues
            .keys()
            .filter(|id| !live.contains(id))
            .copied()
            .collect();
        for id in lost {
            let Some((_, queue)) = l.queues.remove(&id) else {
                continue;
            };
            for copy in queue {
                self.retry_or_fail(l, copy, id, format!("worker {id} was lost"));
            }
        }
    }

    /// Moves the finished prefix of the window into the record; the
    /// verifying pass checks each file's replicas as it goes.
    fn retire_finished_files(&mut self, l: &mut Loading, pass: Pass) {
        while l.window.front().is_some_and(|s| s.pending == 0) {
            let mut slot = l.window.pop_front().expect("front exists");
            l.base += 1;
            if pass == Pass::Load {
                let job = self.job_mut();
                job.files_done += 1;
                job.bytes_done += slot.length;
            } else if slot.failure.is_none() {
                slot.failure = self.short_of_replicas(&slot.blocks);
            }
            if let Some(reason) = slot.failure {
                self.record_failure(FailedFile {
                    path: slot.path.clone(),
                    reason,
                });
            }
            self.record.cursor = slot.path;
        }
    }

    fn record_failure(&mut self, failed: FailedFile) {
        tracing::warn!(job = self.job().job_id, path = %failed.path, reason = %failed.reason, "load: file failed");
        let job = self.job_mut();
        job.files_failed += 1;
        if job.failures.len() < FAILURES_KEPT {
            job.failures.push(failed);
        }
    }

    async fn save_progress(&mut self, listing_done: bool) -> Result<(), RunError> {
        if self.options().partial_listing && !listing_done {
            // The finished prefix is all that is known for sure.
            let job = self.job_mut();
            job.files_total = job.files_done;
            job.bytes_total = job.bytes_done;
        }
        self.save().await
    }

    /// The record plus what the window finished out of order, and rates.
    fn show_live(
        &self,
        l: &Loading,
        listing_done: bool,
        (since, bytes_before): (Instant, u64),
        pass: Pass,
    ) {
        let mut job = self.job().clone();
        for slot in l.window.iter().filter(|s| s.pending == 0) {
            if pass == Pass::Load {
                job.files_done += 1;
                job.bytes_done += slot.length;
            }
            job.files_failed += u64::from(slot.failure.is_some());
        }
        if self.options().partial_listing && !job.listing_done {
            job.files_total = self.job().files_done + l.window.len() as u64;
            job.bytes_total =
                self.job().bytes_done + l.window.iter().map(|s| s.length).sum::<u64>();
            job.listing_done = listing_done;
        }
        let elapsed = since.elapsed().as_secs_f64();
        let handled = job.bytes_done.saturating_sub(bytes_before);
        job.throughput_bytes_per_sec = if elapsed > 0.0 {
            handled as f64 / elapsed
        } else {
            0.0
        };
        job.eta_ms = match (job.listing_done, job.throughput_bytes_per_sec > 0.0) {
            (true, true) => {
                (job.bytes_total.saturating_sub(job.bytes_done) as f64
                    / job.throughput_bytes_per_sec
                    * 1000.0) as i64
            }
            _ => -1,
        };
        job.message = if l.live_workers.is_empty() {
            "waiting for a live worker".to_string()
        } else if pass == Pass::Verify {
            "verifying".to_string()
        } else {
            String::new()
        };
        self.show(job);
    }

    /// Why a file's blocks are not all on as many workers as asked.
    fn short_of_replicas(&self, blocks: &[u64]) -> Option<String> {
        let replicas = self.options().replicas.max(1) as usize;
        blocks.iter().enumerate().find_map(|(i, block)| {
            let have = self.fs.block_master().locations(*block).len();
            (have < replicas)
                .then(|| format!("verify: block {i} is cached on {have} of {replicas} workers"))
        })
    }

    /// Shows a walk-only job's count (`files <what>`) and journals its
    /// progress once per `progress_interval` (metadata loads, frees).
    async fn walk_progress(&mut self, what: &str, saved_at: &mut Instant) -> Result<(), RunError> {
        let mut shown = self.job().clone();
        shown.message = format!("{} {what}", shown.files_done);
        self.show(shown);
        if saved_at.elapsed() >= self.settings.progress_interval {
            self.save().await?;
            *saved_at = Instant::now();
        }
        Ok(())
    }

    /// The end of a walk-only job's walk.
    async fn end_walk(&mut self) -> Result<(), RunError> {
        let job = self.job_mut();
        job.listing_done = true;
        job.phase = PHASE_DONE.to_string();
        self.record.cursor.clear();
        self.save().await
    }

    async fn finish(mut self) -> Result<(), RunError> {
        let job = self.job_mut();
        job.phase = PHASE_DONE.to_string();
        job.end_time_ms = now_ms();
        let mode = super::table::JobMode::of(job.options.unwrap_or_default());
        job.state = if job.files_failed == 0 {
            JobState::Succeeded
        } else {
            JobState::Failed
        } as i32;
        job.message = end_message(mode, job.files_done, job.files_failed);
        tracing::info!(job = job.job_id, path = %job.path, message = %job.message, fetched = job.bytes_fetched, "load job finished");
        self.save().await?;
        self.show(self.job().clone());
        Ok(())
    }
}

/// How a job of `mode` that handled `done` files, `failed` of them not,
/// ended.
fn end_message(mode: super::table::JobMode, done: u64, failed: u64) -> String {
    use super::table::JobMode;
    match (mode, failed) {
        (JobMode::Load, 0) => format!("{done} files loaded"),
        (JobMode::Load, _) => format!("{failed} of {done} files could not be loaded"),
        (JobMode::LoadMetadata, 0) => format!("metadata of {done} files loaded"),
        (JobMode::LoadMetadata, _) => {
            format!("{failed} directories could not be listed ({done} files found)")
        }
        (JobMode::Free, 0) => format!("{done} files freed"),
        (JobMode::Free, _) => format!("{failed} of {done} files could not be freed"),
    }
}

fn slot_of(l: &mut Loading, seq: u64) -> Option<&mut Slot> {
    let index = usize::try_from(seq.checked_sub(l.base)?).ok()?;
    l.window.get_mut(index)
}

fn enqueue(l: &mut Loading, target: Target, copy: Copy) {
    l.queues
        .entry(target.worker_id)
        .or_insert_with(|| (target, VecDeque::new()))
        .1
        .push_back(copy);
}

/// The workers the master has heard from lately.
pub fn live_targets(fs: &FileSystemMaster) -> Vec<Target> {
    fs.block_master()
        .worker_infos()
        .iter()
        .filter_map(Target::from_info)
        .collect()
}
