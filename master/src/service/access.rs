//! Who may do what, decided at the master's gRPC edge from the caller's
//! verified [`Identity`]: service-only calls need the service's role,
//! mount-table changes need the superuser, file-system operations need
//! the POSIX permission bits (`crate::permission`) unless the caller is
//! the superuser or a service, and new files belong to the caller (only a
//! proxy — FUSE, CSI — or the superuser may name another owner).
//!
//! The audit log (target `alluxio::audit`): every refusal and every
//! mount-table change at info level; every allowed change of the
//! namespace at debug level (`RUST_LOG=alluxio::audit=debug`).

use crate::fs_master::FileSystemMaster;
use crate::permission::Need;
use alluxio_common::auth::{Identity, Role};
use alluxio_common::config::AlluxioConfig;
use alluxio_common::{AlluxioError, AlluxioPath};

pub struct AccessPolicy {
    superuser: String,
    supergroup: String,
}

impl AccessPolicy {
    /// `security.superuser` (default: the user the master runs as) and
    /// `security.supergroup`.
    pub fn from_config(config: &AlluxioConfig) -> Self {
        let s = &config.security;
        AccessPolicy {
            superuser: if s.superuser.is_empty() {
                alluxio_common::users::current_user().name
            } else {
                s.superuser.clone()
            },
            supergroup: s.supergroup.clone(),
        }
    }

    /// The superuser: the admin role (and NOSASL callers), the configured
    /// superuser, and members of the supergroup.
    pub fn is_superuser(&self, who: &Identity) -> bool {
        who.role == Role::Admin
            || (who.role != Role::Worker && who.user == self.superuser)
            || who.groups.contains(&self.supergroup)
    }

    /// Callers the permission bits do not apply to: the superuser and the
    /// services (workers persist anyone's files; the operator provisions).
    pub fn bypasses_permissions(&self, who: &Identity) -> bool {
        matches!(who.role, Role::Worker | Role::Operator) || self.is_superuser(who)
    }

    /// Whether `who` may do `op` at `path` by the permission bits; an
    /// operation that `changes` the namespace is audited either way.
    pub fn authorize(
        &self,
        fs: &FileSystemMaster,
        who: &Identity,
        op: &str,
        path: &AlluxioPath,
        need: Need,
        changes: bool,
    ) -> Result<(), AlluxioError> {
        let decision = if self.bypasses_permissions(who) {
            Ok(())
        } else {
            fs.check_permission(who, path, need)
        };
        match decision {
            Ok(()) => {
                if changes {
                    tracing::debug!(
                        target: "alluxio::audit",
                        user = %who.user, role = ?who.role, op, path = %path, allowed = true,
                    );
                }
                Ok(())
            }
            Err(e) => {
                audit(who, op, path.as_str(), false);
                Err(AlluxioError::PermissionDenied(format!(
                    "{op}: {}",
                    e.message()
                )))
            }
        }
    }

    /// Whether `who` may read the file `info` describes (the op that
    /// produced it checked the way there).
    pub fn may_read(&self, who: &Identity, info: &alluxio_proto::grpc::FileInfo) -> bool {
        if self.bypasses_permissions(who) {
            return true;
        }
        let subject = crate::permission::Subject {
            user: &who.user,
            groups: &who.groups,
        };
        let bits =
            crate::permission::class_bits_of(&info.owner, &info.group, info.mode as u16, &subject);
        bits & crate::permission::READ != 0
    }

    /// Only the superuser gives files away (chown), as in POSIX.
    pub fn require_superuser(
        &self,
        who: &Identity,
        op: &str,
        path: &str,
    ) -> Result<(), AlluxioError> {
        if self.is_superuser(who) {
            return Ok(());
        }
        Err(self.deny(who, op, path, "only the superuser may change an owner"))
    }

    /// Worker-only calls: registration, heartbeats, block commits,
    /// persistence reports.
    pub fn require_worker(&self, who: &Identity, op: &str) -> Result<(), AlluxioError> {
        if who.role == Role::Worker || who.role == Role::Admin {
            return Ok(());
        }
        Err(self.deny(who, op, "", "only workers may call it"))
    }

    /// Mount-table changes and other administration: the operator or the
    /// superuser. Allowed changes are audited too.
    pub fn require_admin(&self, who: &Identity, op: &str, path: &str) -> Result<(), AlluxioError> {
        if who.role == Role::Operator || self.is_superuser(who) {
            audit(who, op, path, true);
            return Ok(());
        }
        Err(self.deny(who, op, path, "only the superuser or the operator may"))
    }

    /// Whether `who` may have a mount's credentials (workers read the UFS
    /// with them; users get the mount without its secrets).
    pub fn may_see_secrets(&self, who: &Identity) -> bool {
        matches!(who.role, Role::Worker | Role::Operator) || self.is_superuser(who)
    }

    /// Owner and group of an inode `who` creates: the caller itself,
    /// unless a proxy or the superuser names someone (FUSE and CSI create
    /// files for the users whose calls they carry).
    pub fn new_inode_owner(&self, who: &Identity, owner: &str, group: &str) -> (String, String) {
        let may_name = who.role == Role::Proxy || self.is_superuser(who);
        if may_name && !owner.is_empty() {
            let group = if group.is_empty() { owner } else { group };
            return (owner.to_string(), group.to_string());
        }
        let own_group = who
            .groups
            .first()
            .cloned()
            .unwrap_or_else(|| who.user.clone());
        (who.user.clone(), own_group)
    }

    fn deny(&self, who: &Identity, op: &str, path: &str, why: &str) -> AlluxioError {
        audit(who, op, path, false);
        AlluxioError::PermissionDenied(format!(
            "{op}: permission denied for user {} (role {:?}): {why}",
            who.user, who.role
        ))
    }
}

/// One line of the audit log.
pub fn audit(who: &Identity, op: &str, path: &str, allowed: bool) {
    tracing::info!(
        target: "alluxio::audit",
        user = %who.user,
        role = ?who.role,
        via = who.via.as_deref().unwrap_or(""),
        op,
        path,
        allowed,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(user: &str, groups: &[&str], role: Role) -> Identity {
        Identity {
            user: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            role,
            expires_at: u64::MAX,
            via: None,
        }
    }

    fn policy() -> AccessPolicy {
        AccessPolicy {
            superuser: "alluxio".into(),
            supergroup: "admins".into(),
        }
    }

    #[test]
    fn roles_and_the_superuser_decide_service_and_admin_calls() {
        let p = policy();
        let alice = id("alice", &["staff"], Role::User);
        let worker = id("alluxio", &[], Role::Worker);
        assert!(p.require_worker(&worker, "RegisterWorker").is_ok());
        let err = p.require_worker(&alice, "RegisterWorker").unwrap_err();
        assert!(matches!(err, AlluxioError::PermissionDenied(_)), "{err}");
        assert!(p.require_admin(&alice, "Mount", "/x").is_err());
        assert!(p
            .require_admin(&id("alluxio", &[], Role::User), "Mount", "/x")
            .is_ok());
        assert!(p
            .require_admin(&id("bob", &["admins"], Role::User), "Mount", "/x")
            .is_ok());
        assert!(p
            .require_admin(&id("op", &[], Role::Operator), "Mount", "/x")
            .is_ok());
        // A worker token does not make its user the superuser.
        assert!(p.require_admin(&worker, "Mount", "/x").is_err());
        assert!(!p.may_see_secrets(&alice) && p.may_see_secrets(&worker));
    }

    #[test]
    fn users_own_what_they_create_and_proxies_name_owners() {
        let p = policy();
        let alice = id("alice", &["staff"], Role::User);
        assert_eq!(
            p.new_inode_owner(&alice, "root", "root"),
            ("alice".into(), "staff".into())
        );
        let fuse = id("alluxio", &[], Role::Proxy);
        assert_eq!(
            p.new_inode_owner(&fuse, "bob", "bob"),
            ("bob".into(), "bob".into())
        );
        assert_eq!(
            p.new_inode_owner(&fuse, "", ""),
            ("alluxio".into(), "alluxio".into())
        );
    }
}
