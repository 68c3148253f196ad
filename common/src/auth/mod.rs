//! Who is calling: identities, the signed and expiring tokens that carry
//! them, what a client presents (`Credentials`) and what a server checks
//! (`Authenticator`). `security.authentication: TOKEN` (the default) makes
//! every gRPC call and data-port connection carry a token signed with the
//! cluster key; `NOSASL` turns checking off (loudly logged).
//!
//! - [`key`]: the cluster key, issuing and verifying tokens.
//! - [`key_file`]: one key per key file in a process, reloaded when the
//!   file changes (key rotation without restarts).
//! - [`capability`]: the master's signed word that a user may read one
//!   file's blocks, which workers check before serving them.
//! - [`credentials`]: the client side — where a process finds its token
//!   (`ALLUXIO_TOKEN`, `security.token_file`, or the key file it may mint
//!   from) and the interceptor that attaches it to every call.
//! - [`authenticator`]: the server side — the interceptor that refuses
//!   calls without a valid token and hands handlers the caller's identity.

pub mod authenticator;
pub mod capability;
pub mod credentials;
pub mod key;
pub mod key_file;

pub use authenticator::{caller, Authenticator};
pub use credentials::{
    acting_as, acting_for, acting_user, ActAs, AttachCredentials, AuthChannel, Credentials,
};
pub use key::{ClusterKey, RotationStep, MAX_TOKEN_LEN, TOKEN_VERSION};

use serde::{Deserialize, Serialize};

/// gRPC metadata key carrying `Bearer <token>`.
pub const AUTHORIZATION: &str = "authorization";
/// gRPC metadata key with which a proxy (FUSE, CSI) names the user whose
/// call it carries (`user` or `user:group1,group2`); honoured only from a
/// proxy's or an admin's token.
pub const ACT_AS: &str = "x-alluxio-act-as";

/// What a caller may do besides what POSIX permission bits allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A person or a job: permission bits decide.
    User,
    /// A worker: registration, heartbeats, block commits, UFS access.
    Worker,
    /// The operator: mounts and cluster administration.
    Operator,
    /// FUSE and CSI daemons: act for the users whose calls they carry.
    Proxy,
    /// The superuser.
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "user" => Ok(Role::User),
            "worker" => Ok(Role::Worker),
            "operator" => Ok(Role::Operator),
            "proxy" => Ok(Role::Proxy),
            "admin" => Ok(Role::Admin),
            _ => Err(format!(
                "unknown role {s:?} (user, worker, operator, proxy or admin)"
            )),
        }
    }
}

/// A verified caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
    pub role: Role,
    /// Seconds since the epoch after which the token is refused.
    pub expires_at: u64,
    /// The proxy that carried the call, when it acts for `user`.
    pub via: Option<String>,
}

impl Identity {
    /// The caller of a server with authentication off: trusted with
    /// everything, as Alluxio's NOSASL.
    pub fn unchecked() -> Identity {
        Identity {
            user: "nosasl".to_string(),
            groups: Vec::new(),
            role: Role::Admin,
            expires_at: u64::MAX,
            via: None,
        }
    }

    /// Whether the token behind this identity has expired since it was
    /// checked (long-lived data-port connections check it per request).
    pub fn is_expired(&self) -> bool {
        self.expires_at <= key::now_s()
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no credentials: set ALLUXIO_TOKEN, point security.token_file (--token-file) at a \
         token, or run as a user who can read the cluster key (security.key_file)"
    )]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("token signature does not match this cluster's key")]
    BadSignature,
    #[error("token expired {0} s ago")]
    Expired(u64),
    #[error("token is issued {0} s in the future")]
    NotYetValid(u64),
    #[error("cluster key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("token file {path}: {reason}")]
    TokenFile { path: String, reason: String },
    #[error("{0}")]
    Tls(String),
    #[error("{0} may not act for another user: only proxies (FUSE, CSI) may")]
    NotAProxy(String),
    #[error("no valid capability for file {0}: ask the master for the file's status first")]
    NoCapability(u64),
}

impl From<AuthError> for crate::AlluxioError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Key { .. } | AuthError::TokenFile { .. } | AuthError::Tls(_) => {
                crate::AlluxioError::FailedPrecondition(e.to_string())
            }
            AuthError::NoCapability(_) | AuthError::NotAProxy(_) => {
                crate::AlluxioError::PermissionDenied(e.to_string())
            }
            _ => crate::AlluxioError::Unauthenticated(e.to_string()),
        }
    }
}
