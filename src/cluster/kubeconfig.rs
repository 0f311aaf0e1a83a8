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
}
