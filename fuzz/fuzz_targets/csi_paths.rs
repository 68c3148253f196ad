//! The local paths a container orchestrator names in CSI requests
//! (staging and target paths): a path the plugin accepts is absolute and
//! clean, and, with the links of its existing part followed, strictly
//! inside one of its allowed roots.
#![no_main]

use alluxio_csi::paths::allowed_path;
use libfuzzer_sys::fuzz_target;
use std::path::{Component, Path, PathBuf};

/// `path` with its longest existing prefix canonicalised.
fn resolved(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    while existing.canonicalize().is_err() {
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut out = existing.canonicalize().unwrap_or(existing);
    out.extend(rest.iter().rev());
    out
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // A root that does not exist here, and one that does (with links
    // below it on most systems).
    let roots = [PathBuf::from("/var/lib/kubelet"), PathBuf::from("/usr")];
    if let Ok(path) = allowed_path("target_path", &text, &roots) {
        assert!(
            path.components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_))),
            "{text:?} accepted as {path:?}"
        );
        let real = resolved(&path);
        assert!(
            roots.iter().any(|r| real.starts_with(r) && real != *r),
            "{text:?} accepted, but it is {real:?}, outside {roots:?}"
        );
    }
});
