//! TLS on every port that carries cluster traffic: the gRPC ports of the
//! masters (clients' and Raft's) and of the workers, and the workers' data
//! port.
//!
//! What it is for: confidentiality on the wire, and callers knowing that
//! they talk to the real server. Without it anyone on the path reads the
//! data, and can take a caller's bearer token and replay it. Who the
//! *caller* is stays the job of tokens (`auth`): servers ask for no client
//! certificates, so only servers need certificates, and users and pods
//! need nothing but the CA that signed them.
//!
//! Settings: `security.tls.enabled`; `security.tls.ca_file`, the PEM
//! certificates clients trust; `security.tls.server_name`, when set the
//! one name every server's certificate is checked against instead of the
//! host a client dials (workers are dialled by pod or node IP, which a
//! certificate made in advance cannot name); and each server's
//! certificate chain and key, `master.tls.cert_file`/`key_file` and
//! `worker.tls.cert_file`/`key_file`.
//!
//! Reload on change: the files are looked at again (inode, size, mtime)
//! at most every [`RELOAD_INTERVAL`], at the next handshake. A server
//! serves a renewed certificate from then on; a client trusts a changed
//! CA file for its next connections. A file that cannot be read or parsed
//! leaves what is in use in place, with a warning (a renewal half-written
//! by cert-manager must not take the server down).

mod files;
mod stream;

pub use stream::MaybeTls;

use crate::config::{AlluxioConfig, TlsFilesConfig};
use files::{read_certificates, read_key, WatchedFiles};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// How often the files behind a TLS setting are looked at again.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(10);
/// A peer that has not finished its handshake by then is dropped (a
/// stalled peer must not hold a connection slot).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("TLS settings: {0}")]
    Settings(String),
}

/// The protocol a TLS connection carries, named in ALPN so that a
/// connection meant for one port is refused by the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// gRPC over HTTP/2.
    Grpc,
    /// The workers' data port (`data_protocol`).
    DataPort,
}

impl Protocol {
    fn alpn(self) -> Vec<u8> {
        match self {
            Protocol::Grpc => b"h2".to_vec(),
            Protocol::DataPort => {
                format!("alluxio-data/{}", crate::data_protocol::VERSION).into_bytes()
            }
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The server side: a certificate and key, reloaded when their files
/// change. Cheap to clone.
#[derive(Clone)]
pub struct ServerTls {
    grpc: TlsAcceptor,
    data_port: TlsAcceptor,
}

impl ServerTls {
    /// `files`' certificate and key when TLS is on.
    pub fn from_config(
        config: &AlluxioConfig,
        files: &TlsFilesConfig,
        component: &str,
    ) -> Result<Option<ServerTls>, TlsError> {
        if !config.security.tls.enabled {
            return Ok(None);
        }
        let (Some(cert), Some(key)) = (&files.cert_file, &files.key_file) else {
            return Err(TlsError::Settings(format!(
                "security.tls.enabled needs {component}.tls.cert_file and {component}.tls.key_file"
            )));
        };
        ServerTls::load(cert, key).map(Some)
    }

    /// Serves the certificate chain in `cert` with the private key in
    /// `key` (PEM), both checked now.
    pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        let provider = provider();
        let resolver = Arc::new(ReloadingCertificate {
            current: RwLock::new(Arc::new(load_certified_key(cert, key, &provider)?)),
            files: WatchedFiles::new(vec![cert.to_path_buf(), key.to_path_buf()]),
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider: provider.clone(),
        });
        let acceptor = |protocol: Protocol| -> Result<TlsAcceptor, TlsError> {
            let mut config = ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsError::Settings(e.to_string()))?
                .with_no_client_auth()
                .with_cert_resolver(resolver.clone());
            config.alpn_protocols = vec![protocol.alpn()];
            Ok(TlsAcceptor::from(Arc::new(config)))
        };
        Ok(ServerTls {
            grpc: acceptor(Protocol::Grpc)?,
            data_port: acceptor(Protocol::DataPort)?,
        })
    }

    /// The server's half of a handshake on an accepted connection, within
    /// [`HANDSHAKE_TIMEOUT`].
    pub async fn accept(&self, tcp: TcpStream, protocol: Protocol) -> io::Result<MaybeTls> {
        let acceptor = match protocol {
            Protocol::Grpc => &self.grpc,
            Protocol::DataPort => &self.data_port,
        };
        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
        let stream = handshake
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        Ok(MaybeTls::Tls(Box::new(stream.into())))
    }
}

fn load_certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = read_certificates(cert)?;
    let private = read_key(key)?;
    CertifiedKey::from_der(chain, private, provider).map_err(|e| TlsError::File {
        path: key.display().to_string(),
        reason: format!("does not go with {}: {e}", cert.display()),
    })
}

/// Hands every handshake the certificate its files hold now.
struct ReloadingCertificate {
    current: RwLock<Arc<CertifiedKey>>,
    files: WatchedFiles,
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for ReloadingCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReloadingCertificate({})", self.cert.display())
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if self.files.changed(RELOAD_INTERVAL) {
            match load_certified_key(&self.cert, &self.key, &self.provider) {
                Ok(fresh) => {
                    tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                    *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reload the TLS certificate; serving the one in use")
                }
            }
        }
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// The client side: the CA certificates servers must chain to, reloaded
/// when their file changes. Cheap to clone.
#[derive(Clone)]
pub struct ClientTls(Arc<ClientState>);

struct ClientState {
    /// The CA file, for logs.
    ca: PathBuf,
    /// None for CA certificates handed over in memory (never reloaded).
    files: Option<WatchedFiles>,
    /// Checked instead of the dialled host when set.
    server_name: Option<ServerName<'static>>,
    connectors: RwLock<Connectors>,
}

struct Connectors {
    grpc: TlsConnector,
    data_port: TlsConnector,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientTls(trusting {})", self.0.ca.display())
    }
}

impl ClientTls {
    /// The CA of `security.tls.ca_file` when TLS is on.
    pub fn from_config(config: &AlluxioConfig) -> Result<Option<ClientTls>, TlsError> {
        let tls = &config.security.tls;
        if !tls.enabled {
            return Ok(None);
        }
        let Some(ca) = &tls.ca_file else {
            return Err(TlsError::Settings(
                "security.tls.enabled needs security.tls.ca_file (the CA that signed the servers' certificates)".to_string(),
            ));
        };
        let server_name = Some(tls.server_name.as_str()).filter(|n| !n.is_empty());
        ClientTls::load(ca, server_name).map(Some)
    }

    /// Trusts the certificates in `ca` (PEM); checks every server's
    /// certificate against `server_name` when given, else against the
    /// host dialled.
    pub fn load(ca: &Path, server_name: Option<&str>) -> Result<ClientTls, TlsError> {
        let server_name = parse_server_name(server_name)?;
        Ok(ClientTls(Arc::new(ClientState {
            connectors: RwLock::new(connectors(ca)?),
            files: Some(WatchedFiles::new(vec![ca.to_path_buf()])),
            ca: ca.to_path_buf(),
            server_name,
        })))
    }

    /// Trusts the CA certificates in `pem` (PEM text held by the caller,
    /// such as a Secret's `ca.crt`; a new CA needs a new `ClientTls`).
    pub fn from_pem(pem: &[u8], server_name: Option<&str>) -> Result<ClientTls, TlsError> {
        let certificates = files::parse_certificates(pem, "the CA certificates given")?;
        Ok(ClientTls(Arc::new(ClientState {
            connectors: RwLock::new(connectors_trusting(certificates, "the CA given")?),
            files: None,
            ca: PathBuf::from("(in memory)"),
            server_name: parse_server_name(server_name)?,
        })))
    }

    /// A TCP connection to `address` (`host:port`) with the client's half
    /// of a handshake for `protocol` on it, within [`HANDSHAKE_TIMEOUT`]
    /// (the TCP connect has the caller's bound).
    pub async fn connect(&self, address: &str, protocol: Protocol) -> io::Result<MaybeTls> {
        let tcp = TcpStream::connect(address).await?;
        crate::rpc::tune_socket(&tcp)?;
        let name = match &self.0.server_name {
            Some(name) => name.clone(),
            None => host_name(address)?,
        };
        let connector = self.connector(protocol);
        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp));
        let stream = handshake
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))
            .and_then(|handshake| handshake)
            .inspect_err(|e| {
                // gRPC says only "transport error": the reason is here.
                tracing::warn!(address, error = %e, "TLS handshake with a server failed");
            })?;
        Ok(MaybeTls::Tls(Box::new(stream.into())))
    }

    fn connector(&self, protocol: Protocol) -> TlsConnector {
        let state = &self.0;
        if state
            .files
            .as_ref()
            .is_some_and(|f| f.changed(RELOAD_INTERVAL))
        {
            match connectors(&state.ca) {
                Ok(fresh) => {
                    tracing::info!(ca = %state.ca.display(), "TLS CA certificates reloaded");
                    *state.connectors.write().unwrap_or_else(|p| p.into_inner()) = fresh;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reload the TLS CA file; trusting the certificates in use")
                }
            }
        }
        let connectors = state.connectors.read().unwrap_or_else(|p| p.into_inner());
        match protocol {
            Protocol::Grpc => connectors.grpc.clone(),
            Protocol::DataPort => connectors.data_port.clone(),
        }
    }
}

fn parse_server_name(name: Option<&str>) -> Result<Option<ServerName<'static>>, TlsError> {
    name.map(|name| {
        ServerName::try_from(name.to_string())
            .map_err(|e| TlsError::Settings(format!("server name {name:?}: {e}")))
    })
    .transpose()
}

fn connectors(ca: &Path) -> Result<Connectors, TlsError> {
    connectors_trusting(read_certificates(ca)?, &ca.display().to_string())
}

/// Connectors trusting `certificates` (from `source`, named in errors).
fn connectors_trusting(
    certificates: Vec<rustls::pki_types::CertificateDer<'static>>,
    source: &str,
) -> Result<Connectors, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots.add(certificate).map_err(|e| TlsError::File {
            path: source.to_string(),
            reason: e.to_string(),
        })?;
    }
    let roots = Arc::new(roots);
    let connector = |protocol: Protocol| -> Result<TlsConnector, TlsError> {
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Settings(e.to_string()))?
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![protocol.alpn()];
        Ok(TlsConnector::from(Arc::new(config)))
    };
    Ok(Connectors {
        grpc: connector(Protocol::Grpc)?,
        data_port: connector(Protocol::DataPort)?,
    })
}

/// The host of `host:port` (`[v6]:port` too), as a name to check a
/// certificate against.
fn host_name(address: &str) -> io::Result<ServerName<'static>> {
    let host = match address.rsplit_once(':') {
        Some((host, _port)) => host,
        None => address,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{address:?} names no host a certificate can be checked against: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_taken_from_addresses() {
        assert_eq!(
            host_name("127.0.0.1:19998").unwrap(),
            ServerName::try_from("127.0.0.1").unwrap()
        );
        assert_eq!(
            host_name("[::1]:19998").unwrap(),
            ServerName::try_from("::1").unwrap()
        );
        assert_eq!(
            host_name("master-0.alluxio:19998").unwrap(),
            ServerName::try_from("master-0.alluxio").unwrap()
        );
        assert!(host_name("bad host:1").is_err());
    }

    #[test]
    fn protocols_have_distinct_alpn_names() {
        assert_ne!(Protocol::Grpc.alpn(), Protocol::DataPort.alpn());
    }
}
