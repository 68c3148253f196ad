//! Owner and group names (as the master stores them) to numeric ids (as
//! the kernel wants them), and back, through the system's user database.
//! Names that are numbers are taken as ids; unknown names map to the
//! daemon's own ids. Results are cached: lookups may read /etc/passwd.
//! Also who this process runs as (the identity its minted tokens carry).

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::Mutex;

#[derive(Default)]
pub struct Users {
    uids: Mutex<HashMap<String, u32>>,
    gids: Mutex<HashMap<String, u32>>,
    user_names: Mutex<HashMap<u32, String>>,
    group_names: Mutex<HashMap<u32, String>>,
}

impl Users {
    pub fn uid(&self, name: &str) -> u32 {
        cached(&self.uids, name.to_string(), || {
            name.parse()
                .ok()
                .or_else(|| lookup_uid(name))
                // SAFETY: geteuid(2) cannot fail and touches no memory.
                .unwrap_or_else(|| unsafe { libc::geteuid() })
        })
    }

    pub fn gid(&self, name: &str) -> u32 {
        cached(&self.gids, name.to_string(), || {
            name.parse()
                .ok()
                .or_else(|| lookup_gid(name))
                // SAFETY: getegid(2) cannot fail and touches no memory.
                .unwrap_or_else(|| unsafe { libc::getegid() })
        })
    }

    pub fn user_name(&self, uid: u32) -> String {
        cached(&self.user_names, uid, || {
            lookup_user_name(uid).unwrap_or_else(|| uid.to_string())
        })
    }

    /// Who a process with `uid` and `gid` is, as a proxy names it to the
    /// master: its primary group first, then the supplementary groups of
    /// process `pid` (the kernel tells FUSE only the primary one; the rest
    /// is read from `/proc/<pid>/status`, when the process is still there).
    pub fn act_as(&self, uid: u32, gid: u32, pid: u32) -> crate::auth::ActAs {
        let mut groups = vec![self.group_name(gid)];
        for extra in supplementary_groups(pid) {
            if extra != gid {
                groups.push(self.group_name(extra));
            }
        }
        crate::auth::ActAs {
            user: self.user_name(uid),
            groups,
        }
    }

    pub fn group_name(&self, gid: u32) -> String {
        cached(&self.group_names, gid, || {
            lookup_group_name(gid).unwrap_or_else(|| gid.to_string())
        })
    }
}

/// A user name with its primary group's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserName {
    pub name: String,
    pub group: String,
}

/// The user and group this process runs as (their numbers when the user
/// database has no names for them).
pub fn current_user() -> UserName {
    // SAFETY: geteuid(2) and getegid(2) cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    UserName {
        name: lookup_user_name(uid).unwrap_or_else(|| uid.to_string()),
        group: lookup_group_name(gid).unwrap_or_else(|| gid.to_string()),
    }
}

/// The supplementary group ids of process `pid` (none if it is gone).
fn supplementary_groups(pid: u32) -> Vec<u32> {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|ids| {
            ids.split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn cached<K: std::hash::Hash + Eq, V: Clone>(
    map: &Mutex<HashMap<K, V>>,
    key: K,
    compute: impl FnOnce() -> V,
) -> V {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(key).or_insert_with(compute).clone()
}

const BUF: usize = 16 * 1024;

fn lookup_uid(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; BUF];
    // SAFETY: every pointer refers to live, correctly sized memory.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut out = std::ptr::null_mut();
        libc::getpwnam_r(name.as_ptr(), &mut pwd, buf.as_mut_ptr(), BUF, &mut out);
        (!out.is_null()).then_some(pwd.pw_uid)
    }
}

fn lookup_gid(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; BUF];
    // SAFETY: as above.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut out = std::ptr::null_mut();
        libc::getgrnam_r(name.as_ptr(), &mut grp, buf.as_mut_ptr(), BUF, &mut out);
        (!out.is_null()).then_some(grp.gr_gid)
    }
}

fn lookup_user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; BUF];
    // SAFETY: as above; pw_name points into `buf` while we copy it.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut out = std::ptr::null_mut();
        libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), BUF, &mut out);
        (!out.is_null()).then(|| CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned())
    }
}

fn lookup_group_name(gid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; BUF];
    // SAFETY: as above.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut out = std::ptr::null_mut();
        libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), BUF, &mut out);
        (!out.is_null()).then(|| CStr::from_ptr(grp.gr_name).to_string_lossy().into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_numbers_resolve() {
        let u = Users::default();
        assert_eq!(u.uid("root"), 0);
        assert_eq!(u.gid("root"), 0);
        assert_eq!(u.uid("1234"), 1234);
        assert_eq!(u.user_name(0), "root");
        assert_eq!(u.group_name(0), "root");
        assert_eq!(u.user_name(4_000_000), "4000000");
        // SAFETY: geteuid(2) cannot fail and touches no memory.
        let me = unsafe { libc::geteuid() };
        assert_eq!(u.uid("no-such-user-here"), me);
    }
}
