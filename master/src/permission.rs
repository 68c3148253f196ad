//! POSIX permission checks over the inode tree, as HDFS and Alluxio do
//! them (`alluxio.security.authorization.permission.enabled`): the owner,
//! group or other bits of each inode, whichever class the caller falls in;
//! execute on every ancestor directory; write and execute on the parent to
//! create or remove an entry; and the sticky bit, under which only the
//! entry's owner or the directory's owner may remove or rename an entry.
//! The superuser and the services are let through before these checks
//! (`service::access`); here it is pure functions of the tree.

use crate::inode::{Inode, InodeTree};
use alluxio_common::AlluxioPath;

pub const READ: u16 = 0o4;
pub const WRITE: u16 = 0o2;
pub const EXECUTE: u16 = 0o1;
const STICKY: u16 = 0o1000;

/// Who asks.
pub struct Subject<'a> {
    pub user: &'a str,
    pub groups: &'a [String],
}

/// What an operation on a path needs besides execute on its ancestors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Only to reach it (getStatus).
    Traverse,
    /// These bits on the path itself, if it exists (list: read and
    /// execute; complete, free, pin: write).
    Target(u16),
    /// Read and execute on a directory to list it (a file: only to reach
    /// it).
    List,
    /// Write and execute on the deepest existing ancestor (create, also
    /// with `recursive`: the first directory that must change).
    CreateIn,
    /// Write and execute on the parent, and the sticky-bit rule (delete,
    /// the source of a rename).
    RemoveFromParent,
    /// To be the path's owner (chmod, chgrp).
    Owner,
}

/// Why a check failed, for the caller.
#[derive(Debug, PartialEq, Eq)]
pub struct Denied(pub String);

/// The rwx bits of `inode`'s mode that apply to `who`.
pub fn class_bits(inode: &Inode, who: &Subject) -> u16 {
    class_bits_of(&inode.owner, &inode.group, inode.mode, who)
}

/// The rwx bits of `mode` that apply to `who`, for an entry owned by
/// `owner` and `group`.
pub fn class_bits_of(owner: &str, group: &str, mode: u16, who: &Subject) -> u16 {
    if owner == who.user {
        (mode >> 6) & 7
    } else if who.groups.iter().any(|g| g == group) {
        (mode >> 3) & 7
    } else {
        mode & 7
    }
}

fn bits_name(bits: u16) -> String {
    let mut s = String::new();
    for (bit, name) in [(READ, "read"), (WRITE, "write"), (EXECUTE, "execute")] {
        if bits & bit != 0 {
            if !s.is_empty() {
                s.push('+');
            }
            s.push_str(name);
        }
    }
    s
}

fn require(tree: &InodeTree, id: u64, who: &Subject, bits: u16) -> Result<(), Denied> {
    let Some(inode) = tree.get(id) else {
        return Ok(()); // Vanished meanwhile: the operation will say so.
    };
    if class_bits(inode, who) & bits == bits {
        return Ok(());
    }
    let path = tree
        .path_of(id)
        .map_or_else(|| format!("inode {id}"), |p| p.to_string());
    Err(Denied(format!(
        "user {} lacks {} permission on {path} (owner {}, group {}, mode {:o})",
        who.user,
        bits_name(bits),
        inode.owner,
        inode.group,
        inode.mode & 0o7777
    )))
}

/// Whether `who` may do what `need` says at `path`.
pub fn check(
    tree: &InodeTree,
    path: &AlluxioPath,
    who: &Subject,
    need: Need,
) -> Result<(), Denied> {
    let ids = tree.resolve_prefix(path);
    let exists = ids.len() == path.depth() + 1;
    // Ancestors: every resolved component but the target itself.
    let ancestors = if exists {
        &ids[..ids.len() - 1]
    } else {
        &ids[..]
    };
    for &id in ancestors {
        require(tree, id, who, EXECUTE)?;
    }
    let target = exists.then(|| *ids.last().expect("exists"));
    match need {
        Need::Traverse => Ok(()),
        Need::Target(bits) => match target {
            Some(id) => require(tree, id, who, bits),
            None => Ok(()),
        },
        Need::List => match target.and_then(|id| tree.get(id)) {
            Some(inode) if inode.is_dir() => require(tree, inode.id, who, READ | EXECUTE),
            _ => Ok(()),
        },
        Need::CreateIn => match ancestors.last() {
            Some(&deepest) => require(tree, deepest, who, WRITE | EXECUTE),
            None => Ok(()),
        },
        Need::RemoveFromParent => {
            let (Some(id), Some(&parent)) = (target, ancestors.last()) else {
                return Ok(()); // The root, or nothing there: the operation says so.
            };
            require(tree, parent, who, WRITE | EXECUTE)?;
            let (Some(entry), Some(dir)) = (tree.get(id), tree.get(parent)) else {
                return Ok(());
            };
            let sticky = dir.mode & STICKY != 0;
            if sticky && *entry.owner != *who.user && *dir.owner != *who.user {
                return Err(Denied(format!(
                    "{path}: the sticky bit on its directory lets only {} or {} remove it",
                    entry.owner, dir.owner
                )));
            }
            Ok(())
        }
        Need::Owner => match target.and_then(|id| tree.get(id)) {
            Some(inode) if *inode.owner != *who.user => Err(Denied(format!(
                "{path}: only its owner {} may change it",
                inode.owner
            ))),
            _ => Ok(()),
        },
    }
}

#[cfg(test)]
#[path = "permission_tests.rs"]
mod tests;
