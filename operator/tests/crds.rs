//! `crds/` holds exactly the CRDs generated from the Rust types, and the
//! examples in `crds/examples/` are valid resources of them.

use alluxio_e2e::kube_tools::repo_dir;
use alluxio_operator::build::config::{alluxio_config, Masters};
use alluxio_operator::build::names::Names;
use alluxio_operator::crd::{crd_files, AlluxioCluster, Mount};

#[test]
fn crds_directories_are_up_to_date() {
    // crds/ for kubectl users, and the chart's copy that Helm installs.
    for dir in ["crds", "charts/alluxio-rs/crds"] {
        for (name, yaml) in crd_files() {
            let path = repo_dir().join(dir).join(name);
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == yaml,
                "{} is stale: run `cargo run -p alluxio-operator -- crds --out {dir}`",
                path.display()
            );
        }
    }
}

#[test]
fn examples_are_valid_resources() {
    let dir = repo_dir().join("crds/examples");
    let cluster: AlluxioCluster =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("alluxiocluster.yaml")).unwrap())
            .unwrap();
    assert_eq!(cluster.spec.worker.tiers.len(), 2);
    let names = Names::new("demo", "default");
    let masters = Masters::new_cluster(cluster.spec.master.replicas);
    let (config, _) = alluxio_config(&names, &cluster.spec, masters).unwrap();
    assert_eq!(config.user.block_size.0, 128 << 20);

    let mount: Mount =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("mount.yaml")).unwrap()).unwrap();
    assert_eq!(mount.spec.cluster, cluster.metadata.name.clone().unwrap());
    assert!(mount.spec.alluxio_path.starts_with('/'));

    let load: alluxio_operator::crd::Load =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("load.yaml")).unwrap()).unwrap();
    assert_eq!(load.spec.cluster, cluster.metadata.name.unwrap());
    assert_eq!(load.spec.mount, mount.metadata.name);
    let valid = alluxio_operator::build::load_plan::validate(&load.spec).unwrap();
    assert_eq!(valid.options.bandwidth_bytes_per_sec, 500 << 20);
    assert!(valid.schedule.is_some());
}
