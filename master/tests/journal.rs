//! Journal recovery: restarts after torn writes at any offset, refusal of
//! corruption in the middle, checkpoints that truncate the log, and a
//! journal disk that fills up.

mod common;

use alluxio_common::config::AlluxioConfig;
use alluxio_master::MasterServer;
use alluxio_proto::grpc::*;
use rand::Rng;
use std::path::{Path, PathBuf};
use std::time::Duration;

async fn create_files(client: &alluxio_client::MasterClient, prefix: &str, n: usize) {
    for i in 0..n {
        let path = format!("{prefix}/f{i:04}");
        client
            .create_file(CreateFileRequest {
                path: path.clone(),
                recursive: true,
                write_type: WriteType::MustCache as i32,
                ..Default::default()
            })
            .await
            .unwrap();
        client
            .complete_file(CompleteFileRequest {
                path,
                length: i as u64,
                ..Default::default()
            })
            .await
            .unwrap();
    }
}

fn newest_log(dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "log") && std::fs::metadata(p).unwrap().len() > 16
        })
        .collect();
    logs.sort();
    logs.pop().expect("a log segment with entries")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

async fn file_names(server: &MasterServer, config: &AlluxioConfig, dir: &str) -> Vec<String> {
    let client = common::connect(server, config).await;
    match client.list_status(dir, false, Some(-1)).await {
        Ok(infos) => infos.into_iter().map(|i| i.name).collect(),
        Err(alluxio_common::AlluxioError::NotFound(_)) => Vec::new(),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn restarts_from_logs_truncated_at_random_offsets() {
    let mut m = common::start(|_| {}).await;
    create_files(&m.client, "/t", 40).await;
    m.server.take().unwrap().shutdown().await;
    let journal = m.config.master.journal.dir.clone();
    let log = newest_log(&journal);
    let full_len = std::fs::metadata(&log).unwrap().len();

    let mut rng = rand::rng();
    let mut offsets: Vec<u64> = (0..12).map(|_| rng.random_range(16..full_len)).collect();
    offsets.push(full_len - 1);
    for offset in offsets {
        let copy = m.dir.path().join(format!("journal-cut-{offset}"));
        copy_dir(&journal, &copy);
        let cut_log = copy.join(log.file_name().unwrap());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&cut_log)
            .unwrap()
            .set_len(offset)
            .unwrap();

        let mut config = m.config.clone();
        config.master.journal.dir = copy.clone();
        let server = MasterServer::start(&config)
            .await
            .unwrap_or_else(|e| panic!("cut at {offset}: {e}"));
        let names = file_names(&server, &config, "/t").await;
        // What survives is exactly a prefix of the creates, in order, and
        // every surviving file but possibly the last is complete.
        let expected: Vec<String> = (0..names.len()).map(|i| format!("f{i:04}")).collect();
        assert_eq!(names, expected, "cut at {offset}");
        server.shutdown().await;

        // The torn tail was cut off, so the next restart is clean too and
        // new writes land after the surviving prefix.
        let server = MasterServer::start(&config).await.unwrap();
        assert_eq!(file_names(&server, &config, "/t").await.len(), names.len());
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_torn_tail_before_an_empty_segment_is_still_the_end_of_the_log() {
    let mut m = common::start(|_| {}).await;
    create_files(&m.client, "/t", 10).await;
    m.server.take().unwrap().shutdown().await;
    let journal = m.config.master.journal.dir.clone();
    let log = newest_log(&journal);
    // Cut the last record in half, and add a segment that was rotated to
    // but never written (header only), as a checkpoint leaves behind.
    let len = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let mut header = b"ALXJ".to_vec();
    header.extend_from_slice(&1u16.to_le_bytes()); // format version
    header.extend_from_slice(&1u16.to_le_bytes()); // a log segment
    header.extend_from_slice(&1_000_000u64.to_le_bytes());
    std::fs::write(journal.join(format!("log-{:020}.log", 1_000_000)), header).unwrap();

    let server = MasterServer::start(&m.config).await.unwrap();
    let names = file_names(&server, &m.config, "/t").await;
    let expected: Vec<String> = (0..names.len()).map(|i| format!("f{i:04}")).collect();
    assert_eq!(names, expected);
    assert!(names.len() >= 9, "{names:?}");
    server.shutdown().await;
    // Restarts cleanly again, with the empty segment gone.
    let server = MasterServer::start(&m.config).await.unwrap();
    assert_eq!(
        file_names(&server, &m.config, "/t").await.len(),
        names.len()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn corruption_in_the_middle_stops_startup_with_file_and_offset() {
    let mut m = common::start(|_| {}).await;
    create_files(&m.client, "/c", 10).await;
    m.server.take().unwrap().shutdown().await;
    let log = newest_log(&m.config.master.journal.dir);
    let mut data = std::fs::read(&log).unwrap();
    let middle = data.len() / 2;
    data[middle] ^= 0x5a;
    std::fs::write(&log, &data).unwrap();
    eprintln!("corrupting {} at {middle}", log.display());
    let err = match MasterServer::start(&m.config).await {
        Ok(_) => panic!("a corrupt journal must not start"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(log.file_name().unwrap().to_str().unwrap()),
        "{err}"
    );
    assert!(err.contains("offset"), "{err}");
    // Nothing was "repaired": the damaged file is untouched.
    assert_eq!(std::fs::read(&log).unwrap(), data);
}

#[tokio::test]
async fn checkpoints_truncate_the_log_and_restore_everything() {
    let mut m = common::start(|c| c.master.journal.checkpoint_period_entries = 100).await;
    create_files(&m.client, "/k", 150).await;
    let journal = m.config.master.journal.dir.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let checkpoints = std::fs::read_dir(&journal)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".ckpt")
            })
            .count();
        if checkpoints >= 1
            && m.server
                .as_ref()
                .unwrap()
                .fs
                .journal()
                .entries_since_checkpoint()
                < 100
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint was written"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    create_files(&m.client, "/k2", 5).await;
    // Old segments are gone: what is left starts after the checkpoint.
    let first_log_seq: u64 = std::fs::read_dir(&journal)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            name.strip_prefix("log-")?
                .strip_suffix(".log")?
                .parse()
                .ok()
        })
        .min()
        .unwrap();
    assert!(
        first_log_seq > 100,
        "log not truncated: first segment starts at {first_log_seq}"
    );

    let before = common::durable_listing(&m.client, "/").await;
    m.restart().await;
    let after = common::durable_listing(&m.client, "/").await;
    assert_eq!(before, after);
    assert_eq!(
        file_names(m.server.as_ref().unwrap(), &m.config, "/k")
            .await
            .len(),
        150
    );
}

#[tokio::test]
async fn journal_files_are_the_masters_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let mut m = common::start(|_| {}).await;
    // A journal directory left readable by an older version is tightened.
    m.server.take().unwrap().shutdown().await;
    let journal = m.config.master.journal.dir.clone();
    std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o755)).unwrap();
    m.restart().await;
    create_files(&m.client, "/t", 20).await;
    let fs = m.server.as_ref().unwrap().fs.clone();
    tokio::task::spawn_blocking(move || fs.checkpoint_now().unwrap())
        .await
        .unwrap();
    assert_eq!(mode(&journal), 0o700);
    let mut kinds = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&journal).unwrap() {
        let path = entry.unwrap().path();
        kinds.insert(path.extension().unwrap().to_string_lossy().into_owned());
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert!(kinds.len() >= 2, "segments and checkpoints: {kinds:?}");
}

fn mkdir(path: &str) -> CreateDirectoryRequest {
    CreateDirectoryRequest {
        path: path.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journal_disk_stops_the_master_until_space_is_freed_and_it_restarts() {
    use alluxio_common::AlluxioError;
    let Some(disk) = alluxio_testkit::small_disk::SmallDisk::mount(1 << 20) else {
        return;
    };
    let journal_dir = disk.path().join("journal");
    let mut m = common::start(|c| c.master.journal.dir = journal_dir.clone()).await;
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let path = format!("/before{i}");
        m.client.create_directory(mkdir(&path)).await.unwrap();
        acknowledged.push(path);
    }
    let filler = disk.fill("filler");
    // A change may still fit in what the last page of the log has left.
    let mut refused = None;
    for i in 0..10_000 {
        let path = format!("/after{i}");
        match m.client.create_directory(mkdir(&path)).await {
            Ok(_) => acknowledged.push(path),
            Err(e) => {
                refused = Some((path, e));
                break;
            }
        }
    }
    let (lost, refused) = refused.expect("a full disk took every change");
    assert!(
        matches!(&refused, AlluxioError::Unavailable(m) if m.contains("journal")),
        "{refused:?}"
    );
    // From now on the master answers nothing of the namespace: its memory
    // may hold the change the disk did not take.
    let read = m.client.get_status(&lost, None).await.unwrap_err();
    assert!(
        matches!(&read, AlluxioError::Unavailable(m) if m.contains("journal")),
        "{read:?}"
    );
    let again = m.client.create_directory(mkdir("/x")).await.unwrap_err();
    assert!(matches!(again, AlluxioError::Unavailable(_)), "{again:?}");
    let (code, body) = common::http_get(&m.web(), "/readyz").await;
    assert_eq!(code, 503);
    assert!(body.contains("journal failed"), "{body}");
    let (_, metrics) = common::http_get(&m.web(), "/metrics").await;
    assert!(
        metrics.contains("alluxio_master_journal_failed 1"),
        "{metrics}"
    );

    // Space freed, master restarted: everything acknowledged is there
    // (the refused directory may be too: it was created in the UFS before
    // the journal refused it, and a sync finds it), and it takes changes
    // again.
    std::fs::remove_file(filler).unwrap();
    m.restart().await;
    for path in &acknowledged {
        m.client.get_status(path, None).await.unwrap();
    }
    m.client
        .create_directory(mkdir("/after-restart"))
        .await
        .unwrap();
    let (code, _) = common::http_get(&m.web(), "/readyz").await;
    assert_eq!(code, 200);
    // And once more, from the log written after the failure.
    m.restart().await;
    for path in acknowledged.iter().chain([&"/after-restart".to_string()]) {
        m.client.get_status(path, None).await.unwrap();
    }
}
