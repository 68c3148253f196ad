//! `alluxio local` run twice on one data directory: the second run serves
//! the root UFS the journal records, refuses a different `--ufs` with a
//! message that says how to start afresh, and `--format` does.

mod common;

use common::{cli, free_port, local_command, BIN};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Starts `alluxio local` on free ports; returns the child and the banner's
/// "under store" line once it is up, or the exit status and stderr when
/// it refuses to start.
fn local(data_dir: &Path, extra: &[&str]) -> Result<(Child, String), (i32, String)> {
    local_on_port(data_dir, free_port(), extra)
}

/// [`local`] with the master on `master_port`.
fn local_on_port(
    data_dir: &Path,
    master_port: u16,
    extra: &[&str],
) -> Result<(Child, String), (i32, String)> {
    let mut child = local_command(data_dir, master_port, extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(Ok(line)) = stdout.next() {
        if let Some(ufs) = line.trim().strip_prefix("under store ") {
            // Keep reading, so that the rest of the banner is not a write
            // into a closed pipe.
            std::thread::spawn(move || stdout.for_each(drop));
            return Ok((child, ufs.to_string()));
        }
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    Err((status.code().unwrap_or(-1), stderr))
}

fn stop(mut child: Child) {
    alluxio_testkit::signal(child.id(), libc::SIGTERM);
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_second_run_uses_or_refuses_what_the_journal_records() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first_ufs = dir.path().join("first");
    let other_ufs = dir.path().join("other");
    std::fs::create_dir_all(&other_ufs).unwrap();
    let first_uri = format!("file://{}", first_ufs.display());
    let other_uri = format!("file://{}", other_ufs.display());

    let (child, shown) = local(&data, &["--ufs", first_ufs.to_str().unwrap()]).unwrap();
    assert_eq!(shown, first_uri);
    stop(child);

    // No --ufs: the recorded root, not the default directory.
    let (child, shown) = local(&data, &[]).unwrap();
    assert_eq!(shown, first_uri);
    stop(child);

    // Another --ufs is refused, naming both and the way out.
    let (code, stderr) = local(&data, &["--ufs", &other_uri]).unwrap_err();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&first_uri) && stderr.contains(&other_uri),
        "{stderr}"
    );
    assert!(
        stderr.contains("--format") && stderr.contains("--data-dir"),
        "{stderr}"
    );

    // --format starts afresh with the new root, keeping the old UFS.
    std::fs::write(first_ufs.join("kept.txt"), "kept").unwrap();
    let (child, shown) = local(&data, &["--ufs", &other_uri, "--format"]).unwrap();
    assert_eq!(shown, other_uri);
    stop(child);
    assert!(first_ufs.join("kept.txt").is_file());
}

#[test]
fn job_load_warms_a_directory_and_fs_load_is_the_same_job() {
    let dir = tempfile::tempdir().unwrap();
    let (data, ufs) = (dir.path().join("data"), dir.path().join("ufs"));
    std::fs::create_dir_all(ufs.join("set/deeper")).unwrap();
    for i in 0..5 {
        let name = if i == 4 {
            "set/deeper/last".to_string()
        } else {
            format!("set/f{i}")
        };
        std::fs::write(ufs.join(name), vec![i as u8; 3 << 20]).unwrap();
    }
    let port = free_port();
    let (child, _) = local_on_port(&data, port, &["--ufs", ufs.to_str().unwrap()]).unwrap();

    let out = cli(&data, port, &["job", "load", "/set", "--verify", "--json"]).unwrap();
    let job: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(job["state"], "SUCCEEDED", "{job}");
    assert_eq!(job["filesDone"], 5);
    assert_eq!(job["bytesFetched"], 15 << 20);
    assert_eq!(job["percent"], 100);

    let listed: serde_json::Value =
        serde_json::from_str(&cli(&data, port, &["job", "ls", "--json"]).unwrap()).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let id = job["jobId"].to_string();
    let stat = cli(&data, port, &["job", "stat", &id]).unwrap();
    assert!(
        stat.contains("SUCCEEDED") && stat.contains("/set"),
        "{stat}"
    );

    // `fs load` runs the same kind of job; all is cached, nothing fetched.
    let out = cli(&data, port, &["fs", "load", "/set"]).unwrap();
    assert!(
        out.contains("loaded: 5 files") && out.contains("(0B fetched"),
        "{out}"
    );
    let out = cli(&data, port, &["fs", "load", "--local", "/set/f1"]).unwrap();
    assert!(out.contains("loaded: 1 files"), "{out}");

    let err = cli(&data, port, &["job", "stat", "999"]).unwrap_err();
    assert!(err.contains("job 999 does not exist"), "{err}");
    let err = cli(&data, port, &["job", "load", "/missing"]).unwrap_err();
    assert!(err.contains("/missing"), "{err}");
    let err = cli(&data, port, &["job", "load", "/set", "--bandwidth", "fast"]).unwrap_err();
    assert!(err.contains("invalid byte size"), "{err}");

    // A metadata load lists the tree from the UFS and caches nothing.
    std::fs::create_dir_all(ufs.join("meta/a/b")).unwrap();
    for name in ["meta/x", "meta/a/y", "meta/a/b/z"] {
        std::fs::write(ufs.join(name), b"12345").unwrap();
    }
    let out = cli(&data, port, &["job", "loadMetadata", "/meta", "--json"]).unwrap();
    let job: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(job["state"], "SUCCEEDED", "{job}");
    assert_eq!(job["metadataOnly"], true);
    assert_eq!(
        (job["filesDone"].as_u64(), job["bytesTotal"].as_u64()),
        (Some(3), Some(15))
    );
    assert_eq!(job["bytesFetched"], 0);
    let stat = cli(&data, port, &["job", "stat", &job["jobId"].to_string()]).unwrap();
    assert!(stat.contains("loadMetadata /meta"), "{stat}");
    let listed = cli(
        &data,
        port,
        &["fs", "--sync-interval", "-1", "ls", "-R", "/meta"],
    )
    .unwrap();
    assert!(
        listed.contains("/meta/a/b/z") && listed.contains("0%"),
        "{listed}"
    );
    let out = cli(&data, port, &["job", "loadMetadata", "/meta"]).unwrap();
    assert!(out.contains("metadata of 3 files loaded"), "{out}");

    // A free job drops what the loads cached.
    let out = cli(&data, port, &["job", "free", "/set", "--json"]).unwrap();
    let job: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(job["state"], "SUCCEEDED", "{job}");
    assert_eq!(
        (job["kind"].as_str(), job["filesDone"].as_u64()),
        (Some("free"), Some(5))
    );
    assert_eq!(job["bytesDone"], 15 << 20, "{job}");
    // The workers drop the blocks at their next heartbeat; then a second
    // free finds nothing cached.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while cli(&data, port, &["fs", "ls", "-R", "/set"])
        .unwrap()
        .contains("100%")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the blocks were never freed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = cli(&data, port, &["job", "free", "/set"]).unwrap();
    assert!(
        out.contains("/set: 5 files freed (0B were cached)"),
        "{out}"
    );
    stop(child);
}

/// `alluxio` run on a terminal (util-linux `script` gives it one): what
/// the terminal showed, stdout and stderr together.
fn cli_on_a_terminal(data: &Path, port: u16, args: &str) -> String {
    // Blocks smaller than the test cluster's 16 MiB cache.
    let command = format!("{BIN} --master 127.0.0.1:{port} -D user.block_size=4MiB {args}");
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env(
            "ALLUXIO_SECURITY_KEY_FILE",
            data.join("security/cluster.key"),
        )
        .output()
        .expect("util-linux's script");
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{shown}");
    shown
}

#[test]
fn copies_show_a_progress_bar_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let (data, ufs, local_dir) = (
        dir.path().join("data"),
        dir.path().join("ufs"),
        dir.path().join("local"),
    );
    std::fs::create_dir_all(&ufs).unwrap();
    std::fs::create_dir_all(local_dir.join("sub")).unwrap();
    for name in ["a", "b", "sub/c"] {
        std::fs::write(local_dir.join(name), vec![3u8; 1 << 20]).unwrap();
    }
    let port = free_port();
    let (child, _) = local_on_port(&data, port, &["--ufs", ufs.to_str().unwrap()]).unwrap();

    let shown = cli_on_a_terminal(
        &data,
        port,
        &format!("fs copyFromLocal {} /copied", local_dir.display()),
    );
    assert!(shown.contains("/3 files"), "{shown}");
    assert!(shown.contains("Copied"), "{shown}");
    let back = dir.path().join("back");
    let shown = cli_on_a_terminal(
        &data,
        port,
        &format!("fs copyToLocal /copied {}", back.display()),
    );
    assert!(shown.contains("/3 files"), "{shown}");
    assert_eq!(
        std::fs::read(back.join("sub/c")).unwrap(),
        vec![3u8; 1 << 20]
    );

    // Piped, or under --json, nothing but the result.
    let out = Command::new(BIN)
        .env(
            "ALLUXIO_SECURITY_KEY_FILE",
            data.join("security/cluster.key"),
        )
        .args(["--master", &format!("127.0.0.1:{port}")])
        .args([
            "-D",
            "user.block_size=4MiB",
            "fs",
            "cp",
            "/copied",
            "/again",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Copied"));
    let shown = cli_on_a_terminal(&data, port, "fs --json cp /copied /third");
    assert!(!shown.contains("files"), "{shown}");
    stop(child);
}
