//! Permission checks against the current namespace, for the gRPC edge to
//! call before an operation (`service::access` decides who is checked at
//! all). The check and the operation take the namespace lock separately:
//! a permission changed between the two is seen by the next call.

use super::FileSystemMaster;
use crate::permission::{check, Need, Subject};
use alluxio_common::auth::Identity;
use alluxio_common::{AlluxioError, AlluxioPath, Result};

impl FileSystemMaster {
    /// Whether `who` may do what `need` says at `path` (PermissionDenied
    /// with the reason if not).
    pub fn check_permission(&self, who: &Identity, path: &AlluxioPath, need: Need) -> Result<()> {
        let state = self.read_state();
        let subject = Subject {
            user: &who.user,
            groups: &who.groups,
        };
        check(&state.tree, path, &subject, need)
            .map_err(|denied| AlluxioError::PermissionDenied(denied.0))
    }
}
