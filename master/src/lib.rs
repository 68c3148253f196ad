//! The alluxio-rs master: the single source of metadata.
//!
//! - `inode`, `mount_table`: the in-memory namespace (plain data);
//! - `state`: both together, changed only by `MasterState::apply`;
//! - `journal`: write-ahead log, group commit, checkpoints, recovery;
//! - `raft`: fault-tolerant mode, the journal replicated across masters;
//! - `fs_master`, `sync`, `ttl`: the file-system operations;
//! - `block_master`: workers and block locations (soft state);
//! - `permission`: POSIX permission checks over the tree (pure);
//! - `service`: the gRPC edges; `metrics`; `server`: process lifecycle.

pub mod block_master;
pub mod fs_master;
pub mod inode;
pub mod job;
pub mod journal;
pub mod metrics;
pub mod mount_table;
pub mod permission;
pub mod raft;
pub mod server;
pub mod service;
pub mod state;
mod sync;
mod ttl;

pub use server::{MasterError, MasterServer};
