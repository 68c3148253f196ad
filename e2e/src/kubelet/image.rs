//! Container images for the process kubelet: an image in the local podman
//! store, read with `podman image inspect` (its layers and its config),
//! and a container's root filesystem made from it the way a container
//! runtime makes one, an overlay mount of the image's read-only layers
//! with a fresh writable layer per container start.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// An image of the local store that pods can name.
#[derive(Clone, Debug)]
pub struct LocalImage {
    /// `repository:tag` as pods name it (e.g. `ghcr.io/alluxio-rs/alluxio:0.1.0`).
    pub name: String,
    /// The layers' directories, top layer first.
    pub layers: Vec<PathBuf>,
    pub config: ImageConfig,
}

/// The parts of an image's config a runtime uses to start a container.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    pub exposed_ports: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inspected {
    config: ImageConfig,
    graph_driver: GraphDriver,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GraphDriver {
    name: String,
    data: GraphDriverData,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GraphDriverData {
    upper_dir: PathBuf,
    #[serde(default)]
    lower_dir: Option<String>,
}

impl LocalImage {
    /// Reads `name` from the local podman store.
    pub fn inspect(name: &str) -> Result<LocalImage, String> {
        let out = std::process::Command::new("podman")
            .args(["image", "inspect", name])
            .output()
            .map_err(|e| format!("podman: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "podman image inspect {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let mut all: Vec<Inspected> = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("podman image inspect {name}: {e}"))?;
        let inspected = all.pop().ok_or_else(|| format!("no image {name}"))?;
        if inspected.graph_driver.name != "overlay" {
            return Err(format!(
                "image {name} is in podman's {} storage; the kubelet mounts overlay layers",
                inspected.graph_driver.name
            ));
        }
        let data = inspected.graph_driver.data;
        let mut layers = vec![data.upper_dir];
        layers.extend(
            data.lower_dir
                .iter()
                .flat_map(|l| l.split(':'))
                .filter(|l| !l.is_empty())
                .map(PathBuf::from),
        );
        Ok(LocalImage {
            name: name.to_string(),
            layers,
            config: inspected.config,
        })
    }

    /// Whether a pod's `image:` names this image (no tag means `latest`,
    /// as for a registry).
    pub fn is_named(&self, image: &str) -> bool {
        let wanted = image.split('@').next().unwrap_or(image);
        let has_tag = wanted
            .rsplit_once(':')
            .is_some_and(|(_, tag)| !tag.contains('/'));
        if has_tag {
            wanted == self.name
        } else {
            format!("{wanted}:latest") == self.name
        }
    }

    /// The image's environment as pairs.
    pub fn env(&self) -> Vec<(String, String)> {
        self.config
            .env
            .iter()
            .flatten()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// A container's root filesystem: `<dir>/rootfs`, an overlay of the
/// image's layers with `<dir>/upper` as its writable layer, made anew (an
/// empty writable layer) at every start, as a runtime makes a new
/// container for a restart.
pub fn mount_rootfs(image: &LocalImage, dir: &Path) -> Result<PathBuf, String> {
    unmount_rootfs(dir);
    let rootfs = dir.join("rootfs");
    for sub in ["upper", "work"] {
        let _ = std::fs::remove_dir_all(dir.join(sub));
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
    }
    std::fs::create_dir_all(&rootfs).map_err(|e| e.to_string())?;
    let lower: Vec<String> = image
        .layers
        .iter()
        .map(|l| l.display().to_string())
        .collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        dir.join("upper").display(),
        dir.join("work").display()
    );
    let c = |s: &str| std::ffi::CString::new(s).map_err(|_| "a NUL byte in a path".to_string());
    let (source, target, fstype, data) = (
        c("overlay")?,
        c(&rootfs.display().to_string())?,
        c("overlay")?,
        c(&options)?,
    );
    // SAFETY: every pointer is a NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "cannot mount the image {} at {}: {}",
            image.name,
            rootfs.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(rootfs)
}

/// Unmounts a container's root filesystem (if mounted) and removes its
/// writable layer.
pub fn unmount_rootfs(dir: &Path) {
    let rootfs = dir.join("rootfs");
    if let Ok(path) = std::ffi::CString::new(rootfs.display().to_string()) {
        // SAFETY: a NUL-terminated path; failing (not mounted) is fine.
        unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
    }
    for sub in ["upper", "work"] {
        let _ = std::fs::remove_dir_all(dir.join(sub));
    }
}

/// `path` (absolute, as the container sees it) as a host path inside
/// `rootfs`, with the image's symbolic links followed inside the root
/// filesystem, never out of it (Debian's `/var/run` -> `/run` would
/// otherwise lead a mount to the host's `/run`), as runc's securejoin
/// does. Components that do not exist yet are taken as they are.
pub fn path_in_rootfs(rootfs: &Path, path: &str) -> Result<PathBuf, String> {
    use std::path::Component;
    let mut pending: Vec<std::ffi::OsString> = Path::new(path)
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = rootfs.join(&resolved).join(&part);
        match std::fs::read_link(&candidate) {
            Ok(target) => {
                links += 1;
                if links > 40 {
                    return Err(format!("too many symbolic links in {path}"));
                }
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                pending.extend(target.components().rev().filter_map(|c| match c {
                    Component::Normal(n) => Some(n.to_os_string()),
                    Component::ParentDir => Some("..".into()),
                    _ => None,
                }));
            }
            Err(_) => resolved.push(part),
        }
    }
    Ok(rootfs.join(resolved))
}

/// A user of the image as `uid` and primary `gid`: numeric, or a name
/// (and group name) looked up in the image's `/etc/passwd` and `/etc/group`.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, Option<u32>), String> {
    let (name, group) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let lookup = |file: &str, key: &str| -> Option<(u32, Option<u32>)> {
        let text = std::fs::read_to_string(rootfs.join(file)).ok()?;
        text.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&key)).then(|| {
                (
                    fields.get(2).and_then(|f| f.parse().ok()).unwrap_or(0),
                    fields.get(3).and_then(|f| f.parse().ok()),
                )
            })
        })
    };
    let (uid, primary) = match name.parse::<u32>() {
        Ok(uid) => {
            let primary = std::fs::read_to_string(rootfs.join("etc/passwd"))
                .ok()
                .and_then(|text| {
                    text.lines().find_map(|line| {
                        let f: Vec<&str> = line.split(':').collect();
                        (f.get(2) == Some(&name)).then(|| f.get(3)?.parse().ok())?
                    })
                });
            (uid, primary)
        }
        Err(_) => lookup("etc/passwd", name)
            .ok_or_else(|| format!("user {name} is not in the image's /etc/passwd"))?,
    };
    let gid = match group {
        None => primary,
        Some(g) => Some(match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                lookup("etc/group", g)
                    .ok_or_else(|| format!("group {g} is not in the image's /etc/group"))?
                    .0
            }
        }),
    };
    Ok((uid, gid))
}

/// `program` as a path inside the image: as given when it has a slash,
/// else the first executable file of that name in `path_var`'s
/// directories, looked up inside `rootfs` (a runtime resolves the
/// command in the container, not on the host).
pub fn resolve_program(rootfs: &Path, program: &str, path_var: &str) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('/') {
        return Ok(program.to_string());
    }
    path_var
        .split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| format!("{}/{program}", d.trim_end_matches('/')))
        .find(|candidate| {
            std::fs::metadata(rootfs.join(candidate.trim_start_matches('/')))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| format!("executable file {program:?} not found in $PATH of the image"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(name: &str) -> LocalImage {
        LocalImage {
            name: name.into(),
            layers: vec![],
            config: ImageConfig::default(),
        }
    }

    #[test]
    fn names_match_with_their_tag_or_latest() {
        let i = image("ghcr.io/alluxio-rs/alluxio:0.1.0");
        assert!(i.is_named("ghcr.io/alluxio-rs/alluxio:0.1.0"));
        assert!(!i.is_named("ghcr.io/alluxio-rs/alluxio:0.2.0"));
        assert!(!i.is_named("ghcr.io/alluxio-rs/alluxio"));
        assert!(image("localhost:5000/x:latest").is_named("localhost:5000/x"));
    }

    #[test]
    fn links_resolve_inside_the_root_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("run")).unwrap();
        std::fs::create_dir_all(root.join("var")).unwrap();
        std::os::unix::fs::symlink("/run", root.join("var/run")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("run/up")).unwrap();
        assert_eq!(
            path_in_rootfs(root, "/var/run/secrets/x").unwrap(),
            root.join("run/secrets/x")
        );
        // Neither `..` nor a link climbs out of the root.
        assert_eq!(
            path_in_rootfs(root, "/../../etc").unwrap(),
            root.join("etc")
        );
        assert_eq!(
            path_in_rootfs(root, "/run/up/etc").unwrap(),
            root.join("etc")
        );
    }

    #[test]
    fn users_resolve_by_number_or_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nalluxio:x:65532:65533::/opt:/bin/false\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\ncache:x:700:\n").unwrap();
        assert_eq!(
            resolve_user(dir.path(), "65532").unwrap(),
            (65532, Some(65533))
        );
        assert_eq!(
            resolve_user(dir.path(), "alluxio").unwrap(),
            (65532, Some(65533))
        );
        assert_eq!(
            resolve_user(dir.path(), "alluxio:cache").unwrap(),
            (65532, Some(700))
        );
        assert_eq!(resolve_user(dir.path(), "1234:5").unwrap(), (1234, Some(5)));
        assert!(resolve_user(dir.path(), "nobody").is_err());
    }
}
