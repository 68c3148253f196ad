//! The alluxio-rs operator. Built so far: the custom resources (`crd`),
//! from which the CustomResourceDefinitions in `crds/` are generated, and
//! the first pure builders (`build`: object names and labels, quantities,
//! the cluster's `alluxio.yaml`). The reconcilers, the controller process
//! and the Helm chart are not built yet (see the README's status table).

pub mod build;
pub mod controller;
pub mod crd;
pub mod leader;
pub mod metrics;
