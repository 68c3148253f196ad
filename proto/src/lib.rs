//! Generated protobuf messages and gRPC services of alluxio-rs.
//!
//! `grpc` holds what travels between processes (master, workers, clients);
//! `journal` holds the records the master writes to its write-ahead log and
//! checkpoints; `raft` carries the fault-tolerant masters' Raft messages;
//! `csi` is the Container Storage Interface v1 the CSI driver
//! serves. All are plain prost types; behaviour lives in other crates.

#![allow(clippy::all, clippy::pedantic)]

pub mod grpc {
    tonic::include_proto!("alluxio.grpc");
}

pub mod journal {
    tonic::include_proto!("alluxio.journal");
}

pub mod raft {
    tonic::include_proto!("alluxio.raft");
}

pub mod csi {
    tonic::include_proto!("csi.v1");
}
