//! Running the real `kubectl` against a test API server.

use std::path::Path;
use std::process::Command;

/// Whether kubectl is installed; `None` (skip) or a panic under CI when not.
pub fn require_kubectl() -> Option<()> {
    match Command::new("kubectl")
        .args(["version", "--client"])
        .output()
    {
        Ok(out) if out.status.success() => Some(()),
        _ => crate::missing_prerequisite("kubectl"),
    }
}

/// Runs `kubectl --kubeconfig config args...`: success and stdout+stderr.
pub fn kubectl(config: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(config)
        .args(args)
        .output()
        .expect("kubectl runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
