//! The CSI Identity service: who the plugin is, what it offers, and
//! whether it is ready (only once the master answers).

use alluxio_client::MasterClient;
use alluxio_proto::csi::identity_server::Identity;
use alluxio_proto::csi::plugin_capability::{service, Service, Type as CapabilityType};
use alluxio_proto::csi::*;
use std::time::Duration;
use tonic::{Request, Response, Status};

pub const PLUGIN_NAME: &str = "csi.alluxio.rs";

pub struct IdentityService {
    pub master: MasterClient,
    /// The controller service is offered (controller mode).
    pub controller: bool,
}

#[tonic::async_trait]
impl Identity for IdentityService {
    async fn get_plugin_info(
        &self,
        _: Request<GetPluginInfoRequest>,
    ) -> Result<Response<GetPluginInfoResponse>, Status> {
        Ok(Response::new(GetPluginInfoResponse {
            name: PLUGIN_NAME.into(),
            vendor_version: env!("CARGO_PKG_VERSION").into(),
            manifest: Default::default(),
        }))
    }

    async fn get_plugin_capabilities(
        &self,
        _: Request<GetPluginCapabilitiesRequest>,
    ) -> Result<Response<GetPluginCapabilitiesResponse>, Status> {
        let service = |t: service::Type| PluginCapability {
            r#type: Some(CapabilityType::Service(Service { r#type: t as i32 })),
        };
        let mut capabilities = vec![service(service::Type::VolumeAccessibilityConstraints)];
        if self.controller {
            capabilities.push(service(service::Type::ControllerService));
        }
        Ok(Response::new(GetPluginCapabilitiesResponse {
            capabilities,
        }))
    }

    async fn probe(&self, _: Request<ProbeRequest>) -> Result<Response<ProbeResponse>, Status> {
        let ready = matches!(
            tokio::time::timeout(Duration::from_secs(2), self.master.ping()).await,
            Ok(Ok(()))
        );
        Ok(Response::new(ProbeResponse { ready: Some(ready) }))
    }
}
