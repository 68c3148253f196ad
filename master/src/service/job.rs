//! `JobMaster` gRPC service: submit, list, inspect and stop load jobs.
//! Submitting needs the right to list the path (read and execute on a
//! directory); stopping needs to be the job's owner, the superuser or a
//! service (the operator stops the jobs of deleted `Load` resources).

use crate::fs_master::FileSystemMaster;
use crate::job::JobMaster;
use crate::metrics::MasterMetrics;
use crate::permission::{Need, WRITE};
use crate::service::access::AccessPolicy;
use crate::service::path;
use alluxio_common::auth::{caller, Role};
use alluxio_common::AlluxioError;
use alluxio_proto::grpc::job_master_server::JobMaster as JobService;
use alluxio_proto::grpc::*;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct JobMasterService {
    pub fs: Arc<FileSystemMaster>,
    pub jobs: Arc<JobMaster>,
    pub metrics: Arc<MasterMetrics>,
    pub access: Arc<AccessPolicy>,
}

#[tonic::async_trait]
impl JobService for JobMasterService {
    async fn submit_load(
        &self,
        req: Request<SubmitLoadRequest>,
    ) -> Result<Response<SubmitLoadResponse>, Status> {
        let who = caller(&req)?;
        let r = req.into_inner();
        self.metrics
            .observe("SubmitLoad", async {
                let p = path(&r.path)?;
                let options = r.options.unwrap_or_default();
                // Freeing changes what is cached, as `fs free` does.
                if options.free {
                    self.access.authorize(
                        &self.fs,
                        &who,
                        "SubmitFree",
                        &p,
                        Need::Target(WRITE),
                        true,
                    )?;
                } else {
                    self.access
                        .authorize(&self.fs, &who, "SubmitLoad", &p, Need::List, false)?;
                }
                let (job, joined) = self.jobs.submit_load(&who.user, &p, options).await?;
                Ok(SubmitLoadResponse {
                    job: Some(job),
                    joined,
                })
            })
            .await
    }

    async fn list_jobs(
        &self,
        req: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        caller(&req)?;
        self.metrics
            .observe("ListJobs", async {
                Ok(ListJobsResponse {
                    jobs: self.jobs.list(),
                })
            })
            .await
    }

    async fn get_job(
        &self,
        req: Request<GetJobRequest>,
    ) -> Result<Response<GetJobResponse>, Status> {
        caller(&req)?;
        let id = req.into_inner().job_id;
        self.metrics
            .observe("GetJob", async {
                Ok(GetJobResponse {
                    job: Some(self.jobs.get(id)?),
                })
            })
            .await
    }

    async fn stop_job(
        &self,
        req: Request<StopJobRequest>,
    ) -> Result<Response<StopJobResponse>, Status> {
        let who = caller(&req)?;
        let id = req.into_inner().job_id;
        self.metrics
            .observe("StopJob", async {
                let job = self.jobs.get(id)?;
                let allowed = job.owner == who.user
                    || who.role == Role::Operator
                    || self.access.is_superuser(&who);
                if !allowed {
                    return Err(AlluxioError::PermissionDenied(format!(
                        "job {id} belongs to {}; only they or the superuser may stop it",
                        job.owner
                    )));
                }
                Ok(StopJobResponse {
                    job: Some(self.jobs.stop(id, &who.user).await?),
                })
            })
            .await
    }
}
