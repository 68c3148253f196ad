//! kill -9 of a real master process during concurrent creates: after a
//! restart every acknowledged create is there.

mod common;

use alluxio_proto::grpc::{CompleteFileRequest, CreateFileRequest, WriteType};
use common::MasterProcess;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn no_acknowledged_create_is_lost_to_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut master = MasterProcess::start(dir.path(), &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for round in 0..3 {
        let acknowledged: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
        runtime.block_on(async {
            let client = master.client().await;
            let mut writers = Vec::new();
            for w in 0..16 {
                let client = client.clone();
                let acknowledged = acknowledged.clone();
                writers.push(tokio::spawn(async move {
                    for i in 0.. {
                        let path = format!("/round{round}/w{w}/f{i}");
                        let created = client
                            .create_file(CreateFileRequest {
                                path: path.clone(),
                                recursive: true,
                                write_type: WriteType::MustCache as i32,
                                ..Default::default()
                            })
                            .await;
                        if created.is_err() {
                            return;
                        }
                        acknowledged.lock().unwrap().push((path.clone(), false));
                        let completed = client
                            .complete_file(CompleteFileRequest {
                                path: path.clone(),
                                length: 7,
                                ..Default::default()
                            })
                            .await;
                        if completed.is_err() {
                            return;
                        }
                        acknowledged.lock().unwrap().push((path, true));
                    }
                }));
            }
            // Kill once enough is acknowledged (however busy the machine is).
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while acknowledged.lock().unwrap().len() <= 100 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the master acknowledged too little"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            master.kill9();
            for w in writers {
                w.await.unwrap();
            }
        });
        let acknowledged = acknowledged.lock().unwrap().clone();
        assert!(
            acknowledged.len() > 50,
            "too few creates before the kill: {}",
            acknowledged.len()
        );

        master.restart();
        runtime.block_on(async {
            let client = master.client().await;
            for (path, completed) in &acknowledged {
                let info = client
                    .get_status(path, Some(-1))
                    .await
                    .unwrap_or_else(|e| panic!("round {round}: acknowledged {path} lost: {e}"));
                if *completed {
                    assert!(info.completed, "round {round}: completion of {path} lost");
                    assert_eq!(info.length, 7);
                }
            }
        });
    }
}
