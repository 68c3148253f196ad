//! A gRPC channel to a CSI plugin's unix socket, as kubelet and the CSI
//! sidecars open it.

use std::path::Path;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

/// Connects to the plugin at `socket`, waiting up to 30 s for it to listen.
pub async fn csi_channel(socket: &Path) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::UnixStream::connect(socket).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on {}",
            socket.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let socket = socket.to_path_buf();
    Endpoint::try_from("http://localhost")
        .expect("a static URI")
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                tokio::net::UnixStream::connect(socket)
                    .await
                    .map(hyper_util::rt::TokioIo::new)
            }
        }))
        .await
        .expect("a channel over the unix socket")
}
