//! An in-process cluster: a master and workers on free ports, each worker
//! with its own tiers, and a client `FileSystem`. Authentication is on, as
//! in production: the master creates the cluster key in the cluster's
//! directory, and the client mints tokens from it as the test's user.

use alluxio_client::{FileSystem, MasterClient};
use alluxio_common::auth::{AuthChannel, ClusterKey, Credentials, Role};
use alluxio_common::config::{AlluxioConfig, TierConfig, TierDirConfig};
use alluxio_common::units::ByteSize;
use alluxio_master::MasterServer;
use alluxio_proto::grpc::block_worker_client::BlockWorkerClient;
use alluxio_worker::WorkerServer;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tonic::transport::Endpoint;

pub const MIB: u64 = 1 << 20;

pub struct Cluster {
    pub master: Option<MasterServer>,
    pub workers: Vec<Option<WorkerServer>>,
    pub config: AlluxioConfig,
    pub client: MasterClient,
    pub fs: FileSystem,
    pub ufs: PathBuf,
    pub dir: tempfile::TempDir,
    /// Where the workers' MEM tiers are when not in `dir` (see
    /// [`start_in_memory`]).
    pub mem_root: Option<tempfile::TempDir>,
}

pub fn config(dir: &std::path::Path) -> AlluxioConfig {
    let mut c = AlluxioConfig::default();
    c.master.rpc_port = 0;
    c.master.web_port = 0;
    c.master.journal.dir = dir.join("journal");
    c.security.key_file = dir.join("security/cluster.key");
    c.master.mount_table_root_ufs = format!("file://{}", dir.join("ufs").display());
    // Tests mount temporary directories wherever they are.
    c.master.allowed_local_ufs_roots = vec!["/".into()];
    c.worker.rpc_port = 0;
    c.worker.web_port = 0;
    c.worker.data_port = 0;
    c.worker.heartbeat_interval.0 = Duration::from_millis(50);
    c.user.block_size = ByteSize(MIB);
    c
}

/// `quota` bytes of MEM per worker.
pub async fn start(workers: usize, quota: u64, tweak: impl FnOnce(&mut AlluxioConfig)) -> Cluster {
    start_with_mem_root(workers, quota, None, tweak).await
}

/// Like [`start`], with the workers' MEM tiers in memory (a tmpfs, as a
/// deployment's MEM tier is: the operator's `emptyDir` of medium Memory,
/// Alluxio's ramdisk) rather than in the temporary directory's file
/// system. For benchmarks: page-cache writes to a disk's file system cost
/// several times the CPU of tmpfs writes.
pub async fn start_in_memory(
    workers: usize,
    quota: u64,
    tweak: impl FnOnce(&mut AlluxioConfig),
) -> Cluster {
    start_with_mem_root(workers, quota, Some(crate::memory_dir()), tweak).await
}

async fn start_with_mem_root(
    workers: usize,
    quota: u64,
    mem_root: Option<tempfile::TempDir>,
    tweak: impl FnOnce(&mut AlluxioConfig),
) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    tweak(&mut c);
    let master = MasterServer::start(&c).await.unwrap();
    let client = connect(&master, &c).await;
    let fs = FileSystem::with_config(client.clone(), &c);
    let mut cluster = Cluster {
        master: Some(master),
        workers: Vec::new(),
        config: c,
        client,
        fs,
        ufs: dir.path().join("ufs"),
        dir,
        mem_root,
    };
    for i in 0..workers {
        let w = cluster.start_worker(i, quota).await;
        cluster.workers.push(Some(w));
    }
    cluster.wait_for_workers(workers).await;
    cluster
}

/// A client of `master` with the credentials `config` gives a client.
async fn connect(master: &MasterServer, config: &AlluxioConfig) -> MasterClient {
    let credentials = Credentials::for_client(config).unwrap();
    MasterClient::connect(
        &master.rpc_addr.to_string(),
        Duration::from_secs(10),
        credentials,
    )
    .await
    .unwrap()
}

impl Cluster {
    /// The cluster key (the master created it).
    pub fn key(&self) -> ClusterKey {
        ClusterKey::load(&self.config.security.key_file).unwrap()
    }

    /// A token for `user` with `role`, valid for an hour.
    pub fn token(&self, user: &str, role: Role) -> String {
        self.key()
            .issue(user, &[user.to_string()], role, Duration::from_secs(3600))
    }

    /// Credentials of `user` with `role`.
    pub fn credentials(&self, user: &str, role: Role) -> Credentials {
        Credentials::token(&self.token(user, role))
    }

    /// Creates directory `path` (and its parents) as the superuser and
    /// gives it to `user` (group of the same name), as an administrator
    /// gives a user a home.
    pub async fn give_directory(&self, path: &str, user: &str) {
        self.client
            .create_directory(alluxio_proto::grpc::CreateDirectoryRequest {
                path: path.into(),
                recursive: true,
                ..Default::default()
            })
            .await
            .unwrap();
        self.client
            .set_attribute(alluxio_proto::grpc::SetAttributeRequest {
                path: path.into(),
                owner: Some(user.into()),
                group: Some(user.into()),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    /// A raw gRPC client of worker `i` calling as `credentials` (no
    /// project client code between a test and the wire).
    pub async fn raw_worker(
        &self,
        i: usize,
        credentials: &Credentials,
    ) -> BlockWorkerClient<AuthChannel> {
        let channel = Endpoint::from_shared(format!("http://{}", self.worker(i).rpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        BlockWorkerClient::new(credentials.attach(channel))
    }

    /// A raw gRPC channel to the master calling as `credentials`.
    pub async fn raw_master_channel(&self, credentials: &Credentials) -> AuthChannel {
        let channel = Endpoint::from_shared(format!("http://{}", self.master().rpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        credentials.attach(channel)
    }

    pub fn worker_config(&self, i: usize, quota: u64) -> AlluxioConfig {
        let mut c = self.config.clone();
        c.worker.data_dir = self.dir.path().join(format!("worker-{i}"));
        if c.worker.tiers.is_empty() {
            let mem_root = self.mem_root.as_ref().unwrap_or(&self.dir).path();
            c.worker.tiers = vec![TierConfig {
                alias: "MEM".into(),
                dirs: vec![TierDirConfig {
                    path: mem_root.join(format!("worker-{i}")).join("mem"),
                    quota: ByteSize(quota),
                }],
            }];
        }
        c
    }

    pub async fn start_worker(&self, i: usize, quota: u64) -> WorkerServer {
        let c = self.worker_config(i, quota);
        WorkerServer::start(&c, &self.master().rpc_addr.to_string())
            .await
            .unwrap()
    }

    pub async fn wait_for_workers(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let live = self
                .client
                .worker_infos()
                .await
                .unwrap()
                .iter()
                .filter(|w| w.state == "LIVE")
                .count();
            if live >= n {
                return;
            }
            assert!(Instant::now() < deadline, "workers did not register");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn master(&self) -> &MasterServer {
        self.master.as_ref().expect("master running")
    }

    /// How many calls of `method` (e.g. `GetStatus`) the master has
    /// answered, from its own metrics.
    pub async fn master_rpc_calls(&self, method: &str) -> u64 {
        master_rpc_calls(&self.master().web_addr.to_string(), method).await
    }

    /// Stops the master and starts it again on the same journal and ports
    /// (the config must have fixed ports for workers to find it again).
    pub async fn restart_master(&mut self) {
        if let Some(m) = self.master.take() {
            m.shutdown().await;
        }
        let master = MasterServer::start(&self.config).await.unwrap();
        self.client = connect(&master, &self.config).await;
        self.fs = FileSystem::with_config(self.client.clone(), &self.config);
        self.master = Some(master);
    }

    pub fn worker(&self, i: usize) -> &WorkerServer {
        self.workers[i].as_ref().unwrap()
    }

    /// Sum of a worker counter over all running workers.
    pub fn total(&self, f: impl Fn(&WorkerServer) -> u64) -> u64 {
        self.workers.iter().flatten().map(f).sum()
    }

    /// Waits until the master has seen every block of `path` on some worker
    /// (heartbeats are asynchronous).
    pub async fn wait_cached(&self, path: &str, percent: u32) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let info = self.client.get_status(path, None).await.unwrap();
            if info.in_alluxio_percentage == percent {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{path} never reached {percent}% cached (at {}%)",
                info.in_alluxio_percentage
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// How many calls of `method` the master whose web port is `web` has
/// answered, from its own metrics.
pub async fn master_rpc_calls(web: &str, method: &str) -> u64 {
    let (_, metrics) = crate::http_get::http_get(web, "/metrics")
        .await
        .expect("the master's /metrics");
    let prefix = format!("alluxio_master_rpc_duration_seconds_count{{method=\"{method}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|n| n.trim().parse().expect("a count"))
        .unwrap_or(0)
}

pub fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed as usize * 7) % 251) as u8)
        .collect()
}
