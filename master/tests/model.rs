//! The namespace against a model: random sequences of directory and file
//! creations, deletions and renames over real gRPC, with checkpoints and
//! restarts from the journal at random points. Every call's outcome
//! (done or refused) must be the model's, and the whole tree must equal
//! the model's map of paths whenever it is compared — after every restart
//! in particular. Seeded; a failure names its seed and step.

mod common;

use common::namespace_model::{tree, Kind, Model};

use alluxio_proto::grpc::{
    CompleteFileRequest, CreateDirectoryRequest, CreateFileRequest, WriteType,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A path of one to four components from a small alphabet, so that
/// operations meet each other often: most of the time a name in a
/// directory the model has, else any path (mostly refused).
fn random_path(rng: &mut StdRng, model: &Model) -> String {
    let name = |rng: &mut StdRng| ["a", "b", "c"][rng.random_range(0..3)];
    let dirs: Vec<&String> = model
        .0
        .iter()
        .filter(|(p, k)| **k == Kind::Directory && p.matches('/').count() < 4)
        .map(|(p, _)| p)
        .collect();
    if !dirs.is_empty() && rng.random_bool(0.7) {
        let dir = dirs[rng.random_range(0..dirs.len())];
        return format!("{dir}/{}", name(rng));
    }
    let depth = rng.random_range(1..=3);
    (0..depth).fold(String::new(), |p, _| format!("{p}/{}", name(rng)))
}

async fn run(seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut m = common::start(|c| {
        // Checkpoints also happen by themselves, between the test's own.
        c.master.journal.checkpoint_period_entries = 97;
    })
    .await;
    let mut model = Model::default();
    let (mut done_count, mut refused_count, mut restarts) = (0, 0, 0);
    for step in 0..steps {
        let at = |what: &str| format!("seed {seed}, step {step}: {what}");
        let roll = rng.random_range(0..100);
        let (what, done, expected) = match roll {
            0..=29 => {
                let path = random_path(&mut rng, &model);
                let done = m
                    .client
                    .create_directory(CreateDirectoryRequest {
                        path: path.clone(),
                        ..Default::default()
                    })
                    .await
                    .is_ok();
                (
                    format!("mkdir {path}"),
                    done,
                    model.create(&path, Kind::Directory),
                )
            }
            30..=54 => {
                let path = random_path(&mut rng, &model);
                let created = m
                    .client
                    .create_file(CreateFileRequest {
                        path: path.clone(),
                        write_type: WriteType::MustCache as i32,
                        ..Default::default()
                    })
                    .await
                    .is_ok();
                if created {
                    m.client
                        .complete_file(CompleteFileRequest {
                            path: path.clone(),
                            length: 0,
                            ..Default::default()
                        })
                        .await
                        .unwrap_or_else(|e| panic!("{}", at(&format!("complete {path}: {e}"))));
                }
                (
                    format!("create {path}"),
                    created,
                    model.create(&path, Kind::File),
                )
            }
            55..=69 => {
                let path = random_path(&mut rng, &model);
                let done = m.client.delete(&path, true, false).await.is_ok();
                (format!("delete {path}"), done, model.delete(&path))
            }
            70..=89 => {
                let (src, dst) = (random_path(&mut rng, &model), random_path(&mut rng, &model));
                let done = m.client.rename(&src, &dst).await.is_ok();
                (
                    format!("rename {src} {dst}"),
                    done,
                    model.rename(&src, &dst),
                )
            }
            90..=93 => {
                let fs = m.server.as_ref().unwrap().fs.clone();
                tokio::task::spawn_blocking(move || fs.checkpoint_now())
                    .await
                    .unwrap()
                    .unwrap();
                ("checkpoint".to_string(), true, true)
            }
            94..=97 => {
                m.restart().await;
                restarts += 1;
                let got = tree(&m.client).await;
                assert_eq!(got, model.0, "{}", at("the tree after a restart"));
                ("restart".to_string(), true, true)
            }
            _ => {
                let got = tree(&m.client).await;
                assert_eq!(got, model.0, "{}", at("the tree"));
                ("compare".to_string(), true, true)
            }
        };
        assert_eq!(
            done,
            expected,
            "{}",
            at(&format!("{what}: done {done}, model says {expected}"))
        );
        if done {
            done_count += 1;
        } else {
            refused_count += 1;
        }
    }
    // The sequence exercised both sides, and the journal.
    assert!(
        done_count > steps / 4 && refused_count > steps / 10 && restarts > 0,
        "seed {seed}: {done_count} done, {refused_count} refused, {restarts} restarts"
    );
    m.restart().await;
    assert_eq!(
        tree(&m.client).await,
        model.0,
        "seed {seed}: the tree at the end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_namespace_behaves_as_a_map_of_paths_through_restarts() {
    // MODEL_STEPS and MODEL_SEEDS make longer runs (scripts/fuzz.sh).
    let steps = alluxio_testkit::env_number("MODEL_STEPS", 300) as usize;
    let seeds = alluxio_testkit::env_number("MODEL_SEEDS", 3);
    for seed in 1..=seeds {
        run(seed, steps).await;
    }
}
