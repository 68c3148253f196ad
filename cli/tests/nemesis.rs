//! Three `alluxio master` processes, each in its own network namespace
//! (addresses that exist only inside the namespaces this test creates),
//! under a nemesis that in turn isolates the leader from the other masters
//! (blackhole routes both ways: clients still reach it, so a deposed
//! leader that kept answering would be seen) and kills it with kill -9.
//! Meanwhile clients create and rename files and read and write three
//! registers (the mode bits of three files). Afterwards: every
//! acknowledged create and rename is there, every master applied the same
//! log and holds the same namespace, and each register's history is
//! linearizable (stateright's `LinearizabilityTester`). Needs root.

use alluxio_client::MasterClient;
use alluxio_common::auth::Credentials;
use alluxio_common::config::AlluxioConfig;
use alluxio_proto::grpc::{CompleteFileRequest, CreateFileRequest, SetAttributeRequest};
use alluxio_testkit::netns::Network;
use alluxio_testkit::quorum::{master_args, quorum_configs};
use stateright::semantics::register::{Register, RegisterOp, RegisterRet};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_alluxio");
const KEYS: usize = 3;
const REGISTER_TASKS: usize = 6;
const OPS_PER_REGISTER_TASK: usize = 40;

type History = LinearizabilityTester<u64, Register<u32>>;

struct Group {
    net: Network,
    configs: Vec<AlluxioConfig>,
    children: Vec<Option<Child>>,
    dir: tempfile::TempDir,
}

impl Group {
    fn start(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("master{i}.log")))
            .unwrap();
        let child = self
            .net
            .command_in(&self.net.member(i), std::path::Path::new(BIN))
            .args(master_args(&self.configs[i]))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children[i] = Some(child);
    }

    fn kill9(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            // `ip netns exec` execs the master: the child is the master.
            alluxio_testkit::signal(child.id(), libc::SIGKILL);
            let _ = child.wait();
        }
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("master{i}.log"))).unwrap_or_default()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill9(i);
        }
    }
}

fn configs(net: &Network, dir: &std::path::Path) -> Vec<AlluxioConfig> {
    let mut configs = quorum_configs(dir, 3);
    let raft: Vec<String> = (0..3)
        .map(|i| format!("{}:19200", net.address(i)))
        .collect();
    let rpc: Vec<String> = (0..3)
        .map(|i| format!("{}:19998", net.address(i)))
        .collect();
    for (i, c) in configs.iter_mut().enumerate() {
        c.master.hostname = net.address(i);
        c.master.rpc_port = 19998;
        c.master.web_port = 19999;
        c.master.embedded_journal.port = 19200;
        c.master.embedded_journal.addresses = raft.clone();
        c.master.rpc_addresses = rpc.clone();
    }
    configs
}

#[derive(Default)]
struct Record {
    created: Vec<String>,
    /// (from, to) of acknowledged renames.
    renamed: Vec<(String, String)>,
    histories: Vec<History>,
}

async fn client(c: &AlluxioConfig) -> MasterClient {
    let credentials = Credentials::for_client(c).unwrap();
    MasterClient::connect(&c.master_address(), Duration::from_secs(60), credentials)
        .await
        .unwrap()
}

async fn create(client: &MasterClient, path: &str) -> alluxio_common::Result<()> {
    client
        .create_file(CreateFileRequest {
            path: path.to_string(),
            recursive: true,
            ..Default::default()
        })
        .await?;
    client
        .complete_file(CompleteFileRequest {
            path: path.to_string(),
            length: 0,
            ..Default::default()
        })
        .await
        .map(|_| ())
}

async fn creator(
    client: MasterClient,
    t: usize,
    stop: Arc<AtomicBool>,
    record: Arc<Mutex<Record>>,
) {
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let (f, g) = (format!("/c/w{t}/f{i}"), format!("/c/w{t}/g{i}"));
        if create(&client, &f).await.is_err() {
            continue; // Unknown outcome: not counted.
        }
        record.lock().unwrap().created.push(f.clone());
        let renamed = client.rename(&f, &g).await;
        if renamed.is_ok() {
            record.lock().unwrap().renamed.push((f, g));
        }
    }
}

/// Reads and writes of the registers (`/reg/k<n>`'s mode bits), recorded
/// per register. An operation that fails has an unknown outcome: it stays
/// in flight for ever and the task goes on under a new thread id.
async fn register_user(client: MasterClient, task: usize, record: Arc<Mutex<Record>>) {
    let mut generation = 0u64;
    for n in 0..OPS_PER_REGISTER_TASK {
        let key = rand::random_range(0..KEYS);
        let path = format!("/reg/k{key}");
        let thread = (task as u64) << 32 | generation;
        let write = rand::random_bool(0.5);
        let value = ((task * OPS_PER_REGISTER_TASK + n) % 500 + 1) as u32;
        let op = if write {
            RegisterOp::Write(value)
        } else {
            RegisterOp::Read
        };
        record.lock().unwrap().histories[key]
            .on_invoke(thread, op)
            .unwrap();
        let ret = if write {
            client
                .set_attribute(SetAttributeRequest {
                    path,
                    mode: Some(value),
                    ..Default::default()
                })
                .await
                .map(|_| RegisterRet::WriteOk)
        } else {
            client
                .get_status(&path, Some(-1))
                .await
                .map(|info| RegisterRet::ReadOk(info.mode & 0o777))
        };
        match ret {
            Ok(ret) => {
                record.lock().unwrap().histories[key]
                    .on_return(thread, ret)
                    .unwrap();
            }
            Err(_) => generation += 1,
        }
        tokio::time::sleep(Duration::from_millis(rand::random_range(10..60))).await;
    }
}

/// Whether `path` exists, as a definite answer: NotFound is "no"; an
/// unavailable cluster is asked again (a check must not mistake a busy
/// election for a lost file).
async fn exists(client: &MasterClient, path: String) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        match client.get_status(&path, Some(-1)).await {
            Ok(_) => return true,
            Err(alluxio_common::AlluxioError::NotFound(_)) => return false,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("asking for {path} again: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no answer about {path}: {e}"),
        }
    }
}

async fn leader(client: &MasterClient, configs: &[AlluxioConfig]) -> usize {
    alluxio_testkit::eventually("a leader", Duration::from_secs(60), || async {
        let info = client.quorum_info().await.ok()?;
        configs.iter().position(|c| {
            format!("{}:{}", c.master.hostname, c.master.rpc_port) == info.leader_rpc_address
        })
    })
    .await
}

/// The checker itself: a read after a completed write that returns the
/// old value is not linearizable (what a deposed leader would answer).
#[test]
fn the_checker_rejects_a_stale_read() {
    let mut h = History::new(Register(1));
    h.on_invoke(1, RegisterOp::Write(2)).unwrap();
    h.on_return(1, RegisterRet::WriteOk).unwrap();
    h.on_invoke(2, RegisterOp::Read).unwrap();
    h.on_return(2, RegisterRet::ReadOk(1)).unwrap();
    assert!(!h.is_consistent());
    let mut h = History::new(Register(1));
    h.on_invoke(1, RegisterOp::Write(2)).unwrap();
    h.on_invoke(2, RegisterOp::Read).unwrap();
    h.on_return(2, RegisterRet::ReadOk(1)).unwrap();
    h.on_return(1, RegisterRet::WriteOk).unwrap();
    assert!(h.is_consistent(), "a concurrent read may see either value");
}

#[test]
fn a_nemesis_of_partitions_and_kills_breaks_no_guarantee() {
    if !alluxio_testkit::running_as_root() {
        alluxio_testkit::missing_prerequisite::<()>("root (network namespaces)");
        return;
    }
    let net = match Network::create(3) {
        Ok(net) => net,
        Err(e) => {
            alluxio_testkit::missing_prerequisite::<()>(&format!("network namespaces ({e})"));
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let configs = configs(&net, dir.path());
    let mut group = Group {
        net,
        configs: configs.clone(),
        children: vec![None, None, None],
        dir,
    };
    // This thread moves into the hub: the client's sockets live there,
    // where every master is reachable; the masters' own links are what the
    // nemesis cuts.
    group.net.enter(&group.net.hub()).unwrap();
    for i in 0..3 {
        group.start(i);
        if i == 0 {
            let key = configs[0].security.key_file.clone();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while !key.exists() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no cluster key:\n{}",
                    group.log(0)
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    alluxio_common::rpc::set_failover_timeout(Duration::from_secs(8));
    alluxio_common::rpc::set_call_timeout(Duration::from_secs(4));
    let record = Arc::new(Mutex::new(Record::default()));
    runtime.block_on(async {
        let client = client(&configs[0]).await;
        let mut initial = Vec::new();
        for k in 0..KEYS {
            let path = format!("/reg/k{k}");
            create(&client, &path).await.expect("a register");
            initial.push(client.get_status(&path, Some(-1)).await.unwrap().mode & 0o777);
        }
        record.lock().unwrap().histories = initial
            .into_iter()
            .map(|v| History::new(Register(v)))
            .collect();

        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for t in 0..4 {
            tasks.push(tokio::spawn(creator(
                client.clone(),
                t,
                stop.clone(),
                record.clone(),
            )));
        }
        let mut registers = Vec::new();
        for task in 0..REGISTER_TASKS {
            registers.push(tokio::spawn(register_user(
                client.clone(),
                task,
                record.clone(),
            )));
        }

        // The nemesis: isolate the leader, kill the leader, in turn.
        for round in 0..4 {
            let victim = leader(&client, &configs).await;
            println!("round {round}: the leader is master {victim}");
            if round % 2 == 0 {
                group.net.isolate(victim).unwrap();
                tokio::time::sleep(Duration::from_secs(3)).await;
                group.net.heal(victim);
            } else {
                group.kill9(victim);
                tokio::time::sleep(Duration::from_secs(2)).await;
                group.start(victim);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        for r in registers {
            r.await.unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }

        // Healed and whole again: check what was acknowledged.
        println!(
            "the leader after the nemesis: master {}",
            leader(&client, &configs).await
        );
        let record = std::mem::take(&mut *record.lock().unwrap());
        println!(
            "{} creates and {} renames acknowledged; register histories of {:?} operations",
            record.created.len(),
            record.renamed.len(),
            record.histories.iter().map(|h| h.len()).collect::<Vec<_>>()
        );
        assert!(
            record.created.len() > 50,
            "only {} creates",
            record.created.len()
        );
        let renamed: std::collections::HashMap<&str, &str> = record
            .renamed
            .iter()
            .map(|(f, g)| (f.as_str(), g.as_str()))
            .collect();
        for path in &record.created {
            let now = renamed.get(path.as_str()).copied();
            let exists = |p: String| exists(&client, p);
            match now {
                Some(g) => {
                    assert!(
                        exists(g.to_string()).await,
                        "acknowledged rename to {g} is lost"
                    );
                    assert!(
                        !exists(path.clone()).await,
                        "{path} is still there after its rename"
                    );
                }
                None => {
                    let g = path.replace("/f", "/g");
                    assert!(
                        exists(path.clone()).await || exists(g).await,
                        "acknowledged create {path} is lost"
                    );
                }
            }
        }
        for (k, history) in record.histories.iter().enumerate() {
            assert!(
                history.is_consistent(),
                "register {k}'s history is not linearizable: {history:?}"
            );
        }
        // Every master applied the same log and holds the same namespace.
        alluxio_testkit::eventually(
            "the masters to converge",
            Duration::from_secs(60),
            || async {
                let mut seen = Vec::new();
                for c in &configs {
                    let address = format!("{}:{}", c.master.hostname, c.master.rpc_port);
                    let one = MasterClient::connect(
                        &address,
                        Duration::from_secs(5),
                        Credentials::for_client(c).ok()?,
                    )
                    .await
                    .ok()?;
                    let quorum = one.quorum_info().await.ok()?;
                    let info = one.master_info().await.ok()?;
                    seen.push((quorum.applied_index, info.files, info.directories));
                }
                seen.iter().all(|s| *s == seen[0]).then_some(())
            },
        )
        .await;
    });
}
