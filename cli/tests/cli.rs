//! The `alluxio` binary end to end: a master process and the fs/fsadmin
//! commands a user types.

mod common;

use common::{MasterProcess, BIN};
use serde_json::Value;

#[test]
fn fs_commands_work_like_alluxio() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(dir.path(), &[]);
    assert!(m
        .ok(&["fs", "mkdir", "-p", "/data/raw"])
        .contains("Successfully created directory /data/raw"));
    assert!(m.ufs.join("data/raw").is_dir());
    m.ok(&["fs", "touch", "/data/raw/empty.csv"]);
    assert!(
        m.ufs.join("data/raw/empty.csv").is_file(),
        "touch persists with CACHE_THROUGH"
    );
    std::fs::write(m.ufs.join("data/from-ufs.txt"), "hello alluxio").unwrap();

    // Added behind the cluster's back: seen once a sync is asked for.
    assert!(!m.ok(&["fs", "ls", "/data"]).contains("from-ufs.txt"));
    let ls = m.ok(&["fs", "ls", "-R", "--sync-interval", "0", "/data"]);
    assert!(
        ls.contains("/data/raw/empty.csv") && ls.contains("/data/from-ufs.txt"),
        "{ls}"
    );
    assert!(
        ls.lines()
            .any(|l| l.starts_with("drwxr-xr-x") && l.contains("DIR /data/raw")),
        "{ls}"
    );
    assert!(ls.contains("PERSISTED"));
    let human = m.ok(&["fs", "ls", "-h", "/data"]);
    assert!(human.contains("13B"), "{human}");

    let stat: Value =
        serde_json::from_str(&m.ok(&["fs", "--json", "stat", "/data/from-ufs.txt"])).unwrap();
    assert_eq!(stat["length"], 13);
    assert_eq!(stat["persistenceState"], "PERSISTED");
    assert!(m
        .ok(&["fs", "stat", "/data"])
        .contains("/data is a directory path."));

    m.ok(&["fs", "mv", "/data/from-ufs.txt", "/data/raw/moved.txt"]);
    assert!(m.ufs.join("data/raw/moved.txt").is_file());

    let count = m.ok(&["fs", "count", "/data"]);
    assert!(
        count
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            == ["2", "2", "13"],
        "{count}"
    );
    let du: Value = serde_json::from_str(&m.ok(&["fs", "du", "--json", "/data"])).unwrap();
    assert_eq!(du["size"], 13);
    assert!(m.ok(&["fs", "du", "-s", "-h", "/data"]).contains("13B"));

    m.ok(&["fs", "chmod", "-R", "750", "/data"]);
    m.ok(&["fs", "chown", "bob:staff", "/data/raw/moved.txt"]);
    m.ok(&["fs", "pin", "/data/raw/moved.txt"]);
    m.ok(&["fs", "setTtl", "--action", "free", "/data/raw", "1d"]);
    let stat: Value =
        serde_json::from_str(&m.ok(&["fs", "stat", "--json", "/data/raw/moved.txt"])).unwrap();
    assert_eq!(
        (
            stat["owner"].as_str(),
            stat["group"].as_str(),
            stat["mode"].as_u64()
        ),
        (Some("bob"), Some("staff"), Some(0o750))
    );
    assert_eq!(stat["pinned"], true);
    let raw: Value = serde_json::from_str(&m.ok(&["fs", "stat", "--json", "/data/raw"])).unwrap();
    assert_eq!(
        (raw["ttlMs"].as_i64(), raw["ttlAction"].as_str()),
        (Some(86_400_000), Some("FREE"))
    );
    m.ok(&["fs", "unsetTtl", "/data/raw"]);
    m.ok(&["fs", "unpin", "/data/raw/moved.txt"]);

    // rm: refused without -R, then Alluxio-only, then for real.
    assert!(m.fails(&["fs", "rm", "/data/raw"]).contains("non-empty"));
    m.ok(&["fs", "rm", "--alluxioOnly", "/data/raw/moved.txt"]);
    assert!(
        m.ufs.join("data/raw/moved.txt").exists(),
        "--alluxioOnly keeps UFS data"
    );
    m.ok(&["fs", "rm", "-R", "/data"]);
    assert!(!m.ufs.join("data").exists());
}

#[test]
fn mounts_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("a.parquet"), vec![1u8; 2048]).unwrap();
    let m = MasterProcess::start(dir.path(), &[]);
    m.ok(&["fs", "mkdir", "/mnt"]);
    let uri = format!("file://{}", other.path().display());
    m.ok(&[
        "fs",
        "mount",
        "--readonly",
        "--option",
        "request_timeout=10s",
        "/mnt/other",
        &uri,
    ]);
    let table = m.ok(&["fs", "mount"]);
    assert!(
        table.contains(&format!("{uri}  on  /mnt/other  (local, readonly=true")),
        "{table}"
    );
    let json: Value = serde_json::from_str(&m.ok(&["fs", "mount", "--json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert!(m
        .ok(&["fs", "ls", "/mnt/other"])
        .contains("/mnt/other/a.parquet"));
    assert!(m
        .fails(&["fs", "touch", "/mnt/other/new"])
        .contains("read-only"));
    assert!(m
        .fails(&["fs", "mount", "/mnt/other", &uri])
        .contains("already exists"));
    assert!(m
        .fails(&["fs", "mount", "/mnt/x", "bogus"])
        .contains("invalid UFS URI"));
    assert!(m
        .fails(&["fs", "mount", "/mnt/x", "file:///does/not/exist"])
        .contains("unreachable"));
    assert!(m
        .fails(&["fs", "mount", "--option", "noequals", "/mnt/x", &uri])
        .contains("KEY=VALUE"));
    m.ok(&["fs", "updateMount", "/mnt/other"]);
    m.ok(&["fs", "touch", "/mnt/other/new"]);
    assert!(other.path().join("new").exists());
    m.ok(&["fs", "unmount", "/mnt/other"]);
    assert!(m
        .fails(&["fs", "unmount", "/mnt/other"])
        .contains("not a mount point"));
}

#[test]
fn errors_are_clear_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(dir.path(), &[]);
    assert!(m
        .fails(&["fs", "ls", "/missing"])
        .contains("Path /missing does not exist"));
    assert!(m
        .fails(&["fs", "ls", "relative/path"])
        .contains("must be absolute"));
    assert!(m.fails(&["fs", "mkdir", "/a/b"]).contains("does not exist"));
    m.ok(&["fs", "mkdir", "/a"]);
    assert!(m.fails(&["fs", "mkdir", "/a"]).contains("already exists"));
    assert!(m
        .fails(&["fs", "mv", "/a", "/a/inside"])
        .contains("into itself"));
    assert!(m
        .fails(&["fs", "chmod", "999", "/a"])
        .contains("invalid mode"));

    // Unknown configuration keys name the key.
    let conf = dir.path().join("alluxio.yaml");
    std::fs::write(&conf, "master:\n  rpc_prot: 1\n").unwrap();
    let out = std::process::Command::new(BIN)
        .args(["--conf", conf.to_str().unwrap(), "fs", "ls", "/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rpc_prot"), "{err}");

    // No master there: a clear error, quickly (bounded retry).
    let port = common::free_port();
    let out = std::process::Command::new(BIN)
        .args([
            "--master",
            &format!("127.0.0.1:{port}"),
            "-D",
            "user.rpc_retry_timeout=1s",
            "fs",
            "ls",
            "/",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the Alluxio master"));

    // A second master on the same port fails with the address in the error.
    let out = std::process::Command::new(BIN)
        .args([
            "master",
            "--hostname",
            "127.0.0.1",
            "--port",
            &m.rpc_port.to_string(),
        ])
        .arg("--journal-dir")
        .arg(dir.path().join("j2"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("127.0.0.1:{}", m.rpc_port)));
}

#[test]
fn fsadmin_report_and_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = MasterProcess::start(dir.path(), &[]);
    m.ok(&["fs", "mkdir", "/r"]);
    let report = m.ok(&["fsadmin", "report"]);
    for needle in [
        "Alluxio cluster summary:",
        "Live Workers: 0",
        "Journal:",
        "Last Sequence:",
    ] {
        assert!(report.contains(needle), "{report}");
    }
    let json: Value = serde_json::from_str(&m.ok(&["fsadmin", "report", "--json"])).unwrap();
    assert_eq!(json["directories"], 2);
    assert!(json["journal"]["lastSequence"].as_u64().unwrap() >= 3);
    let status = m.terminate();
    assert!(
        status.success(),
        "SIGTERM should stop the master cleanly: {status}"
    );
    m.restart();
    assert!(m.ok(&["fs", "ls", "/"]).contains("/r"));
}

/// Runs `alluxio <args>` against `m` with only `token` as credentials (no
/// key file it could mint from).
fn as_token(m: &MasterProcess, token: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .env("ALLUXIO_SECURITY_KEY_FILE", "/nonexistent/cluster.key")
        .env("ALLUXIO_TOKEN", token)
        .args(["--master", &m.address()])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn tokens_name_their_user_and_nothing_else_gets_in() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(dir.path(), &[]);
    // The key holder (the superuser) gives bob a directory and a token;
    // what bob creates there is his.
    m.ok(&["fs", "mkdir", "/bob"]);
    m.ok(&["fs", "chown", "bob:staff", "/bob"]);
    let token = m.ok(&[
        "fsadmin", "token", "issue", "--user", "bob", "--group", "staff",
    ]);
    let token = token.trim();
    let out = as_token(&m, token, &["fs", "mkdir", "/bob/data"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ls = m.ok(&["fs", "ls", "/bob"]);
    assert!(
        ls.lines()
            .any(|l| l.contains("bob") && l.contains("staff") && l.contains("/bob/data")),
        "{ls}"
    );
    // Outside it the permission bits say no: / is the superuser's, 755.
    let out = as_token(&m, token, &["fs", "mkdir", "/elsewhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("lacks write"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An ordinary user may not change the mount table.
    let out = as_token(&m, token, &["fs", "mount", "/etc", "file:///etc"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("permission denied"));
    // Without credentials, or with a forged token: refused, with a hint.
    let out = as_token(&m, "", &["fs", "ls", "/"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ALLUXIO_TOKEN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let forged = format!("{}x", &token[..token.len() - 1]);
    let out = as_token(&m, &forged, &["fs", "ls", "/"]);
    assert_eq!(out.status.code(), Some(1));
    // A token file works like the variable.
    let file = dir.path().join("bob.token");
    std::fs::write(&file, token).unwrap();
    let out = std::process::Command::new(BIN)
        .env("ALLUXIO_SECURITY_KEY_FILE", "/nonexistent/cluster.key")
        .env_remove("ALLUXIO_TOKEN")
        .args(["--master", &m.address(), "--token-file"])
        .arg(&file)
        .args(["fs", "ls", "/bob"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
