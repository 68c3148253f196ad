//! The same behaviour checks run against every UFS kind available here:
//! a local directory, the in-memory object store and (in `s3.rs` at the
//! workspace level) a real S3 server.

use alluxio_ufs::{create_ufs, UfsStatus, UnderFileSystem};
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

    assert_eq!(
        &ufs.read_range("d1/file.txt", 6..11).await.unwrap()[..],
        b"world"
    );
    assert_eq!(
        &ufs.read_range("d1/file.txt", 6..100).await.unwrap()[..],
        b"world"
    );

    // Empty directories survive.
    ufs.mkdirs("d1/empty").await.unwrap();
    let names: Vec<_> = ufs
        .list("d1")
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.name, s.is_dir))
        .collect();
    assert_eq!(
        names,
        vec![("empty".to_string(), true), ("file.txt".to_string(), false)]
    );
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
    assert_eq!(
        ufs.status("d2/renamed.txt").await.unwrap().unwrap().length,
        11
    );
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

#[tokio::test]
async fn real_s3_server() {
    let Some(s3) = alluxio_testkit::s3::S3Server::start() else {
        return;
    };
    s3.create_bucket("contract");
    let options: BTreeMap<String, String> = s3.options().into_iter().collect();
    exercise(create_ufs("s3://contract/some/prefix", &options).unwrap()).await;

    // Ranged reads stream: bytes arrive in several pieces, not as one
    // buffer collected at the end.
    use futures::TryStreamExt;
    let ufs = create_ufs("s3://contract/streamed", &options).unwrap();
    let mut w = ufs.create("big").await.unwrap();
    w.write(Bytes::from(vec![9u8; 12 << 20])).await.unwrap();
    w.complete().await.unwrap();
    let pieces: Vec<Bytes> = ufs
        .read_stream("big", 1..(12 << 20))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(
        pieces.len() > 1,
        "one piece: the range was buffered, not streamed"
    );
    assert_eq!(
        pieces.iter().map(|p| p.len()).sum::<usize>(),
        (12 << 20) - 1
    );
}

#[tokio::test]
async fn s3_listings_follow_every_page() {
    use futures::StreamExt;
    let Some(s3) = alluxio_testkit::s3::S3Server::start() else {
        return;
    };
    s3.create_bucket("pages");
    let options: BTreeMap<String, String> = s3.options().into_iter().collect();
    let ufs = create_ufs("s3://pages", &options).unwrap();
    // More keys than one S3 page (1000) holds.
    let n = 1100;
    futures::stream::iter(0..n)
        .for_each_concurrent(16, |i| {
            let ufs = ufs.clone();
            async move {
                let mut w = ufs.create(&format!("dir/k{i:05}")).await.unwrap();
                w.write(Bytes::from_static(b"x")).await.unwrap();
                w.complete().await.unwrap();
            }
        })
        .await;
    let listed = ufs.list("dir").await.unwrap();
    assert_eq!(listed.len(), n);
    assert!(listed.iter().all(|s| !s.is_dir && s.length == 1));
}

/// `list_pages` hands out the same entries as `list`, a bounded page at a
/// time, and knows a missing directory from an empty one.
async fn pages_match_the_listing(ufs: std::sync::Arc<dyn alluxio_ufs::UnderFileSystem>) {
    use futures::TryStreamExt;
    for i in 0..23 {
        let mut w = ufs.create(&format!("paged/f{i:02}")).await.unwrap();
        w.write(Bytes::from_static(b"xy")).await.unwrap();
        w.complete().await.unwrap();
    }
    for d in ["paged/sub-a", "paged/sub-b"] {
        let w = ufs.create(&format!("{d}/inner")).await.unwrap();
        w.complete().await.unwrap();
    }
    ufs.mkdirs("paged/empty").await.unwrap();
    ufs.mkdirs("void").await.unwrap();
    let pages: Vec<Vec<UfsStatus>> = ufs
        .list_pages("paged", 5)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(pages.len() >= 6, "{} pages", pages.len());
    assert!(pages.iter().all(|p| p.len() <= 5));
    let mut names: Vec<(String, bool)> = pages
        .concat()
        .into_iter()
        .map(|s| (s.name, s.is_dir))
        .collect();
    names.sort();
    names.dedup();
    let mut listed: Vec<(String, bool)> = ufs
        .list("paged")
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.name, s.is_dir))
        .collect();
    listed.sort();
    assert_eq!(names, listed);
    assert_eq!(listed.len(), 26);
    let empty: Vec<Vec<UfsStatus>> = ufs
        .list_pages("void", 5)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(empty.concat().is_empty());
    assert!(matches!(
        ufs.list_pages("missing", 5).await.err(),
        Some(alluxio_ufs::UfsError::NotFound(_))
    ));
}

#[tokio::test]
async fn paged_listings_on_s3_and_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let local = create_ufs(
        &format!("file://{}", dir.path().display()),
        &BTreeMap::new(),
    )
    .unwrap();
    pages_match_the_listing(local).await;
    let Some(s3) = alluxio_testkit::s3::S3Server::start() else {
        return;
    };
    s3.create_bucket("paged");
    let options: BTreeMap<String, String> = s3.options().into_iter().collect();
    pages_match_the_listing(create_ufs("s3://paged/root", &options).unwrap()).await;
}

#[tokio::test]
async fn unreachable_s3_is_reported_with_its_uri() {
    let port = alluxio_testkit::free_port().expect("a free port");
    let mut options = BTreeMap::new();
    options.insert("endpoint".to_string(), format!("http://127.0.0.1:{port}"));
    options.insert("region".to_string(), "us-east-1".to_string());
    options.insert("access_key_id".to_string(), "a".to_string());
    options.insert("secret_access_key".to_string(), "b".to_string());
    options.insert("retry_timeout".to_string(), "1s".to_string());
    let ufs = create_ufs("s3://nowhere/x", &options).unwrap();
    let err = ufs.check_reachable().await.unwrap_err().to_string();
    assert!(
        err.contains("s3://nowhere/x") && err.contains("unreachable"),
        "{err}"
    );
}

#[tokio::test]
async fn streams_return_exactly_the_range() {
    use futures::TryStreamExt;
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..10_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.path().join("big"), &data).unwrap();
    let local = create_ufs(
        &format!("file://{}", dir.path().display()),
        &BTreeMap::new(),
    )
    .unwrap();
    let mem = create_ufs("memory://streams", &BTreeMap::new()).unwrap();
    let mut w = mem.create("big").await.unwrap();
    w.write(Bytes::from(data.clone())).await.unwrap();
    w.complete().await.unwrap();
    for ufs in [local, mem] {
        for range in [
            0..10_000_000u64,
            123..4_567_890,
            9_999_000..10_000_000,
            9_999_000..20_000_000,
        ] {
            let pieces: Vec<Bytes> = ufs
                .read_stream("big", range.clone())
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            let got: Vec<u8> = pieces.concat();
            let end = range.end.min(10_000_000) as usize;
            assert_eq!(
                got,
                &data[range.start as usize..end],
                "{} {range:?}",
                ufs.kind()
            );
        }
    }
}
