//! The alluxio-rs CSI driver (`alluxio-csi`): cached volumes for pods.
//! A volume is a directory of the Alluxio namespace; a node stages it
//! with one FUSE daemon and publishes it into pods with bind mounts.
//!
//! `server/` is the gRPC side (Identity, Controller, Node), `fuse_daemons`
//! keeps the FUSE daemons alive across plugin restarts and replaces dead
//! ones, `mounts` reads and makes mounts, `paths` checks the paths the CO
//! names, `metrics` counts what happens.

pub mod fuse_daemons;
pub mod metrics;
pub mod mounts;
pub mod paths;
pub mod server;
