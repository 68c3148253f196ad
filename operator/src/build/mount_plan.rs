//! What a `Mount` asks of the master, decided by a pure function from the
//! spec, the credentials Secret and the master's mount table: mount,
//! update the mount, unmount, nothing — or a conflict the operator must not
//! resolve by force (another UFS already mounted at the path).
//!
//! The master masks credential values in its mount table, so whether the
//! credentials changed is judged by a hash of them that the operator keeps
//! in the Mount's status.

use crate::crd::mount::MountSpec;
use alluxio_common::units::SYNC_INTERVAL_OPTION;
use alluxio_proto::grpc::{MountPointInfo, MountRequest, UpdateMountRequest};
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug, PartialEq)]
pub enum MountAction {
    Mount(MountRequest),
    Update(UpdateMountRequest),
    Unmount(String),
    Nothing,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("{path} already has {existing} mounted; this Mount wants {wanted}")]
    Occupied {
        path: String,
        existing: String,
        wanted: String,
    },
    #[error("option {0:?} is set both in spec.options and in the credentials Secret")]
    DuplicateOption(String),
    #[error("the sync interval is set both as spec.syncInterval and in spec.options")]
    SyncIntervalTwice,
}

/// Hash of the credentials, for `status.credentialsHash`; the values never
/// leave the operator otherwise.
pub fn credentials_hash(credentials: &BTreeMap<String, String>) -> String {
    let mut h = crc32fast::Hasher::new();
    for (k, v) in credentials {
        h.update(k.as_bytes());
        h.update(&[0]);
        h.update(v.as_bytes());
        h.update(&[0]);
    }
    format!("{:08x}", h.finalize())
}

/// The options that are not secret: `spec.options`, and `spec.syncInterval`
/// as the master's `sync_interval` mount option.
fn plain_options(spec: &MountSpec) -> Result<BTreeMap<String, String>, PlanError> {
    let mut plain = spec.options.clone();
    if let Some(interval) = &spec.sync_interval {
        if plain
            .insert(SYNC_INTERVAL_OPTION.to_string(), interval.clone())
            .is_some()
        {
            return Err(PlanError::SyncIntervalTwice);
        }
    }
    Ok(plain)
}

fn options(
    plain: &BTreeMap<String, String>,
    credentials: &BTreeMap<String, String>,
) -> Result<HashMap<String, String>, PlanError> {
    let mut all: HashMap<String, String> = plain.clone().into_iter().collect();
    for (k, v) in credentials {
        if all.insert(k.clone(), v.clone()).is_some() {
            return Err(PlanError::DuplicateOption(k.clone()));
        }
    }
    Ok(all)
}

/// The action that makes the master's table match a live Mount.
pub fn plan_mount(
    spec: &MountSpec,
    credentials: &BTreeMap<String, String>,
    applied_credentials_hash: Option<&str>,
    table: &[MountPointInfo],
) -> Result<MountAction, PlanError> {
    let plain = plain_options(spec)?;
    let wanted_options = options(&plain, credentials)?;
    let Some(current) = table.iter().find(|m| m.alluxio_path == spec.alluxio_path) else {
        return Ok(MountAction::Mount(MountRequest {
            alluxio_path: spec.alluxio_path.clone(),
            ufs_uri: spec.ufs.clone(),
            read_only: spec.read_only,
            shared: spec.shared,
            options: wanted_options,
        }));
    };
    if current.ufs_uri.trim_end_matches('/') != spec.ufs.trim_end_matches('/') {
        return Err(PlanError::Occupied {
            path: spec.alluxio_path.clone(),
            existing: current.ufs_uri.clone(),
            wanted: spec.ufs.clone(),
        });
    }
    let plain_options_differ = plain.len() + credentials.len() != current.options.len()
        || plain.iter().any(|(k, v)| current.options.get(k) != Some(v));
    let credentials_changed = applied_credentials_hash != Some(&credentials_hash(credentials))
        || credentials.keys().any(|k| !current.options.contains_key(k));
    if current.read_only != spec.read_only
        || current.shared != spec.shared
        || plain_options_differ
        || credentials_changed
    {
        return Ok(MountAction::Update(UpdateMountRequest {
            alluxio_path: spec.alluxio_path.clone(),
            read_only: spec.read_only,
            shared: spec.shared,
            options: wanted_options,
        }));
    }
    Ok(MountAction::Nothing)
}

/// The action for a Mount being deleted: unmount what it mounted, and
/// leave anything else at the path alone.
pub fn plan_unmount(spec: &MountSpec, table: &[MountPointInfo]) -> MountAction {
    match table.iter().find(|m| m.alluxio_path == spec.alluxio_path) {
        Some(m) if m.ufs_uri.trim_end_matches('/') == spec.ufs.trim_end_matches('/') => {
            MountAction::Unmount(spec.alluxio_path.clone())
        }
        _ => MountAction::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> MountSpec {
        MountSpec {
            cluster: "demo".into(),
            alluxio_path: "/data".into(),
            ufs: "s3://bucket/prefix".into(),
            options: BTreeMap::from([("region".into(), "us-east-1".into())]),
            read_only: true,
            shared: false,
            credentials: None,
            sync_interval: None,
        }
    }

    fn secret() -> BTreeMap<String, String> {
        BTreeMap::from([("secret_access_key".into(), "s3cr3t".into())])
    }

    fn mounted(read_only: bool, region: &str) -> MountPointInfo {
        MountPointInfo {
            alluxio_path: "/data".into(),
            ufs_uri: "s3://bucket/prefix".into(),
            read_only,
            options: HashMap::from([
                ("region".into(), region.into()),
                ("secret_access_key".into(), "******".into()),
            ]),
            ..Default::default()
        }
    }

    #[test]
    fn a_missing_mount_is_mounted_with_the_secret_in_its_options() {
        let MountAction::Mount(req) = plan_mount(&spec(), &secret(), None, &[]).unwrap() else {
            panic!("expected a mount");
        };
        assert_eq!(req.ufs_uri, "s3://bucket/prefix");
        assert!(req.read_only);
        assert_eq!(req.options["secret_access_key"], "s3cr3t");
        assert_eq!(req.options["region"], "us-east-1");
    }

    #[test]
    fn the_sync_interval_becomes_the_masters_mount_option() {
        let mut spec = spec();
        spec.sync_interval = Some("5min".into());
        let MountAction::Mount(req) = plan_mount(&spec, &secret(), None, &[]).unwrap() else {
            panic!("expected a mount");
        };
        assert_eq!(req.options["sync_interval"], "5min");
        // Mounted with it: nothing to do; mounted without it: an update.
        let hash = credentials_hash(&secret());
        let mut with = mounted(true, "us-east-1");
        with.options.insert("sync_interval".into(), "5min".into());
        assert_eq!(
            plan_mount(&spec, &secret(), Some(&hash), &[with]).unwrap(),
            MountAction::Nothing
        );
        let without = [mounted(true, "us-east-1")];
        assert!(matches!(
            plan_mount(&spec, &secret(), Some(&hash), &without).unwrap(),
            MountAction::Update(_)
        ));
        spec.options.insert("sync_interval".into(), "0".into());
        assert_eq!(
            plan_mount(&spec, &secret(), None, &[]),
            Err(PlanError::SyncIntervalTwice)
        );
    }

    #[test]
    fn an_unchanged_mount_needs_nothing_and_changes_are_updates() {
        let hash = credentials_hash(&secret());
        let table = [mounted(true, "us-east-1")];
        assert_eq!(
            plan_mount(&spec(), &secret(), Some(&hash), &table).unwrap(),
            MountAction::Nothing
        );
        // A changed flag, option value, or rotated credentials.
        for (table, hash) in [
            ([mounted(false, "us-east-1")], hash.clone()),
            ([mounted(true, "eu-west-1")], hash.clone()),
            ([mounted(true, "us-east-1")], "00000000".to_string()),
        ] {
            assert!(matches!(
                plan_mount(&spec(), &secret(), Some(&hash), &table).unwrap(),
                MountAction::Update(_)
            ));
        }
    }

    #[test]
    fn another_ufs_at_the_path_is_a_conflict_and_is_never_unmounted() {
        let mut other = mounted(true, "us-east-1");
        other.ufs_uri = "gs://elsewhere".into();
        let table = [other];
        assert!(matches!(
            plan_mount(&spec(), &secret(), None, &table),
            Err(PlanError::Occupied { .. })
        ));
        assert_eq!(plan_unmount(&spec(), &table), MountAction::Nothing);
        assert_eq!(
            plan_unmount(&spec(), &[mounted(true, "us-east-1")]),
            MountAction::Unmount("/data".into())
        );
    }

    #[test]
    fn an_option_in_both_places_is_refused_and_errors_hold_no_secret() {
        let mut s = spec();
        s.options.insert("secret_access_key".into(), "x".into());
        let err = plan_mount(&s, &secret(), None, &[]).unwrap_err();
        assert!(matches!(err, PlanError::DuplicateOption(_)));
        assert!(!err.to_string().contains("s3cr3t"));
        assert_ne!(
            credentials_hash(&secret()),
            credentials_hash(&BTreeMap::new())
        );
    }
}
