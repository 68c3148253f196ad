//! The project's container image, built for the tests by the script a
//! user runs (`scripts/build-image.sh`, the `prebuilt` target of
//! `images/Containerfile`) from the binaries this test run built, under
//! the name the operator and the chart use by default. Built once per
//! test process.

use crate::kube_tools::repo_dir;
use crate::kubelet::image::LocalImage;
use std::sync::OnceLock;

/// The image pods name by default: `ghcr.io/alluxio-rs/alluxio:<version>`.
pub fn default_image_name() -> String {
    format!("ghcr.io/alluxio-rs/alluxio:{}", env!("CARGO_PKG_VERSION"))
}

/// The built image, or `None` (a skip; a failure under CI) when podman,
/// debootstrap or root is missing. Panics when the build fails.
pub fn project_image() -> Option<LocalImage> {
    static BUILT: OnceLock<Result<LocalImage, String>> = OnceLock::new();
    if !alluxio_testkit::running_as_root() {
        return alluxio_testkit::missing_prerequisite("root (podman builds and mounts the image)");
    }
    for tool in ["podman", "debootstrap", "objcopy"] {
        if !command_exists(tool) {
            return alluxio_testkit::missing_prerequisite(&format!(
                "{tool} (scripts/test.sh installs it)"
            ));
        }
    }
    match BUILT.get_or_init(build) {
        Ok(image) => Some(image.clone()),
        Err(e) => panic!("{e}"),
    }
}

fn command_exists(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

fn build() -> Result<LocalImage, String> {
    let binaries = alluxio_testkit::binaries::built_binary("alluxio");
    let binaries = binaries.parent().expect("target/<profile>");
    for bin in ["alluxio-operator", "alluxio-csi"] {
        alluxio_testkit::binaries::built_binary(bin);
    }
    // Images of earlier runs under this name are untagged by the build;
    // drop them so that runs do not fill the disk.
    let _ = std::process::Command::new("podman")
        .args(["image", "prune", "--force"])
        .output();
    let name = default_image_name();
    let out = std::process::Command::new(repo_dir().join("scripts/build-image.sh"))
        .arg("--binaries")
        .arg(binaries)
        .args(["--tag", &name])
        .output()
        .map_err(|e| format!("scripts/build-image.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/build-image.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    LocalImage::inspect(&name)
}
