//! Three real `alluxio master` processes replicating their journal: kill -9
//! of the leader during concurrent creates, again and again. The client
//! that knows all three keeps going through every failover, no
//! acknowledged create is lost, and the masters end with the same state.
//! The CLI takes the three addresses and shows the quorum.

mod common;

use alluxio_client::MasterClient;
use alluxio_common::AlluxioError;
use alluxio_proto::grpc::CreateFileRequest;
use common::{free_port, MasterProcess};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Group {
    masters: Vec<MasterProcess>,
    address: String,
    /// Each master's Raft address.
    raft: Vec<String>,
}

fn start_group(dir: &std::path::Path) -> Group {
    let rpc: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let raft: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let list = |ports: &[u16]| {
        ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let (raft_list, rpc_list) = (list(&raft), list(&rpc));
    let masters = (0..3)
        .map(|i| {
            let flags = [
                format!("master.embedded_journal.addresses={raft_list}"),
                format!("master.embedded_journal.port={}", raft[i]),
                format!("master.rpc_addresses={rpc_list}"),
                "master.embedded_journal.election_timeout=500ms".to_string(),
                "master.embedded_journal.heartbeat_interval=100ms".to_string(),
            ];
            let extra: Vec<String> = flags
                .iter()
                .flat_map(|f| ["-D".to_string(), f.clone()])
                .collect();
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            MasterProcess::start_member(dir, &i.to_string(), rpc[i], &extra)
        })
        .collect();
    Group {
        masters,
        address: rpc_list,
        raft: raft.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
    }
}

impl Group {
    async fn client(&self) -> MasterClient {
        MasterClient::connect(
            &self.address,
            Duration::from_secs(10),
            self.masters[0].credentials(),
        )
        .await
        .unwrap()
    }

    /// The leader's index, as the masters themselves report it.
    async fn leader(&self) -> usize {
        alluxio_testkit::eventually("a leader", Duration::from_secs(30), || async {
            let info = self.client().await.quorum_info().await.ok()?;
            let leader = info.leader_rpc_address;
            self.masters.iter().position(|m| m.address() == leader)
        })
        .await
    }
}

#[test]
fn kill_9_of_the_leader_loses_no_acknowledged_create() {
    alluxio_common::rpc::set_failover_timeout(Duration::from_secs(30));
    let dir = tempfile::tempdir().unwrap();
    let mut group = start_group(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    for round in 0..3 {
        runtime.block_on(async {
            let client = group.client().await;
            let mut writers = Vec::new();
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            for w in 0..8 {
                let (client, acknowledged, stop) =
                    (client.clone(), acknowledged.clone(), stop.clone());
                writers.push(tokio::spawn(async move {
                    let mut i = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let path = format!("/round{round}/w{w}/f{i}");
                        i += 1;
                        let created = client
                            .create_file(CreateFileRequest {
                                path: path.clone(),
                                recursive: true,
                                ..Default::default()
                            })
                            .await;
                        match created {
                            Ok(_) => acknowledged.lock().unwrap().push(path),
                            // Applied by the old leader, acknowledgement lost
                            // with it, retried: it is there, which is fine.
                            Err(AlluxioError::AlreadyExists(_)) => {}
                            Err(e) => panic!("create {path} failed through a failover: {e}"),
                        }
                    }
                }));
            }
            let before = acknowledged.lock().unwrap().len();
            alluxio_testkit::eventually(
                "creates before the kill",
                Duration::from_secs(60),
                || async { (acknowledged.lock().unwrap().len() > before + 100).then_some(()) },
            )
            .await;
            let leader = group.leader().await;
            group.masters[leader].kill9();
            // The writers carry on with the new leader.
            let at_kill = acknowledged.lock().unwrap().len();
            alluxio_testkit::eventually(
                "creates after the kill",
                Duration::from_secs(60),
                || async { (acknowledged.lock().unwrap().len() > at_kill + 100).then_some(()) },
            )
            .await;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            for w in writers {
                w.await.unwrap();
            }
            group.masters[leader].restart();
        });
    }

    runtime.block_on(async {
        let client = group.client().await;
        let acknowledged = acknowledged.lock().unwrap().clone();
        assert!(acknowledged.len() > 600, "{}", acknowledged.len());
        for path in &acknowledged {
            client
                .get_status(path, Some(-1))
                .await
                .unwrap_or_else(|e| panic!("acknowledged {path} is gone: {e}"));
        }
        // Every master applied the same log.
        alluxio_testkit::eventually("masters to converge", Duration::from_secs(30), || async {
            let mut applied = Vec::new();
            for m in &group.masters {
                let only =
                    MasterClient::connect(&m.address(), Duration::from_secs(5), m.credentials())
                        .await
                        .ok()?;
                applied.push(only.quorum_info().await.ok()?.applied_index);
            }
            applied.iter().all(|a| *a == applied[0]).then_some(())
        })
        .await;
    });

    // The CLI with all three addresses, alluxio:// style too.
    let cli = |args: &[&str]| {
        let out = group.masters[0]
            .command()
            .args(["--master", &format!("alluxio://{}/", group.address)])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(cli(&["fs", "ls", "/"]).contains("round2"));
    let quorum = cli(&["fsadmin", "journal", "quorum", "info"]);
    assert!(quorum.contains("Quorum size\t: 3"), "{quorum}");
    assert_eq!(quorum.matches("LEADER").count(), 1, "{quorum}");
    assert_eq!(quorum.matches("FOLLOWER").count(), 2, "{quorum}");
    let report = cli(&["fsadmin", "report"]);
    assert!(
        report.contains("fault tolerant, 3 masters (3 available)"),
        "{report}"
    );

    // Leadership handed to a follower the administrator names.
    let target = (runtime.block_on(group.leader()) + 1) % 3;
    let moved = cli(&[
        "fsadmin",
        "journal",
        "quorum",
        "elect",
        "--address",
        &group.raft[target],
    ]);
    assert!(moved.contains("Transferred leadership"), "{moved}");
    assert_eq!(runtime.block_on(group.leader()), target);
    assert!(cli(&["fs", "ls", "/"]).contains("round2"));
}
