//! The alluxio-rs worker: caches blocks in tiers and serves them.
//!
//! - `block_store`: blocks on MEM/SSD/HDD directories, eviction, checksums;
//! - UFS clients per mount come from the client's `MountResolver`;
//! - `read_through`: fetching missing blocks from the UFS, one fetch per block;
//!   `into_cache`: a load's fetch, written into the cache as it arrives;
//! - `service`: the `BlockWorker` gRPC service;
//! - `heartbeat`: registration and heartbeats with the master;
//! - `persist`: writing ASYNC_THROUGH files to the UFS when the master asks;
//! - `metrics`; `server`: process lifecycle.

pub mod block_store;
pub mod data_server;
pub mod heartbeat;
mod into_cache;
pub mod metrics;
pub mod persist;
mod piece;
pub mod read_through;
pub mod server;
pub mod service;

pub use server::{WorkerError, WorkerServer};
