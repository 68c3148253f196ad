//! The CSI Controller service: a volume is a directory of the Alluxio
//! namespace, `<base>/<name>`, where the base is the StorageClass's
//! `basePath` (say, a Mount's path) or the plugin's volume root, with
//! a record of its requested capacity and parameters next to it
//! (`<records>/<name>.json`, written through to the UFS), so CreateVolume
//! is idempotent by name across controller restarts and refuses the same
//! name with different parameters.
//!
//! One controller serves every cluster: a StorageClass names its cluster's
//! master in the `masterAddress` parameter (the operator writes it), and
//! the volume id carries it (`<name>@<master>`), because DeleteVolume is
//! given nothing else.
//!
//! Credentials: the external-provisioner hands CreateVolume and
//! DeleteVolume the cluster's Secret (the StorageClass names it in
//! `csi.storage.k8s.io/provisioner-secret-*`, the operator writes that);
//! its `cluster.key` mints the plugin's tokens for that cluster. Without
//! one the plugin calls with its own credentials (`ALLUXIO_TOKEN`,
//! `ALLUXIO_SECURITY_KEY_FILE`...).

use super::unsupported_capability;
use alluxio_client::{FileSystem, MasterClient};
use alluxio_common::auth::{ClusterKey, Credentials, Role};
use alluxio_common::tls::ClientTls;
use alluxio_common::AlluxioError;
use alluxio_proto::csi::controller_server::Controller;
use alluxio_proto::csi::controller_service_capability::{rpc, Rpc, Type as CapabilityType};
use alluxio_proto::csi::validate_volume_capabilities_response::Confirmed;
use alluxio_proto::csi::*;
use alluxio_proto::grpc::WriteType;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use tonic::{Request, Response, Status};

/// StorageClass parameters a volume takes (the rest is refused), beside
/// the `csi.storage.k8s.io/` keys the provisioner adds.
pub const PARAMETERS: &[&str] = &["readType", "mountOptions", "masterAddress", "basePath"];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct VolumeRecord {
    name: String,
    /// The volume's directory in the Alluxio namespace.
    path: String,
    capacity_bytes: i64,
    parameters: BTreeMap<String, String>,
}

pub struct ControllerService {
    /// The master of volumes whose StorageClass names none.
    default_master: String,
    /// Alluxio directory holding the volumes.
    volume_root: String,
    /// Alluxio directory holding the volume records.
    records_root: String,
    /// Used when a request carries no Secret.
    credentials: Credentials,
    clients: Mutex<HashMap<String, FileSystem>>,
}

/// The Secret key holding a cluster key (as the operator writes it).
pub const CLUSTER_KEY_SECRET: &str = "cluster.key";
/// The Secret keys of a TLS cluster: its CA, and the name its servers'
/// certificates carry (the operator copies both into the cluster's
/// Secret).
pub const CA_SECRET: &str = "ca.crt";
pub const SERVER_NAME_SECRET: &str = "tls-server-name";

/// A TLS cluster's CA and server name, as a request's secrets carry them
/// (the CA checked), and the client trust made from them.
pub struct SecretTls<'a> {
    pub ca_pem: &'a str,
    pub server_name: Option<&'a str>,
    pub trust: ClientTls,
}

/// How to check a TLS cluster's servers, when the secrets say it has TLS.
pub fn secret_tls(secrets: &HashMap<String, String>) -> Result<Option<SecretTls<'_>>, Status> {
    let Some(ca_pem) = secrets.get(CA_SECRET) else {
        return Ok(None);
    };
    let server_name = secrets
        .get(SERVER_NAME_SECRET)
        .map(|n| n.trim())
        .filter(|n| !n.is_empty());
    let trust = ClientTls::from_pem(ca_pem.as_bytes(), server_name)
        .map_err(|e| Status::invalid_argument(format!("secret {CA_SECRET}: {e}")))?;
    Ok(Some(SecretTls {
        ca_pem,
        server_name,
        trust,
    }))
}

/// Credentials minted from a request's Secret, if it has a cluster key
/// (under TLS when it has a CA too).
pub fn secret_credentials(
    secrets: &HashMap<String, String>,
) -> Result<Option<(String, Credentials)>, Status> {
    let Some(hex) = secrets.get(CLUSTER_KEY_SECRET) else {
        return Ok(None);
    };
    let key = ClusterKey::from_hex(hex)
        .map_err(|e| Status::invalid_argument(format!("secret {CLUSTER_KEY_SECRET}: {e}")))?;
    let tls = secret_tls(secrets)?.map(|t| t.trust);
    // One client per key and CA: a digest of them names the cache entry.
    let digest = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        hex.trim().hash(&mut h);
        secrets.get(CA_SECRET).hash(&mut h);
        secrets.get(SERVER_NAME_SECRET).hash(&mut h);
        format!("{:016x}", h.finish())
    };
    // Provisioning creates and deletes volume directories wherever a
    // StorageClass's basePath says: the operator's role.
    let credentials = Credentials::from_key(
        key,
        "alluxio-csi",
        &[],
        Role::Operator,
        std::time::Duration::from_secs(3600),
    )
    .with_tls(tls);
    Ok(Some((digest, credentials)))
}

/// Creates `path` (an existing one is fine).
async fn make_directory(
    fs: &FileSystem,
    path: &str,
    recursive: bool,
    mode: Option<u32>,
) -> Result<(), ControllerError> {
    let request = alluxio_proto::grpc::CreateDirectoryRequest {
        path: path.to_string(),
        recursive,
        allow_exists: true,
        write_type: WriteType::CacheThrough as i32,
        mode,
        ..Default::default()
    };
    match fs.master().create_directory(request).await {
        Ok(_) | Err(AlluxioError::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `<name>` or `<name>@<master>`.
fn volume_id(name: &str, master: Option<&str>) -> String {
    match master {
        Some(m) => format!("{name}@{m}"),
        None => name.to_string(),
    }
}

fn parse_volume_id(id: &str) -> (&str, Option<&str>) {
    match id.split_once('@') {
        Some((name, master)) => (name, Some(master)),
        None => (id, None),
    }
}

#[derive(Debug, thiserror::Error)]
enum ControllerError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Alluxio(#[from] AlluxioError),
    #[error("{0}")]
    Status(#[from] Status),
}

impl From<ControllerError> for Status {
    fn from(e: ControllerError) -> Status {
        match e {
            ControllerError::InvalidArgument(m) => Status::invalid_argument(m),
            ControllerError::AlreadyExists(m) => Status::already_exists(m),
            ControllerError::Alluxio(e) => e.into(),
            ControllerError::Status(s) => s,
        }
    }
}

/// A volume name usable as one path component.
fn check_name(name: &str, field: &str) -> Result<(), ControllerError> {
    if name.is_empty() {
        return Err(ControllerError::InvalidArgument(format!(
            "{field} is required"
        )));
    }
    if name.contains('/') || name == "." || name == ".." || name.len() > 253 {
        return Err(ControllerError::InvalidArgument(format!(
            "{field} {name:?} must be one path component of at most 253 characters"
        )));
    }
    Ok(())
}

fn check_capabilities(caps: &[VolumeCapability]) -> Result<(), ControllerError> {
    if caps.is_empty() {
        return Err(ControllerError::InvalidArgument(
            "volume_capabilities are required".into(),
        ));
    }
    match caps.iter().find_map(unsupported_capability) {
        Some(why) => Err(ControllerError::InvalidArgument(why)),
        None => Ok(()),
    }
}

impl ControllerService {
    pub fn new(
        default_master: &str,
        volume_root: &str,
        records_root: &str,
        credentials: Credentials,
    ) -> Self {
        ControllerService {
            default_master: default_master.to_string(),
            volume_root: volume_root.to_string(),
            records_root: records_root.to_string(),
            credentials,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The file system of the cluster at `master` (the default one if
    /// `None`), called with the request's Secret or the plugin's own
    /// credentials.
    fn fs(
        &self,
        master: Option<&str>,
        secrets: &HashMap<String, String>,
    ) -> Result<FileSystem, Status> {
        let address = master.unwrap_or(&self.default_master);
        let (cache_key, credentials) = match secret_credentials(secrets)? {
            Some((digest, credentials)) => (format!("{address}#{digest}"), credentials),
            None => (address.to_string(), self.credentials.clone()),
        };
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fs) = clients.get(&cache_key) {
            return Ok(fs.clone());
        }
        let master = MasterClient::connect_lazy(address, credentials).map_err(Status::from)?;
        let fs = FileSystem::new(master);
        clients.insert(cache_key, fs.clone());
        Ok(fs)
    }

    /// `<base>/<name>`: the `basePath` parameter or the volume root.
    fn volume_path(
        &self,
        name: &str,
        parameters: &BTreeMap<String, String>,
    ) -> Result<String, ControllerError> {
        let base = match parameters.get("basePath") {
            Some(base) => {
                let clean = base.starts_with('/') && !base.split('/').any(|p| p == "..");
                if !clean {
                    return Err(ControllerError::InvalidArgument(format!(
                        "parameter basePath {base:?} must be an absolute Alluxio path without '..'"
                    )));
                }
                base.as_str()
            }
            None => self.volume_root.as_str(),
        };
        Ok(format!("{}/{name}", base.trim_end_matches('/')))
    }

    fn record_path(&self, name: &str) -> String {
        format!("{}/{name}.json", self.records_root.trim_end_matches('/'))
    }

    async fn read_record(
        &self,
        fs: &FileSystem,
        name: &str,
    ) -> Result<Option<VolumeRecord>, ControllerError> {
        let reader = match fs.open(&self.record_path(name), None).await {
            Ok(r) => r,
            Err(AlluxioError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let bytes = reader.read_at(0, reader.len()).await?;
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            AlluxioError::Internal(format!("volume record of {name} is damaged: {e}")).into()
        })
    }

    async fn create(&self, req: CreateVolumeRequest) -> Result<Volume, ControllerError> {
        check_name(&req.name, "name")?;
        check_capabilities(&req.volume_capabilities)?;
        if req.volume_content_source.is_some() {
            return Err(ControllerError::InvalidArgument(
                "volume content sources (snapshots, clones) are not supported".into(),
            ));
        }
        let parameters: BTreeMap<String, String> = req
            .parameters
            .into_iter()
            .filter(|(k, _)| !k.starts_with("csi.storage.k8s.io/"))
            .collect();
        if let Some(k) = parameters
            .keys()
            .find(|k| !PARAMETERS.contains(&k.as_str()))
        {
            return Err(ControllerError::InvalidArgument(format!(
                "unknown parameter {k:?} (known: {})",
                PARAMETERS.join(", ")
            )));
        }
        let range = req.capacity_range.unwrap_or_default();
        if range.required_bytes < 0 || range.limit_bytes < 0 {
            return Err(ControllerError::InvalidArgument(
                "capacity must not be negative".into(),
            ));
        }
        if range.limit_bytes > 0 && range.required_bytes > range.limit_bytes {
            return Err(ControllerError::InvalidArgument(
                "required_bytes exceeds limit_bytes".into(),
            ));
        }
        let capacity = if range.required_bytes > 0 {
            range.required_bytes
        } else {
            range.limit_bytes
        };
        let name = req.name;
        let master = parameters.get("masterAddress").cloned();
        let fs = self.fs(master.as_deref(), &req.secrets)?;
        let record = match self.read_record(&fs, &name).await? {
            Some(existing) => {
                let fits = existing.capacity_bytes >= range.required_bytes
                    && (range.limit_bytes == 0 || existing.capacity_bytes <= range.limit_bytes);
                if !fits || existing.parameters != parameters {
                    return Err(ControllerError::AlreadyExists(format!(
                        "volume {name} exists with capacity {} and parameters {:?}",
                        existing.capacity_bytes, existing.parameters
                    )));
                }
                existing
            }
            None => {
                let record = VolumeRecord {
                    name: name.clone(),
                    path: self.volume_path(&name, &parameters)?,
                    capacity_bytes: capacity,
                    parameters,
                };
                // The directories above keep the default mode; the volume's
                // own is 0777, like an emptyDir: whatever user the pod runs
                // as writes its volume (Kubernetes decides who mounts it),
                // and what the pod creates is the pod user's.
                let parent = record.path.rsplit_once('/').map_or("", |(p, _)| p);
                if !parent.is_empty() {
                    make_directory(&fs, parent, true, None).await?;
                }
                make_directory(&fs, &record.path, false, Some(0o777)).await?;
                let json = serde_json::to_vec(&record)
                    .map_err(|e| AlluxioError::Internal(e.to_string()))?;
                let mut w = fs
                    .create_with(
                        &self.record_path(&name),
                        alluxio_client::CreateOptions {
                            write_type: Some(WriteType::CacheThrough),
                            mode: None,
                            recursive: true,
                        },
                    )
                    .await?;
                if let Err(e) = w.write(Bytes::from(json)).await {
                    w.abandon().await;
                    return Err(e.into());
                }
                w.close().await?;
                record
            }
        };
        let mut context: HashMap<String, String> = record.parameters.into_iter().collect();
        context.insert("alluxioPath".into(), record.path);
        Ok(Volume {
            capacity_bytes: record.capacity_bytes,
            volume_id: volume_id(&name, master.as_deref()),
            volume_context: context,
            content_source: None,
            accessible_topology: Vec::new(),
        })
    }
}

#[tonic::async_trait]
impl Controller for ControllerService {
    async fn create_volume(
        &self,
        req: Request<CreateVolumeRequest>,
    ) -> Result<Response<CreateVolumeResponse>, Status> {
        let volume = self.create(req.into_inner()).await?;
        tracing::info!(volume = volume.volume_id, "volume created");
        Ok(Response::new(CreateVolumeResponse {
            volume: Some(volume),
        }))
    }

    async fn delete_volume(
        &self,
        req: Request<DeleteVolumeRequest>,
    ) -> Result<Response<DeleteVolumeResponse>, Status> {
        let req = req.into_inner();
        let (name, master) = parse_volume_id(&req.volume_id);
        check_name(name, "volume_id")?;
        let fs = self.fs(master, &req.secrets)?;
        // The record says where the volume is; without one (a volume
        // deleted before, or never made) there is nothing but the record
        // path to clean.
        let mut paths = Vec::new();
        if let Some(record) = self.read_record(&fs, name).await? {
            paths.push((record.path, true));
        }
        paths.push((self.record_path(name), false));
        for (path, recursive) in paths {
            match fs.master().delete(&path, recursive, false).await {
                Ok(()) | Err(AlluxioError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(volume = req.volume_id, "volume deleted");
        Ok(Response::new(DeleteVolumeResponse {}))
    }

    async fn validate_volume_capabilities(
        &self,
        req: Request<ValidateVolumeCapabilitiesRequest>,
    ) -> Result<Response<ValidateVolumeCapabilitiesResponse>, Status> {
        let req = req.into_inner();
        let (name, master) = parse_volume_id(&req.volume_id);
        check_name(name, "volume_id")?;
        let fs = self.fs(master, &req.secrets)?;
        if req.volume_capabilities.is_empty() {
            return Err(Status::invalid_argument("volume_capabilities are required"));
        }
        if self.read_record(&fs, name).await?.is_none() {
            return Err(Status::not_found(format!(
                "volume {} does not exist",
                req.volume_id
            )));
        }
        let response = match req
            .volume_capabilities
            .iter()
            .find_map(unsupported_capability)
        {
            Some(why) => ValidateVolumeCapabilitiesResponse {
                confirmed: None,
                message: why,
            },
            None => ValidateVolumeCapabilitiesResponse {
                confirmed: Some(Confirmed {
                    volume_context: req.volume_context,
                    volume_capabilities: req.volume_capabilities,
                    parameters: req.parameters,
                    mutable_parameters: req.mutable_parameters,
                }),
                message: String::new(),
            },
        };
        Ok(Response::new(response))
    }

    async fn get_capacity(
        &self,
        req: Request<GetCapacityRequest>,
    ) -> Result<Response<GetCapacityResponse>, Status> {
        // What the cache can hold: the live workers' free space.
        // The CSI spec gives GetCapacity no secrets: the plugin's own.
        let master = req.into_inner().parameters.get("masterAddress").cloned();
        let fs = self.fs(master.as_deref(), &HashMap::new())?;
        let workers = fs.master().worker_infos().await.map_err(Status::from)?;
        let available: u64 = workers
            .iter()
            .filter(|w| w.state == "LIVE")
            .flat_map(|w| w.tiers.iter())
            .map(|t| t.capacity_bytes.saturating_sub(t.used_bytes))
            .sum();
        Ok(Response::new(GetCapacityResponse {
            available_capacity: available.min(i64::MAX as u64) as i64,
            maximum_volume_size: None,
            minimum_volume_size: None,
        }))
    }

    async fn controller_get_capabilities(
        &self,
        _: Request<ControllerGetCapabilitiesRequest>,
    ) -> Result<Response<ControllerGetCapabilitiesResponse>, Status> {
        let rpc = |t: rpc::Type| ControllerServiceCapability {
            r#type: Some(CapabilityType::Rpc(Rpc { r#type: t as i32 })),
        };
        Ok(Response::new(ControllerGetCapabilitiesResponse {
            capabilities: vec![
                rpc(rpc::Type::CreateDeleteVolume),
                rpc(rpc::Type::GetCapacity),
            ],
        }))
    }
}
