//! An in-process master on free ports with a temporary journal and a
//! local-directory root UFS, reached through the real gRPC client.

#![allow(dead_code)]

pub mod namespace_model;

use alluxio_client::MasterClient;
use alluxio_common::config::AlluxioConfig;
use alluxio_master::MasterServer;
use std::path::PathBuf;
use std::time::Duration;

pub struct TestMaster {
    pub server: Option<MasterServer>,
    pub client: MasterClient,
    pub config: AlluxioConfig,
    pub ufs: PathBuf,
    pub dir: tempfile::TempDir,
}

pub fn config(dir: &std::path::Path) -> AlluxioConfig {
    let mut c = AlluxioConfig::default();
    c.master.hostname = "127.0.0.1".to_string();
    c.master.rpc_port = 0;
    c.master.web_port = 0;
    c.master.journal.dir = dir.join("journal");
    c.security.key_file = dir.join("security/cluster.key");
    c.master.mount_table_root_ufs = format!("file://{}", dir.join("ufs").display());
    // Tests mount temporary directories wherever they are.
    c.master.allowed_local_ufs_roots = vec!["/".into()];
    c
}

pub async fn start(tweak: impl FnOnce(&mut AlluxioConfig)) -> TestMaster {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    tweak(&mut c);
    let server = MasterServer::start(&c).await.unwrap();
    let client = connect(&server, &c).await;
    TestMaster {
        server: Some(server),
        client,
        config: c,
        ufs: dir.path().join("ufs"),
        dir,
    }
}

/// A recursive listing of `path` as a restart must leave it: everything
/// but the capabilities, which a restarted master signs anew.
pub async fn durable_listing(
    client: &MasterClient,
    path: &str,
) -> Vec<alluxio_proto::grpc::FileInfo> {
    let mut infos = client.list_status(path, true, Some(-1)).await.unwrap();
    infos.iter_mut().for_each(|i| i.capability.clear());
    infos
}

/// A client of `server` with the credentials a client of `config` has
/// (tokens minted from the cluster key, as the test's user).
pub async fn connect(server: &MasterServer, config: &AlluxioConfig) -> MasterClient {
    let credentials = alluxio_common::auth::Credentials::for_client(config).unwrap();
    MasterClient::connect(
        &server.rpc_addr.to_string(),
        Duration::from_secs(10),
        credentials,
    )
    .await
    .unwrap()
}

impl TestMaster {
    /// A client calling as `user` with `role`, with a token minted from the
    /// cluster key.
    pub async fn client_as(&self, user: &str, role: alluxio_common::auth::Role) -> MasterClient {
        let key = alluxio_common::auth::ClusterKey::load(&self.config.security.key_file).unwrap();
        let credentials = alluxio_common::auth::Credentials::from_key(
            key,
            user,
            &[user.to_string()],
            role,
            Duration::from_secs(3600),
        );
        let address = self.server.as_ref().unwrap().rpc_addr.to_string();
        MasterClient::connect(&address, Duration::from_secs(10), credentials)
            .await
            .unwrap()
    }

    /// Stops the master and starts a new one on the same journal.
    pub async fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        let server = MasterServer::start(&self.config).await.unwrap();
        self.client = connect(&server, &self.config).await;
        self.server = Some(server);
    }

    pub fn web(&self) -> String {
        self.server.as_ref().unwrap().web_addr.to_string()
    }

    /// The journal's last sequence number: unchanged means no state change.
    pub fn last_sequence(&self) -> u64 {
        self.server.as_ref().unwrap().fs.journal().last_sequence()
    }
}

/// A plain HTTP GET over a TCP socket (no client library needed).
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}
