//! A worker reads the UFS only where the master says a block lies,
//! whatever a caller writes in a request: raw gRPC `ReadBlock` and
//! `CacheBlock` requests for a real block naming a path that climbs out of
//! the root mount with `..`, goes through a symbolic link in it, or is
//! simply another file, are refused and cache nothing; so are requests for
//! blocks of another file than the capability's. (The local UFS refuses such paths on its own too:
//! `ufs/tests/local_confinement.rs`.)

use alluxio_common::auth::Role;
use alluxio_proto::grpc::{CacheBlockRequest, ReadBlockRequest, UfsBlockSource};
use alluxio_testkit::cluster::{start, MIB};
use futures::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ufs_paths_outside_the_mount_are_refused() {
    let c = start(1, 64 * MIB, |_| {}).await;
    let root = c
        .client
        .mount_table()
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.alluxio_path == "/")
        .unwrap();
    // A secret beside the root UFS, and a link to it inside.
    let secret = c.dir.path().join("secret.txt");
    std::fs::write(&secret, "not for workers").unwrap();
    std::os::unix::fs::symlink(&secret, c.ufs.join("link")).unwrap();

    // A real block, persisted and not cached (written THROUGH), 15 bytes.
    let real =
        c.fs.write_file(
            "/real.txt",
            alluxio_proto::grpc::WriteType::Through,
            [bytes::Bytes::from_static(b"fifteen bytes!!")],
        )
        .await
        .unwrap();
    let real_block = real.block_ids[0];
    std::fs::write(c.ufs.join("other.txt"), "another file!!!").unwrap();

    let mut worker = c.raw_worker(0, &c.credentials("alice", Role::User)).await;
    let base = root.ufs_uri.trim_end_matches('/').to_string();
    let attacks = [
        format!("{base}/../../../../etc/passwd"),
        format!("{base}/../secret.txt"),
        format!("{base}/link"),
        format!("{base}x/escape"),
        format!("{base}/other.txt"),
        "file:///etc/passwd".to_string(),
    ];
    // Each attack for the real block, and for a block of no file.
    let cases = attacks.iter().flat_map(|path| {
        [
            (path, real_block, tonic::Code::InvalidArgument),
            // (the real file's capability does not open another file)
            (
                path,
                (real.file_id + 1000) << 24,
                tonic::Code::PermissionDenied,
            ),
        ]
    });
    for (ufs_path, block_id, expected) in cases {
        let source = UfsBlockSource {
            mount_id: root.mount_id,
            ufs_path: ufs_path.clone(),
            offset_in_file: 0,
        };
        let read = worker
            .read_block(ReadBlockRequest {
                block_id,
                offset: 0,
                length: 15,
                block_length: 15,
                block_offset_in_file: 0,
                ufs: Some(source.clone()),
                read_type: 0,
                chunk_size: 1 << 20,
                capability: real.capability.clone(),
            })
            .await;
        let failed = match read {
            Err(status) => Some(status),
            Ok(stream) => stream.into_inner().next().await.and_then(Result::err),
        };
        let status = failed.unwrap_or_else(|| panic!("{ufs_path} was read"));
        assert_eq!(status.code(), expected, "{ufs_path}: {status}");

        let cached = worker
            .cache_block(CacheBlockRequest {
                block_id,
                block_length: 15,
                block_offset_in_file: 0,
                ufs: Some(source),
                capability: real.capability.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(cached.code(), expected, "{ufs_path}: {cached}");
        assert!(
            !c.worker(0).store.contains(block_id),
            "{ufs_path} got cached"
        );
    }
}
