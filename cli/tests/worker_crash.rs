//! kill -9 of a worker process in the middle of a read: the reader
//! finishes from another source and gets the right bytes.

mod common;

use alluxio_client::FileSystem;
use alluxio_common::config::AlluxioConfig;
use common::{free_port, MasterProcess};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn start_worker(master: &MasterProcess, dir: &std::path::Path, i: usize) -> std::process::Child {
    let data = dir.join(format!("worker-{i}"));
    master
        .command()
        .args([
            "--master",
            &master.address(),
            "-D",
            "worker.heartbeat_interval=100ms",
        ])
        .args(["worker", "--hostname", "127.0.0.1"])
        .args([
            "--port",
            &free_port().to_string(),
            "--web-port",
            &free_port().to_string(),
            "--data-port",
            &free_port().to_string(),
        ])
        .arg("--data-dir")
        .arg(&data)
        .arg("--tier")
        .arg(format!("MEM:{}:256MiB", data.join("mem").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_worker_killed_during_a_read_does_not_fail_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterProcess::start(dir.path(), &[]);
    let mut w0 = start_worker(&master, dir.path(), 0);
    let mut w1 = start_worker(&master, dir.path(), 1);
    let content: Vec<u8> = (0..(24u32 << 20)).map(|i| (i % 249) as u8).collect();
    std::fs::create_dir_all(&master.ufs).unwrap();
    std::fs::write(master.ufs.join("big.bin"), &content).unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = master.client().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while client
            .worker_infos()
            .await
            .unwrap()
            .iter()
            .filter(|w| w.state == "LIVE")
            .count()
            < 2
        {
            assert!(Instant::now() < deadline, "workers did not register");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut config = AlluxioConfig::default();
        config.user.short_circuit = false;
        config.user.block_size = alluxio_common::units::ByteSize(4 << 20);
        let fs = FileSystem::with_config(client.clone(), &config);
        let reader = fs.open("/big.bin", None).await.unwrap();
        let mut got = Vec::new();
        let mut killed = false;
        // The first worker the policy picks for uncached blocks is killed
        // once a quarter of the file has arrived.
        reader
            .read_range(0, reader.len(), |b| {
                got.extend_from_slice(&b);
                if !killed && got.len() > content.len() / 4 {
                    killed = true;
                    let _ = w0.kill();
                    let _ = w1.kill();
                }
                Ok(())
            })
            .await
            .unwrap();
        assert!(killed);
        assert!(got == content, "the reader got wrong bytes");
    });
    let _ = w0.wait();
    let _ = w1.wait();
}
