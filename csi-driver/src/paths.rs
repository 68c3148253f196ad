//! Which local paths the CO may name: absolute, without `..`, inside one
//! of the allowed roots (the kubelet's directory), also after following
//! symlinks, so a request can never mount over or reveal anything else.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("{field} is required")]
    Missing { field: &'static str },
    #[error("{field} {path:?} must be an absolute path without '..'")]
    NotClean { field: &'static str, path: String },
    #[error("{field} {path:?} is outside the allowed roots {roots:?}")]
    OutsideRoots {
        field: &'static str,
        path: String,
        roots: Vec<PathBuf>,
    },
}

/// Checks `raw` (the CO's `field`) against `roots`.
pub fn allowed_path(
    field: &'static str,
    raw: &str,
    roots: &[PathBuf],
) -> Result<PathBuf, PathError> {
    if raw.is_empty() {
        return Err(PathError::Missing { field });
    }
    let path = Path::new(raw);
    let clean = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !clean {
        return Err(PathError::NotClean {
            field,
            path: raw.to_string(),
        });
    }
    // Resolve symlinks in the part that exists; the rest is created by us.
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut resolved = existing.canonicalize().unwrap_or(existing);
    for name in rest.into_iter().rev() {
        resolved.push(name);
    }
    let inside = |p: &Path| {
        roots.iter().any(|root| {
            let root = root.canonicalize().unwrap_or_else(|_| root.clone());
            p.starts_with(&root) && p != root
        })
    };
    if inside(&resolved) {
        Ok(path.to_path_buf())
    } else {
        Err(PathError::OutsideRoots {
            field,
            path: raw.to_string(),
            roots: roots.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_be_clean_and_stay_inside_the_roots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("kubelet");
        std::fs::create_dir_all(root.join("pods")).unwrap();
        let roots = vec![root.clone()];
        let ok = root.join("pods/a/volume");
        assert_eq!(
            allowed_path("target_path", ok.to_str().unwrap(), &roots),
            Ok(ok.clone())
        );
        assert!(matches!(
            allowed_path("target_path", "", &roots),
            Err(PathError::Missing { .. })
        ));
        let traversal = format!("{}/pods/../../etc", root.display());
        assert!(matches!(
            allowed_path("target_path", &traversal, &roots),
            Err(PathError::NotClean { .. })
        ));
        assert!(matches!(
            allowed_path("target_path", "relative/path", &roots),
            Err(PathError::NotClean { .. })
        ));
        assert!(matches!(
            allowed_path("target_path", "/etc", &roots),
            Err(PathError::OutsideRoots { .. })
        ));
        // A symlink inside the root that points out of it.
        std::os::unix::fs::symlink(dir.path(), root.join("pods/escape")).unwrap();
        let through = root.join("pods/escape/x");
        assert!(matches!(
            allowed_path("target_path", through.to_str().unwrap(), &roots),
            Err(PathError::OutsideRoots { .. })
        ));
    }
}
