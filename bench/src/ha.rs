//! Fault-tolerant masters: failover time after kill -9 of the leader
//! process, and what three masters cost against one master in the same run
//! (create+complete with group commit, getStatus with linearizable reads).

use crate::master::{create_complete_rate, create_files, rate};
use crate::report::{percentile, write, Bar};
use alluxio_client::MasterClient;
use alluxio_common::auth::Credentials;
use alluxio_common::config::AlluxioConfig;
use alluxio_master::MasterServer;
use alluxio_proto::grpc::CreateDirectoryRequest;
use alluxio_testkit::quorum::{master_command, quorum_configs, Quorum};
use serde_json::json;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn client_of(address: &str, c: &AlluxioConfig) -> MasterClient {
    let credentials = Credentials::for_client(c).expect("credentials");
    MasterClient::connect(address, Duration::from_secs(30), credentials)
        .await
        .expect("connect")
}

async fn mkdir(client: &MasterClient, path: String) -> alluxio_common::Result<()> {
    client
        .create_directory(CreateDirectoryRequest {
            path,
            recursive: true,
            ..Default::default()
        })
        .await
        .map(|_| ())
}

fn spawn(alluxio: &Path, c: &AlluxioConfig, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    master_command(alluxio, c)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start a master")
}

/// kill -9 of the leader process, `kills` times: seconds until the first
/// write acknowledged through the client that knows all three masters.
pub async fn failover(out: &Path, kills: usize, alluxio: &Path) {
    alluxio_common::rpc::set_failover_timeout(Duration::from_secs(60));
    let dir = tempfile::tempdir().expect("tempdir");
    let configs = quorum_configs(dir.path(), 3);
    let logs: Vec<_> = (0..3)
        .map(|i| dir.path().join(format!("master{i}.log")))
        .collect();
    let mut children: Vec<Child> = Vec::new();
    for (c, log) in configs.iter().zip(&logs) {
        children.push(spawn(alluxio, c, log));
        // The first one creates the cluster key the others load.
        alluxio_testkit::eventually("the cluster key", Duration::from_secs(30), || async {
            c.security.key_file.exists().then_some(())
        })
        .await;
    }
    let client = client_of(&configs[0].master_address(), &configs[0]).await;
    mkdir(&client, "/failover".into())
        .await
        .expect("first write");
    let mut seconds = Vec::new();
    for kill in 0..kills {
        let leader = alluxio_testkit::eventually("a leader", Duration::from_secs(60), || async {
            let info = client.quorum_info().await.ok()?;
            configs.iter().position(|c| {
                format!("{}:{}", c.master.hostname, c.master.rpc_port) == info.leader_rpc_address
            })
        })
        .await;
        // Writes keep flowing until the kill.
        mkdir(&client, format!("/failover/k{kill}/before"))
            .await
            .expect("write before");
        alluxio_testkit::signal(children[leader].id(), libc::SIGKILL);
        let killed_at = Instant::now();
        let _ = children[leader].wait();
        let mut n = 0;
        loop {
            n += 1;
            if mkdir(&client, format!("/failover/k{kill}/after{n}"))
                .await
                .is_ok()
            {
                break;
            }
        }
        let took = killed_at.elapsed().as_secs_f64();
        println!("kill {kill}: first acknowledged write after {took:.3} s");
        seconds.push(took);
        children[leader] = spawn(alluxio, &configs[leader], &logs[leader]);
        // Back in the quorum (and past its vote delay) before the next kill.
        alluxio_testkit::eventually(
            "the killed master to rejoin",
            Duration::from_secs(60),
            || async {
                let info = client.quorum_info().await.ok()?;
                (info
                    .members
                    .iter()
                    .all(|m| m.role == "LEADER" || m.role == "FOLLOWER"))
                .then_some(())
            },
        )
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    for mut child in children {
        alluxio_testkit::signal(child.id(), libc::SIGTERM);
        let _ = child.wait();
    }
    let mut sorted = seconds.clone();
    sorted.sort_by(f64::total_cmp);
    let (p50, max) = (percentile(&sorted, 0.5), *sorted.last().unwrap_or(&0.0));
    write(
        out,
        "ha_failover",
        "seconds from kill -9 of the leader to the next acknowledged write",
        &[
            Bar {
                label: "p50".into(),
                value: p50,
            },
            Bar {
                label: "max".into(),
                value: max,
            },
            Bar {
                label: "Alluxio: election timeout alone (min)".into(),
                value: 10.0,
            },
        ],
        json!({
            "kills": kills,
            "seconds": seconds,
            "p50_s": p50,
            "max_s": max,
            "election_timeout_ms": configs[0].master.embedded_journal.election_timeout.0.as_millis() as u64,
            "target_p50_s": 2.0,
            "target_max_s": 5.0,
            "meets_target": p50 < 2.0 && max < 5.0,
        }),
    );
}

/// 16 clients of the master(s) at `address`.
async fn clients(address: &str, c: &AlluxioConfig) -> Arc<Vec<MasterClient>> {
    let mut out = Vec::new();
    for _ in 0..16 {
        out.push(client_of(address, c).await);
    }
    Arc::new(out)
}

async fn get_status_rate(conns: Arc<Vec<MasterClient>>, seconds: f64) -> f64 {
    rate(16, seconds, move |t, i| {
        let c = conns.clone();
        async move {
            let path = format!("/bench/f{}", (i * 16 + t as u64) % 1000);
            c[t].get_status(&path, None).await.expect("getStatus");
        }
    })
    .await
}

/// Three masters against one, in the same run, fsync on.
pub async fn throughput(out: &Path, seconds: f64) {
    let single_dir = tempfile::tempdir().expect("tempdir");
    let single_cfg = crate::master::config(single_dir.path(), true);
    let single = MasterServer::start(&single_cfg).await.expect("master");
    let single_conns = clients(&single.rpc_addr.to_string(), &single_cfg).await;
    let quorum = Quorum::start(3, |_| {}).await;
    let ha_cfg = quorum.client_config();
    let ha_conns = clients(&ha_cfg.master_address(), &ha_cfg).await;
    for conns in [&single_conns, &ha_conns] {
        mkdir(&conns[0], "/j".into()).await.expect("mkdir");
        create_files(&conns[0], 1000).await;
    }

    let mut writes = (Vec::new(), Vec::new());
    let mut reads = (Vec::new(), Vec::new());
    // Alternate, so that drift in machine speed hits both.
    for _ in 0..2 {
        writes
            .0
            .push(create_complete_rate(single_conns.clone(), seconds / 2.0).await);
        writes
            .1
            .push(create_complete_rate(ha_conns.clone(), seconds / 2.0).await);
    }
    for _ in 0..2 {
        reads
            .0
            .push(get_status_rate(single_conns.clone(), seconds / 2.0).await);
        reads
            .1
            .push(get_status_rate(ha_conns.clone(), seconds / 2.0).await);
    }
    single.shutdown().await;
    for m in quorum.masters.into_iter().flatten() {
        m.shutdown().await;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (w1, w3) = (mean(&writes.0), mean(&writes.1));
    let (r1, r3) = (mean(&reads.0), mean(&reads.1));
    write(
        out,
        "ha_throughput",
        "operations per second",
        &[
            Bar {
                label: "create+complete, 3 masters".into(),
                value: w3,
            },
            Bar {
                label: "create+complete, 1 master".into(),
                value: w1,
            },
            Bar {
                label: "getStatus, 3 masters".into(),
                value: r3,
            },
            Bar {
                label: "getStatus, 1 master".into(),
                value: r1,
            },
        ],
        json!({
            "create_complete_pairs_per_s": {"three_masters": w3, "one_master": w1, "phases": [writes.1, writes.0]},
            "get_status_per_s": {"three_masters": r3, "one_master": r1, "phases": [reads.1, reads.0]},
            "write_ratio": w3 / w1,
            "read_ratio": r3 / r1,
            "target_write_ratio": 0.5,
            "target_read_ratio": 0.7,
            "meets_target": w3 / w1 >= 0.5 && r3 / r1 >= 0.7,
        }),
    );
}
