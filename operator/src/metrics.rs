//! The operator's Prometheus metrics, served on `/metrics` (port 8080):
//! reconciles and failures per controller, failures by reason, reconcile
//! duration per controller, clusters by phase and leadership.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub controller: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

fn duration_histogram() -> Histogram {
    // 1 ms .. about 65 s: an apply is milliseconds, a slow master seconds.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 17,
    ))
}

#[derive(Clone)]
pub struct Metrics {
    pub reconciles: Family<ControllerLabels, Counter>,
    pub failures: Family<FailureLabels, Counter>,
    pub duration: Family<ControllerLabels, Histogram, fn() -> Histogram>,
    pub clusters: Family<PhaseLabels, Gauge>,
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            reconciles: Family::default(),
            failures: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            clusters: Family::default(),
            leader: Gauge::default(),
        }
    }
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Metrics::default();
        registry.register(
            "alluxio_operator_reconciles",
            "Reconciles run, by controller",
            m.reconciles.clone(),
        );
        registry.register(
            "alluxio_operator_reconcile_failures",
            "Reconciles that failed, by controller and reason",
            m.failures.clone(),
        );
        registry.register(
            "alluxio_operator_reconcile_duration_seconds",
            "Time one reconcile took, by controller",
            m.duration.clone(),
        );
        registry.register(
            "alluxio_operator_clusters",
            "AlluxioClusters by status phase",
            m.clusters.clone(),
        );
        registry.register(
            "alluxio_operator_leader",
            "1 while this replica holds the leader Lease",
            m.leader.clone(),
        );
        m
    }

    /// Starts timing one reconcile of `controller`; call
    /// [`ReconcileTimer::finish`] with its failure reason, if any.
    pub fn start(&self, controller: &'static str) -> ReconcileTimer<'_> {
        self.reconciles
            .get_or_create(&ControllerLabels { controller })
            .inc();
        ReconcileTimer {
            metrics: self,
            controller,
            started: Instant::now(),
        }
    }

    /// Replaces the clusters-by-phase gauge with `phases` (all current
    /// clusters' phases; `Pending` for those without a status yet).
    pub fn set_cluster_phases<'a>(&self, phases: impl Iterator<Item = &'a str>) {
        self.clusters.clear();
        for phase in phases {
            self.clusters
                .get_or_create(&PhaseLabels {
                    phase: phase.to_string(),
                })
                .inc();
        }
    }
}

pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    controller: &'static str,
    started: Instant,
}

impl ReconcileTimer<'_> {
    pub fn finish(self, failure: Option<&'static str>) {
        let controller = self.controller;
        self.metrics
            .duration
            .get_or_create(&ControllerLabels { controller })
            .observe(self.started.elapsed().as_secs_f64());
        if let Some(reason) = failure {
            self.metrics
                .failures
                .get_or_create(&FailureLabels { controller, reason })
                .inc();
        }
    }
}
