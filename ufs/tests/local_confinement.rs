//! The local UFS keeps every path inside its mounted directory: `..`,
//! absolute paths, NUL bytes and (unless the mount says otherwise) symbolic
//! links that lead out are refused, and refusing changes nothing.

use alluxio_ufs::{create_ufs, UfsError, UnderFileSystem};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

struct Host {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
}

/// A mounted directory with a file, and beside it a directory with a
/// secret that links inside the mount point at.
fn host() -> Host {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mounted");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(root.join("sub/a.txt"), "inside").unwrap();
    std::fs::write(outside.join("secret"), "outside").unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), root.join("link")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("dirlink")).unwrap();
    Host {
        _dir: dir,
        root,
        outside,
    }
}

fn ufs(root: &Path, options: &[(&str, &str)]) -> Arc<dyn UnderFileSystem> {
    let options: BTreeMap<String, String> = options
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    create_ufs(&format!("file://{}", root.display()), &options).unwrap()
}

fn refused<T: std::fmt::Debug>(result: Result<T, UfsError>, what: &str) {
    match result {
        Err(UfsError::InvalidUri { reason, .. }) => {
            assert!(
                reason.contains("outside the mounted directory"),
                "{what}: {reason}"
            )
        }
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn paths_that_leave_the_mount_are_refused_and_change_nothing() {
    let h = host();
    let u = ufs(&h.root, &[]);
    let escapes = [
        "../outside/secret",
        "sub/../../outside/secret",
        "/etc/passwd",
        "sub/./a.txt",
        "sub//a.txt",
        "sub/a.txt\0",
        "link",
        "dirlink/secret",
    ];
    for path in escapes {
        refused(u.read_range(path, 0..100).await, path);
        refused(u.read_stream(path, 0..100).await.map(|_| ()), path);
        refused(u.status(path).await, path);
        refused(u.delete_file(path).await, path);
        refused(u.rename("sub/a.txt", path).await, path);
        refused(u.rename(path, "sub/moved").await, path);
    }
    refused(
        u.create("dirlink/planted").await.map(|_| ()),
        "create through a link",
    );
    refused(u.create("../planted").await.map(|_| ()), "create with ..");
    refused(u.mkdirs("dirlink/made").await, "mkdirs through a link");
    refused(u.list("dirlink").await, "list through a link");
    refused(
        u.delete_directory("dirlink", true).await,
        "recursive delete through a link",
    );

    // Nothing outside changed, nothing inside moved.
    assert_eq!(
        std::fs::read_to_string(h.outside.join("secret")).unwrap(),
        "outside"
    );
    assert_eq!(std::fs::read_dir(&h.outside).unwrap().count(), 1);
    assert!(!h.root.parent().unwrap().join("planted").exists());
    assert_eq!(
        std::fs::read_to_string(h.root.join("sub/a.txt")).unwrap(),
        "inside"
    );

    // What stays inside works, and listings leave the links out.
    assert_eq!(
        u.read_range("sub/a.txt", 0..100).await.unwrap(),
        Bytes::from("inside")
    );
    let names: Vec<String> = u
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["sub"]);
}

#[tokio::test]
async fn follow_symlinks_is_an_explicit_mount_option() {
    let h = host();
    let u = ufs(&h.root, &[("follow_symlinks", "true")]);
    assert_eq!(
        u.read_range("link", 0..100).await.unwrap(),
        Bytes::from("outside")
    );
    assert_eq!(
        u.read_range("dirlink/secret", 0..100).await.unwrap(),
        Bytes::from("outside")
    );
    // `..` stays refused whatever the option says.
    refused(u.read_range("../outside/secret", 0..100).await, "..");

    let options = BTreeMap::from([("follow_symlinks".to_string(), "maybe".to_string())]);
    let err = create_ufs(&format!("file://{}", h.root.display()), &options).err();
    assert!(
        matches!(&err, Some(UfsError::InvalidOption(m)) if m.contains("follow_symlinks")),
        "{err:?}"
    );
}
