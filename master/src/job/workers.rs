//! How the master reaches workers for load jobs: one gRPC channel per
//! worker (the master calls as the superuser, so no capability is needed),
//! and where each block goes. Placement is rendezvous hashing of block id
//! and worker id: the same blocks go to the same workers as long as the
//! workers are the same, so a job resumed after a master restart asks the
//! worker that already cached a block (which answers "cached already")
//! instead of fetching it a second time elsewhere.

use alluxio_common::auth::{AuthChannel, Credentials};
use alluxio_proto::grpc::block_worker_client::BlockWorkerClient;
use alluxio_proto::grpc::{CacheBlockRequest, CacheBlockResponse, WorkerInfo};
use std::collections::HashMap;
use std::sync::Mutex;

/// A live worker a job may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub worker_id: u64,
    pub address: String,
}

impl Target {
    pub fn from_info(w: &WorkerInfo) -> Option<Target> {
        let a = w.address.as_ref()?;
        (w.state == "LIVE").then(|| Target {
            worker_id: w.worker_id,
            address: format!("{}:{}", a.host, a.rpc_port),
        })
    }
}

/// Workers in the order a block should try them: highest rendezvous
/// score first.
pub fn ranked_for_block(block_id: u64, workers: &[Target]) -> Vec<Target> {
    let mut ranked = workers.to_vec();
    ranked.sort_by_key(|w| std::cmp::Reverse(score(block_id, w.worker_id)));
    ranked
}

/// A well-mixed 64-bit hash of the pair (splitmix64 of a combination):
/// stable across processes and versions, unlike the standard hasher.
fn score(block_id: u64, worker_id: u64) -> u64 {
    let mut z = block_id ^ worker_id.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub struct WorkerClients {
    credentials: Credentials,
    channels: Mutex<HashMap<String, tonic::transport::Channel>>,
}

impl WorkerClients {
    pub fn new(credentials: Credentials) -> Self {
        WorkerClients {
            credentials,
            channels: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, address: &str) -> Result<BlockWorkerClient<AuthChannel>, String> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let channel = match channels.get(address) {
            Some(c) => c.clone(),
            None => {
                let endpoint = alluxio_common::rpc::endpoint(address)?;
                let c = alluxio_common::rpc::connect_lazy(&endpoint, self.credentials.tls());
                channels.insert(address.to_string(), c.clone());
                c
            }
        };
        Ok(BlockWorkerClient::new(self.credentials.attach(channel)))
    }

    /// Has the worker at `address` cache a block; the answer says whether
    /// it read it from the UFS and where it is cached.
    pub async fn cache_block(
        &self,
        address: &str,
        req: CacheBlockRequest,
    ) -> Result<CacheBlockResponse, String> {
        let mut client = self.client(address)?;
        let mut request = tonic::Request::new(req);
        request.set_timeout(alluxio_common::rpc::call_timeout());
        client
            .cache_block(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| format!("worker {address}: {}", s.message()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workers(n: u64) -> Vec<Target> {
        (1..=n)
            .map(|id| Target {
                worker_id: id,
                address: format!("w{id}:29999"),
            })
            .collect()
    }

    #[test]
    fn placement_is_stable_and_spreads_blocks_evenly() {
        let all = workers(3);
        let mut per_worker = HashMap::new();
        for block in 0..3000u64 {
            let first = ranked_for_block(block << 24, &all)[0].worker_id;
            assert_eq!(first, ranked_for_block(block << 24, &all)[0].worker_id);
            *per_worker.entry(first).or_insert(0) += 1;
        }
        for (worker, n) in per_worker {
            assert!((800..1200).contains(&n), "worker {worker} got {n} of 3000");
        }
    }

    #[test]
    fn losing_a_worker_moves_only_its_blocks() {
        let all = workers(4);
        let without_4: Vec<Target> = all[..3].to_vec();
        for block in 0..500u64 {
            let before = ranked_for_block(block, &all)[0].worker_id;
            let after = ranked_for_block(block, &without_4)[0].worker_id;
            if before != 4 {
                assert_eq!(
                    before, after,
                    "block {block} moved though its worker stayed"
                );
            }
        }
    }
}
