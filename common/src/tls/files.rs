//! Reading PEM files, and noticing when they change.

use super::TlsError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Every certificate in a PEM file, at least one.
pub(super) fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let text = std::fs::read(path).map_err(|e| file_error(path, e))?;
    parse_certificates(&text, &path.display().to_string())
}

/// Every certificate in PEM text (from `source`, named in errors), at
/// least one.
pub(super) fn parse_certificates(
    pem: &[u8],
    source: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |reason: String| TlsError::File {
        path: source.to_string(),
        reason,
    };
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(e.to_string()))?;
    if certificates.is_empty() {
        return Err(error("holds no PEM certificate".to_string()));
    }
    Ok(certificates)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub(super) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(path, e))
}

/// What tells one version of a file from the next: a file replaced by a
/// rename (or a kubelet's symlink swap) has a new inode; one rewritten in
/// place a new size or mtime.
type Stamp = Option<(u64, u64, SystemTime)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.ino(), meta.len(), meta.modified().ok()?))
}

/// Files looked at again at most once per interval.
pub(super) struct WatchedFiles {
    paths: Vec<PathBuf>,
    seen: Mutex<(Instant, Vec<Stamp>)>,
}

impl WatchedFiles {
    pub fn new(paths: Vec<PathBuf>) -> Self {
        let stamps = paths.iter().map(|p| stamp(p)).collect();
        WatchedFiles {
            paths,
            seen: Mutex::new((Instant::now(), stamps)),
        }
    }

    /// Whether any file changed since the last look, looking only when
    /// `interval` has passed since then.
    pub fn changed(&self, interval: Duration) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.0.elapsed() < interval {
            return false;
        }
        let now: Vec<Stamp> = self.paths.iter().map(|p| stamp(p)).collect();
        let changed = now != seen.1;
        *seen = (Instant::now(), now);
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_file_is_noticed_once_the_interval_has_passed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        std::fs::write(&path, "one").unwrap();
        let files = WatchedFiles::new(vec![path.clone()]);
        assert!(!files.changed(Duration::ZERO));

        let new = dir.path().join("ca.crt.new");
        std::fs::write(&new, "two").unwrap();
        std::fs::rename(&new, &path).unwrap();
        assert!(!files.changed(Duration::from_secs(3600)), "looked too soon");
        assert!(files.changed(Duration::ZERO));
        assert!(!files.changed(Duration::ZERO), "the same change twice");

        std::fs::remove_file(&path).unwrap();
        assert!(files.changed(Duration::ZERO), "a file gone is a change");
    }

    #[test]
    fn files_that_are_not_pem_are_refused_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cert.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let e = read_certificates(&path).unwrap_err().to_string();
        assert!(
            e.contains("cert.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        assert!(read_key(&path).is_err());
        assert!(read_certificates(&dir.path().join("missing")).is_err());
    }
}
