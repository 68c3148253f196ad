//! The CSI plugin's Prometheus metrics: per volume, stage and publish
//! operations and their errors; FUSE daemons alive, restarted, and
//! volumes recovered after a daemon died.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VolumeOp {
    pub volume: String,
    /// stage, unstage, publish, unpublish.
    pub op: &'static str,
}

#[derive(Default)]
pub struct CsiMetrics {
    pub operations: Family<VolumeOp, Counter>,
    pub errors: Family<VolumeOp, Counter>,
    pub fuse_alive: Gauge,
    pub fuse_restarts: Counter,
    pub recoveries: Counter,
}

impl CsiMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = CsiMetrics::default();
        registry.register(
            "alluxio_csi_operations",
            "Node operations by volume and kind",
            m.operations.clone(),
        );
        registry.register(
            "alluxio_csi_operation_errors",
            "Node operations that failed, by volume and kind",
            m.errors.clone(),
        );
        registry.register(
            "alluxio_csi_fuse_processes_alive",
            "FUSE daemons of staged volumes that are running",
            m.fuse_alive.clone(),
        );
        registry.register(
            "alluxio_csi_fuse_restarts",
            "FUSE daemons started again after one died",
            m.fuse_restarts.clone(),
        );
        registry.register(
            "alluxio_csi_volume_recoveries",
            "Volumes whose mount and published targets were restored",
            m.recoveries.clone(),
        );
        m
    }

    pub fn count(&self, volume: &str, op: &'static str, ok: bool) {
        let labels = VolumeOp {
            volume: volume.to_string(),
            op,
        };
        self.operations.get_or_create(&labels).inc();
        if !ok {
            self.errors.get_or_create(&labels).inc();
        }
    }
}
