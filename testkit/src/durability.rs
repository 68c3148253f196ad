//! Proof that new names survive a power loss, without pulling a plug.
//!
//! A file or directory exists after a crash only if the directory entry
//! that names it reached the disk, and on Linux file systems that takes an
//! fsync of the *directory* after the name was created (or renamed into
//! place): syncing the file itself does not make its name durable. This
//! module records what a process does to the file system with `strace`
//! (every creation, rename, link, removal and fsync, in order, with the
//! paths of the file descriptors), and [`unsynced_names`] then lists every
//! name that still exists at the end of the trace but whose directory was
//! not fsynced after the name appeared: exactly what a power loss at the
//! end of the trace could lose, in the spirit of ALICE and CrashMonkey's
//! "replay only what was synced".

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The system calls that create, move or remove names, or make them durable.
const TRACED: &str = "trace=openat,open,creat,mkdir,mkdirat,rename,renameat,renameat2,\
link,linkat,unlink,unlinkat,rmdir,fsync,fdatasync";

/// `command` started under strace, writing its trace to `trace_file`; None
/// (a skip locally, a failure under CI) without strace.
pub fn traced(command: Command, trace_file: &Path) -> Option<Child> {
    let has_strace = Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_strace {
        return crate::missing_prerequisite("strace, to record a process's file-system calls");
    }
    let program = command.get_program().to_os_string();
    let args: Vec<_> = command.get_args().map(|a| a.to_os_string()).collect();
    let mut strace = Command::new("strace");
    strace
        .args(["-f", "-qq", "-ttt", "-y", "-s", "4096", "-e", TRACED])
        .args(["-e", "status=successful", "-o"])
        .arg(trace_file)
        .arg(program)
        .args(args);
    for (key, value) in command.get_envs() {
        match value {
            Some(v) => strace.env(key, v),
            None => strace.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        strace.current_dir(dir);
    }
    Some(
        strace
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("strace"),
    )
}

/// What happened to a name, at a time (seconds).
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A name appeared (created, renamed or linked into place). `opened`:
    /// an open with O_CREAT, which creates a name only if there was none.
    Named {
        path: PathBuf,
        at: f64,
        opened: bool,
    },
    /// A name went (removed, or renamed away).
    Unnamed { path: PathBuf, at: f64 },
    /// An fsync or fdatasync of `path` started.
    Synced { path: PathBuf, at: f64 },
}

/// The events of an `strace -f -ttt -y` trace (as [`traced`] writes it),
/// in the order the calls finished. Calls split across lines by other
/// threads (`<unfinished ...>` / `<... resumed>`) are joined; a name counts
/// from its call's end, an fsync from its start.
pub fn parse_trace(text: &str) -> Vec<Event> {
    let mut unfinished: HashMap<&str, (f64, String)> = HashMap::new();
    let mut events = Vec::new();
    for line in text.lines() {
        // `pid  time call`: strace pads the pid to five columns, so a
        // pid of four digits is followed by two spaces.
        let Some((pid, after)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let Some((time, rest)) = after.trim_start().split_once(' ') else {
            continue;
        };
        let Ok(time) = time.parse::<f64>() else {
            continue;
        };
        let (started, call) = if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            unfinished.insert(pid, (time, head.to_string()));
            continue;
        } else if rest.starts_with("<... ") {
            let Some((start, head)) = unfinished.remove(pid) else {
                continue;
            };
            let tail = rest.split_once(" resumed>").map_or("", |(_, t)| t);
            (start, format!("{head}{tail}"))
        } else {
            (time, rest.to_string())
        };
        events.extend(call_events(&call, started, time));
    }
    events
}

/// The events of one whole call line `name(args) = result`.
fn call_events(call: &str, started: f64, ended: f64) -> Vec<Event> {
    let Some((name, rest)) = call.split_once('(') else {
        return Vec::new();
    };
    let Some((args, result)) = rest.rsplit_once(") = ") else {
        return Vec::new();
    };
    let args = split_args(args);
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let named = |path: PathBuf| Event::Named {
        path,
        at: ended,
        opened: false,
    };
    let unnamed = |path: PathBuf| Event::Unnamed { path, at: ended };
    match name {
        "openat" | "open" | "creat" => {
            let flags = if name == "openat" { arg(2) } else { arg(1) };
            if name == "creat" || flags.contains("O_CREAT") {
                // The descriptor's path, as the kernel resolved it.
                if let Some(path) = fd_path(result) {
                    return vec![Event::Named {
                        path,
                        at: ended,
                        opened: !flags.contains("O_EXCL"),
                    }];
                }
            }
            Vec::new()
        }
        "mkdir" => resolve(None, arg(0)).map(named).into_iter().collect(),
        "mkdirat" => resolve(Some(arg(0)), arg(1))
            .map(named)
            .into_iter()
            .collect(),
        "rename" => pair(resolve(None, arg(0)), resolve(None, arg(1)), ended),
        "renameat" | "renameat2" => pair(
            resolve(Some(arg(0)), arg(1)),
            resolve(Some(arg(2)), arg(3)),
            ended,
        ),
        "link" => resolve(None, arg(1)).map(named).into_iter().collect(),
        "linkat" => resolve(Some(arg(2)), arg(3))
            .map(named)
            .into_iter()
            .collect(),
        "unlink" | "rmdir" => resolve(None, arg(0)).map(unnamed).into_iter().collect(),
        "unlinkat" => resolve(Some(arg(0)), arg(1))
            .map(unnamed)
            .into_iter()
            .collect(),
        "fsync" | "fdatasync" => fd_path(arg(0))
            .map(|path| Event::Synced { path, at: started })
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// A rename: the old name goes, the new one appears.
fn pair(from: Option<PathBuf>, to: Option<PathBuf>, at: f64) -> Vec<Event> {
    let mut out = Vec::new();
    if let Some(path) = from {
        out.push(Event::Unnamed { path, at });
    }
    if let Some(path) = to {
        out.push(Event::Named {
            path,
            at,
            opened: false,
        });
    }
    out
}

/// Arguments split at top-level commas (strings may hold commas).
fn split_args(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut escaped, mut depth) = (false, false, 0i32);
    for c in args.chars() {
        if quoted {
            current.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                current.push(c);
            }
            '<' | '[' | '{' => {
                depth += 1;
                current.push(c);
            }
            '>' | ']' | '}' => {
                depth -= 1;
                current.push(c);
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut current).trim().to_string()),
            _ => current.push(c),
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// The path strace shows for a descriptor: `5</some/path>` (also a
/// result, `= 5</some/path>`).
fn fd_path(text: &str) -> Option<PathBuf> {
    let start = text.find('<')?;
    let end = text.rfind('>')?;
    (end > start + 1).then(|| PathBuf::from(&text[start + 1..end]))
}

/// The absolute path named by a quoted `path` relative to `dirfd`
/// (`AT_FDCWD` or `N</dir>`); None for relative paths of an unknown
/// working directory.
fn resolve(dirfd: Option<&str>, path: &str) -> Option<PathBuf> {
    let path = path.strip_prefix('"')?.strip_suffix('"')?;
    if path.starts_with('/') {
        return Some(PathBuf::from(path));
    }
    let dir = fd_path(dirfd?)?;
    Some(dir.join(path))
}

/// Names below one of `roots` that exist at the end of `events` but whose
/// directory was not fsynced after they last appeared (or, for a name in a
/// new directory, whose directory's own name is not durable either).
pub fn unsynced_names(events: &[Event], roots: &[PathBuf]) -> Vec<PathBuf> {
    // Each name's last appearance, for names that still exist.
    let mut named_at: BTreeMap<PathBuf, f64> = BTreeMap::new();
    for e in events {
        match e {
            // Opening an existing file with O_CREAT makes no new name.
            Event::Named {
                path, at, opened, ..
            } if *opened => {
                named_at.entry(path.clone()).or_insert(*at);
            }
            Event::Named { path, at, .. } => {
                named_at.insert(path.clone(), *at);
            }
            Event::Unnamed { path, .. } => {
                // Everything below a removed name goes with it.
                named_at.retain(|p, _| !p.starts_with(path));
            }
            Event::Synced { .. } => {}
        }
    }
    let synced_after = |dir: &Path, at: f64| {
        events.iter().any(|e| match e {
            Event::Synced { path, at: s } => path == dir && *s >= at,
            _ => false,
        })
    };
    named_at
        .iter()
        .filter(|(path, _)| roots.iter().any(|r| path.starts_with(r) && *path != r))
        .filter(|(path, at)| {
            let dir = path.parent().expect("an absolute path below a root");
            !synced_after(dir, **at)
        })
        .map(|(path, _)| path.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // strace pads pids to five columns: both spacings occur.
    const TRACE: &str = r#"100   10.000001 mkdirat(AT_FDCWD, "/r/journal", 0700) = 0
100   10.000002 openat(AT_FDCWD, "/r/journal/log-1.log", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0600) = 3</r/journal/log-1.log>
101 10.000003 fsync(4</r> <unfinished ...>
100 10.000004 fdatasync(3</r/journal/log-1.log>) = 0
101 10.000005 <... fsync resumed>) = 0
100 10.000006 fsync(5</r/journal>) = 0
100 10.000007 openat(6</r/journal>, "ckpt.tmp", O_WRONLY|O_CREAT, 0600) = 7</r/journal/ckpt.tmp>
100 10.000008 renameat2(AT_FDCWD, "/r/journal/ckpt.tmp", AT_FDCWD, "/r/journal/checkpoint-9.ckpt", 0) = 0
100 10.000009 openat(AT_FDCWD, "/r/journal/scratch", O_RDWR|O_CREAT, 0600) = 8</r/journal/scratch>
100 10.000010 unlinkat(AT_FDCWD, "/r/journal/scratch", 0) = 0
100 10.000011 openat(AT_FDCWD, "/r/journal/log-1.log", O_RDONLY|O_CLOEXEC) = 9</r/journal/log-1.log>
100 10.000012 openat(AT_FDCWD, "/r/journal/log-1.log", O_WRONLY|O_CREAT|O_APPEND, 0600) = 9</r/journal/log-1.log>
"#;

    #[test]
    fn a_name_counts_as_durable_only_after_its_directory_is_synced() {
        let events = parse_trace(TRACE);
        assert!(events.contains(&Event::Synced {
            path: "/r".into(),
            at: 10.000003
        }));
        let roots = [PathBuf::from("/r")];
        // The journal directory's entry and the log's are synced (opening
        // the log again with O_CREAT makes no new name); the checkpoint
        // renamed into place after the last directory sync is not; the
        // removed scratch file does not matter.
        assert_eq!(
            unsynced_names(&events, &roots),
            vec![PathBuf::from("/r/journal/checkpoint-9.ckpt")]
        );
        // One more directory sync makes everything durable.
        let mut synced = events.clone();
        synced.push(Event::Synced {
            path: "/r/journal".into(),
            at: 10.5,
        });
        assert!(unsynced_names(&synced, &roots).is_empty());
    }

    #[test]
    fn arguments_with_commas_and_descriptors_parse() {
        assert_eq!(
            split_args(r#"3</a,b>, "x, y", O_CREAT|O_WRONLY, 0600"#),
            vec!["3</a,b>", r#""x, y""#, "O_CREAT|O_WRONLY", "0600"]
        );
        assert_eq!(
            resolve(Some("3</a/b>"), r#""c""#),
            Some(PathBuf::from("/a/b/c"))
        );
        assert_eq!(resolve(Some("AT_FDCWD"), r#""rel""#), None);
    }
}
