//! The same behaviour checks run against every UFS kind available here:
//! a local directory, the in-memory object store and (in `s3.rs` at the
//! workspace level) a real S3 server.

use alluxio_ufs::{create_ufs, UnderFileSystem};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;

pub async fn exercise(ufs: Arc<dyn UnderFileSystem>) {
    ufs.check_reachable().await.unwrap();
    assert!(ufs.status("missing").await.unwrap().is_none());

    // Streaming write, visible only after completion.
    let mut w = ufs.create("d1/file.txt").await.unwrap();
    w.write(Bytes::from_static(b"hello ")).await.unwrap();
    w.write(Bytes::from_static(b"world")).await.unwrap();
    let st = w.complete().await.unwrap();
    assert_eq!(st.length, 11);

    let st = ufs.status("d1/file.txt").await.unwrap().unwrap();
    assert!(!st.is_dir);
    assert_eq!(st.length, 11);
    assert!(ufs.status("d1").await.unwrap().unwrap().is_dir);

    assert_eq!(&ufs.read_range("d1/file.txt", 6..11).await.unwrap()[..], b"world");
    assert_eq!(&ufs.read_range("d1/file.txt", 6..100).await.unwrap()[..], b"world");

    // Empty directories survive.
    ufs.mkdirs("d1/empty").await.unwrap();
    let names: Vec<_> = ufs.list("d1").await.unwrap().into_iter().map(|s| (s.name, s.is_dir)).collect();
    assert_eq!(names, vec![("empty".to_string(), true), ("file.txt".to_string(), false)]);
    assert!(ufs.list("nope").await.is_err());

    // Aborted writes leave nothing.
    let mut w = ufs.create("d1/aborted").await.unwrap();
    w.write(Bytes::from_static(b"x")).await.unwrap();
    w.abort().await.unwrap();
    assert!(ufs.status("d1/aborted").await.unwrap().is_none());

    // Rename a file and a directory.
    ufs.rename("d1/file.txt", "d1/renamed.txt").await.unwrap();
    assert!(ufs.status("d1/file.txt").await.unwrap().is_none());
    ufs.rename("d1", "d2").await.unwrap();
    assert_eq!(ufs.status("d2/renamed.txt").await.unwrap().unwrap().length, 11);
    assert!(ufs.status("d2/empty").await.unwrap().unwrap().is_dir);

    // Deletes.
    assert!(ufs.delete_directory("d2", false).await.is_err());
    ufs.delete_file("d2/renamed.txt").await.unwrap();
    assert!(ufs.delete_file("d2/renamed.txt").await.is_err());
    ufs.delete_directory("d2", true).await.unwrap();
    assert!(ufs.status("d2").await.unwrap().is_none());
}

#[tokio::test]
async fn local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("file://{}", dir.path().display());
    exercise(create_ufs(&uri, &BTreeMap::new()).unwrap()).await;
}

#[tokio::test]
async fn in_memory_object_store() {
    exercise(create_ufs("memory://contract/prefix", &BTreeMap::new()).unwrap()).await;
}

#[tokio::test]
async fn missing_local_root_is_unreachable() {
    let ufs = create_ufs("file:///nonexistent/alluxio-test", &BTreeMap::new()).unwrap();
    let err = ufs.check_reachable().await.unwrap_err().to_string();
    assert!(err.contains("unreachable"), "{err}");
}
