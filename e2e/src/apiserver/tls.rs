//! The HTTPS endpoint of the test API server, for clients in pods: the
//! address `KUBERNETES_SERVICE_HOST`/`_PORT` name and the CA the kubelet
//! puts in each pod's service-account volume, which is what a client's
//! in-cluster configuration (kube-rs, client-go) trusts. The certificate
//! (for 127.0.0.1 and `kubernetes.default.svc`) is signed by a CA made for
//! each server with the `openssl` command.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// A certificate and key for the server, and the CA that signed it (PEM).
pub struct ServingCertificate {
    pub ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn openssl(dir: &Path, args: &[&str]) -> std::io::Result<()> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

impl ServingCertificate {
    /// A new CA and a server certificate it signs, valid for a day.
    pub fn generate() -> std::io::Result<ServingCertificate> {
        let dir = tempfile::tempdir()?;
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            dir.path(),
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=test-apiserver-ca",
                ],
            ]
            .concat(),
        )?;
        openssl(
            dir.path(),
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=kube-apiserver",
                ],
            ]
            .concat(),
        )?;
        std::fs::write(
            dir.path().join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n\
             basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )?;
        openssl(
            dir.path(),
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "1",
                "-extfile",
                "server.ext",
            ],
        )?;
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name));
        Ok(ServingCertificate {
            ca_pem: read("ca.crt")?,
            cert_pem: read("server.crt")?,
            key_pem: read("server.key")?,
        })
    }

    fn acceptor(&self) -> std::io::Result<tokio_rustls::TlsAcceptor> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let invalid = |e: &dyn std::fmt::Display| std::io::Error::other(e.to_string());
        let certs = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(&e))?;
        let key =
            PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| invalid(&e))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(&e))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| invalid(&e))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

/// Serves `app` over TLS on `listener` until the task is aborted.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    certificate: &ServingCertificate,
) -> std::io::Result<()> {
    let acceptor = certificate.acceptor()?;
    loop {
        let (tcp, _) = listener.accept().await?;
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
        });
    }
}
