//! Fault-tolerant masters in one process: a Raft group of three (or five)
//! masters on 127.0.0.1, each with its own journal directory, sharing the
//! cluster key and the root UFS directory as real masters share a Secret
//! and a store. Masters can be stopped and restarted on the same ports.

use crate::free_port;
use alluxio_client::MasterClient;
use alluxio_common::auth::Credentials;
use alluxio_common::config::AlluxioConfig;
use alluxio_master::MasterServer;
use std::time::Duration;

pub struct Quorum {
    pub masters: Vec<Option<MasterServer>>,
    pub configs: Vec<AlluxioConfig>,
    pub dir: tempfile::TempDir,
}

/// How long a client follows failovers in these tests: long enough for an
/// election on a busy 2-core machine.
pub fn allow_slow_failovers() {
    alluxio_common::rpc::set_failover_timeout(Duration::from_secs(20));
}

/// Creates a directory (and its parents) through `client`.
pub async fn mkdir(client: &MasterClient, path: &str) -> alluxio_common::Result<()> {
    client
        .create_directory(alluxio_proto::grpc::CreateDirectoryRequest {
            path: path.to_string(),
            recursive: true,
            ..Default::default()
        })
        .await
        .map(|_| ())
}

/// Configurations of `n` masters forming one group, on fresh ports.
pub fn quorum_configs(dir: &std::path::Path, n: usize) -> Vec<AlluxioConfig> {
    let port = || free_port().expect("a free port");
    let ports: Vec<(u16, u16, u16)> = (0..n).map(|_| (port(), port(), port())).collect();
    let raft: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{}", p.2)).collect();
    let rpc: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{}", p.0)).collect();
    ports
        .iter()
        .enumerate()
        .map(|(i, (rpc_port, web_port, raft_port))| {
            let mut c = crate::cluster::config(dir);
            c.master.hostname = "127.0.0.1".to_string();
            c.master.rpc_port = *rpc_port;
            c.master.web_port = *web_port;
            c.master.journal.dir = dir.join(format!("journal-{i}"));
            c.master.embedded_journal.port = *raft_port;
            c.master.embedded_journal.addresses = raft.clone();
            c.master.embedded_journal.election_timeout.0 = Duration::from_millis(500);
            c.master.embedded_journal.heartbeat_interval.0 = Duration::from_millis(100);
            c.master.rpc_addresses = rpc.clone();
            c
        })
        .collect()
}

impl Quorum {
    /// Starts `n` masters (the first creates the cluster key) and waits
    /// until one of them leads.
    pub async fn start(n: usize, tweak: impl Fn(&mut AlluxioConfig)) -> Quorum {
        let dir = tempfile::tempdir().unwrap();
        let mut configs = quorum_configs(dir.path(), n);
        configs.iter_mut().for_each(&tweak);
        let mut masters = Vec::new();
        for c in &configs {
            masters.push(Some(MasterServer::start(c).await.unwrap()));
        }
        let q = Quorum {
            masters,
            configs,
            dir,
        };
        q.wait_for_leader().await;
        q
    }

    /// What a client of the group is configured with.
    pub fn client_config(&self) -> AlluxioConfig {
        self.configs[0].clone()
    }

    /// A client that knows every master, as the test's user.
    pub async fn client(&self) -> MasterClient {
        let c = self.client_config();
        let credentials = Credentials::for_client(&c).unwrap();
        MasterClient::connect(&c.master_address(), Duration::from_secs(10), credentials)
            .await
            .unwrap()
    }

    /// The index of the serving leader, once there is one (and it has
    /// the namespace's root).
    pub async fn wait_for_leader(&self) -> usize {
        crate::eventually("a leader", Duration::from_secs(30), || async {
            self.masters.iter().position(|m| {
                m.as_ref()
                    .is_some_and(|m| m.fs.is_leader() && m.fs.read_state().tree.root().is_some())
            })
        })
        .await
    }

    pub fn master(&self, i: usize) -> &MasterServer {
        self.masters[i].as_ref().expect("master is running")
    }

    pub async fn stop(&mut self, i: usize) {
        if let Some(m) = self.masters[i].take() {
            m.shutdown().await;
        }
    }

    pub async fn restart(&mut self, i: usize) {
        self.stop(i).await;
        self.masters[i] = Some(MasterServer::start(&self.configs[i]).await.unwrap());
    }

    /// Starts one more master, configured with every master so far (the
    /// newest master's list) and itself (as a user adding a master would configure it), which joins
    /// the running group; returns its index.
    pub async fn add_master(&mut self) -> usize {
        let i = self.configs.len();
        let mut c = quorum_configs(self.dir.path(), 1).remove(0);
        c.master.journal.dir = self.dir.path().join(format!("journal-{i}"));
        let own_raft = format!("127.0.0.1:{}", c.master.embedded_journal.port);
        let own_rpc = format!("127.0.0.1:{}", c.master.rpc_port);
        let newest = &self.configs[i - 1].master;
        c.master.embedded_journal.addresses = newest.embedded_journal.addresses.clone();
        c.master.embedded_journal.addresses.push(own_raft);
        c.master.rpc_addresses = newest.rpc_addresses.clone();
        c.master.rpc_addresses.push(own_rpc);
        self.masters
            .push(Some(MasterServer::start(&c).await.unwrap()));
        self.configs.push(c);
        i
    }

    /// The Raft address of master `i`.
    pub fn raft_address(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.configs[i].master.embedded_journal.port)
    }

    /// Waits until every running master has applied the same journal
    /// sequence, and returns it.
    pub async fn wait_converged(&self) -> u64 {
        crate::eventually("masters to converge", Duration::from_secs(30), || async {
            let seqs: Vec<u64> = self
                .masters
                .iter()
                .flatten()
                .map(|m| m.fs.journal().last_sequence())
                .collect();
            let first = *seqs.first()?;
            seqs.iter().all(|s| *s == first).then_some(first)
        })
        .await
    }
}

/// The arguments of `alluxio master` with every setting of `c` that a
/// member of a group needs, as flags.
pub fn master_args(c: &AlluxioConfig) -> Vec<String> {
    let mc = &c.master;
    let ej = &mc.embedded_journal;
    let mut args: Vec<String> = vec![
        "master".into(),
        "--hostname".into(),
        mc.hostname.clone(),
        "--port".into(),
        mc.rpc_port.to_string(),
        "--web-port".into(),
        mc.web_port.to_string(),
        "--journal-dir".into(),
        mc.journal.dir.display().to_string(),
        "--root-ufs".into(),
        mc.mount_table_root_ufs.clone(),
    ];
    let flags = [
        format!(
            "master.embedded_journal.addresses={}",
            ej.addresses.join(",")
        ),
        format!("master.embedded_journal.port={}", ej.port),
        format!("master.rpc_addresses={}", mc.rpc_addresses.join(",")),
        format!(
            "master.embedded_journal.election_timeout={}ms",
            ej.election_timeout.0.as_millis()
        ),
        format!(
            "master.embedded_journal.heartbeat_interval={}ms",
            ej.heartbeat_interval.0.as_millis()
        ),
        format!("master.journal.fsync={}", mc.journal.fsync),
        format!("security.key_file={}", c.security.key_file.display()),
    ];
    for f in flags {
        args.push("-D".into());
        args.push(f);
    }
    args
}

/// `alluxio master` (the binary at `alluxio`) as member `c` of a group.
pub fn master_command(alluxio: &std::path::Path, c: &AlluxioConfig) -> std::process::Command {
    let mut cmd = std::process::Command::new(alluxio);
    cmd.args(master_args(c));
    cmd
}
