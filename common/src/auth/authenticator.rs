//! The server side of authentication: an interceptor on every gRPC service
//! of masters and workers that refuses a call without a valid token
//! (`Unauthenticated`, nothing else happens) and puts the caller's
//! [`Identity`] into the request for the handler to authorize.

use super::credentials::ActAs;
use super::{AuthError, ClusterKey, Identity, Role, ACT_AS, AUTHORIZATION};
use crate::config::{AlluxioConfig, AuthenticationConfig};
use tonic::{Request, Status};

/// Checks tokens against the cluster key, or nothing (NOSASL).
#[derive(Clone, Debug)]
pub struct Authenticator {
    key: Option<ClusterKey>,
}

impl Authenticator {
    /// Checks tokens signed with `key`.
    pub fn with_key(key: ClusterKey) -> Self {
        Authenticator { key: Some(key) }
    }

    /// Checks nothing: every caller is trusted with everything.
    pub fn nosasl() -> Self {
        Authenticator { key: None }
    }

    /// What `config` asks for. A master creates the key file when it is
    /// missing (the first start of a cluster); every other component must
    /// find it (a worker cannot invent the cluster's key).
    pub fn from_config(config: &AlluxioConfig, create_key: bool) -> Result<Self, AuthError> {
        let security = &config.security;
        if security.authentication == AuthenticationConfig::Nosasl {
            tracing::warn!(
                "security.authentication is NOSASL: anyone who can reach this process's ports \
                 can read, change and delete everything, and register fake workers; \
                 use it only for benchmarks and trusted labs"
            );
            return Ok(Self::nosasl());
        }
        let key = super::key_file::shared(&security.key_file, create_key)?;
        Ok(Self::with_key(key))
    }

    pub fn key(&self) -> Option<&ClusterKey> {
        self.key.as_ref()
    }

    /// The identity `token` proves.
    pub fn check(&self, token: Option<&str>) -> Result<Identity, AuthError> {
        match &self.key {
            None => Ok(Identity::unchecked()),
            Some(key) => key.verify(token.ok_or(AuthError::Missing)?),
        }
    }

    /// The identity an `authorization: Bearer <token>` header proves; a
    /// proxy's `x-alluxio-act-as` makes it the named user's.
    pub fn check_metadata(
        &self,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<Identity, AuthError> {
        if self.key.is_none() {
            // NOSASL: nothing is checked, for anyone.
            return Ok(Identity::unchecked());
        }
        let identity = self.check_token_metadata(metadata)?;
        let Some(value) = metadata.get(ACT_AS) else {
            return Ok(identity);
        };
        let text = value
            .to_str()
            .map_err(|_| AuthError::Malformed("act-as header is not ASCII"))?;
        let who = ActAs::parse(text).ok_or(AuthError::Malformed("act-as header names no user"))?;
        if !matches!(identity.role, Role::Proxy | Role::Admin) {
            // Acting for oneself changes nothing; for anyone else, no.
            if who.user == identity.user {
                return Ok(identity);
            }
            return Err(AuthError::NotAProxy(identity.user));
        }
        Ok(Identity {
            user: who.user,
            groups: who.groups,
            role: Role::User,
            expires_at: identity.expires_at,
            via: Some(identity.user),
        })
    }

    fn check_token_metadata(
        &self,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<Identity, AuthError> {
        let token = match metadata.get(AUTHORIZATION) {
            None => None,
            Some(value) => {
                let text = value
                    .to_str()
                    .map_err(|_| AuthError::Malformed("authorization header is not ASCII"))?;
                Some(text.strip_prefix("Bearer ").ok_or(AuthError::Malformed(
                    "authorization header is not `Bearer <token>`",
                ))?)
            }
        };
        self.check(token)
    }
}

impl tonic::service::Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        match self.check_metadata(request.metadata()) {
            Ok(identity) => {
                request.extensions_mut().insert(identity);
                Ok(request)
            }
            Err(e @ AuthError::NotAProxy(_)) => Err(Status::permission_denied(e.to_string())),
            Err(e) => {
                tracing::debug!(error = %e, "unauthenticated call refused");
                Err(Status::unauthenticated(e.to_string()))
            }
        }
    }
}

/// The verified caller of `request`. A request that did not pass through
/// an [`Authenticator`] has none and is refused: failing closed.
pub fn caller<T>(request: &Request<T>) -> Result<Identity, Status> {
    request
        .extensions()
        .get::<Identity>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no verified identity on this call"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use std::time::Duration;
    use tonic::service::Interceptor;

    fn with_header(value: &str) -> Request<()> {
        let mut r = Request::new(());
        r.metadata_mut()
            .insert(AUTHORIZATION, value.parse().unwrap());
        r
    }

    #[test]
    fn calls_without_a_valid_token_are_refused() {
        let key = ClusterKey::generate();
        let mut auth = Authenticator::with_key(key.clone());
        let token = key.issue("alice", &[], Role::User, Duration::from_secs(60));
        let ok = auth.call(with_header(&format!("Bearer {token}"))).unwrap();
        assert_eq!(caller(&ok).unwrap().user, "alice");

        let bare = auth.call(Request::new(())).unwrap_err();
        assert_eq!(bare.code(), tonic::Code::Unauthenticated);
        assert!(bare.message().contains("ALLUXIO_TOKEN"), "{bare}");
        for bad in [
            token.clone(),
            format!("Basic {token}"),
            "Bearer x.y.z".to_string(),
        ] {
            let err = auth.call(with_header(&bad)).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{bad}");
        }
        let other =
            ClusterKey::generate().issue("alice", &[], Role::Admin, Duration::from_secs(60));
        let err = auth
            .call(with_header(&format!("Bearer {other}")))
            .unwrap_err();
        assert!(err.message().contains("signature"), "{err}");

        // A proxy acts for the user it names; anyone else may not.
        let proxy = key.issue("fuse", &[], Role::Proxy, Duration::from_secs(60));
        let mut r = with_header(&format!("Bearer {proxy}"));
        r.metadata_mut()
            .insert(super::ACT_AS, "bob:staff,dev".parse().unwrap());
        let who = caller(&auth.call(r).unwrap()).unwrap();
        assert_eq!((who.user.as_str(), who.role), ("bob", Role::User));
        assert_eq!(who.groups, ["staff", "dev"]);
        assert_eq!(who.via.as_deref(), Some("fuse"));
        let mut r = with_header(&format!("Bearer {token}"));
        r.metadata_mut()
            .insert(super::ACT_AS, "root".parse().unwrap());
        let err = auth.call(r).unwrap_err();
        assert!(err.message().contains("may not act"), "{err}");

        // A handler behind no authenticator sees no caller.
        assert!(caller(&Request::new(())).is_err());
        // NOSASL: everyone is trusted.
        let open = Authenticator::nosasl().call(Request::new(())).unwrap();
        assert_eq!(caller(&open).unwrap().role, Role::Admin);
    }
}
