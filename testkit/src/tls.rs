//! TLS files for tests, made by the same script users run
//! (`scripts/tls-certs.sh`, openssl): a cluster CA and the masters' and
//! workers' certificates for 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory holding `ca.crt`, `master.crt/.key`, `worker.crt/.key`.
pub struct TlsFiles {
    pub dir: PathBuf,
}

impl TlsFiles {
    /// Makes a new CA and certificates for 127.0.0.1 in `dir` (a CA
    /// already there is kept: that is a renewal).
    pub fn generate(dir: &Path) -> TlsFiles {
        TlsFiles::generate_for(dir, &[])
    }

    /// Like [`TlsFiles::generate`], the certificates naming `names`
    /// (`DNS:...`, `IP:...`; none: the script's default).
    pub fn generate_for(dir: &Path, names: &[&str]) -> TlsFiles {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tls-certs.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(dir)
            .args(names)
            .output()
            .expect("cannot run scripts/tls-certs.sh");
        assert!(
            out.status.success(),
            "scripts/tls-certs.sh failed (is openssl installed?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TlsFiles {
            dir: dir.to_path_buf(),
        }
    }

    /// New certificates for the servers under the same CA.
    pub fn renew(&self) {
        TlsFiles::generate(&self.dir);
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The `-D` settings that turn TLS on with these files.
    pub fn settings(&self) -> Vec<String> {
        let file = |name: &str| self.dir.join(name).display().to_string();
        vec![
            "security.tls.enabled=true".to_string(),
            format!("security.tls.ca_file={}", file("ca.crt")),
            format!("master.tls.cert_file={}", file("master.crt")),
            format!("master.tls.key_file={}", file("master.key")),
            format!("worker.tls.cert_file={}", file("worker.crt")),
            format!("worker.tls.key_file={}", file("worker.key")),
        ]
    }

    /// Turns TLS on in `config` with these files.
    #[cfg(feature = "cluster")]
    pub fn apply(&self, config: &mut alluxio_common::config::AlluxioConfig) {
        config.security.tls.enabled = true;
        config.security.tls.ca_file = Some(self.ca());
        config.master.tls.cert_file = Some(self.dir.join("master.crt"));
        config.master.tls.key_file = Some(self.dir.join("master.key"));
        config.worker.tls.cert_file = Some(self.dir.join("worker.crt"));
        config.worker.tls.key_file = Some(self.dir.join("worker.key"));
    }
}
