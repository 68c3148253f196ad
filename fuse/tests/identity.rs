//! The FUSE daemon as a proxy: each system call reaches the master as the
//! process that made it (its uid and gid, by name), so the master's
//! permission checks and the owners it records are that user's, not the
//! daemon's. Two unprivileged users (uids without passwd entries, named by
//! their numbers) work through one mount. Needs root and /dev/fuse.

use alluxio_client::{FileSystem, MasterClient};
use alluxio_common::auth::Role;
use alluxio_fuse::{FuseMetrics, FuseOptions};
use alluxio_testkit::cluster::{start, MIB};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const ALICE: u32 = 4001;
const BOB: u32 = 4002;
/// In alice's group as a supplementary group.
const CAROL: u32 = 4003;

/// Runs `script` with sh as `uid` (primary group the same number, and
/// `groups` as supplementary groups); true on success.
fn sh_in_groups(uid: u32, groups: &[u32], script: &str) -> bool {
    let groups: Vec<libc::gid_t> = groups.to_vec();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    // SAFETY: between fork and exec the hook calls only setgroups(2),
    // setgid(2) and setuid(2), which are async-signal-safe, on memory
    // (`groups`) the closure owns.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setgid(uid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.status().unwrap().success()
}

fn sh_as(uid: u32, script: &str) -> bool {
    sh_in_groups(uid, &[], script)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_call_is_checked_as_the_process_that_made_it() {
    let root = alluxio_testkit::running_as_root();
    if !(root && Path::new("/dev/fuse").exists()) {
        alluxio_testkit::missing_prerequisite::<()>("root and /dev/fuse for FUSE mounts");
        return;
    }
    let c = start(1, 64 * MIB, |_| {}).await;
    // The superuser gives alice a home.
    c.give_directory("/home/alice", &ALICE.to_string()).await;

    // The daemon calls as a proxy; the kernel does not check permissions
    // itself, so every refusal below is the master's.
    let proxy = MasterClient::connect(
        &c.master().rpc_addr.to_string(),
        Duration::from_secs(10),
        c.credentials("alluxio-fuse", Role::Proxy),
    )
    .await
    .unwrap();
    let fs = FileSystem::with_config(proxy, &c.config);
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let point = dir.path().join("mnt");
    std::fs::create_dir(&point).unwrap();
    let options = FuseOptions::parse(&["allow_other", "no_default_permissions"]).unwrap();
    let mount = alluxio_fuse::mount(fs, "/", &point, options, Arc::new(FuseMetrics::default()))
        .await
        .unwrap();
    let home = point.join("home/alice");
    let (home_s, point_s) = (home.display().to_string(), point.display().to_string());

    let result = tokio::task::spawn_blocking(move || {
        (
            sh_as(
                ALICE,
                &format!(
                    "echo mine > {home_s}/notes && mkdir {home_s}/sub && mkdir -m 775 {home_s}/team"
                ),
            ),
            sh_as(BOB, &format!("echo theirs > {home_s}/intrusion")),
            sh_as(BOB, &format!("mkdir {home_s}/bobs")),
            sh_as(BOB, &format!("rm {home_s}/notes")),
            sh_as(ALICE, &format!("mkdir {point_s}/top")),
            sh_as(BOB, &format!("cat {home_s}/notes > /dev/null")),
            // The group bits of alice's 775 directory: carol is in alice's
            // group only as a supplementary group; bob is not at all.
            sh_in_groups(CAROL, &[ALICE], &format!("echo ours > {home_s}/team/carol")),
            sh_as(BOB, &format!("echo ours > {home_s}/team/bob")),
            // A 0600 file: only alice reads it, even with the kernel's
            // permission checks off (the daemon opens as the caller).
            sh_as(
                ALICE,
                &format!("echo secret > {home_s}/secret && chmod 600 {home_s}/secret && cat {home_s}/secret > /dev/null"),
            ),
            sh_as(BOB, &format!("cat {home_s}/secret > /dev/null")),
        )
    })
    .await
    .unwrap();
    let (
        alice_writes,
        bob_writes,
        bob_mkdir,
        bob_rm,
        alice_top,
        bob_reads,
        carol_team,
        bob_team,
        alice_secret,
        bob_secret,
    ) = result;
    assert!(alice_secret, "alice reads her 0600 file");
    assert!(!bob_secret, "bob does not read alice's 0600 file");
    assert!(carol_team, "a supplementary group counts");
    assert!(!bob_team, "no group, no write");
    assert!(alice_writes, "alice writes her home");
    assert!(
        !bob_writes && !bob_mkdir && !bob_rm,
        "bob is refused in alice's home"
    );
    assert!(!alice_top, "/ is the superuser's");
    assert!(bob_reads, "644 lets bob read");

    // What alice made is hers.
    for path in ["/home/alice/notes", "/home/alice/sub"] {
        let status = c.client.get_status(path, None).await.unwrap();
        assert_eq!(status.owner, ALICE.to_string(), "{path}");
        assert_eq!(status.group, ALICE.to_string(), "{path}");
    }
    assert!(c
        .client
        .get_status("/home/alice/intrusion", None)
        .await
        .is_err());
    assert!(c.client.get_status("/home/alice/bobs", None).await.is_err());
    let _ = mount.unmount();
}
