//! The CSI gRPC server on a unix socket: Identity always, Controller in
//! controller mode, Node in node mode (`identity`, `controller`, `node`),
//! each RPC's failures mapped to the gRPC codes the CSI spec names.

pub mod controller;
pub mod identity;
pub mod node;

use alluxio_proto::csi::volume_capability::access_mode::Mode;
use alluxio_proto::csi::volume_capability::AccessType;
use alluxio_proto::csi::VolumeCapability;
use std::future::Future;
use std::path::Path;

/// Binds the unix socket at `path` (a stale socket file from an earlier
/// run is removed first), for its owner only (mode 0600): whoever can
/// connect can mount volumes.
pub fn bind_socket(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(listener)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::UnixListener,
    router: tonic::service::Routes,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_routes(router)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::UnixListenerStream::new(listener),
            shutdown,
        )
        .await
}

/// Why a volume capability is not supported, if it is not: only mount
/// access (a FUSE file system), any fs type but "" or fuse names refused,
/// and a known access mode.
pub fn unsupported_capability(c: &VolumeCapability) -> Option<String> {
    match &c.access_type {
        Some(AccessType::Mount(m)) => {
            if !(m.fs_type.is_empty() || m.fs_type == "fuse" || m.fs_type == "alluxio") {
                return Some(format!(
                    "fs_type {:?} is not supported: volumes are Alluxio FUSE mounts",
                    m.fs_type
                ));
            }
        }
        Some(AccessType::Block(_)) => {
            return Some("block volumes are not supported: only mount access".into())
        }
        None => return Some("the capability has no access type".into()),
    }
    match c.access_mode.as_ref().map(|m| m.mode()) {
        None | Some(Mode::Unknown) => Some("the capability has no access mode".into()),
        Some(_) => None,
    }
}

/// Whether the capability only reads.
pub fn read_only_mode(c: &VolumeCapability) -> bool {
    matches!(
        c.access_mode.as_ref().map(|m| m.mode()),
        Some(Mode::SingleNodeReaderOnly | Mode::MultiNodeReaderOnly)
    )
}
