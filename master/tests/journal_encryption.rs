//! Encryption of the journal at rest (`master.journal.encryption_key_file`)
//! on real masters: nothing of the namespace is readable in any journal
//! file (log segments, checkpoints, a group's Raft log and snapshots), a
//! restart reads it back with the key and refuses to start without it or
//! with another one, and a plain journal is read when encryption is turned
//! on and sealed from then on.

mod common;

use alluxio_master::MasterServer;
use alluxio_testkit::quorum::{mkdir, Quorum};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Every file under `dir`, with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    found
}

/// Asserts that no file under `dir` holds `name`, and that every journal
/// file under it is sealed (format version 2). Returns how many journal
/// files there were.
fn assert_sealed(dir: &Path, name: &str) -> usize {
    let mut journal_files = 0;
    for (path, bytes) in files_under(dir) {
        assert!(
            !bytes.windows(name.len()).any(|w| w == name.as_bytes()),
            "{} holds {name:?} in the clear",
            path.display()
        );
        let file_name = path.file_name().unwrap().to_string_lossy().to_string();
        let journal = file_name.starts_with("log-")
            || file_name.starts_with("checkpoint-")
            || (file_name.starts_with("raft-") && file_name.ends_with(".log"))
            || (file_name.starts_with("snapshot-") && file_name.ends_with(".ckpt"));
        if journal && bytes.len() >= 16 && !file_name.ends_with(".tmp") {
            assert_eq!(&bytes[..4], b"ALXJ", "{}", path.display());
            assert_eq!(bytes[4], 2, "{} is not sealed", path.display());
            journal_files += 1;
        }
    }
    journal_files
}

async fn checkpoint(server: &MasterServer) {
    let fs = server.fs.clone();
    tokio::task::spawn_blocking(move || fs.checkpoint_now().unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_encrypted_journal_holds_nothing_readable_and_needs_its_key() {
    let mut m = common::start(|c| {
        let key = c.master.journal.dir.with_file_name("journal.key");
        c.master.journal.encryption_key_file = Some(key);
    })
    .await;
    let key_file = m.config.master.journal.encryption_key_file.clone().unwrap();
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the key file is created private");

    // Entries in a checkpoint and entries in the log after it.
    mkdir(&m.client, "/clandestine-project/plans")
        .await
        .unwrap();
    checkpoint(m.server.as_ref().unwrap()).await;
    mkdir(&m.client, "/clandestine-project/budget")
        .await
        .unwrap();
    let before = common::durable_listing(&m.client, "/").await;
    m.server.take().unwrap().shutdown().await;
    let journal = m.config.master.journal.dir.clone();
    let sealed = assert_sealed(&journal, "clandestine");
    assert!(sealed >= 2, "{sealed} journal files");

    // With its key, a restart reads it all back.
    m.restart().await;
    assert_eq!(common::durable_listing(&m.client, "/").await, before);
    m.server.take().unwrap().shutdown().await;

    // Without a key, or with another one, the master refuses to start
    // (and changes nothing).
    let files_before = files_under(&journal);
    let mut keyless = m.config.clone();
    keyless.master.journal.encryption_key_file = None;
    let error = MasterServer::start(&keyless)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("encryption_key_file"), "{error}");
    let mut stranger = m.config.clone();
    stranger.master.journal.encryption_key_file = Some(m.dir.path().join("other.key"));
    let error = MasterServer::start(&stranger)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("does not hold"), "{error}");
    let unchanged: Vec<_> = files_under(&journal)
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "ckpt"))
        .collect();
    let checkpoints_before: Vec<_> = files_before
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "ckpt"))
        .collect();
    assert_eq!(unchanged, checkpoints_before);
}

#[tokio::test]
async fn a_plain_journal_is_read_when_encryption_is_turned_on_and_sealed_from_then_on() {
    let mut m = common::start(|_| {}).await;
    mkdir(&m.client, "/written-in-the-clear").await.unwrap();
    m.server.take().unwrap().shutdown().await;

    m.config.master.journal.encryption_key_file = Some(m.dir.path().join("journal.key"));
    m.restart().await;
    mkdir(&m.client, "/written-sealed").await.unwrap();
    let listing = common::durable_listing(&m.client, "/").await;
    let names: Vec<_> = listing.iter().map(|i| i.path.as_str()).collect();
    assert!(names.contains(&"/written-in-the-clear"), "{names:?}");
    assert!(names.contains(&"/written-sealed"), "{names:?}");

    // A checkpoint replaces the plain files: nothing in the clear is left.
    checkpoint(m.server.as_ref().unwrap()).await;
    m.server.take().unwrap().shutdown().await;
    assert_sealed(&m.config.master.journal.dir, "written-");
    m.restart().await;
    assert_eq!(common::durable_listing(&m.client, "/").await, listing);
}

#[tokio::test]
async fn a_group_seals_its_raft_log_and_snapshots_and_restarts_from_them() {
    let mut q = Quorum::start(3, |c| {
        let key = c.master.journal.dir.with_file_name("journal.key");
        c.master.journal.encryption_key_file = Some(key);
    })
    .await;
    let client = q.client().await;
    mkdir(&client, "/covert-operation/one").await.unwrap();
    let leader = q.wait_for_leader().await;
    checkpoint(q.master(leader)).await;
    mkdir(&client, "/covert-operation/two").await.unwrap();
    let before = common::durable_listing(&client, "/").await;
    for i in 0..3 {
        q.stop(i).await;
    }
    for i in 0..3 {
        let dir = q.configs[i].master.journal.dir.clone();
        let sealed = assert_sealed(&dir, "covert");
        assert!(sealed >= 1, "master {i}: {sealed} journal files");
    }
    for i in 0..3 {
        q.restart(i).await;
    }
    q.wait_for_leader().await;
    let client = q.client().await;
    assert_eq!(common::durable_listing(&client, "/").await, before);
}
