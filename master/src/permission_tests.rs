//! Each rule of `permission`, each class and each bit.

use super::*;
use crate::inode::{DirectoryData, FileData, InodeKind, Persistence, ROOT_ID};

/// Inserts inode `id` named `name` under `parent`, with (owner, group,
/// mode).
fn inode(
    tree: &mut InodeTree,
    id: u64,
    parent: u64,
    name: &str,
    attrs: (&str, &str, u16),
    is_dir: bool,
) {
    let (owner, group, mode) = attrs;
    let kind = if is_dir {
        InodeKind::Directory(DirectoryData::default())
    } else {
        InodeKind::File(FileData {
            length: 0,
            block_size: 1 << 20,
            completed: true,
            ufs_mtime_ms: 0,
        })
    };
    let inode = Inode {
        id,
        parent_id: parent,
        name: name.into(),
        owner: tree.intern(owner),
        group: tree.intern(group),
        mode,
        persistence: Persistence::Persisted,
        pinned: false,
        ttl_action: 0,
        creation_time_ms: 0,
        mtime_ms: 0,
        ttl_ms: -1,
        kind,
    };
    tree.insert(inode).unwrap();
}

/// `/` (root 755), `/home` (root 755), `/home/alice` (alice:staff 750),
/// `/home/alice/notes` (alice:staff 640), `/tmp` (root 1777) holding
/// `/tmp/bobs` (bob:bob 644).
fn tree() -> InodeTree {
    let mut t = InodeTree::default();
    inode(&mut t, ROOT_ID, 0, "", ("root", "root", 0o755), true);
    inode(&mut t, 2, ROOT_ID, "home", ("root", "root", 0o755), true);
    inode(&mut t, 3, 2, "alice", ("alice", "staff", 0o750), true);
    inode(&mut t, 4, 3, "notes", ("alice", "staff", 0o640), false);
    inode(&mut t, 5, ROOT_ID, "tmp", ("root", "root", 0o1777), true);
    inode(&mut t, 6, 5, "bobs", ("bob", "bob", 0o644), false);
    t
}

fn p(s: &str) -> AlluxioPath {
    AlluxioPath::new(s).unwrap()
}

fn who<'a>(user: &'a str, groups: &'a [String]) -> Subject<'a> {
    Subject { user, groups }
}

#[test]
fn owner_group_and_other_bits_apply_to_their_class() {
    let t = tree();
    let staff = ["staff".to_string()];
    let none: [String; 0] = [];
    let notes = p("/home/alice/notes");
    // Owner: rw-.
    assert!(check(&t, &notes, &who("alice", &none), Need::Target(READ | WRITE)).is_ok());
    assert!(check(&t, &notes, &who("alice", &none), Need::Target(EXECUTE)).is_err());
    // Group: r-- (and r-x on the directory to get there).
    assert!(check(&t, &notes, &who("carol", &staff), Need::Target(READ)).is_ok());
    assert!(check(&t, &notes, &who("carol", &staff), Need::Target(WRITE)).is_err());
    // Other: cannot even traverse alice's 750 directory.
    let err = check(&t, &notes, &who("mallory", &none), Need::Traverse).unwrap_err();
    assert!(
        err.0.contains("execute") && err.0.contains("/home/alice"),
        "{}",
        err.0
    );
}

#[test]
fn creating_needs_write_and_execute_on_the_deepest_existing_directory() {
    let t = tree();
    let none: [String; 0] = [];
    let staff = ["staff".to_string()];
    assert!(check(
        &t,
        &p("/home/alice/new"),
        &who("alice", &none),
        Need::CreateIn
    )
    .is_ok());
    // A group member may read alice's directory but not write it.
    assert!(check(
        &t,
        &p("/home/alice/new"),
        &who("carol", &staff),
        Need::CreateIn
    )
    .is_err());
    // Recursive: /home is the first directory that changes.
    assert!(check(&t, &p("/home/x/y/z"), &who("alice", &none), Need::CreateIn).is_err());
    assert!(check(&t, &p("/tmp/x/y"), &who("alice", &none), Need::CreateIn).is_ok());
}

#[test]
fn the_sticky_bit_keeps_others_from_removing_entries() {
    let t = tree();
    let none: [String; 0] = [];
    // /tmp is world-writable but sticky: only bob (or root, the owner of
    // /tmp) may remove bob's file.
    assert!(check(
        &t,
        &p("/tmp/bobs"),
        &who("bob", &none),
        Need::RemoveFromParent
    )
    .is_ok());
    assert!(check(
        &t,
        &p("/tmp/bobs"),
        &who("root", &none),
        Need::RemoveFromParent
    )
    .is_ok());
    let err = check(
        &t,
        &p("/tmp/bobs"),
        &who("alice", &none),
        Need::RemoveFromParent,
    )
    .unwrap_err();
    assert!(err.0.contains("sticky"), "{}", err.0);
    // Without write on the parent, not even the owner of the entry.
    assert!(check(
        &t,
        &p("/home/alice"),
        &who("alice", &none),
        Need::RemoveFromParent
    )
    .is_err());
}

#[test]
fn only_the_owner_changes_mode_and_group() {
    let t = tree();
    let none: [String; 0] = [];
    assert!(check(&t, &p("/tmp/bobs"), &who("bob", &none), Need::Owner).is_ok());
    assert!(check(&t, &p("/tmp/bobs"), &who("alice", &none), Need::Owner).is_err());
    // A missing path is not a permission matter (the operation says
    // NotFound), as long as the caller may look there.
    assert!(check(&t, &p("/tmp/none"), &who("alice", &none), Need::Owner).is_ok());
}
