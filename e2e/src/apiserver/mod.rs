//! A test Kubernetes API server (no real kube-apiserver runs on these
//! machines): an in-memory object store (`store`) with the semantics the
//! operator and kubectl rely on, label selectors (`selector`), the
//! resources it serves (`resources`) and its HTTP front end (`http`).
//! Custom resources are defaulted, pruned and validated with their CRD's
//! schema (`schema`) and CEL rules (`cel`); requests are recorded by user
//! (`audit`). Pods reach it over HTTPS (`tls`), with a service-account
//! token as a bearer token naming their user. Not there yet: aggregated discovery, OpenAPI documents and
//! real server-side apply field management.

pub mod audit;
pub mod cel;
pub mod http;
pub mod protobuf;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod store;
pub mod table;
pub mod tls;

/// A running test API server on 127.0.0.1: plain HTTP for the tests'
/// own clients and kubectl, HTTPS for pods.
pub struct TestApiServer {
    pub address: std::net::SocketAddr,
    /// Where pods reach it, and the CA they trust for it.
    pub in_cluster: InClusterEndpoint,
    shared: http::Shared,
    task: tokio::task::JoinHandle<()>,
    tls_task: tokio::task::JoinHandle<()>,
}

/// What a pod's in-cluster configuration needs: the address of the
/// `kubernetes` Service and the cluster's CA.
#[derive(Clone, Debug)]
pub struct InClusterEndpoint {
    pub host: String,
    pub port: u16,
    pub ca_pem: String,
}

impl TestApiServer {
    pub async fn start() -> std::io::Result<TestApiServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let shared = http::Shared::new();
        let app = http::router(shared.clone());
        let tls_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let tls_port = tls_listener.local_addr()?.port();
        let certificate = tls::ServingCertificate::generate()?;
        let in_cluster = InClusterEndpoint {
            host: "127.0.0.1".into(),
            port: tls_port,
            ca_pem: certificate.ca_pem.clone(),
        };
        let tls_app = app.clone();
        let tls_task = tokio::spawn(async move {
            if let Err(e) = tls::serve(tls_listener, tls_app, &certificate).await {
                eprintln!("test API server (TLS): {e}");
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(TestApiServer {
            address,
            in_cluster,
            shared,
            task,
            tls_task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A kube client of this server, with `default` as its namespace.
    pub fn client(&self) -> kube::Client {
        let url = self.url().parse().expect("the server's own URL");
        let mut config = kube::Config::new(url);
        config.default_namespace = "default".into();
        kube::Client::try_from(config).expect("a plain-HTTP kube client")
    }

    /// A kube client that acts as `user` (through the Impersonate-User
    /// header), so its requests can be told apart in [`Self::requests_of`].
    pub fn client_as(&self, user: &str) -> kube::Client {
        let url = self.url().parse().expect("the server's own URL");
        let mut config = kube::Config::new(url);
        config.default_namespace = "default".into();
        config.auth_info.impersonate = Some(user.to_string());
        kube::Client::try_from(config).expect("a plain-HTTP kube client")
    }

    /// The resource requests made as `user` so far.
    pub fn requests_of(&self, user: &str) -> Vec<audit::AuditEntry> {
        self.shared.requests_of(user)
    }

    /// A kubeconfig whose user acts as `user` (kubeconfig's `as`).
    pub fn kubeconfig_as(&self, user: &str) -> String {
        self.kubeconfig()
            .replace("  user: {}\n", &format!("  user:\n    as: {user}\n"))
    }

    /// A kubeconfig that points kubectl at this server.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n\
             contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: default\n\
             current-context: test\nusers:\n- name: test\n  user: {{}}\n",
            self.url()
        )
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        self.task.abort();
        self.tls_task.abort();
    }
}
