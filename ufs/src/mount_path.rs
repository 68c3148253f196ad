//! Where a UFS path lies inside a mount: the one rule every component uses
//! to turn a full UFS URI (as the master records it) into the path relative
//! to the mount's URI that an [`crate::UnderFileSystem`] takes.
//!
//! The rule is strict on purpose, since the path may come from a client:
//! the mount's URI must be a prefix ending at a path-component boundary
//! (`s3://b/px/y` is not inside `s3://b/p`), and no component of the rest
//! may be `.` or `..`, so the result can never name anything outside the
//! mount.

use crate::{UfsError, UfsResult};

/// `ufs_path` relative to `mount_uri` ("" for the mount's root itself).
pub fn path_in_mount(ufs_path: &str, mount_uri: &str) -> UfsResult<String> {
    let outside = |why: &str| UfsError::InvalidUri {
        uri: ufs_path.to_string(),
        reason: format!("not inside the mount {mount_uri}: {why}"),
    };
    let base = mount_uri.trim_end_matches('/');
    let rest = match ufs_path.strip_prefix(base) {
        Some("") => return Ok(String::new()),
        Some(rest) if rest.starts_with('/') => rest.trim_start_matches('/'),
        _ => return Err(outside("a different prefix")),
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Ok(String::new());
    }
    if rest
        .split('/')
        .any(|c| c == "." || c == ".." || c.is_empty())
    {
        return Err(outside("`.`, `..` or an empty component"));
    }
    Ok(rest.to_string())
}

#[cfg(test)]
mod tests {
    use super::path_in_mount;

    #[test]
    fn inside_the_mount() {
        assert_eq!(path_in_mount("s3://b/p/x/y", "s3://b/p").unwrap(), "x/y");
        assert_eq!(path_in_mount("s3://b/p/x/y", "s3://b/p/").unwrap(), "x/y");
        assert_eq!(path_in_mount("s3://b/p", "s3://b/p/").unwrap(), "");
        assert_eq!(path_in_mount("s3://b/p/", "s3://b/p").unwrap(), "");
        assert_eq!(path_in_mount("file:///d/a/", "file:///d").unwrap(), "a");
    }

    #[test]
    fn outside_the_mount() {
        for bad in [
            "s3://b/px/y",
            "s3://c/p/y",
            "s3://b/p/../../etc/passwd",
            "s3://b/p/x/../../q",
            "s3://b/p/./x",
            "s3://b/p/x//y",
            "s3://b",
        ] {
            assert!(path_in_mount(bad, "s3://b/p").is_err(), "{bad}");
        }
    }
}
