//! Turns a UFS URI and its mount options into an [`UnderFileSystem`].

use crate::local::LocalUfs;
use crate::timed::TimedUfs;

/// `request_timeout` of stores without their own (local directories,
/// HDFS): one call, or the gap between two pieces of a read.
const LOCAL_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
use crate::object::ObjectStoreUfs;
use crate::options::parse_bool;
use crate::{UfsError, UfsResult, UnderFileSystem};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::azure::{MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorage, GoogleCloudStorageBuilder};
use object_store::memory::InMemory;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A parsed UFS URI: `scheme://authority/path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UfsUri {
    pub scheme: String,
    /// Bucket, container@account, namenode host:port; empty for `file://`.
    pub authority: String,
    /// Path below the authority, without leading or trailing slash.
    pub path: String,
}

impl UfsUri {
    pub fn parse(uri: &str) -> UfsResult<UfsUri> {
        let bad = |reason: &str| UfsError::InvalidUri {
            uri: uri.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| bad("expected scheme://... (s3, gs, abfs, az, file, memory, hdfs)"))?;
        if uri.contains('\0') {
            return Err(bad("contains a NUL byte"));
        }
        let scheme = scheme.to_ascii_lowercase();
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a.to_string(), p.trim_matches('/').to_string()),
            None => (rest.to_string(), String::new()),
        };
        if path.split('/').any(|c| c == "..") {
            return Err(bad("path may not contain '..'"));
        }
        match scheme.as_str() {
            "file" => {
                if !authority.is_empty() {
                    return Err(bad("file URIs need an absolute path: file:///dir"));
                }
                if path.is_empty() {
                    return Err(bad(
                        "mounting the whole local root directory is not allowed",
                    ));
                }
            }
            "s3" | "s3a" | "gs" | "abfs" | "abfss" | "az" | "azure" | "hdfs" => {
                if authority.is_empty() {
                    return Err(bad("missing bucket, container or host"));
                }
            }
            "memory" => {}
            other => return Err(bad(&format!("unsupported scheme {other:?}"))),
        }
        Ok(UfsUri {
            scheme,
            authority,
            path,
        })
    }
}

/// Builds the UFS for `uri`. Unknown options are refused by name. Nothing
/// is contacted yet; call `check_reachable` for that.
pub fn create_ufs(
    uri: &str,
    options: &BTreeMap<String, String>,
) -> UfsResult<Arc<dyn UnderFileSystem>> {
    let parsed = UfsUri::parse(uri)?;
    let display = uri.trim_end_matches('/').to_string();
    match parsed.scheme.as_str() {
        "file" => {
            refuse_unknown(options, &[&[crate::local::FOLLOW_SYMLINKS_OPTION]])?;
            let key = crate::local::FOLLOW_SYMLINKS_OPTION;
            let follow = match options.get(key) {
                None => false,
                Some(v) => crate::options::parse_bool(key, v)?,
            };
            let ufs = LocalUfs::new(display, format!("/{}", parsed.path));
            // A directory on NFS may stop answering: bound every wait.
            let timeout = duration_option(options, "request_timeout", LOCAL_REQUEST_TIMEOUT)?;
            Ok(Arc::new(TimedUfs::new(
                Arc::new(ufs.following_symlinks(follow)),
                timeout,
            )))
        }
        "memory" => {
            refuse_unknown(options, &[])?;
            let store = memory_store(&parsed.authority);
            Ok(Arc::new(ObjectStoreUfs::new(
                display,
                "memory",
                store,
                &parsed.path,
            )))
        }
        "s3" | "s3a" => {
            let store = build_s3(&parsed, options)?;
            let ufs = ObjectStoreUfs::new(display, "s3", store.clone(), &parsed.path);
            Ok(Arc::new(
                ufs.with_signer(store.clone()).with_paged_listing(store),
            ))
        }
        "gs" => {
            let store = build_gcs(&parsed, options)?;
            let ufs = ObjectStoreUfs::new(display, "gcs", store.clone(), &parsed.path);
            Ok(Arc::new(
                ufs.with_signer(store.clone()).with_paged_listing(store),
            ))
        }
        "abfs" | "abfss" | "az" | "azure" => {
            let store = build_azure(&parsed, options)?;
            let ufs = ObjectStoreUfs::new(display, "azure", store.clone(), &parsed.path);
            Ok(Arc::new(
                ufs.with_signer(store.clone()).with_paged_listing(store),
            ))
        }
        #[cfg(feature = "hdfs")]
        "hdfs" => {
            refuse_unknown(options, &[])?;
            let timeout = duration_option(options, "request_timeout", LOCAL_REQUEST_TIMEOUT)?;
            let hdfs = crate::hdfs::HdfsUfs::connect(display, &parsed)?;
            Ok(Arc::new(TimedUfs::new(Arc::new(hdfs), timeout)))
        }
        #[cfg(not(feature = "hdfs"))]
        "hdfs" => Err(UfsError::InvalidUri {
            uri: uri.to_string(),
            reason: "HDFS support is not compiled in (build with --features hdfs)".to_string(),
        }),
        other => Err(UfsError::InvalidUri {
            uri: uri.to_string(),
            reason: format!("unsupported scheme {other:?}"),
        }),
    }
}

/// `memory://name` stores live for the life of the process and are shared
/// by every mount of the same name (useful in tests and `alluxio local`).
fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    let stores = STORES.get_or_init(Default::default);
    let mut stores = stores.lock().unwrap_or_else(|p| p.into_inner());
    stores
        .entry(name.to_string())
        .or_insert_with(|| Arc::new(InMemory::new()))
        .clone()
}

/// Finds an option by any of its accepted names (ours first, then the
/// Alluxio/Hadoop spellings users bring from Java deployments).
fn option<'a>(options: &'a BTreeMap<String, String>, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| options.get(*n))
        .map(String::as_str)
}

fn refuse_unknown(options: &BTreeMap<String, String>, known: &[&[&str]]) -> UfsResult<()> {
    const COMMON: [&str; 4] = [
        "request_timeout",
        "retry_timeout",
        alluxio_common::units::SYNC_INTERVAL_OPTION,
        // Kept by the master (setuid and setgid bits of new modes).
        "allow_setuid",
    ];
    if let Some(v) = options.get(alluxio_common::units::SYNC_INTERVAL_OPTION) {
        v.parse::<alluxio_common::units::SyncInterval>()
            .map_err(|e| {
                UfsError::InvalidOption(format!(
                    "{}: {e}",
                    alluxio_common::units::SYNC_INTERVAL_OPTION
                ))
            })?;
    }
    for key in options.keys() {
        let ok = COMMON.contains(&key.as_str())
            || known.iter().any(|names| names.contains(&key.as_str()));
        if !ok {
            let accepted: Vec<&str> = known.iter().map(|n| n[0]).chain(COMMON).collect();
            return Err(UfsError::InvalidOption(format!(
                "unknown option {key:?} (accepted: {})",
                accepted.join(", ")
            )));
        }
    }
    Ok(())
}

fn duration_option(
    options: &BTreeMap<String, String>,
    key: &str,
    default: Duration,
) -> UfsResult<Duration> {
    match options.get(key) {
        None => Ok(default),
        Some(v) => humantime::parse_duration(v)
            .map_err(|e| UfsError::InvalidOption(format!("{key}: invalid duration {v:?}: {e}"))),
    }
}

/// Bounded timeouts and retries, so an unreachable store fails in seconds
/// rather than after object_store's default of minutes.
fn client_settings(options: &BTreeMap<String, String>) -> UfsResult<(ClientOptions, RetryConfig)> {
    let request_timeout = duration_option(options, "request_timeout", Duration::from_secs(30))?;
    let retry_timeout = duration_option(options, "retry_timeout", Duration::from_secs(15))?;
    let client = ClientOptions::new()
        .with_timeout(request_timeout)
        .with_connect_timeout(Duration::from_secs(5));
    let retry = RetryConfig {
        max_retries: 3,
        retry_timeout,
        ..RetryConfig::default()
    };
    Ok((client, retry))
}

const S3_ACCESS_KEY: &[&str] = &["access_key_id", "aws.accessKeyId", "s3a.accessKeyId"];
const S3_SECRET_KEY: &[&str] = &["secret_access_key", "aws.secretKey", "s3a.secretKey"];
const S3_TOKEN: &[&str] = &["session_token", "aws.sessionToken"];
const S3_REGION: &[&str] = &["region", "aws.region", "alluxio.underfs.s3.region"];
const S3_ENDPOINT: &[&str] = &["endpoint", "aws.endpoint", "alluxio.underfs.s3.endpoint"];
const S3_PATH_STYLE: &[&str] = &["path_style", "alluxio.underfs.s3.disable.dns.buckets"];
const ALLOW_HTTP: &[&str] = &["allow_http"];

fn build_s3(uri: &UfsUri, options: &BTreeMap<String, String>) -> UfsResult<Arc<AmazonS3>> {
    refuse_unknown(
        options,
        &[
            S3_ACCESS_KEY,
            S3_SECRET_KEY,
            S3_TOKEN,
            S3_REGION,
            S3_ENDPOINT,
            S3_PATH_STYLE,
            ALLOW_HTTP,
        ],
    )?;
    let (client, retry) = client_settings(options)?;
    // Environment first (AWS_ACCESS_KEY_ID, AWS_REGION, AWS_ENDPOINT...),
    // then mount options, which win.
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(&uri.authority)
        .with_client_options(client)
        .with_retry(retry);
    if let Some(v) = option(options, S3_ACCESS_KEY) {
        b = b.with_access_key_id(v);
    }
    if let Some(v) = option(options, S3_SECRET_KEY) {
        b = b.with_secret_access_key(v);
    }
    if let Some(v) = option(options, S3_TOKEN) {
        b = b.with_token(v);
    }
    if let Some(v) = option(options, S3_REGION) {
        b = b.with_region(v);
    }
    if let Some(v) = option(options, S3_ENDPOINT) {
        b = b.with_endpoint(v);
        if v.starts_with("http://") {
            b = b.with_allow_http(true);
        }
        // Custom endpoints (MinIO, moto, Ceph) almost always want path style.
        b = b.with_virtual_hosted_style_request(false);
    }
    if let Some(v) = option(options, S3_PATH_STYLE) {
        b = b.with_virtual_hosted_style_request(!parse_bool("path_style", v)?);
    }
    if let Some(v) = option(options, ALLOW_HTTP) {
        b = b.with_allow_http(parse_bool("allow_http", v)?);
    }
    b.build().map(Arc::new).map_err(|e| {
        UfsError::InvalidOption(format!(
            "cannot configure S3 for s3://{}: {e}",
            uri.authority
        ))
    })
}

const GCS_KEY_PATH: &[&str] = &["service_account_path", "fs.gcs.credential.path"];
const GCS_KEY: &[&str] = &["service_account_key"];

fn build_gcs(
    uri: &UfsUri,
    options: &BTreeMap<String, String>,
) -> UfsResult<Arc<GoogleCloudStorage>> {
    refuse_unknown(options, &[GCS_KEY_PATH, GCS_KEY])?;
    let (client, retry) = client_settings(options)?;
    let mut b = GoogleCloudStorageBuilder::from_env()
        .with_bucket_name(&uri.authority)
        .with_client_options(client)
        .with_retry(retry);
    if let Some(v) = option(options, GCS_KEY_PATH) {
        b = b.with_service_account_path(v);
    }
    if let Some(v) = option(options, GCS_KEY) {
        b = b.with_service_account_key(v);
    }
    b.build().map(Arc::new).map_err(|e| {
        UfsError::InvalidOption(format!(
            "cannot configure GCS for gs://{}: {e}",
            uri.authority
        ))
    })
}

const AZ_ACCOUNT: &[&str] = &["account_name"];
const AZ_KEY: &[&str] = &["access_key", "account_key"];
const AZ_ENDPOINT: &[&str] = &["endpoint"];
const AZ_EMULATOR: &[&str] = &["use_emulator"];

fn build_azure(uri: &UfsUri, options: &BTreeMap<String, String>) -> UfsResult<Arc<MicrosoftAzure>> {
    refuse_unknown(
        options,
        &[AZ_ACCOUNT, AZ_KEY, AZ_ENDPOINT, AZ_EMULATOR, ALLOW_HTTP],
    )?;
    let (client, retry) = client_settings(options)?;
    // abfs://container@account.dfs.core.windows.net/path or az://container/path
    let (container, account) = match uri.authority.split_once('@') {
        Some((c, host)) => (c.to_string(), host.split('.').next().map(str::to_string)),
        None => (uri.authority.clone(), None),
    };
    let mut b = MicrosoftAzureBuilder::from_env()
        .with_container_name(container)
        .with_client_options(client)
        .with_retry(retry);
    if let Some(a) = account.as_deref().or(option(options, AZ_ACCOUNT)) {
        b = b.with_account(a);
    }
    if let Some(v) = option(options, AZ_KEY) {
        b = b.with_access_key(v);
    }
    if let Some(v) = option(options, AZ_ENDPOINT) {
        b = b.with_endpoint(v.to_string());
        if v.starts_with("http://") {
            b = b.with_allow_http(true);
        }
    }
    if let Some(v) = option(options, AZ_EMULATOR) {
        b = b.with_use_emulator(parse_bool("use_emulator", v)?);
    }
    if let Some(v) = option(options, ALLOW_HTTP) {
        b = b.with_allow_http(parse_bool("allow_http", v)?);
    }
    b.build().map(Arc::new).map_err(|e| {
        UfsError::InvalidOption(format!("cannot configure Azure for {}: {e}", uri.authority))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uris() {
        let u = UfsUri::parse("s3://bucket/a/b/").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.authority.as_str(), u.path.as_str()),
            ("s3", "bucket", "a/b")
        );
        let u = UfsUri::parse("file:///tmp/x").unwrap();
        assert_eq!(u.path, "tmp/x");
        for bad in [
            "nope",
            "ftp://x/y",
            "s3:///path",
            "file://host/x",
            "file:///",
            "s3://b/../c",
        ] {
            assert!(UfsUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_options_are_named() {
        let mut o = BTreeMap::new();
        o.insert("regoin".to_string(), "x".to_string());
        let err = create_ufs("s3://bucket", &o).unwrap_err().to_string();
        assert!(err.contains("regoin"), "{err}");
        assert!(create_ufs("file:///tmp/x", &o).is_err());
    }
}
