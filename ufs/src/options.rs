//! Mount options: per-mount settings such as credentials, endpoint and
//! region. Options are validated per UFS kind (an unknown key is an error
//! that names it) and their secret values are masked whenever shown.

use std::collections::BTreeMap;

/// The mount's own metadata sync interval in milliseconds (option
/// `sync_interval`: `-1` never, `0` on every access, or a duration such as
/// `5min`), when it sets a valid one.
pub fn sync_interval_ms(options: &BTreeMap<String, String>) -> Option<i64> {
    options
        .get(alluxio_common::units::SYNC_INTERVAL_OPTION)?
        .parse::<alluxio_common::units::SyncInterval>()
        .ok()
        .map(|s| s.as_millis())
}

/// Keys whose values are secrets: never logged, never returned to users.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "secret",
        "password",
        "token",
        "credential",
        "access_key",
        "accesskey",
        "sas",
        "private",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// A copy of `options` with secret values replaced by `******`.
pub fn masked(options: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    options
        .iter()
        .map(|(k, v)| {
            let v = if is_secret_key(k) {
                "******".to_string()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

/// A copy of `options` without its secrets (for callers that may use a
/// mount but not its credentials).
pub fn without_secrets(options: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    options
        .iter()
        .filter(|(k, _)| !is_secret_key(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Reads a boolean option (`true`/`false`, case-insensitive).
pub fn parse_bool(key: &str, value: &str) -> Result<bool, crate::UfsError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(crate::UfsError::InvalidOption(format!(
            "{key} must be true or false, not {value:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_credentials_only() {
        let mut o = BTreeMap::new();
        o.insert("aws.secretKey".to_string(), "s3cr3t".to_string());
        o.insert("s3a.accessKeyId".to_string(), "AKIA".to_string());
        o.insert("region".to_string(), "us-east-1".to_string());
        let m = masked(&o);
        assert_eq!(m["aws.secretKey"], "******");
        assert_eq!(m["s3a.accessKeyId"], "******");
        assert_eq!(m["region"], "us-east-1");
    }
}
