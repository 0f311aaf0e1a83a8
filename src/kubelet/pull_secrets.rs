//! A Pod's image pull secrets turned into registry credentials, as upstream's kubelet keyring
//! does: `kubernetes.io/dockerconfigjson` (`.dockerconfigjson`, `{"auths": {...}}`) and
//! `kubernetes.io/dockercfg` (`.dockercfg`, the bare map) Secrets; each entry's `auth`
//! (base64 `user:password`) or `username`/`password`; an entry applies to an image when its
//! registry host matches (Docker Hub under any of its names) and its path, if any, is a prefix
//! of the image's repository. Secrets of other types are ignored.

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;

use super::runtime::RegistryAuth;

const DOCKER_HUB: &str = "docker.io";

/// The registry host of an image reference, Docker Hub's for a bare name.
pub fn registry_of(image: &str) -> (&str, &str) {
    match image.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, image),
    }
}

/// Docker Hub goes by several names in config files.
fn canonical_host(host: &str) -> &str {
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => DOCKER_HUB,
        other => other,
    }
}

/// An entry's key as host and path: the scheme and Docker Hub's `/v1/` suffix dropped.
fn parse_key(key: &str) -> (String, String) {
    let bare = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let (host, path) = bare.split_once('/').unwrap_or((bare, ""));
    let host = canonical_host(host).to_string();
    let path = path.trim_end_matches('/');
    let path = if host == DOCKER_HUB && (path == "v1" || path == "v2") {
        ""
    } else {
        path
    };
    (host, path.to_string())
}

fn entry_auth(key: &str, entry: &Value) -> Option<RegistryAuth> {
    let text = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or("");
    let (mut username, mut password) = (text("username").to_string(), text("password").to_string());
    if let Some(decoded) = base64::engine::general_purpose::STANDARD
        .decode(text("auth"))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| !s.is_empty())
    {
        let (user, pass) = decoded.split_once(':')?;
        username = user.to_string();
        password = pass.to_string();
    }
    if username.is_empty() && password.is_empty() {
        return None;
    }
    Some(RegistryAuth {
        server: key.to_string(),
        username,
        password,
    })
}

/// The entries of one Secret, by their keys; none for a Secret of another type or whose
/// config does not parse.
fn entries(secret: &Secret) -> Vec<(String, Value)> {
    let data = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|b| serde_json::from_slice::<Value>(&b.0).ok())
    };
    let map = match secret.type_.as_deref() {
        Some("kubernetes.io/dockerconfigjson") => {
            data(".dockerconfigjson").and_then(|v| v.get("auths").cloned())
        }
        Some("kubernetes.io/dockercfg") => data(".dockercfg"),
        _ => None,
    };
    map.and_then(|m| m.as_object().cloned())
        .map(|m| m.into_iter().collect())
        .unwrap_or_default()
}

/// The credentials that apply to `image`, the most specific (longest path) first, in the
/// order of the secrets otherwise.
pub fn credentials(image: &str, secrets: &[Secret]) -> Vec<RegistryAuth> {
    let (host, repository) = registry_of(image);
    let host = canonical_host(host);
    let repository = repository.split([':', '@']).next().unwrap_or(repository);
    let mut found: Vec<(usize, RegistryAuth)> = Vec::new();
    for secret in secrets {
        for (key, entry) in entries(secret) {
            let (entry_host, path) = parse_key(&key);
            let applies = entry_host == host
                && (path.is_empty()
                    || repository == path
                    || repository.starts_with(&format!("{path}/")));
            if !applies {
                continue;
            }
            if let Some(auth) = entry_auth(&key, &entry) {
                found.push((path.len(), auth));
            }
        }
    }
    found.sort_by_key(|(specificity, _)| std::cmp::Reverse(*specificity));
    found.into_iter().map(|(_, auth)| auth).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(type_: &str, key: &str, config: Value) -> Secret {
        let bytes = serde_json::to_vec(&config).unwrap();
        serde_json::from_value(json!({
            "type": type_,
            "data": {key: base64::engine::general_purpose::STANDARD.encode(bytes)},
        }))
        .unwrap()
    }

    #[test]
    fn images_name_their_registry_or_docker_hub() {
        assert_eq!(registry_of("nginx"), ("docker.io", "nginx"));
        assert_eq!(
            registry_of("vfarcic/jenkins"),
            ("docker.io", "vfarcic/jenkins")
        );
        assert_eq!(registry_of("quay.io/team/app:1"), ("quay.io", "team/app:1"));
        assert_eq!(registry_of("localhost:5000/app"), ("localhost:5000", "app"));
        assert_eq!(registry_of("localhost/app"), ("localhost", "app"));
    }

    #[test]
    fn docker_config_entries_apply_by_host_and_path() {
        let hub = base64::engine::general_purpose::STANDARD.encode("hubuser:hubpass");
        let json_config = secret(
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            json!({"auths": {
                "https://index.docker.io/v1/": {"auth": hub},
                "registry.example.com": {"username": "wide", "password": "w"},
                "registry.example.com/team": {"username": "team", "password": "t"},
            }}),
        );
        let legacy = secret(
            "kubernetes.io/dockercfg",
            ".dockercfg",
            json!({"quay.io": {"username": "q", "password": "qp"}}),
        );
        let opaque = secret(
            "Opaque",
            ".dockerconfigjson",
            json!({"auths": {"quay.io": {"auth": hub}}}),
        );
        let all = [json_config, legacy, opaque];
        let users = |image: &str| -> Vec<String> {
            credentials(image, &all)
                .into_iter()
                .map(|a| a.username)
                .collect()
        };
        assert_eq!(users("vfarcic/jenkins"), ["hubuser"]);
        assert_eq!(users("docker.io/library/nginx:1"), ["hubuser"]);
        assert_eq!(users("registry.example.com/team/app:2"), ["team", "wide"]);
        assert_eq!(users("registry.example.com/teamwork/app"), ["wide"]);
        assert_eq!(users("quay.io/x/y"), ["q"]);
        assert!(users("ghcr.io/x/y").is_empty());
        let hub_auth = &credentials("nginx", &all)[0];
        assert_eq!(hub_auth.password, "hubpass");
        assert_eq!(hub_auth.server, "https://index.docker.io/v1/");
    }

    #[test]
    fn malformed_configs_give_nothing() {
        let broken: Secret = serde_json::from_value(json!({
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode("{not json")},
        }))
        .unwrap();
        let no_colon = secret(
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            json!({"auths": {"docker.io": {"auth": base64::engine::general_purpose::STANDARD.encode("nocolon")}}}),
        );
        assert!(credentials("nginx", &[broken, no_colon]).is_empty());
    }
}
