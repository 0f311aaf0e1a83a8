//! The cluster's certificates: one CA, the API server's serving certificate, and client
//! certificates whose CN is the user and O the groups (as kubeadm issues them).
//!
//! Private keys are written 0600. An existing CA is reused, so kubeconfigs stay valid across
//! `rkube down` and `up`.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
}

/// The cluster CA: its certificate and the key that signs with it.
pub struct Ca {
    pub cert_pem: String,
    key: KeyPair,
}

/// Paths of one issued certificate and its key.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Writes `contents` to `path`, readable by the owner only when `private`.
pub fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<(), PkiError> {
    let err = |source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(err)?;
    file.write_all(contents).map_err(err)?;
    drop(file);
    fs::rename(&tmp, path).map_err(err)
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn name(cn: &str, orgs: &[&str]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for org in orgs {
        dn.push(DnType::OrganizationName, *org);
    }
    dn.push(DnType::CommonName, cn);
    dn
}

/// Valid from yesterday (tolerating clock skew) for `days` days.
fn validity(params: &mut CertificateParams, days: i64) {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let day = |offset: i64| {
        today
            .checked_add(jiff::Span::new().days(offset))
            .map(|d| rcgen::date_time_ymd(i32::from(d.year()), d.month() as u8, d.day() as u8))
    };
    if let (Ok(start), Ok(end)) = (day(-1), day(days)) {
        params.not_before = start;
        params.not_after = end;
    }
}

impl Ca {
    /// Loads `dir/ca.crt` and `dir/ca.key`, or makes a new CA there.
    pub fn load_or_create(dir: &Path) -> Result<Ca, PkiError> {
        let cert_path = dir.join("ca.crt");
        let key_path = dir.join("ca.key");
        if cert_path.exists() && key_path.exists() {
            let cert_pem = read(&cert_path)?;
            let key = KeyPair::from_pem(&read(&key_path)?)?;
            return Ok(Ca { cert_pem, key });
        }
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name("rkube-ca", &[]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, 3650);
        let cert = params.self_signed(&key)?;
        let cert_pem = cert.pem();
        write_file(&cert_path, cert_pem.as_bytes(), false)?;
        write_file(&key_path, key.serialize_pem().as_bytes(), true)?;
        Ok(Ca { cert_pem, key })
    }

    fn issue(&self, params: CertificateParams, dir: &Path, base: &str) -> Result<Issued, PkiError> {
        let key = KeyPair::generate()?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &self.key)?;
        let cert = params.signed_by(&key, &issuer)?;
        let issued = Issued {
            cert: dir.join(format!("{base}.crt")),
            key: dir.join(format!("{base}.key")),
        };
        write_file(&issued.cert, cert.pem().as_bytes(), false)?;
        write_file(&issued.key, key.serialize_pem().as_bytes(), true)?;
        Ok(issued)
    }

    /// A client certificate for user `cn` in groups `orgs`.
    pub fn issue_client(
        &self,
        dir: &Path,
        base: &str,
        cn: &str,
        orgs: &[&str],
    ) -> Result<Issued, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name(cn, orgs);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params, 365);
        self.issue(params, dir, base)
    }

    /// A serving certificate for the given DNS names and IP addresses.
    pub fn issue_server(
        &self,
        dir: &Path,
        base: &str,
        cn: &str,
        hosts: &[String],
    ) -> Result<Issued, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name(cn, &[]);
        params.subject_alt_names = hosts
            .iter()
            .filter_map(|h| match h.parse::<std::net::IpAddr>() {
                Ok(ip) => Some(SanType::IpAddress(ip)),
                Err(_) => h.clone().try_into().ok().map(SanType::DnsName),
            })
            .collect();
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        validity(&mut params, 365);
        self.issue(params, dir, base)
    }
}

/// The names the API server answers to: loopback, this host's names and addresses, and the
/// in-cluster service names.
pub fn apiserver_hosts(extra: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = [
        "localhost",
        "127.0.0.1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Ok(name) = fs::read_to_string("/etc/hostname") {
        let name = name.trim();
        if !name.is_empty() {
            hosts.push(name.to_string());
        }
    }
    // `hostname -I` lists every address of this host without sending anything.
    if let Ok(out) = std::process::Command::new("hostname").arg("-I").output() {
        for addr in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if addr.parse::<std::net::IpAddr>().is_ok() {
                hosts.push(addr.to_string());
            }
        }
    }
    hosts.extend(extra.iter().cloned());
    hosts.sort();
    hosts.dedup();
    hosts
}

/// The controller manager's user, as in kubeadm's `controller-manager.conf`.
pub const CONTROLLER_MANAGER_USER: &str = "system:kube-controller-manager";

impl Ca {
    /// The controller manager's client certificate (`controller-manager.crt`): CN
    /// `system:kube-controller-manager`, no groups, as kubeadm issues it.
    pub fn issue_controller_manager(&self, dir: &Path) -> Result<Issued, PkiError> {
        self.issue_client(dir, "controller-manager", CONTROLLER_MANAGER_USER, &[])
    }
}
/// Writes a new ECDSA P-256 key pair that signs service account tokens (`key`, PKCS#8) and
/// verifies them (`public`, SPKI), unless both exist already (kubeadm's `sa.key`, `sa.pub`).
pub fn service_account_key_pair(key: &Path, public: &Path) -> Result<(), PkiError> {
    if key.exists() && public.exists() {
        return Ok(());
    }
    let pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    write_file(key, pair.serialize_pem().as_bytes(), true)?;
    write_file(public, pair.public_key_pem().as_bytes(), false)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_service_account_key_pair_is_made_once_and_kept_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let (key, public) = (dir.path().join("sa.key"), dir.path().join("sa.pub"));
        service_account_key_pair(&key, &public).unwrap();
        let first = std::fs::read(&key).unwrap();
        assert!(String::from_utf8_lossy(&first).starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o077,
            0
        );
        service_account_key_pair(&key, &public).unwrap();
        assert_eq!(std::fs::read(&key).unwrap(), first);
    }
}
