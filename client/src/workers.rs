//! Which worker to use: block locations ordered by locality, and location
//! policies for blocks no worker holds yet (LOCAL_FIRST, ROUND_ROBIN,
//! MOST_AVAILABLE). Also keeps one gRPC channel and a few data-port
//! connections per worker.

use alluxio_common::auth::{AuthChannel, Credentials};
use alluxio_common::config::LocationPolicyConfig;
use alluxio_common::{AlluxioError, Result};
use alluxio_proto::grpc::block_worker_client::BlockWorkerClient;
use alluxio_proto::grpc::{BlockLocation, WorkerInfo};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use tonic::transport::Channel;

/// Where a block can be read from or written to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerRef {
    pub worker_id: u64,
    pub host: String,
    pub rpc_port: u32,
    /// 0 when the worker has no data port.
    pub data_port: u32,
}

impl WorkerRef {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.rpc_port)
    }

    /// `host:data_port`, when the worker has a data port.
    pub fn data_address(&self) -> Option<String> {
        (self.data_port != 0).then(|| format!("{}:{}", self.host, self.data_port))
    }
}

impl From<&BlockLocation> for WorkerRef {
    fn from(l: &BlockLocation) -> Self {
        WorkerRef {
            worker_id: l.worker_id,
            host: l.host.clone(),
            rpc_port: l.rpc_port,
            data_port: l.data_port,
        }
    }
}

impl From<&WorkerInfo> for WorkerRef {
    fn from(w: &WorkerInfo) -> Self {
        let a = w.address.clone().unwrap_or_default();
        WorkerRef {
            worker_id: w.worker_id,
            host: a.host,
            rpc_port: a.rpc_port,
            data_port: a.data_port,
        }
    }
}

pub struct WorkerPool {
    policy: LocationPolicyConfig,
    local_host: String,
    next: AtomicUsize,
    channels: Mutex<HashMap<String, Channel>>,
    credentials: Credentials,
    pub(crate) data: crate::data_port::DataConnections,
}

impl WorkerPool {
    /// Workers are called as `credentials`.
    pub fn new(policy: LocationPolicyConfig, local_host: String, credentials: Credentials) -> Self {
        WorkerPool {
            policy,
            local_host,
            next: AtomicUsize::new(0),
            channels: Mutex::new(HashMap::new()),
            data: crate::data_port::DataConnections::new(credentials.clone()),
            credentials,
        }
    }

    pub fn is_local(&self, w: &WorkerRef) -> bool {
        w.host == self.local_host
    }

    /// A client for the worker (connects lazily; channels are reused).
    pub fn client(&self, w: &WorkerRef) -> Result<BlockWorkerClient<AuthChannel>> {
        let address = w.address();
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let channel = match channels.get(&address) {
            Some(c) => c.clone(),
            None => {
                // No per-call deadline: a block upload lasts as long as its
                // writer takes; keepalives notice a worker that is gone.
                let endpoint = alluxio_common::rpc::endpoint(&address)
                    .map_err(|e| AlluxioError::InvalidArgument(format!("worker: {e}")))?
                    .initial_stream_window_size(Some(8 << 20))
                    .initial_connection_window_size(Some(16 << 20))
                    // Large frames: fewer syscalls and copies for block data.
                    .max_frame_size(Some((1 << 24) - 1));
                let c = alluxio_common::rpc::connect_lazy(&endpoint, self.credentials.tls());
                channels.insert(address, c.clone());
                c
            }
        };
        Ok(BlockWorkerClient::new(self.credentials.attach(channel))
            .max_decoding_message_size(alluxio_common::rpc::WORKER_MAX_MESSAGE))
    }

    /// Holders of a block, local ones first.
    pub fn order_locations(&self, locations: &[BlockLocation]) -> Vec<WorkerRef> {
        let mut refs: Vec<WorkerRef> = locations.iter().map(WorkerRef::from).collect();
        refs.sort_by_key(|w| !self.is_local(w));
        refs
    }

    /// Live workers in the order the policy prefers them.
    pub fn choose(&self, workers: &[WorkerInfo]) -> Vec<WorkerRef> {
        let mut live: Vec<&WorkerInfo> = workers.iter().filter(|w| w.state == "LIVE").collect();
        live.sort_by_key(|w| w.worker_id);
        if live.is_empty() {
            return Vec::new();
        }
        let available = |w: &WorkerInfo| -> u64 {
            w.tiers
                .iter()
                .map(|t| t.capacity_bytes.saturating_sub(t.used_bytes))
                .sum()
        };
        match self.policy {
            LocationPolicyConfig::LocalFirst => {
                live.sort_by_key(|w| {
                    (
                        !self.is_local(&WorkerRef::from(*w)),
                        std::cmp::Reverse(available(w)),
                    )
                });
            }
            LocationPolicyConfig::MostAvailable => {
                live.sort_by_key(|w| std::cmp::Reverse(available(w)))
            }
            LocationPolicyConfig::RoundRobin => {
                let start = self.next.fetch_add(1, Ordering::Relaxed) % live.len();
                live.rotate_left(start);
            }
        }
        live.into_iter().map(WorkerRef::from).collect()
    }
}
