//! Binaries of the workspace that a test of another crate runs (cargo
//! only tells a crate's own tests where its own binaries are).

use std::path::PathBuf;

/// `target/<profile>/<name>`, next to the running test's directory.
/// `cargo test --workspace` builds every binary first.
pub fn built_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it (cargo build --workspace) before this test",
        path.display()
    );
    path
}
