//! Reconciling a Load: dereference (its AlluxioCluster, the master, the
//! Mount it may name) -> validate (pure, `build/load_plan.rs`) -> decide
//! the next action (pure) -> act on the master's job service -> status,
//! with an Event when a run starts and when it ends. While a run goes on,
//! the reconcile comes back every two seconds to copy the job's progress
//! into the status (`kubectl get ld -w` shows it move). kube's finalizer
//! helper stops a running job before a deleted Load goes.

use super::masters::MasterError;
use super::{object_key, unwrap_finalizer_error, Context, ReconcileError};
use crate::build::load_plan::{
    fingerprint, next_action, submitted, validate, with_progress, LoadAction, SpecError, Target,
    ValidLoad, CHANGE_CHECK, PHASE_RUNNING,
};
use crate::crd::{AlluxioCluster, Condition, Load, LoadPolicy, LoadStatus, Mount};
use alluxio_client::MasterClient;
use alluxio_common::AlluxioError;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::ResourceExt;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// How often a running load's progress is copied into its status.
const FOLLOW: Duration = Duration::from_secs(2);
/// How often a Load whose cluster or Mount is missing looks again.
const RETRY_MISSING: Duration = Duration::from_secs(30);

/// Held by every Load until its running job is stopped.
pub const FINALIZER: &str = "alluxio.rs/stop-load";

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("AlluxioCluster {0} does not exist in this namespace")]
    ClusterNotFound(String),
    #[error("Mount {0} does not exist in this namespace")]
    MountNotFound(String),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("master: {0}")]
    MasterUnavailable(#[from] MasterError),
    #[error("master: {0}")]
    Master(#[from] AlluxioError),
    #[error("cannot update the Load object: {0}")]
    Kube(#[from] kube::Error),
    #[error("cannot add or remove the finalizer: {0}")]
    Finalizer(String),
}

impl ReconcileError for LoadError {
    fn reason(&self) -> &'static str {
        match self {
            LoadError::ClusterNotFound(_) => "ClusterNotFound",
            LoadError::MountNotFound(_) => "MountNotFound",
            LoadError::Spec(_) => "InvalidSpec",
            LoadError::MasterUnavailable(_) => "MasterUnavailable",
            LoadError::Master(_) => "LoadRefused",
            LoadError::Kube(_) => "ApiError",
            LoadError::Finalizer(_) => "FinalizerFailed",
        }
    }
}

/// A Load, dereferenced once per reconcile.
pub struct LoadRef {
    pub name: String,
    pub namespace: String,
    pub api: Api<Load>,
}

impl LoadRef {
    pub fn dereference(cx: &Context, load: &Load) -> Self {
        let namespace = load.namespace().unwrap_or_default();
        LoadRef {
            name: load.name_any(),
            api: Api::namespaced(cx.client.clone(), &namespace),
            namespace,
        }
    }
}

/// One reconcile of `load`, as the controller runs it.
pub async fn reconcile(cx: &Context, load: Arc<Load>) -> Result<Action, LoadError> {
    let target = LoadRef::dereference(cx, &load);
    let clusters: Api<AlluxioCluster> = Api::namespaced(cx.client.clone(), &target.namespace);
    let cluster = clusters
        .get_opt(&load.spec.cluster)
        .await?
        .filter(|c| c.metadata.deletion_timestamp.is_none());
    let Some(cluster) = cluster else {
        if load.metadata.deletion_timestamp.is_some() {
            // The cluster, and its jobs with it, is gone.
            under_finalizer(cx, &target, load, None).await?;
            return Ok(Action::await_change());
        }
        let missing = LoadError::ClusterNotFound(load.spec.cluster.clone());
        report_problem(cx, &target, &load, &missing).await?;
        return Ok(Action::requeue(RETRY_MISSING));
    };
    let master = match cx.masters.of(&cx.client, &cluster).await {
        Ok(master) => master,
        Err(e) => {
            let e = LoadError::MasterUnavailable(e);
            if load.metadata.deletion_timestamp.is_none() {
                report_problem(cx, &target, &load, &e).await?;
            }
            return Err(e);
        }
    };
    under_finalizer(cx, &target, load, Some(&master)).await
}

/// One reconcile of `load` against a known master (tests and the
/// controller alike).
pub async fn reconcile_load(
    cx: &Context,
    master: &MasterClient,
    load: &Load,
) -> Result<Action, LoadError> {
    let target = LoadRef::dereference(cx, load);
    under_finalizer(cx, &target, Arc::new(load.clone()), Some(master)).await
}

async fn under_finalizer(
    cx: &Context,
    target: &LoadRef,
    mut load: Arc<Load>,
    master: Option<&MasterClient>,
) -> Result<Action, LoadError> {
    for _ in 0..2 {
        let mut outcome = None;
        let done = &mut outcome;
        finalizer(&target.api, FINALIZER, load.clone(), |event| async move {
            *done = Some(match event {
                FinalizerEvent::Apply(load) => {
                    let master = master
                        .ok_or_else(|| LoadError::ClusterNotFound(load.spec.cluster.clone()))?;
                    apply(cx, target, master, &load).await?
                }
                FinalizerEvent::Cleanup(load) => {
                    if let Some(master) = master {
                        stop_running_job(cx, master, &load).await?;
                    }
                    cx.backoff.forget(&object_key(load.as_ref()));
                    Action::await_change()
                }
            });
            Ok(Action::await_change())
        })
        .await
        .map_err(|e| unwrap_finalizer_error(e, LoadError::Finalizer))?;
        if let Some(action) = outcome {
            return Ok(action);
        }
        if load.metadata.deletion_timestamp.is_some() {
            return Ok(Action::await_change());
        }
        load = Arc::new(target.api.get(&target.name).await?);
    }
    Err(LoadError::Finalizer(
        "the finalizer was added, but the Load does not carry it".to_string(),
    ))
}

/// Does the next thing the plan says and writes the status.
async fn apply(
    cx: &Context,
    target: &LoadRef,
    master: &MasterClient,
    load: &Load,
) -> Result<Action, LoadError> {
    let valid = match validate(&load.spec) {
        Ok(v) => v,
        Err(e) => {
            let e = LoadError::Spec(e);
            report_problem(cx, target, load, &e).await?;
            return Err(e);
        }
    };
    let previous = load.status.clone().unwrap_or_default();
    let generation = load.metadata.generation.unwrap_or(0);
    let now = Timestamp::now();
    match next_action(&valid, &previous, generation, now) {
        LoadAction::Submit => submit(cx, target, master, load, &valid, None).await,
        LoadAction::Follow(id) => follow(cx, target, master, load, &valid, id).await,
        LoadAction::CheckForChange => {
            let path = resolve_path(cx, target, load, &valid).await?;
            let current = dataset_fingerprint(master, &path).await?;
            if previous.dataset_fingerprint.as_deref() != Some(current.as_str()) {
                return submit(cx, target, master, load, &valid, Some(current)).await;
            }
            let next_run = valid.schedule.as_ref().and_then(|s| s.next_after(now));
            let status = LoadStatus {
                next_run: next_run.map(Time),
                ..previous
            };
            write_status(target, load, status).await?;
            Ok(Action::requeue(
                wait_until(next_run, now).unwrap_or(CHANGE_CHECK),
            ))
        }
        LoadAction::WaitUntil(at) => {
            if previous.next_run.as_ref().map(|t| t.0) != Some(at) {
                let status = LoadStatus {
                    next_run: Some(Time(at)),
                    ..previous
                };
                write_status(target, load, status).await?;
            }
            Ok(Action::requeue(
                wait_until(Some(at), now).unwrap_or(CHANGE_CHECK),
            ))
        }
        LoadAction::Idle => Ok(Action::await_change()),
    }
}

fn wait_until(at: Option<Timestamp>, now: Timestamp) -> Option<Duration> {
    let ms = at?.as_millisecond() - now.as_millisecond();
    Some(Duration::from_millis(ms.max(1_000) as u64))
}

/// The Alluxio path the Load names (its own, or its Mount's).
async fn resolve_path(
    cx: &Context,
    target: &LoadRef,
    load: &Load,
    valid: &ValidLoad,
) -> Result<String, LoadError> {
    match &valid.target {
        Target::Path(p) => Ok(p.clone()),
        Target::Mount(name) => {
            let mounts: Api<Mount> = Api::namespaced(cx.client.clone(), &target.namespace);
            match mounts.get_opt(name).await? {
                Some(m) if m.spec.cluster == load.spec.cluster => Ok(m.spec.alluxio_path),
                _ => {
                    let e = LoadError::MountNotFound(name.clone());
                    report_problem(cx, target, load, &e).await?;
                    Err(e)
                }
            }
        }
    }
}

/// The fingerprint of what is under `path`, synced with the UFS at most
/// once per check interval.
async fn dataset_fingerprint(master: &MasterClient, path: &str) -> Result<String, LoadError> {
    let sync = Some(CHANGE_CHECK.as_millis() as i64);
    let files = master.list_status(path, true, sync).await?;
    Ok(fingerprint(&files))
}

async fn submit(
    cx: &Context,
    target: &LoadRef,
    master: &MasterClient,
    load: &Load,
    valid: &ValidLoad,
    fingerprint: Option<String>,
) -> Result<Action, LoadError> {
    let path = resolve_path(cx, target, load, valid).await?;
    let fingerprint = match (fingerprint, valid.policy) {
        (Some(f), _) => Some(f),
        (None, LoadPolicy::OnChange) => Some(dataset_fingerprint(master, &path).await?),
        (None, LoadPolicy::Once) => None,
    };
    let response = match master.submit_load(&path, valid.options).await {
        Ok(r) => r,
        Err(e) => {
            let e = LoadError::Master(e);
            report_problem(cx, target, load, &e).await?;
            return Err(e);
        }
    };
    let job = response.job.unwrap_or_default();
    let previous = load.status.clone().unwrap_or_default();
    let generation = load.metadata.generation.unwrap_or(0);
    let mut status = submitted(
        &previous,
        job.job_id,
        &path,
        generation,
        fingerprint,
        Timestamp::now(),
    );
    status.conditions = vec![condition(
        &previous,
        "Unknown",
        "Running",
        format!("loading {path} (job {})", job.job_id),
        generation,
    )];
    write_status(target, load, status).await?;
    let note = if response.joined {
        format!(
            "following job {}, which was already loading {path}",
            job.job_id
        )
    } else {
        format!("job {} loads {path}", job.job_id)
    };
    cx.events.normal(load, "LoadStarted", "Submit", note).await;
    Ok(Action::requeue(FOLLOW))
}

async fn follow(
    cx: &Context,
    target: &LoadRef,
    master: &MasterClient,
    load: &Load,
    valid: &ValidLoad,
    id: u64,
) -> Result<Action, LoadError> {
    let job = match master.get_job(id).await {
        Ok(job) => job,
        // A master that never knew it (a new cluster): run it again.
        Err(AlluxioError::NotFound(_)) => {
            return submit(cx, target, master, load, valid, None).await
        }
        Err(e) => return Err(e.into()),
    };
    let previous = load.status.clone().unwrap_or_default();
    let generation = load.metadata.generation.unwrap_or(0);
    let now = Timestamp::now();
    let mut status = with_progress(&previous, &job, valid.schedule.as_ref(), now);
    let finished = status.phase.as_deref() != Some(PHASE_RUNNING);
    if finished {
        let (state, reason) = match status.phase.as_deref() {
            Some("Succeeded") => ("True", "Succeeded"),
            Some("Stopped") => ("False", "Stopped"),
            _ => ("False", "FilesFailed"),
        };
        status.conditions = vec![condition(
            &previous,
            state,
            reason,
            job.message.clone(),
            generation,
        )];
    }
    write_status(target, load, status.clone()).await?;
    if !finished {
        return Ok(Action::requeue(FOLLOW));
    }
    let note = format!(
        "job {id}: {} ({} of {} files, {} fetched from the UFS)",
        job.message,
        job.files_done - job.files_failed,
        job.files_total,
        alluxio_common::format::format_bytes(job.bytes_fetched)
    );
    if status.phase.as_deref() == Some("Succeeded") {
        cx.events.normal(load, "LoadSucceeded", "Load", note).await;
    } else {
        cx.events.warning(load, "LoadFailed", "Load", note).await;
    }
    let again = match (valid.policy, status.next_run.as_ref()) {
        (_, Some(next)) => wait_until(Some(next.0), now),
        (LoadPolicy::OnChange, None) => Some(CHANGE_CHECK),
        (LoadPolicy::Once, None) => None,
    };
    Ok(again.map_or_else(Action::await_change, Action::requeue))
}

/// A deleted Load stops its running job (a finished one is left as it is).
async fn stop_running_job(
    cx: &Context,
    master: &MasterClient,
    load: &Load,
) -> Result<(), LoadError> {
    let Some(status) = &load.status else {
        return Ok(());
    };
    let (Some(PHASE_RUNNING), Some(id)) = (status.phase.as_deref(), status.job_id) else {
        return Ok(());
    };
    match master.stop_job(id).await {
        Ok(_) | Err(AlluxioError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(
        load = load.name_any(),
        job = id,
        "load job stopped: its Load was deleted"
    );
    cx.events
        .normal(load, "LoadStopped", "Stop", format!("job {id} stopped"))
        .await;
    Ok(())
}

/// The Complete condition, keeping its transition time while its status
/// stays the same.
fn condition(
    previous: &LoadStatus,
    status: &str,
    reason: &str,
    message: String,
    generation: i64,
) -> Condition {
    let since = previous
        .conditions
        .iter()
        .find(|c| c.type_ == "Complete" && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(Timestamp::now()));
    Condition {
        type_: "Complete".into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: Some(generation),
        last_transition_time: since,
    }
}

/// Puts a problem that stops the Load into its status (once as an Event).
async fn report_problem(
    cx: &Context,
    target: &LoadRef,
    load: &Load,
    e: &LoadError,
) -> Result<(), LoadError> {
    let previous = load.status.clone().unwrap_or_default();
    let generation = load.metadata.generation.unwrap_or(0);
    let already = previous.conditions.iter().any(|c| c.reason == e.reason());
    if !already {
        cx.events
            .warning(load, e.reason(), "Load", e.to_string())
            .await;
    }
    let running = previous.phase.as_deref() == Some(PHASE_RUNNING);
    let status = LoadStatus {
        // A running job goes on without the operator; otherwise nothing runs.
        phase: Some(if running { PHASE_RUNNING } else { "Pending" }.to_string()),
        conditions: vec![condition(
            &previous,
            "False",
            e.reason(),
            e.to_string(),
            generation,
        )],
        ..previous
    };
    write_status(target, load, status).await
}

/// Fields of the status that may be absent; a merge patch clears them
/// only when it names them as null (or as empty lists).
const NULLABLE: &[&str] = &[
    "phase",
    "jobId",
    "path",
    "progress",
    "throughput",
    "eta",
    "startTime",
    "completionTime",
    "nextRun",
    "datasetFingerprint",
];
const LISTS: &[&str] = &["failedFiles", "conditions"];

async fn write_status(target: &LoadRef, load: &Load, status: LoadStatus) -> Result<(), LoadError> {
    if load.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let mut value = serde_json::to_value(&status).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        for key in NULLABLE {
            fields.entry(*key).or_insert(serde_json::Value::Null);
        }
        for key in LISTS {
            fields.entry(*key).or_insert_with(|| json!([]));
        }
    }
    target
        .api
        .patch_status(
            &target.name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": value })),
        )
        .await?;
    Ok(())
}
