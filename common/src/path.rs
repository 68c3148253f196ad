//! `AlluxioPath`: an absolute, normalised path in the Alluxio namespace.
//!
//! Construction is the only place paths are validated, so every other
//! function can rely on: starts with `/`, no empty, `.` or `..` components,
//! no NUL bytes, no trailing slash (except the root itself).

use crate::error::AlluxioError;
use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlluxioPath(String);

impl AlluxioPath {
    pub fn root() -> Self {
        AlluxioPath("/".to_string())
    }

    /// Validates `raw`. A single trailing slash is accepted and dropped
    /// (`ls /dir/` is common); anything else irregular is refused.
    pub fn new(raw: &str) -> Result<Self, AlluxioError> {
        let bad = |why: &str| AlluxioError::InvalidArgument(format!("Invalid path {raw:?}: {why}"));
        if raw.is_empty() {
            return Err(bad("path is empty"));
        }
        if raw.contains('\0') {
            return Err(bad("path contains a NUL byte"));
        }
        if !raw.starts_with('/') {
            return Err(bad("path must be absolute (start with '/')"));
        }
        if raw == "/" {
            return Ok(Self::root());
        }
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        for component in trimmed[1..].split('/') {
            match component {
                "" => return Err(bad("path has an empty component")),
                "." | ".." => return Err(bad("path may not contain '.' or '..'")),
                _ => {}
            }
        }
        Ok(AlluxioPath(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// Components below the root; empty for the root.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }

    pub fn depth(&self) -> usize {
        self.components().count()
    }

    /// Last component; empty for the root.
    pub fn name(&self) -> &str {
        if self.is_root() {
            ""
        } else {
            self.0.rsplit('/').next().unwrap_or("")
        }
    }

    pub fn parent(&self) -> Option<AlluxioPath> {
        if self.is_root() {
            return None;
        }
        match self.0.rfind('/') {
            Some(0) => Some(Self::root()),
            Some(i) => Some(AlluxioPath(self.0[..i].to_string())),
            None => None,
        }
    }

    /// Appends one component, which must be a valid name.
    pub fn join(&self, name: &str) -> Result<AlluxioPath, AlluxioError> {
        validate_name(name)?;
        if self.is_root() {
            Ok(AlluxioPath(format!("/{name}")))
        } else {
            Ok(AlluxioPath(format!("{}/{name}", self.0)))
        }
    }

    /// True when `self` is `other` or one of its ancestors.
    pub fn is_prefix_of(&self, other: &AlluxioPath) -> bool {
        if self.is_root() || self == other {
            return true;
        }
        other.0.starts_with(&self.0) && other.0.as_bytes().get(self.0.len()) == Some(&b'/')
    }

    /// The part of `self` below `ancestor`, without a leading slash
    /// (empty when they are equal). `None` if `ancestor` is not a prefix.
    pub fn relative_to(&self, ancestor: &AlluxioPath) -> Option<&str> {
        if !ancestor.is_prefix_of(self) {
            return None;
        }
        if ancestor.is_root() {
            Some(&self.0[1..])
        } else if self == ancestor {
            Some("")
        } else {
            Some(&self.0[ancestor.0.len() + 1..])
        }
    }
}

/// Checks one path component (a file or directory name).
pub fn validate_name(name: &str) -> Result<(), AlluxioError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(AlluxioError::InvalidArgument(format!(
            "Invalid file name {name:?}"
        )));
    }
    Ok(())
}

impl fmt::Display for AlluxioPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AlluxioPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_normal_paths() {
        assert_eq!(AlluxioPath::new("/").unwrap().as_str(), "/");
        assert_eq!(AlluxioPath::new("/a/b").unwrap().as_str(), "/a/b");
        assert_eq!(AlluxioPath::new("/a/b/").unwrap().as_str(), "/a/b");
        assert_eq!(AlluxioPath::new("/a b/ü").unwrap().name(), "ü");
    }

    #[test]
    fn refuses_bad_paths() {
        for bad in [
            "", "a/b", "/a//b", "/a/../b", "/a/./b", "/..", "/a\0b", "//",
        ] {
            let err = AlluxioPath::new(bad).unwrap_err();
            assert!(matches!(err, AlluxioError::InvalidArgument(_)), "{bad:?}");
        }
    }

    #[test]
    fn parent_name_and_prefixes() {
        let p = AlluxioPath::new("/a/b/c").unwrap();
        assert_eq!(p.parent().unwrap().as_str(), "/a/b");
        assert_eq!(
            AlluxioPath::new("/a").unwrap().parent().unwrap(),
            AlluxioPath::root()
        );
        assert_eq!(p.name(), "c");
        assert_eq!(p.depth(), 3);
        let a = AlluxioPath::new("/a").unwrap();
        assert!(a.is_prefix_of(&p));
        assert!(!AlluxioPath::new("/a/b/cd").unwrap().is_prefix_of(&p));
        assert!(!AlluxioPath::new("/ab").unwrap().is_prefix_of(&p));
        assert_eq!(p.relative_to(&a), Some("b/c"));
        assert_eq!(p.relative_to(&AlluxioPath::root()), Some("a/b/c"));
        assert_eq!(p.relative_to(&p), Some(""));
        assert!(a.join("..").is_err());
    }
}
