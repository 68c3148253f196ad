//! Client library of alluxio-rs.
//!
//! [`MasterClient`] is the typed gRPC client of the master. [`ClientCore`]
//! holds what every part of the client shares (master client, worker pool,
//! cached live-worker list, mount resolver, settings). [`FileSystem`] is the user-facing facade over
//! it: metadata from the master, data from workers ([`FileReader`],
//! [`FileWriter`]), and the UFS directly when no worker can serve a block.
//!
//! Modules depend downward only: `file_system` -> `reader`/`writer`/
//! `local_file` -> `core` -> `workers`/`live_workers`/`mounts`/`master_client` ->
//! `data_port` -> `block`.

mod block;
pub mod core;
mod data_port;
pub mod file_system;
pub mod live_workers;
pub mod local_file;
pub mod master_client;
pub mod mounts;
pub mod reader;
pub mod workers;
pub mod writer;

pub use crate::core::{ClientCore, ClientSettings};
pub use file_system::{parse_read_type, parse_write_type, CreateOptions, FileSystem};
pub use local_file::LocalFile;
pub use master_client::MasterClient;
pub use mounts::MountResolver;
pub use reader::FileReader;
pub use writer::FileWriter;
