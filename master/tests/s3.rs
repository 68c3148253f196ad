//! Mounting a real S3 server (moto on 127.0.0.1): lazy loading, listings,
//! writes through Alluxio, masked credentials, restarts.

mod common;

use alluxio_common::AlluxioError;
use alluxio_proto::grpc::*;
use alluxio_ufs::create_ufs;
use bytes::Bytes;
use std::collections::BTreeMap;

#[tokio::test]
async fn s3_mount_lazy_load_writes_and_restart() {
    let Some(s3) = alluxio_testkit::s3::S3Server::start() else {
        return;
    };
    s3.create_bucket("datasets");
    let options: BTreeMap<String, String> = s3.options().into_iter().collect();

    // Data that exists in S3 before the mount.
    let ufs = create_ufs("s3://datasets/tables", &options).unwrap();
    for (key, size) in [
        ("sales/part-0.parquet", 1000usize),
        ("sales/part-1.parquet", 2000),
        ("readme.txt", 5),
    ] {
        let mut w = ufs.create(key).await.unwrap();
        w.write(Bytes::from(vec![1u8; size])).await.unwrap();
        w.complete().await.unwrap();
    }

    let mut m = common::start(|_| {}).await;
    let c = m.client.clone();
    let mount = c
        .mount(MountRequest {
            alluxio_path: "/s3".into(),
            ufs_uri: "s3://datasets/tables".into(),
            options: options.clone().into_iter().collect(),
            ..Default::default()
        })
        .await
        .unwrap();
    // Credentials never come back in plain text.
    assert_eq!(mount.options["secret_access_key"], "******");
    assert_eq!(mount.options["access_key_id"], "******");
    assert_eq!(mount.options["endpoint"], s3.endpoint());
    let table = c.mount_table().await.unwrap();
    assert!(table.iter().all(|m| !m
        .options
        .values()
        .any(|v| v == alluxio_testkit::s3::SECRET_KEY)));
    assert_eq!(
        table
            .iter()
            .find(|m| m.alluxio_path == "/s3")
            .unwrap()
            .ufs_type,
        "s3"
    );

    // Lazy load of a single path, then of whole directories.
    let part = c
        .get_status("/s3/sales/part-1.parquet", None)
        .await
        .unwrap();
    assert_eq!(
        (part.length, part.persistence_state),
        (2000, PersistenceState::Persisted as i32)
    );
    assert_eq!(part.ufs_path, "s3://datasets/tables/sales/part-1.parquet");
    let all: Vec<(String, u64)> = c
        .list_status("/s3", true, None)
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.path, i.length))
        .collect();
    assert_eq!(
        all,
        vec![
            ("/s3/readme.txt".to_string(), 5),
            ("/s3/sales".to_string(), 0),
            ("/s3/sales/part-0.parquet".to_string(), 1000),
            ("/s3/sales/part-1.parquet".to_string(), 2000),
        ]
    );

    // Writes through Alluxio land in S3.
    c.create_directory(CreateDirectoryRequest {
        path: "/s3/out/empty".into(),
        recursive: true,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(ufs.status("out/empty").await.unwrap().unwrap().is_dir);
    let fs = alluxio_client::FileSystem::new(c.clone());
    let written = fs
        .write_file(
            "/s3/out/result.csv",
            WriteType::Through,
            vec![Bytes::from_static(b"a,b\n1,2\n")],
        )
        .await
        .unwrap();
    assert_eq!(
        (written.length, written.persistence_state),
        (8, PersistenceState::Persisted as i32)
    );
    assert_eq!(
        &ufs.read_range("out/result.csv", 0..100).await.unwrap()[..],
        b"a,b\n1,2\n"
    );
    c.rename("/s3/out/result.csv", "/s3/out/final.csv")
        .await
        .unwrap();
    assert!(ufs.status("out/result.csv").await.unwrap().is_none());
    assert!(ufs.status("out/final.csv").await.unwrap().is_some());
    c.delete("/s3/readme.txt", false, false).await.unwrap();
    assert!(ufs.status("readme.txt").await.unwrap().is_none());

    // An object added behind the cluster's back shows up on a sync.
    let mut w = ufs.create("sales/part-2.parquet").await.unwrap();
    w.write(Bytes::from(vec![0u8; 3000])).await.unwrap();
    w.complete().await.unwrap();
    assert_eq!(
        c.list_status("/s3/sales", false, Some(-1))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        c.list_status("/s3/sales", false, Some(0))
            .await
            .unwrap()
            .len(),
        3
    );

    // Missing bucket: the mount is refused as unreachable, nothing changes.
    let seq = m.last_sequence();
    let err = c
        .mount(MountRequest {
            alluxio_path: "/nobucket".into(),
            ufs_uri: "s3://no-such-bucket".into(),
            options: options.clone().into_iter().collect(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, AlluxioError::Unavailable(_)), "{err:?}");
    assert_eq!(m.last_sequence(), seq);

    // The mount, with its options, survives a restart.
    let before = common::durable_listing(&c, "/s3").await;
    m.restart().await;
    let after = common::durable_listing(&m.client, "/s3").await;
    assert_eq!(before, after);
    let info = m.client.ufs_info(mount.mount_id).await.unwrap();
    assert_eq!(
        info.options["secret_access_key"],
        alluxio_testkit::s3::SECRET_KEY,
        "clients get real options"
    );
}

/// A directory larger than `master.metadata_sync_batch_size` is listed
/// and applied page by page: every entry arrives, a change in the UFS
/// (objects gone, one rewritten) is applied by a later sync, and
/// concurrent listers of a directory not yet loaded all see all of it.
#[tokio::test]
async fn large_directories_sync_page_by_page() {
    let Some(s3) = alluxio_testkit::s3::S3Server::start() else {
        return;
    };
    s3.create_bucket("many");
    let options: BTreeMap<String, String> = s3.options().into_iter().collect();
    let ufs = create_ufs("s3://many", &options).unwrap();
    for i in 0..40 {
        let mut w = ufs.create(&format!("objects/k{i:02}")).await.unwrap();
        w.write(Bytes::from(vec![7u8; 10 + i])).await.unwrap();
        w.complete().await.unwrap();
    }
    for d in ["objects/d0/x", "objects/d1/y"] {
        ufs.create(d).await.unwrap().complete().await.unwrap();
    }
    let m = common::start(|c| c.master.metadata_sync_batch_size = 3).await;
    let c = m.client.clone();
    c.mount(MountRequest {
        alluxio_path: "/many".into(),
        ufs_uri: "s3://many".into(),
        options: options.into_iter().collect(),
        ..Default::default()
    })
    .await
    .unwrap();
    let listers: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.list_status("/many/objects", false, None).await })
        })
        .collect();
    for lister in listers {
        let listed = lister.await.unwrap().unwrap();
        assert_eq!(listed.len(), 42, "every lister sees every entry");
    }
    let k05 = c.get_status("/many/objects/k05", None).await.unwrap();
    assert_eq!(k05.length, 15);

    for i in 30..40 {
        ufs.delete_file(&format!("objects/k{i:02}")).await.unwrap();
    }
    let mut w = ufs.create("objects/k05").await.unwrap();
    w.write(Bytes::from(vec![1u8; 500])).await.unwrap();
    w.complete().await.unwrap();
    // Cached metadata until a sync is asked for.
    assert_eq!(
        c.list_status("/many/objects", false, Some(-1))
            .await
            .unwrap()
            .len(),
        42
    );
    let listed = c
        .list_status("/many/objects", false, Some(0))
        .await
        .unwrap();
    let mut names: Vec<String> = listed.iter().map(|i| i.name.clone()).collect();
    names.sort();
    let mut want: Vec<String> = (0..30).map(|i| format!("k{i:02}")).collect();
    want.extend(["d0".to_string(), "d1".to_string()]);
    want.sort();
    assert_eq!(names, want);
    let k05_now = c.get_status("/many/objects/k05", None).await.unwrap();
    assert_eq!(k05_now.length, 500);
    assert_ne!(
        k05_now.file_id, k05.file_id,
        "a changed object is a new inode"
    );
    // A subdirectory is listed from the UFS when it is first listed.
    assert_eq!(
        c.list_status("/many/objects/d0", false, None)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// A client that may read a file but not see its mount's credentials
/// reads the S3 object through a URL the master signs for it (no worker
/// runs here, so the client reads the UFS itself); a user who may not read
/// the file gets no URL.
#[tokio::test]
async fn clients_read_secret_mounts_through_signed_urls() {
    let Some(s3) = alluxio_testkit::s3::S3Server::start() else {
        return;
    };
    s3.create_bucket("private");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    s3.put_object("private", "data/part-0.bin", &content);
    s3.put_object("private", "data/secret.bin", b"not for bob");
    let options: BTreeMap<String, String> = s3.options().into_iter().collect();
    let m = common::start(|_| {}).await;
    m.client
        .mount(MountRequest {
            alluxio_path: "/private".into(),
            ufs_uri: "s3://private".into(),
            options: options.clone().into_iter().collect(),
            ..Default::default()
        })
        .await
        .unwrap();
    let root_view = m
        .client
        .get_status("/private/data/secret.bin", None)
        .await
        .unwrap();
    m.client
        .set_attribute(SetAttributeRequest {
            path: "/private/data/secret.bin".into(),
            mode: Some(0o600),
            ..Default::default()
        })
        .await
        .unwrap();

    let bob = m.client_as("bob", alluxio_common::auth::Role::User).await;
    let info = bob
        .get_status("/private/data/part-0.bin", None)
        .await
        .unwrap();
    // Bob's view of the mount: no credentials, and a flag that says so.
    let ufs_info = bob.ufs_info(info.mount_id).await.unwrap();
    assert!(ufs_info.secrets_withheld);
    assert!(!ufs_info
        .options
        .values()
        .any(|v| v == alluxio_testkit::s3::SECRET_KEY));
    // The URL is presigned and expires; its signature is a credential, so
    // errors show it without its query.
    let signed = bob.ufs_read_url("/private/data/part-0.bin").await.unwrap();
    assert!(signed.url.contains("X-Amz-Signature="), "{}", signed.url);
    assert!(signed.url.contains("X-Amz-Expires=600"), "{}", signed.url);
    assert!(signed.expires_at_ms > alluxio_common::now_ms());
    // The client library reads the file through it.
    let fs = alluxio_client::FileSystem::new(bob.clone());
    let reader = fs.reader(info, None).unwrap();
    let read = reader.read_at(0, content.len() as u64).await.unwrap();
    assert!(read[..] == content[..], "bytes differ");
    let middle = reader.read_at(1000, 5000).await.unwrap();
    assert_eq!(&middle[..], &content[1000..6000]);

    // Bob may not read secret.bin: no URL for it, nor for a directory.
    assert_ne!(root_view.mode, 0o600);
    for path in ["/private/data/secret.bin", "/private/data"] {
        let err = bob.ufs_read_url(path).await.unwrap_err();
        assert!(
            matches!(
                err,
                AlluxioError::PermissionDenied(_) | AlluxioError::FailedPrecondition(_)
            ),
            "{path}: {err}"
        );
    }
    assert!(matches!(
        bob.ufs_read_url("/private/data/secret.bin").await,
        Err(AlluxioError::PermissionDenied(_))
    ));
    // A local-directory mount cannot sign: FailedPrecondition, and the
    // client reads such mounts as before.
    std::fs::write(m.ufs.join("plain.txt"), b"plain").unwrap();
    m.client.get_status("/plain.txt", None).await.unwrap();
    let err = m.client.ufs_read_url("/plain.txt").await.unwrap_err();
    assert!(matches!(err, AlluxioError::FailedPrecondition(_)), "{err}");
}
