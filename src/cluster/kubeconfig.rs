//! kubeconfig files: the cluster's address and CA, and one user's client certificate, all
//! embedded so the file works from any directory.

use std::path::Path;

use base64::Engine as _;
use serde_json::json;

use super::pki::{write_file, Issued, PkiError};

/// The name of a cluster's entry, context and admin user in kubeconfigs: `rkube-<cluster>`,
/// as kind uses `kind-<cluster>`, so that merged kubeconfigs keep one entry per cluster.
pub fn context_name(cluster: &str) -> String {
    format!("rkube-{cluster}")
}

/// Writes a kubeconfig for `server` (e.g. `https://127.0.0.1:6443`) and the given user.
pub fn write(
    path: &Path,
    cluster: &str,
    server: &str,
    ca_pem: &str,
    user: &str,
    creds: &Issued,
) -> Result<(), PkiError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| PkiError::Read {
            path: p.to_path_buf(),
            source,
        })
    };
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {
            "server": server,
            "certificate-authority-data": b64(ca_pem.as_bytes()),
        }}],
        "users": [{"name": user, "user": {
            "client-certificate-data": b64(&read(&creds.cert)?),
            "client-key-data": b64(&read(&creds.key)?),
        }}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
        "preferences": {},
    });
    let text = serde_yaml::to_string(&config).expect("a JSON value always serializes as YAML");
    write_file(path, text.as_bytes(), true)
}

/// Why a user's kubeconfig cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum UserKubeconfigError {
    #[error("no cluster CA in {0} (is this where `rkube up` put its certificates?)")]
    NoCa(std::path::PathBuf),
    #[error("{path} names no cluster server")]
    NoServer { path: std::path::PathBuf },
    #[error("cannot read {path}: {source}")]
    Admin {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The certificate library keeps one value per subject attribute, so a certificate made
    /// here carries one organization (group) at most.
    #[error("a client certificate made here carries one group at most (asked for {0})")]
    TooManyGroups(usize),
    #[error(transparent)]
    Pki(#[from] PkiError),
}

/// Issues a client certificate for `user` in `groups` from the cluster CA in `certs_dir` and
/// writes a kubeconfig for it to `out`, naming the same server and cluster as the admin's
/// kubeconfig (`rkube kubeconfig --user alice --group dev`).
pub fn write_for_user(
    certs_dir: &Path,
    admin_kubeconfig: &Path,
    user: &str,
    groups: &[&str],
    out: &Path,
) -> Result<(), UserKubeconfigError> {
    if groups.len() > 1 {
        return Err(UserKubeconfigError::TooManyGroups(groups.len()));
    }
    if !certs_dir.join("ca.crt").exists() || !certs_dir.join("ca.key").exists() {
        return Err(UserKubeconfigError::NoCa(certs_dir.to_path_buf()));
    }
    let admin =
        std::fs::read_to_string(admin_kubeconfig).map_err(|source| UserKubeconfigError::Admin {
            path: admin_kubeconfig.to_path_buf(),
            source,
        })?;
    let admin: serde_json::Value = serde_yaml::from_str(&admin).unwrap_or_default();
    let entry = &admin["clusters"][0];
    let (Some(cluster), Some(server)) =
        (entry["name"].as_str(), entry["cluster"]["server"].as_str())
    else {
        return Err(UserKubeconfigError::NoServer {
            path: admin_kubeconfig.to_path_buf(),
        });
    };
    let ca = super::pki::Ca::load_or_create(certs_dir)?;
    let base: String = user
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let creds = ca.issue_client(certs_dir, &format!("user-{base}"), user, groups)?;
    write(out, cluster, server, &ca.cert_pem, user, &creds)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_named_after_the_cluster() {
        let dir = tempfile::tempdir().expect("temp dir");
        let creds = Issued {
            cert: dir.path().join("c.crt"),
            key: dir.path().join("c.key"),
        };
        std::fs::write(&creds.cert, "cert").expect("cert");
        std::fs::write(&creds.key, "key").expect("key");
        let mut names = Vec::new();
        for cluster in ["one", "two"] {
            let path = dir.path().join(cluster);
            let name = context_name(cluster);
            write(&path, &name, "https://127.0.0.1:6443", "ca", &name, &creds).expect("written");
            let config = kube::config::Kubeconfig::read_from(&path).expect("readable");
            assert_eq!(config.current_context.as_deref(), Some(name.as_str()));
            assert_eq!(config.clusters[0].name, name);
            assert_eq!(config.auth_infos[0].name, name);
            names.push(name);
        }
        assert_eq!(names, ["rkube-one", "rkube-two"]);
    }

    #[test]
    fn a_user_kubeconfig_carries_a_certificate_for_that_user_and_groups() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = write_for_user(
            dir.path(),
            &dir.path().join("kubeconfig"),
            "alice",
            &[],
            &dir.path().join("a"),
        );
        assert!(matches!(missing, Err(UserKubeconfigError::NoCa(_))));
        let ca = super::super::pki::Ca::load_or_create(dir.path()).expect("CA");
        let admin = ca
            .issue_client(dir.path(), "admin", "admin", &["system:masters"])
            .expect("admin");
        let admin_path = dir.path().join("kubeconfig");
        write(
            &admin_path,
            "rkube-test",
            "https://127.0.0.1:7443",
            &ca.cert_pem,
            "rkube-test",
            &admin,
        )
        .expect("admin kubeconfig");
        let out = dir.path().join("alice.kubeconfig");
        let two = write_for_user(dir.path(), &admin_path, "alice", &["dev", "qa"], &out);
        assert!(matches!(two, Err(UserKubeconfigError::TooManyGroups(2))));
        write_for_user(dir.path(), &admin_path, "alice", &["dev"], &out).expect("written");
        let config: serde_json::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&out).expect("read")).expect("YAML");
        assert_eq!(
            config["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:7443"
        );
        assert_eq!(config["users"][0]["name"], "alice");
        let pem = base64::engine::general_purpose::STANDARD
            .decode(
                config["users"][0]["user"]["client-certificate-data"]
                    .as_str()
                    .expect("cert"),
            )
            .expect("base64");
        let der = rustls_pemfile_der(&pem);
        let user = crate::tls::user_of(&der).expect("a user");
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, ["dev"]);
    }

    fn rustls_pemfile_der(pem: &[u8]) -> rustls::pki_types::CertificateDer<'static> {
        use rustls::pki_types::pem::PemObject as _;
        rustls::pki_types::CertificateDer::from_pem_slice(pem).expect("a PEM certificate")
    }
}
