//! Client library of alluxio-rs.
//!
//! [`MasterClient`] is the typed gRPC client of the master (metadata, mount
//! table, workers, master info). [`FileSystem`] builds the user-facing
//! operations on it, including writing a file's bytes to the UFS for the
//! write types that persist data.

pub mod file_system;
pub mod master_client;

pub use file_system::FileSystem;
pub use master_client::MasterClient;
