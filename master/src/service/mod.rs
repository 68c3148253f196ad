//! gRPC edges of the master: decode requests, call the masters, map errors
//! to status codes, and decide who may call what (`access`). No other
//! logic lives here beyond argument checking.

pub mod access;
pub mod block;
pub mod file_system;
pub mod job;
pub mod leader_gate;
pub mod meta;

use alluxio_common::{AlluxioError, AlluxioPath};

pub(crate) fn path(raw: &str) -> Result<AlluxioPath, AlluxioError> {
    AlluxioPath::new(raw)
}
