//! Metadata-only jobs (`alluxio job loadMetadata PATH`): the walk of a
//! load job without the blocks. Every directory under the path that was
//! never listed is listed from the UFS (page by page, see `crate::sync`);
//! files are counted as they are found; the cursor is journaled, so a
//! restarted master goes on after the last file handled. A directory that
//! cannot be listed is a failure with its reason, and the rest goes on.

use super::{Listed, Lister, LoadRun, RunError, LIST_BATCH};
use alluxio_common::AlluxioPath;
use std::time::Instant;

impl LoadRun {
    pub(super) async fn list_metadata(&mut self, root: &AlluxioPath) -> Result<(), RunError> {
        let mut lister = Lister::new(root.clone(), &self.record.cursor, self.live.clone());
        let mut saved_at = Instant::now();
        while !lister.done {
            if self.stopped() {
                return Err(RunError::Stopped);
            }
            match lister.next(&self.fs, LIST_BATCH).await? {
                Listed::Files(infos) => {
                    let job = self.job_mut();
                    job.files_done += infos.len() as u64;
                    job.files_total = job.files_done;
                    job.bytes_total += infos.iter().map(|f| f.length).sum::<u64>();
                    if let Some(last) = infos.last() {
                        self.record.cursor = last.path.clone();
                    }
                }
                Listed::Unlistable(failed) => self.record_failure(failed),
            }
            self.walk_progress("files found", &mut saved_at).await?;
        }
        self.end_walk().await
    }
}
