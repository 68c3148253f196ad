//! `alluxio.yaml`: one configuration for every process.
//!
//! Values come from, in increasing priority: built-in defaults, the YAML
//! file, `ALLUXIO_<SECTION>_<KEY>` environment variables (for example
//! `ALLUXIO_MASTER_RPC_PORT=20000`), and `-D section.key=value` flags.
//! Unknown keys are an error that names the key, wherever they come from.

use crate::error::AlluxioError;
use crate::units::{ByteSize, ConfigDuration, SyncInterval};
use serde::{Deserialize, Deserializer, Serialize};
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlluxioConfig {
    pub master: MasterConfig,
    pub worker: WorkerConfig,
    pub user: UserConfig,
    pub security: SecurityConfig,
}

/// `security.*`: who may call (see `auth`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// TOKEN (default): every call carries a token signed with the cluster
    /// key. NOSASL: nothing is checked (benchmarks, trusted labs).
    pub authentication: AuthenticationConfig,
    /// The cluster key (64 hex digits, mode 0600). Masters create it when
    /// missing; workers and other services must be able to read it; a
    /// client that can read it mints tokens for its own user.
    pub key_file: PathBuf,
    /// A file holding this client's token (`alluxio fsadmin token issue`
    /// makes one). `ALLUXIO_TOKEN` in the environment takes precedence.
    pub token_file: Option<PathBuf>,
    /// Lifetime of the tokens a process mints from the key for itself
    /// (renewed at half-life).
    pub token_ttl: ConfigDuration,
    /// The superuser: may mount, unmount and act on any file. Empty: the
    /// user the master runs as (as in Alluxio).
    pub superuser: String,
    /// Members of this group are superusers too.
    pub supergroup: String,
    /// TLS on the gRPC ports and the data port (see `tls`).
    pub tls: SecurityTlsConfig,
}

/// `security.tls.*`: whether the cluster's ports speak TLS, and what
/// clients trust.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityTlsConfig {
    /// Servers serve TLS and clients dial it (off by default).
    pub enabled: bool,
    /// The CA certificates (PEM) that servers' certificates must chain to.
    pub ca_file: Option<PathBuf>,
    /// When set, every server's certificate is checked against this name
    /// instead of the host a client dials.
    pub server_name: String,
}

/// `master.tls.*`, `worker.tls.*`: a server's certificate chain and
/// private key (PEM), reread when they change.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsFilesConfig {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AuthenticationConfig {
    Token,
    Nosasl,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            authentication: AuthenticationConfig::Token,
            key_file: PathBuf::from("/tmp/alluxio-local/security/cluster.key"),
            token_file: None,
            token_ttl: ConfigDuration(Duration::from_secs(3600)),
            superuser: String::new(),
            supergroup: "supergroup".to_string(),
            tls: SecurityTlsConfig::default(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Host name clients use to reach this worker; also the bind address.
    pub hostname: String,
    pub rpc_port: u16,
    pub web_port: u16,
    /// Raw TCP port serving cached block bytes (see `data_protocol`);
    /// 0 picks a free port, which the worker reports to the master.
    pub data_port: u16,
    /// Where the worker keeps its identity (and, by default, its tiers).
    pub data_dir: PathBuf,
    pub heartbeat_interval: ConfigDuration,
    /// Eviction policy: LRU (default) or LRFU.
    pub evictor: EvictorConfig,
    /// Cache tiers from fastest to slowest. Empty: one MEM tier of 1GiB
    /// under `data_dir/mem`.
    pub tiers: Vec<TierConfig>,
    /// After a partial read of an uncached block, still cache all of it.
    pub cache_whole_block_on_partial_read: bool,
    /// Connections the data port serves at once; more are answered BUSY
    /// and closed (their clients read over gRPC).
    pub data_port_max_connections: usize,
    /// gRPC calls the worker handles at once (until their responses
    /// start); more are refused with ResourceExhausted (0: no limit).
    pub max_concurrent_rpcs: usize,
    /// gRPC connections open at once; more are closed as they arrive
    /// (0: no limit).
    pub max_connections: usize,
    /// A data-port reader that takes no bytes for this long is dropped,
    /// so a stalled reader cannot hold a connection and its buffers.
    pub data_port_write_timeout: ConfigDuration,
    /// Memory that blocks being fetched from the UFS may hold at once;
    /// further fetches wait for room.
    pub read_through_memory: ByteSize,
    /// A cold block is fetched from an object store (S3, GCS, Azure) as
    /// ranged requests of this size, `ufs_fetch_parallelism` at once: one
    /// stream from such a store is much slower than several. Local
    /// directories and HDFS are read with one stream.
    pub ufs_fetch_piece: ByteSize,
    pub ufs_fetch_parallelism: usize,
    /// This worker's certificate, when `security.tls.enabled`.
    pub tls: TlsFilesConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    /// MEM, SSD or HDD.
    pub alias: String,
    pub dirs: Vec<TierDirConfig>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierDirConfig {
    pub path: PathBuf,
    pub quota: ByteSize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EvictorConfig {
    Lru,
    Lrfu,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            hostname: "127.0.0.1".to_string(),
            rpc_port: 29999,
            web_port: 30000,
            data_port: 29998,
            data_dir: PathBuf::from("/tmp/alluxio-worker"),
            heartbeat_interval: ConfigDuration(Duration::from_secs(1)),
            evictor: EvictorConfig::Lru,
            tiers: Vec::new(),
            cache_whole_block_on_partial_read: true,
            data_port_max_connections: 1024,
            max_concurrent_rpcs: 4096,
            max_connections: 8192,
            data_port_write_timeout: ConfigDuration(Duration::from_secs(60)),
            read_through_memory: ByteSize(1 << 30),
            ufs_fetch_piece: ByteSize(8 << 20),
            ufs_fetch_parallelism: 4,
            tls: TlsFilesConfig::default(),
        }
    }
}

impl WorkerConfig {
    /// The configured tiers, or the default single MEM tier.
    pub fn effective_tiers(&self) -> Vec<TierConfig> {
        if !self.tiers.is_empty() {
            return self.tiers.clone();
        }
        vec![TierConfig {
            alias: "MEM".to_string(),
            dirs: vec![TierDirConfig {
                path: self.data_dir.join("mem"),
                quota: ByteSize(1 << 30),
            }],
        }]
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MasterConfig {
    /// Host name clients use to reach the master; also the bind address.
    pub hostname: String,
    pub rpc_port: u16,
    pub web_port: u16,
    pub journal: JournalConfig,
    /// UFS mounted at `/` on the first start.
    pub mount_table_root_ufs: String,
    /// Options of the root mount (credentials, endpoint, region...).
    #[serde(deserialize_with = "string_map")]
    pub mount_table_root_options: BTreeMap<String, String>,
    /// Local directories that `file://` mounts may name (they or a
    /// directory below them). Empty: none, but the root UFS the master is
    /// configured with. Mounting `file:///etc` would hand the host's files
    /// to whoever can mount.
    pub allowed_local_ufs_roots: Vec<String>,
    /// Default metadata sync interval (-1 never, 0 always, or a duration).
    pub metadata_sync_interval: SyncInterval,
    /// UFS entries listed and applied per transaction of a directory's
    /// metadata sync (one page of the listing).
    pub metadata_sync_batch_size: usize,
    /// Inodes changed per transaction of a recursive setAttribute (each
    /// transaction holds the namespace's write lock only that long).
    pub recursive_change_batch_size: usize,
    /// A worker silent for this long is marked lost.
    pub worker_timeout: ConfigDuration,
    /// How often lost workers are looked for.
    pub worker_check_interval: ConfigDuration,
    /// A lost worker is forgotten after this long without a heartbeat.
    pub lost_worker_forget_after: ConfigDuration,
    /// Calls the master handles at once; more are refused with
    /// ResourceExhausted (0: no limit).
    pub max_concurrent_rpcs: usize,
    /// gRPC connections open at once, per listener (RPC and Raft); more
    /// are closed as they arrive (0: no limit).
    pub max_connections: usize,
    /// How often expired TTLs are acted on.
    pub ttl_check_interval: ConfigDuration,
    /// File infos per message of a streamed listing.
    pub list_batch_size: usize,
    /// `host:rpc_port` of every master, for clients, workers and proxies
    /// of a fault-tolerant cluster (Alluxio's `alluxio.master.rpc.addresses`).
    /// Empty: the one master at `hostname:rpc_port`.
    #[serde(deserialize_with = "address_list")]
    pub rpc_addresses: Vec<String>,
    /// Fault-tolerant mode: the masters replicate the journal with Raft.
    pub embedded_journal: EmbeddedJournalConfig,
    /// Load jobs (`alluxio job load`, the `Load` resource).
    pub job: JobConfig,
    /// This master's certificate, when `security.tls.enabled` (served on
    /// the RPC and the Raft port).
    pub tls: TlsFilesConfig,
}

/// `master.job.*`: how the master runs load jobs on the workers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobConfig {
    /// Blocks a job has in flight on one worker at once.
    pub worker_concurrency: usize,
    /// Workers a block is tried on before its file is reported failed.
    pub attempts: usize,
    /// How often a running job journals its progress (a restarted job
    /// resumes from the last one).
    pub progress_interval: ConfigDuration,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            worker_concurrency: 4,
            attempts: 3,
            progress_interval: ConfigDuration(Duration::from_secs(1)),
        }
    }
}

/// `master.embedded_journal.*`: the Raft group of fault-tolerant masters.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedJournalConfig {
    /// `host:port` of every master's Raft endpoint, the same list in the
    /// same order on every master (Alluxio's
    /// `alluxio.master.embedded.journal.addresses`). Empty: a single
    /// master with its local journal. This master is the entry whose host
    /// is `master.hostname` and whose port is `port`.
    #[serde(deserialize_with = "address_list")]
    pub addresses: Vec<String>,
    /// Port of this master's Raft endpoint.
    pub port: u16,
    /// A follower that hears nothing from the leader for a random time
    /// between this and twice this starts an election.
    pub election_timeout: ConfigDuration,
    /// How often the leader heartbeats its followers.
    pub heartbeat_interval: ConfigDuration,
    /// Raft entries (each a group-committed batch of journal entries)
    /// between snapshots; the log before a snapshot is purged.
    pub snapshot_period_entries: u64,
}

impl Default for EmbeddedJournalConfig {
    fn default() -> Self {
        EmbeddedJournalConfig {
            addresses: Vec::new(),
            port: 19200,
            election_timeout: ConfigDuration(Duration::from_millis(500)),
            heartbeat_interval: ConfigDuration(Duration::from_millis(100)),
            snapshot_period_entries: 100_000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    pub dir: PathBuf,
    /// Write a checkpoint (and truncate the log) after this many entries.
    pub checkpoint_period_entries: u64,
    /// fsync every batch of entries before acknowledging. Turning this off
    /// loses acknowledged writes on a machine crash; only for experiments.
    pub fsync: bool,
    /// Encrypt the journal at rest with the key in this file (the cluster
    /// key's format; created, mode 0600, when missing). Every master of a
    /// group needs the same file. Unset: the journal is written plain.
    pub encryption_key_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserConfig {
    pub block_size: ByteSize,
    pub write_type: WriteTypeConfig,
    pub read_type: ReadTypeConfig,
    /// How long a client retries an unreachable master before failing.
    pub rpc_retry_timeout: ConfigDuration,
    /// Deadline of one call to the master (see `rpc`).
    pub rpc_timeout: ConfigDuration,
    /// Which worker a client reads uncached blocks through and writes to:
    /// LOCAL_FIRST, ROUND_ROBIN or MOST_AVAILABLE.
    pub location_policy: LocationPolicyConfig,
    /// Read blocks of a worker on the same host straight from its files.
    pub short_circuit: bool,
    /// Read cached blocks of other workers over their data port (raw TCP)
    /// rather than gRPC; blocks a worker does not hold always go over gRPC.
    pub data_port_reads: bool,
    /// Host name this client considers local (for LOCAL_FIRST and
    /// short-circuit reads).
    pub hostname: String,
    /// How long a client uses its list of live workers before asking the
    /// master again (at once after a worker failed it); Alluxio's
    /// `alluxio.user.worker.list.refresh.interval`.
    pub worker_list_refresh: ConfigDuration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LocationPolicyConfig {
    LocalFirst,
    RoundRobin,
    MostAvailable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WriteTypeConfig {
    MustCache,
    CacheThrough,
    Through,
    AsyncThrough,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReadTypeConfig {
    Cache,
    CachePromote,
    NoCache,
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            hostname: "127.0.0.1".to_string(),
            rpc_port: 19998,
            web_port: 19999,
            journal: JournalConfig::default(),
            mount_table_root_ufs: "file:///tmp/alluxio-underfs".to_string(),
            mount_table_root_options: BTreeMap::new(),
            allowed_local_ufs_roots: Vec::new(),
            metadata_sync_interval: SyncInterval::NEVER,
            metadata_sync_batch_size: 1000,
            recursive_change_batch_size: 10_000,
            worker_timeout: ConfigDuration(Duration::from_secs(300)),
            worker_check_interval: ConfigDuration(Duration::from_secs(10)),
            lost_worker_forget_after: ConfigDuration(Duration::from_secs(3600)),
            max_concurrent_rpcs: 4096,
            max_connections: 8192,
            ttl_check_interval: ConfigDuration(Duration::from_secs(60)),
            list_batch_size: 1000,
            rpc_addresses: Vec::new(),
            embedded_journal: EmbeddedJournalConfig::default(),
            job: JobConfig::default(),
            tls: TlsFilesConfig::default(),
        }
    }
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            dir: PathBuf::from("/tmp/alluxio-journal"),
            checkpoint_period_entries: 2_000_000,
            fsync: true,
            encryption_key_file: None,
        }
    }
}

impl Default for UserConfig {
    fn default() -> Self {
        UserConfig {
            block_size: ByteSize(64 << 20),
            write_type: WriteTypeConfig::CacheThrough,
            read_type: ReadTypeConfig::Cache,
            rpc_retry_timeout: ConfigDuration(Duration::from_secs(30)),
            rpc_timeout: ConfigDuration(crate::rpc::DEFAULT_CALL_TIMEOUT),
            location_policy: LocationPolicyConfig::LocalFirst,
            short_circuit: true,
            data_port_reads: true,
            hostname: "127.0.0.1".to_string(),
            worker_list_refresh: ConfigDuration(Duration::from_secs(30)),
        }
    }
}

impl AlluxioConfig {
    /// Address clients dial: `master.rpc_addresses` joined by commas (the
    /// masters of a fault-tolerant cluster), else `hostname:rpc_port`.
    pub fn master_address(&self) -> String {
        if !self.master.rpc_addresses.is_empty() {
            return self.master.rpc_addresses.join(",");
        }
        format!("{}:{}", self.master.hostname, self.master.rpc_port)
    }

    /// Loads defaults, then `file`, then the process environment, then
    /// `overrides` (`section.key=value`).
    pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<Self, AlluxioError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &env, overrides)
    }

    /// Like [`AlluxioConfig::load`] with an explicit environment (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: &[(String, String)],
        overrides: &[String],
    ) -> Result<Self, AlluxioError> {
        let file = match file {
            Some(file) => {
                let source = file.display().to_string();
                let text = std::fs::read_to_string(file).map_err(|e| {
                    AlluxioError::InvalidArgument(format!("cannot read config file {source}: {e}"))
                })?;
                Some((source, text))
            }
            None => None,
        };
        let file = file
            .as_ref()
            .map(|(source, text)| (source.as_str(), text.as_str()));
        Self::from_layers(file, env, overrides)
    }

    /// Defaults, then `file` (its name and its YAML text), then `env`,
    /// then `overrides`: [`AlluxioConfig::load_from`] without the file
    /// system (the fuzz target feeds it).
    pub fn from_layers(
        file: Option<(&str, &str)>,
        env: &[(String, String)],
        overrides: &[String],
    ) -> Result<Self, AlluxioError> {
        let defaults = serde_yaml::to_value(AlluxioConfig::default())
            .map_err(|e| AlluxioError::Internal(format!("default configuration: {e}")))?;
        let mut merged = defaults.clone();
        // Which layer set each key, to name it when a value is refused.
        let mut origins = Origins::default();

        if let Some((source, text)) = file {
            let value: Value = serde_yaml::from_str(text).map_err(|e| {
                AlluxioError::InvalidArgument(format!("invalid YAML in {source}: {e}"))
            })?;
            if !value.is_null() {
                let mut keys = Vec::new();
                collect_leaves(&value, &mut Vec::new(), &mut keys);
                for key in keys {
                    origins.record(key, format!("config file {source}"));
                }
                merge(&mut merged, value);
            }
        }

        let mut leaves = Vec::new();
        collect_leaves(&defaults, &mut Vec::new(), &mut leaves);
        for path in &leaves {
            let name = format!("ALLUXIO_{}", path.join("_").to_uppercase());
            if let Some((_, raw)) = env.iter().find(|(k, _)| *k == name) {
                set_path(&mut merged, path, parse_scalar(raw));
                origins.record(path.clone(), format!("environment variable {name}"));
            }
        }

        for item in overrides {
            let (key, raw) = item.split_once('=').ok_or_else(|| {
                AlluxioError::InvalidArgument(format!(
                    "invalid override {item:?}: expected section.key=value"
                ))
            })?;
            let path: Vec<String> = key.trim().split('.').map(str::to_string).collect();
            if path.iter().any(String::is_empty) {
                return Err(AlluxioError::InvalidArgument(format!(
                    "invalid configuration key {key:?}"
                )));
            }
            // A key of a free-form option map keeps its text as written
            // (`007` stays `007`); other keys are typed as YAML types them.
            let value = if in_free_form_map(&defaults, &path) {
                Value::String(raw.to_string())
            } else {
                parse_scalar(raw)
            };
            set_path(&mut merged, &path, value);
            origins.record(path, format!("flag -D {item}"));
        }

        serde_path_to_error::deserialize(merged).map_err(|e| {
            let at = e.path().to_string();
            AlluxioError::InvalidArgument(format!(
                "invalid configuration ({}) at {at}: {}",
                origins.of(&at),
                e.inner()
            ))
        })
    }
}

/// The layer (file, environment variable, flag) that last set each key.
#[derive(Default)]
struct Origins(Vec<(Vec<String>, String)>);

impl Origins {
    fn record(&mut self, key: Vec<String>, origin: String) {
        self.0.push((key, origin));
    }

    /// The origin of the value at `at` (a dotted path as serde reports
    /// it): the last layer that set that key, a key below it, or the key
    /// it is in. The built-in defaults are never to blame for a refusal,
    /// but when no layer matches, say so rather than guess.
    fn of(&self, at: &str) -> String {
        let at: Vec<&str> = at.split('.').filter(|c| !c.is_empty()).collect();
        let related = |key: &[String]| {
            let n = key.len().min(at.len());
            key[..n].iter().zip(&at[..n]).all(|(k, a)| k == a)
        };
        self.0
            .iter()
            .rev()
            .find(|(key, _)| related(key))
            .map_or_else(
                || "no layer set this key".to_string(),
                |(_, origin)| origin.clone(),
            )
    }
}

/// Whether `path` names a key inside a free-form map of the defaults (one
/// that is empty by default, such as `master.mount_table_root_options`).
fn in_free_form_map(defaults: &Value, path: &[String]) -> bool {
    let mut cur = defaults;
    for key in &path[..path.len().saturating_sub(1)] {
        match cur.get(key.as_str()) {
            Some(next) => cur = next,
            None => return false,
        }
    }
    matches!(cur, Value::Mapping(m) if m.is_empty()) && path.len() > 1
}

/// A map of option strings, whose values a YAML file may write as any
/// scalar (`allow_http: true`, `port: 9000`): their text is kept.
fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    use serde::de::Error;
    BTreeMap::<String, Value>::deserialize(d)?
        .into_iter()
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key, s)),
            Value::Bool(b) => Ok((key, b.to_string())),
            Value::Number(n) => Ok((key, n.to_string())),
            Value::Null => Ok((key, String::new())),
            _ => Err(D::Error::custom(format!(
                "option {key}: expected a string, a number or a boolean"
            ))),
        })
        .collect()
}

/// A list of addresses, written as a YAML list or as one comma-separated
/// string (`h1:19200,h2:19200,h3:19200`, handy in env vars and flags).
fn address_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrText {
        List(Vec<String>),
        Text(String),
    }
    let items = match ListOrText::deserialize(d)? {
        ListOrText::List(items) => items,
        ListOrText::Text(text) => text.split(',').map(str::to_string).collect(),
    };
    Ok(items
        .into_iter()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect())
}

/// Parses an env or flag value the way YAML would (numbers, booleans,
/// strings), so `8080` is a number and `true` a boolean.
fn parse_scalar(raw: &str) -> Value {
    serde_yaml::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_mapping() && v.is_mapping() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

fn collect_leaves(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Mapping(m) if !m.is_empty() => {
            for (k, child) in m {
                if let Some(k) = k.as_str() {
                    prefix.push(k.to_string());
                    collect_leaves(child, prefix, out);
                    prefix.pop();
                }
            }
        }
        // Empty maps (free-form option maps) are not settable from env.
        Value::Mapping(_) => {}
        _ => out.push(prefix.clone()),
    }
}

fn set_path(root: &mut Value, path: &[String], value: Value) {
    let mut cur = root;
    for (i, key) in path.iter().enumerate() {
        if !cur.is_mapping() {
            *cur = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(map) = cur else { return };
        let k = Value::String(key.clone());
        if i == path.len() - 1 {
            map.insert(k, value);
            return;
        }
        if !map.contains_key(&k) {
            map.insert(k.clone(), Value::Mapping(Mapping::new()));
        }
        cur = map.get_mut(&k).expect("inserted above");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn defaults_are_alluxio_ports() {
        let c = AlluxioConfig::load_from(None, &[], &[]).unwrap();
        assert_eq!(c.master.rpc_port, 19998);
        assert_eq!(c.master.web_port, 19999);
        assert_eq!(c.user.block_size.0, 64 << 20);
    }

    #[test]
    fn file_env_and_flags_layer_in_order() {
        let f = write("master:\n  rpc_port: 20000\n  web_port: 20001\n  journal:\n    dir: /j\n");
        let env = vec![("ALLUXIO_MASTER_WEB_PORT".to_string(), "20002".to_string())];
        let c =
            AlluxioConfig::load_from(Some(f.path()), &env, &["user.block_size=1MiB".to_string()])
                .unwrap();
        assert_eq!(c.master.rpc_port, 20000);
        assert_eq!(c.master.web_port, 20002);
        assert_eq!(c.master.journal.dir, PathBuf::from("/j"));
        assert_eq!(c.user.block_size.0, 1 << 20);
    }

    #[test]
    fn unknown_keys_are_named() {
        let f = write("master:\n  journal:\n    dirr: /j\n");
        let err = AlluxioConfig::load_from(Some(f.path()), &[], &[]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("master.journal") && msg.contains("dirr"),
            "{msg}"
        );

        let err = AlluxioConfig::load_from(None, &[], &["worker.nope=1".to_string()]).unwrap_err();
        assert!(err.to_string().contains("worker"), "{err}");

        let err =
            AlluxioConfig::load_from(None, &[], &["master.rpc_port=abc".to_string()]).unwrap_err();
        assert!(err.to_string().contains("master.rpc_port"), "{err}");
    }

    #[test]
    fn a_refused_value_names_its_layer_not_the_defaults() {
        let flag = AlluxioConfig::load_from(None, &[], &["master.rpc_port=abc".to_string()])
            .unwrap_err()
            .to_string();
        assert!(flag.contains("flag -D master.rpc_port=abc"), "{flag}");
        assert!(!flag.contains("defaults"), "{flag}");

        let env = vec![("ALLUXIO_WORKER_RPC_PORT".to_string(), "x".to_string())];
        let from_env = AlluxioConfig::load_from(None, &env, &[])
            .unwrap_err()
            .to_string();
        assert!(
            from_env.contains("environment variable ALLUXIO_WORKER_RPC_PORT"),
            "{from_env}"
        );

        let f = write("master:\n  web_port: many\n");
        let from_file = AlluxioConfig::load_from(Some(f.path()), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(from_file.contains("config file"), "{from_file}");
    }

    #[test]
    fn option_maps_keep_every_value_shape_as_text() {
        let flags: Vec<String> = [
            "allow_http=true",
            "port=9000",
            "padded=007",
            "ratio=1.50",
            "endpoint=http://127.0.0.1:9000",
            "empty=",
        ]
        .iter()
        .map(|o| format!("master.mount_table_root_options.{o}"))
        .collect();
        let c = AlluxioConfig::load_from(None, &[], &flags).unwrap();
        let o = &c.master.mount_table_root_options;
        assert_eq!(o["allow_http"], "true");
        assert_eq!(o["port"], "9000");
        assert_eq!(o["padded"], "007");
        assert_eq!(o["ratio"], "1.50");
        assert_eq!(o["endpoint"], "http://127.0.0.1:9000");
        assert_eq!(o["empty"], "");

        let f = write(
            "master:\n  mount_table_root_options:\n    allow_http: true\n    port: 9000\n    region: us-east-1\n",
        );
        let c = AlluxioConfig::load_from(Some(f.path()), &[], &[]).unwrap();
        let o = &c.master.mount_table_root_options;
        assert_eq!(o["allow_http"], "true");
        assert_eq!(o["port"], "9000");
        assert_eq!(o["region"], "us-east-1");

        let f = write("master:\n  mount_table_root_options:\n    nested: {a: 1}\n");
        let err = AlluxioConfig::load_from(Some(f.path()), &[], &[]).unwrap_err();
        assert!(err.to_string().contains("option nested"), "{err}");
    }
}
