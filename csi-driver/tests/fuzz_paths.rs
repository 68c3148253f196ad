//! The staging and target paths a container orchestrator names, mutated
//! and random (`alluxio_testkit::fuzz`): the plugin refuses or accepts
//! each, never panics, and never accepts one that is not absolute and
//! clean. The same paths seed the cargo-fuzz target `csi_paths`.

use alluxio_csi::paths::allowed_path;
use alluxio_testkit::fuzz;
use std::path::{Component, PathBuf};

#[test]
fn orchestrator_paths_are_refused_or_clean_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("kubelet");
    std::fs::create_dir_all(root.join("pods")).unwrap();
    let seeds: Vec<Vec<u8>> = [
        "/var/lib/kubelet/pods/0f7c/volumes/kubernetes.io~csi/pvc-1/mount",
        "/var/lib/kubelet/plugins/kubernetes.io/csi/alluxio.rs/abc/globalmount",
        "/var/lib/kubelet/pods/../../../etc",
        "relative/path",
    ]
    .iter()
    .map(|p| p.as_bytes().to_vec())
    .collect();
    fuzz::save_seeds("csi_paths", &seeds);
    let under_root: Vec<Vec<u8>> = seeds
        .iter()
        .map(|s| {
            let text =
                String::from_utf8_lossy(s).replace("/var/lib/kubelet", root.to_str().unwrap());
            text.into_bytes()
        })
        .collect();
    let roots = vec![root.clone(), PathBuf::from("/var/lib/kubelet")];
    fuzz::run(
        "CSI paths",
        &under_root,
        |_| {},
        |b| {
            let text = String::from_utf8_lossy(b);
            if let Ok(path) = allowed_path("target_path", &text, &roots) {
                assert!(
                    path.components()
                        .all(|c| matches!(c, Component::RootDir | Component::Normal(_))),
                    "{text:?} accepted as {path:?}"
                );
            }
        },
    );
}
