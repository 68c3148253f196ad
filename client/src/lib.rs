//! Client library of alluxio-rs.
//!
//! [`MasterClient`] is the typed gRPC client of the master. [`FileSystem`]
//! is the user-facing API: metadata from the master, data from workers
//! ([`FileReader`], [`FileWriter`]), and the UFS directly when no worker can
//! serve a block.

mod data_port;
pub mod file_system;
pub mod local_file;
pub mod master_client;
pub mod reader;
pub mod workers;
pub mod writer;

pub use file_system::{parse_read_type, parse_write_type, CreateOptions, FileSystem};
pub use local_file::LocalFile;
pub use master_client::MasterClient;
pub use reader::FileReader;
pub use writer::FileWriter;
