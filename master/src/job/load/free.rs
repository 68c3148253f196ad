//! Free jobs (`alluxio job free PATH [--forced]`): walk the path as a load
//! job does (without listing anything new from the UFS: what was never
//! listed has nothing cached) and free each file's cached blocks. A file
//! that cannot be freed — pinned (unless forced), or not persisted, so
//! that its blocks are its only copy — is reported with the reason and the
//! rest freed; the cursor is journaled, so a restarted master goes on after
//! the last file handled.

use super::{Listed, Lister, LoadRun, RunError, LIST_BATCH};
use alluxio_common::AlluxioPath;
use alluxio_proto::grpc::FailedFile;
use std::time::Instant;

impl LoadRun {
    pub(super) async fn free_all(&mut self, root: &AlluxioPath) -> Result<(), RunError> {
        let forced = self.options().forced;
        let mut lister =
            Lister::new(root.clone(), &self.record.cursor, self.live.clone()).without_syncing();
        let mut saved_at = Instant::now();
        while !lister.done {
            if self.stopped() {
                return Err(RunError::Stopped);
            }
            match lister.next(&self.fs, LIST_BATCH).await? {
                Listed::Files(infos) => {
                    for info in infos {
                        let path = AlluxioPath::new(&info.path)?;
                        match self.fs.free(&path, false, forced).await {
                            Ok(_) => {
                                let cached = info.length * u64::from(info.in_alluxio_percentage);
                                self.job_mut().bytes_done += cached / 100;
                            }
                            Err(e) => self.record_failure(FailedFile {
                                path: info.path.clone(),
                                reason: e.to_string(),
                            }),
                        }
                        let job = self.job_mut();
                        job.files_done += 1;
                        job.files_total = job.files_done;
                        job.bytes_total += info.length;
                        self.record.cursor = info.path;
                    }
                }
                Listed::Unlistable(failed) => self.record_failure(failed),
            }
            self.walk_progress("files handled", &mut saved_at).await?;
        }
        self.end_walk().await
    }
}
