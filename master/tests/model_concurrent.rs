//! The namespace under concurrent clients: four clients make directories,
//! create, delete, rename and stat paths of a tiny namespace at once over
//! real gRPC (so their calls overlap and meet on the same paths), while
//! checkpoints happen by themselves. The recorded history of every round
//! must be linearizable against the map-of-paths model
//! (`alluxio_testkit::linearizability`): each call took effect at one
//! instant between its start and its answer, as the model says it would. After every round
//! the whole tree is listed, and after a restart from the journal (at
//! random rounds) listed again: it must be the same tree. Seeded; a failure
//! names the seed and round and prints the history.

mod common;

use alluxio_client::MasterClient;
use alluxio_common::AlluxioError;
use alluxio_proto::grpc::{
    CompleteFileRequest, CreateDirectoryRequest, CreateFileRequest, WriteType,
};
use alluxio_testkit::linearizability::{self, History};
use common::namespace_model::{tree, Kind, Model};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const CLIENTS: usize = 4;
/// The thread id under which the test itself lists the tree.
const LISTER: usize = CLIENTS;

#[derive(Clone, Debug)]
pub enum Op {
    Mkdir(String),
    Create(String),
    Delete(String),
    Rename(String, String),
    Stat(String),
    Tree,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Ret {
    /// Done or refused.
    Done(bool),
    Stat(Option<Kind>),
    Tree(BTreeMap<String, Kind>),
}

/// The model as the sequential object the namespace must behave as.
impl linearizability::Model for Model {
    type Op = Op;
    type Ret = Ret;

    fn apply(&mut self, op: &Op) -> Ret {
        match op {
            Op::Mkdir(p) => Ret::Done(self.create(p, Kind::Directory)),
            Op::Create(p) => Ret::Done(self.create(p, Kind::File)),
            Op::Delete(p) => Ret::Done(self.delete(p)),
            Op::Rename(src, dst) => Ret::Done(self.rename(src, dst)),
            Op::Stat(p) => Ret::Stat(self.0.get(p).copied()),
            Op::Tree => Ret::Tree(self.0.clone()),
        }
    }
}

/// A path of one to three components named `a` or `b`: 14 paths in all,
/// so that concurrent calls meet on the same ones all the time.
fn random_path(rng: &mut StdRng) -> String {
    // Shallow paths mostly, so that parents exist often enough.
    let depth = [1, 1, 2, 2, 3][rng.random_range(0..5)];
    (0..depth).fold(String::new(), |p, _| {
        format!("{p}/{}", ["a", "b"][rng.random_range(0..2)])
    })
}

/// Done, or refused for a reason the model knows; anything else (an
/// internal error, an unavailable master) fails the test.
fn done(result: Result<(), AlluxioError>, what: &str) -> bool {
    match result {
        Ok(()) => true,
        Err(
            e @ (AlluxioError::NotFound(_)
            | AlluxioError::AlreadyExists(_)
            | AlluxioError::InvalidArgument(_)
            | AlluxioError::FailedPrecondition(_)),
        ) => {
            if std::env::var_os("MODEL_VERBOSE").is_some() {
                eprintln!("{what}: {e:?}");
            }
            false
        }
        Err(e) => panic!("{what}: {e:?}"),
    }
}

async fn call(client: &MasterClient, op: &Op) -> Ret {
    let what = format!("{op:?}");
    match op {
        Op::Mkdir(path) => Ret::Done(done(
            client
                .create_directory(CreateDirectoryRequest {
                    path: path.clone(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            &what,
        )),
        Op::Create(path) => {
            let created = done(
                client
                    .create_file(CreateFileRequest {
                        path: path.clone(),
                        write_type: WriteType::MustCache as i32,
                        ..Default::default()
                    })
                    .await
                    .map(|_| ()),
                &what,
            );
            if created {
                // Another client may have deleted or renamed it already:
                // the creation is what the history records.
                let _ = client
                    .complete_file(CompleteFileRequest {
                        path: path.clone(),
                        length: 0,
                        ..Default::default()
                    })
                    .await;
            }
            Ret::Done(created)
        }
        Op::Delete(path) => Ret::Done(done(client.delete(path, true, false).await, &what)),
        Op::Rename(src, dst) => Ret::Done(done(client.rename(src, dst).await, &what)),
        Op::Stat(path) => match client.get_status(path, Some(-1)).await {
            Ok(info) => Ret::Stat(Some(if info.folder {
                Kind::Directory
            } else {
                Kind::File
            })),
            Err(AlluxioError::NotFound(_)) => Ret::Stat(None),
            Err(e) => panic!("{what}: {e:?}"),
        },
        Op::Tree => Ret::Tree(tree(client).await),
    }
}

/// Calls `op` as client `thread`, recording its start and its answer.
async fn recorded(
    history: &Mutex<History<Model>>,
    client: &MasterClient,
    thread: usize,
    op: Op,
) -> Ret {
    history.lock().unwrap().invoke(thread, op.clone());
    let ret = call(client, &op).await;
    history.lock().unwrap().answer(thread, ret.clone());
    ret
}

async fn client_task(
    client: MasterClient,
    history: Arc<Mutex<History<Model>>>,
    thread: usize,
    seed: u64,
    calls: usize,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..calls {
        let op = match rng.random_range(0..100) {
            0..=24 => Op::Mkdir(random_path(&mut rng)),
            25..=44 => Op::Create(random_path(&mut rng)),
            45..=59 => Op::Delete(random_path(&mut rng)),
            60..=84 => Op::Rename(random_path(&mut rng), random_path(&mut rng)),
            _ => Op::Stat(random_path(&mut rng)),
        };
        recorded(&history, &client, thread, op).await;
    }
}

/// The answers of one order of the history's calls that the model
/// accepts; fails with the history when there is none (it is not
/// linearizable).
fn linearized(history: &Mutex<History<Model>>, start: &Model, at: &str) -> Vec<Ret> {
    let history = history.lock().unwrap();
    match history.linearize(start) {
        Some(order) => order
            .into_iter()
            .filter_map(|i| history.ret(i).cloned())
            .collect(),
        None => panic!(
            "{at}: the history from {start:?} is not linearizable:\n{}",
            history.timeline()
        ),
    }
}

async fn run(seed: u64, rounds: usize, calls: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut m = common::start(|c| {
        // Checkpoints happen by themselves, under the clients' calls.
        c.master.journal.checkpoint_period_entries = 61;
    })
    .await;
    let mut start = Model::default();
    let (mut done_count, mut refused_count) = (0, 0);
    for round in 0..rounds {
        let at = format!("seed {seed}, round {round}");
        let history = Arc::new(Mutex::new(History::default()));
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|thread| {
                let (client, history) = (m.client.clone(), history.clone());
                let task_seed = seed * 1_000 + round as u64 * 10 + thread as u64;
                tokio::spawn(client_task(client, history, thread, task_seed, calls))
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let Ret::Tree(listed) = recorded(&history, &m.client, LISTER, Op::Tree).await else {
            unreachable!("a tree answers a tree")
        };
        for ret in linearized(&history, &start, &at) {
            match ret {
                Ret::Done(true) => done_count += 1,
                Ret::Done(false) => refused_count += 1,
                _ => {}
            }
        }
        if rng.random_bool(0.5) {
            m.restart().await;
            let again = tree(&m.client).await;
            assert_eq!(again, listed, "{at}: the tree after a restart");
        }
        start = Model(listed);
    }
    let calls_made = rounds * calls * CLIENTS;
    assert!(
        done_count > calls_made / 10 && refused_count > calls_made / 10,
        "seed {seed}: {done_count} calls done and {refused_count} refused: the mix missed one side"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_see_a_linearizable_namespace_through_restarts() {
    // MODEL_ROUNDS and MODEL_SEEDS make longer runs (scripts/fuzz.sh).
    let var = alluxio_testkit::env_number;
    for seed in 1..=var("MODEL_SEEDS", 2) {
        run(seed, var("MODEL_ROUNDS", 20) as usize, 25).await;
    }
}
