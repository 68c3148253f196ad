//! The worker's Prometheus metrics.

use crate::block_store::BlockStore;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabels {
    pub tier: String,
}

#[derive(Default)]
pub struct WorkerMetrics {
    pub bytes_read_cache: Counter,
    pub bytes_read_data_port: Counter,
    pub bytes_read_ufs: Counter,
    pub bytes_written: Counter,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub ufs_requests: Counter,
    pub hit_ratio: Gauge<f64, AtomicU64>,
    pub evictions: Gauge,
    /// Bytes of blocks being fetched from the UFS now, and the most ever.
    pub read_through_bytes: Gauge,
    pub read_through_bytes_peak: Gauge,
    pub blocks: Family<TierLabels, Gauge>,
    pub used_bytes: Family<TierLabels, Gauge>,
    pub capacity_bytes: Family<TierLabels, Gauge>,
}

impl WorkerMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = WorkerMetrics::default();
        registry.register(
            "alluxio_worker_bytes_read_cache",
            "Bytes served from the cache",
            m.bytes_read_cache.clone(),
        );
        registry.register(
            "alluxio_worker_read_through_bytes",
            "Bytes of blocks being fetched from the UFS now (bounded by worker.read_through_memory)",
            m.read_through_bytes.clone(),
        );
        registry.register(
            "alluxio_worker_read_through_bytes_peak",
            "The most bytes of blocks ever fetched from the UFS at once",
            m.read_through_bytes_peak.clone(),
        );
        registry.register(
            "alluxio_worker_bytes_read_data_port",
            "Bytes of cached blocks served over the raw TCP data port (part of bytes_read_cache)",
            m.bytes_read_data_port.clone(),
        );
        registry.register(
            "alluxio_worker_bytes_read_ufs",
            "Bytes read from under storage",
            m.bytes_read_ufs.clone(),
        );
        registry.register(
            "alluxio_worker_bytes_written",
            "Bytes of blocks written by clients",
            m.bytes_written.clone(),
        );
        registry.register(
            "alluxio_worker_cache_hits",
            "Block reads served from the cache",
            m.cache_hits.clone(),
        );
        registry.register(
            "alluxio_worker_cache_misses",
            "Block reads that went to the UFS",
            m.cache_misses.clone(),
        );
        registry.register(
            "alluxio_worker_ufs_requests",
            "Read requests sent to under storage",
            m.ufs_requests.clone(),
        );
        registry.register(
            "alluxio_worker_cache_hit_ratio",
            "Hits / (hits + misses) of block reads",
            m.hit_ratio.clone(),
        );
        registry.register(
            "alluxio_worker_evictions",
            "Blocks evicted to make room",
            m.evictions.clone(),
        );
        registry.register(
            "alluxio_worker_blocks",
            "Cached blocks per tier",
            m.blocks.clone(),
        );
        registry.register(
            "alluxio_worker_used_bytes",
            "Bytes cached or reserved per tier",
            m.used_bytes.clone(),
        );
        registry.register(
            "alluxio_worker_capacity_bytes",
            "Quota per tier",
            m.capacity_bytes.clone(),
        );
        m
    }

    /// Copies the store's current state into the gauges.
    pub fn refresh(&self, store: &BlockStore) {
        for t in store.tier_stats() {
            let l = TierLabels { tier: t.alias };
            self.blocks.get_or_create(&l).set(t.blocks as i64);
            self.used_bytes.get_or_create(&l).set(t.used as i64);
            self.capacity_bytes.get_or_create(&l).set(t.capacity as i64);
        }
        self.evictions.set(store.evictions() as i64);
        let (h, m) = (self.cache_hits.get(), self.cache_misses.get());
        self.hit_ratio.set(if h + m == 0 {
            0.0
        } else {
            h as f64 / (h + m) as f64
        });
    }
}
