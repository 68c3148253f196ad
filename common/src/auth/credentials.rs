//! The client side of authentication: what a process presents, and the
//! interceptor that attaches it to every gRPC call.
//!
//! A process finds its credentials, first match wins:
//! 1. `ALLUXIO_TOKEN`: a token in the environment;
//! 2. `security.token_file` (`--token-file`): a file holding a token;
//! 3. `security.key_file`, when this process can read it: tokens minted
//!    from the cluster key for the process's own user (this is how the CLI
//!    of the user who ran `alluxio local` just works, and how masters,
//!    workers and the operator authenticate as services);
//! 4. nothing: calls go out bare and servers answer `Unauthenticated`
//!    with a hint of where to put a token.
//!
//! Minted tokens are cached and renewed when half their life has passed.
//!
//! Credentials also carry how to check that a server is the real one: the
//! CA of `security.tls.*` when TLS is on (`tls`), so that every connection
//! a client makes with them is under TLS.
//!
//! A proxy (the FUSE daemon) runs each operation inside [`acting_for`]: the
//! calls that operation makes also carry `x-alluxio-act-as` with the user
//! whose system call it is, and the master checks that user's permissions.

use super::{AuthError, ClusterKey, Role, AUTHORIZATION};
use crate::config::{AlluxioConfig, AuthenticationConfig};
use crate::tls::ClientTls;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// A gRPC channel whose calls carry credentials.
pub type AuthChannel = InterceptedService<Channel, AttachCredentials>;

/// What a client presents to servers, and the CA it checks them against
/// when TLS is on. Cheap to clone.
#[derive(Clone)]
pub struct Credentials {
    source: Arc<Source>,
    tls: Option<ClientTls>,
}

enum Source {
    /// Nothing (authentication off, or no credentials found).
    Anonymous,
    /// A token handed to us.
    Token {
        token: String,
        header: Option<Header>,
    },
    /// A key we mint our own tokens from.
    Key {
        key: ClusterKey,
        user: String,
        groups: Vec<String>,
        role: Role,
        ttl: Duration,
        minted: Mutex<Option<Minted>>,
    },
}

type Header = MetadataValue<Ascii>;

struct Minted {
    token: String,
    header: Header,
    renew_at: Instant,
    /// The key it was signed with: a new signing key (a rotation) means
    /// a new token at once.
    signing_id: String,
}

fn bearer(token: &str) -> Option<Header> {
    format!("Bearer {token}").parse().ok()
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token itself.
        match &*self.source {
            Source::Anonymous => f.write_str("Credentials(anonymous)"),
            Source::Token { .. } => f.write_str("Credentials(token)"),
            Source::Key { user, role, .. } => write!(f, "Credentials({user} as {role:?})"),
        }
    }
}

impl Credentials {
    /// No credentials.
    pub fn anonymous() -> Self {
        Self::of(Source::Anonymous)
    }

    /// A fixed token.
    pub fn token(token: &str) -> Self {
        let token = token.trim().to_string();
        Self::of(Source::Token {
            header: bearer(&token),
            token,
        })
    }

    /// Tokens minted from `key` for `user`, valid `ttl` each.
    pub fn from_key(
        key: ClusterKey,
        user: &str,
        groups: &[String],
        role: Role,
        ttl: Duration,
    ) -> Self {
        Self::of(Source::Key {
            key,
            user: user.to_string(),
            groups: groups.to_vec(),
            role,
            // A token shorter-lived than a minute would be renewed on
            // nearly every call.
            ttl: ttl.max(Duration::from_secs(60)),
            minted: Mutex::new(None),
        })
    }

    fn of(source: Source) -> Self {
        Credentials {
            source: Arc::new(source),
            tls: None,
        }
    }

    /// These credentials, dialling servers under TLS with `tls` (plain
    /// when None).
    pub fn with_tls(mut self, tls: Option<ClientTls>) -> Self {
        self.tls = tls;
        self
    }

    /// How connections made with these credentials check their server:
    /// None for plain TCP.
    pub fn tls(&self) -> Option<&ClientTls> {
        self.tls.as_ref()
    }

    /// A client's credentials, found as the module documentation says.
    pub fn for_client(config: &AlluxioConfig) -> Result<Self, AuthError> {
        Self::for_client_as(config, Role::User)
    }

    /// Like [`Credentials::for_client`], minting tokens with `role` when
    /// it mints (the FUSE daemon: a proxy).
    pub fn for_client_as(config: &AlluxioConfig, role: Role) -> Result<Self, AuthError> {
        Ok(Self::client_source(config, role)?.with_tls(client_tls(config)?))
    }

    fn client_source(config: &AlluxioConfig, role: Role) -> Result<Self, AuthError> {
        let security = &config.security;
        if security.authentication == AuthenticationConfig::Nosasl {
            return Ok(Self::anonymous());
        }
        if let Ok(token) = std::env::var("ALLUXIO_TOKEN") {
            if !token.trim().is_empty() {
                return Ok(Self::token(&token));
            }
        }
        if let Some(path) = &security.token_file {
            return Self::read_token_file(path);
        }
        let key_file = &security.key_file;
        if std::fs::File::open(key_file).is_err() {
            // Not ours to read: go bare; the server's answer says what to do.
            return Ok(Self::anonymous());
        }
        let key = super::key_file::shared(key_file, false)?;
        let me = crate::users::current_user();
        Ok(Self::from_key(
            key,
            &me.name,
            &[me.group],
            role,
            security.token_ttl.0,
        ))
    }

    /// A service's credentials (`role`), minted from the cluster key it
    /// must hold; anonymous when authentication is off.
    pub fn for_service(
        config: &AlluxioConfig,
        key: Option<&ClusterKey>,
        role: Role,
    ) -> Result<Self, AuthError> {
        let credentials = match key {
            None => Self::anonymous(),
            Some(key) => {
                let me = crate::users::current_user();
                Self::from_key(
                    key.clone(),
                    &me.name,
                    &[me.group],
                    role,
                    config.security.token_ttl.0,
                )
            }
        };
        Ok(credentials.with_tls(client_tls(config)?))
    }

    fn read_token_file(path: &Path) -> Result<Self, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|e| AuthError::TokenFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        if text.trim().is_empty() {
            return Err(AuthError::TokenFile {
                path: path.display().to_string(),
                reason: "is empty".to_string(),
            });
        }
        Ok(Self::token(&text))
    }

    /// Whether calls carry anything.
    pub fn is_anonymous(&self) -> bool {
        matches!(&*self.source, Source::Anonymous)
    }

    /// The token to present now, if any (for the data port's handshake).
    pub fn current_token(&self) -> Option<String> {
        self.current().map(|(token, _)| token)
    }

    /// The `authorization` header value to present now, if any.
    pub fn header(&self) -> Option<Header> {
        self.current().map(|(_, header)| header)
    }

    fn current(&self) -> Option<(String, Header)> {
        match &*self.source {
            Source::Anonymous => None,
            Source::Token { token, header } => Some((token.clone(), header.clone()?)),
            Source::Key {
                key,
                user,
                groups,
                role,
                ttl,
                minted,
            } => {
                let mut minted = minted.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let signing_id = key.signing_id();
                if minted
                    .as_ref()
                    .is_none_or(|m| now >= m.renew_at || m.signing_id != signing_id)
                {
                    let token = key.issue(user, groups, *role, *ttl);
                    // Base64url and dots: always a valid header value.
                    let header = bearer(&token).expect("a minted token is ASCII");
                    *minted = Some(Minted {
                        token,
                        header,
                        renew_at: now + *ttl / 2,
                        signing_id,
                    });
                }
                let m = minted.as_ref().expect("just minted");
                Some((m.token.clone(), m.header.clone()))
            }
        }
    }

    /// `channel` with these credentials on every call.
    pub fn attach(&self, channel: Channel) -> AuthChannel {
        InterceptedService::new(channel, AttachCredentials(self.clone()))
    }

    /// A channel through `endpoint` (under TLS when these credentials say
    /// so) with these credentials on every call, connecting on first use.
    pub fn connect_lazy(&self, endpoint: &Endpoint) -> AuthChannel {
        self.attach(crate::rpc::connect_lazy(endpoint, self.tls()))
    }
}

fn client_tls(config: &AlluxioConfig) -> Result<Option<ClientTls>, AuthError> {
    ClientTls::from_config(config).map_err(|e| AuthError::Tls(e.to_string()))
}

/// The user a proxy's calls are made for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActAs {
    pub user: String,
    pub groups: Vec<String>,
}

impl ActAs {
    /// `user` or `user:group1,group2`.
    pub fn to_header(&self) -> String {
        if self.groups.is_empty() {
            self.user.clone()
        } else {
            format!("{}:{}", self.user, self.groups.join(","))
        }
    }

    pub fn parse(text: &str) -> Option<ActAs> {
        let (user, groups) = text.split_once(':').unwrap_or((text, ""));
        if user.is_empty() {
            return None;
        }
        Some(ActAs {
            user: user.to_string(),
            groups: groups
                .split(',')
                .filter(|g| !g.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

tokio::task_local! {
    static ACTING_FOR: ActAs;
}

/// The user the current task's calls are carried for (see
/// [`acting_for`]); `None` outside it.
pub fn acting_user() -> Option<String> {
    ACTING_FOR.try_with(|who| who.user.clone()).ok()
}

/// Who this task's calls are carried for, if anyone.
pub fn acting_as() -> Option<ActAs> {
    ACTING_FOR.try_with(|who| who.clone()).ok()
}

/// Runs `f` with every call it makes (in this task) carried for `who`.
pub async fn acting_for<F: std::future::Future>(who: ActAs, f: F) -> F::Output {
    ACTING_FOR.scope(who, f).await
}

/// Puts `authorization: Bearer <token>` on every outgoing call, and the
/// user the call is carried for when inside [`acting_for`].
#[derive(Clone)]
pub struct AttachCredentials(pub Credentials);

impl tonic::service::Interceptor for AttachCredentials {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(header) = self.0.header() {
            request.metadata_mut().insert(AUTHORIZATION, header);
        }
        let act_as = ACTING_FOR
            .try_with(|who| who.to_header())
            .ok()
            .and_then(|text| text.parse().ok());
        if let Some(value) = act_as {
            request.metadata_mut().insert(super::ACT_AS, value);
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_are_reused_until_half_their_life() {
        let key = ClusterKey::generate();
        let creds = Credentials::from_key(
            key.clone(),
            "w",
            &[],
            Role::Worker,
            Duration::from_secs(3600),
        );
        let first = creds.current_token().unwrap();
        assert_eq!(creds.current_token().unwrap(), first);
        let who = key.verify(&first).unwrap();
        assert_eq!((who.user.as_str(), who.role), ("w", Role::Worker));
        assert!(Credentials::anonymous().header().is_none());
        // A token with a newline or other non-header bytes is not sent.
        assert!(Credentials::token("a\u{7f}b").header().is_none());
        assert_eq!(
            Credentials::token(" t\n").current_token().as_deref(),
            Some("t")
        );
        assert_eq!(format!("{creds:?}"), "Credentials(w as Worker)");
    }

    #[test]
    fn clients_find_their_token_file_and_refuse_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = AlluxioConfig::default();
        config.security.key_file = dir.path().join("absent.key");
        let path = dir.path().join("token");
        std::fs::write(&path, "alx1.abc.def\n").unwrap();
        config.security.token_file = Some(path.clone());
        if std::env::var_os("ALLUXIO_TOKEN").is_none() {
            let creds = Credentials::for_client(&config).unwrap();
            assert_eq!(creds.current_token().unwrap(), "alx1.abc.def");
            std::fs::write(&path, "\n").unwrap();
            assert!(Credentials::for_client(&config).is_err());
            config.security.token_file = None;
            assert!(Credentials::for_client(&config).unwrap().is_anonymous());
        }
        config.security.authentication = AuthenticationConfig::Nosasl;
        assert!(Credentials::for_client(&config).unwrap().is_anonymous());
    }
}
