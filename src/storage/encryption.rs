//! Encryption at rest, configured as upstream's `EncryptionConfiguration`
//! (`apiserver.config.k8s.io/v1`, `--encryption-provider-config`): for each listed resource, the
//! first provider encrypts what is written and every provider is tried on what is read, so keys
//! can be rotated and `identity` lets values written before encryption be read.
//!
//! Providers: `aescbc` (AES-256-CBC with PKCS#7 padding and a random IV, stored as
//! `k8s:enc:aescbc:v1:<key name>:<IV><ciphertext>`, as upstream) and `identity` (as is).
//! Others upstream names (`secretbox`, `aesgcm`, `kms`) are refused at start with what is
//! supported, rather than ignored.

use std::borrow::Cow;
use std::path::Path;

use aes::cipher::{
    block_padding::Pkcs7, BlockDecryptMut as _, BlockEncryptMut as _, KeyIvInit as _,
};
use base64::Engine as _;
use serde::Deserialize;

type Encryptor = cbc::Encryptor<aes::Aes256>;
type Decryptor = cbc::Decryptor<aes::Aes256>;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--encryption-provider-config {path}: {why}")]
pub struct EncryptionConfigError {
    path: String,
    why: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    api_version: String,
    kind: String,
    #[serde(default)]
    resources: Vec<ResourceConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceConfig {
    resources: Vec<String>,
    providers: Vec<ProviderConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProviderConfig {
    aescbc: Option<KeysConfig>,
    identity: Option<serde_yaml::Value>,
    secretbox: Option<serde_yaml::Value>,
    aesgcm: Option<serde_yaml::Value>,
    kms: Option<serde_yaml::Value>,
}

#[derive(Deserialize)]
struct KeysConfig {
    keys: Vec<KeyConfig>,
}

#[derive(Deserialize)]
struct KeyConfig {
    name: String,
    secret: String,
}

enum Provider {
    AesCbc(Vec<(String, [u8; 32])>),
    Identity,
}

struct Rule {
    /// The etcd key prefix of the resource's objects, e.g. `/registry/secrets/`.
    prefix: String,
    providers: Vec<Provider>,
}

/// The transformations of stored values, by key.
#[derive(Default)]
pub struct Encryption {
    rules: Vec<Rule>,
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefixes: Vec<&str> = self.rules.iter().map(|r| r.prefix.as_str()).collect();
        f.debug_struct("Encryption")
            .field("encrypted", &prefixes)
            .finish()
    }
}

const AESCBC_PREFIX: &[u8] = b"k8s:enc:aescbc:v1:";

impl Encryption {
    /// Reads an `EncryptionConfiguration`; `etcd_prefix` is where objects are stored.
    pub fn load(path: &Path, etcd_prefix: &str) -> Result<Encryption, EncryptionConfigError> {
        let fail = |why: String| EncryptionConfigError {
            path: path.display().to_string(),
            why,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        Encryption::parse(&text, etcd_prefix).map_err(fail)
    }

    fn parse(text: &str, etcd_prefix: &str) -> Result<Encryption, String> {
        let config: Config = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        if config.kind != "EncryptionConfiguration"
            || config.api_version != "apiserver.config.k8s.io/v1"
        {
            return Err(format!(
                "expected kind EncryptionConfiguration in apiserver.config.k8s.io/v1, got {} in {}",
                config.kind, config.api_version
            ));
        }
        let mut rules = Vec::new();
        for (i, resource) in config.resources.into_iter().enumerate() {
            if resource.providers.is_empty() {
                return Err(format!("resources[{i}].providers: Required value"));
            }
            let mut providers = Vec::new();
            for (j, provider) in resource.providers.into_iter().enumerate() {
                let at = format!("resources[{i}].providers[{j}]");
                if provider.secretbox.is_some()
                    || provider.aesgcm.is_some()
                    || provider.kms.is_some()
                {
                    return Err(format!(
                        "{at}: only the aescbc and identity providers are supported"
                    ));
                }
                match (provider.aescbc, provider.identity) {
                    (Some(keys), None) => {
                        if keys.keys.is_empty() {
                            return Err(format!("{at}.aescbc.keys: Required value"));
                        }
                        let mut parsed = Vec::new();
                        for (k, key) in keys.keys.into_iter().enumerate() {
                            let secret = base64::engine::general_purpose::STANDARD
                                .decode(key.secret.trim())
                                .ok()
                                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                                .ok_or_else(|| {
                                    format!("{at}.aescbc.keys[{k}].secret: must be 32 bytes, base64-encoded")
                                })?;
                            if key.name.is_empty() || key.name.contains(':') {
                                return Err(format!(
                                    "{at}.aescbc.keys[{k}].name: must be a non-empty name without ':'"
                                ));
                            }
                            parsed.push((key.name, secret));
                        }
                        providers.push(Provider::AesCbc(parsed));
                    }
                    (None, Some(_)) => providers.push(Provider::Identity),
                    _ => return Err(format!("{at}: exactly one provider type per entry")),
                }
            }
            for name in resource.resources {
                // Objects of a group are stored under their resource name alone, as upstream's.
                let plural = name.split('.').next().unwrap_or_default();
                if plural.is_empty() || plural == "*" {
                    return Err(format!(
                        "resources[{i}].resources: {name:?}: name each resource (wildcards are not supported)"
                    ));
                }
                let providers = providers
                    .iter()
                    .map(|p| match p {
                        Provider::AesCbc(keys) => Provider::AesCbc(keys.clone()),
                        Provider::Identity => Provider::Identity,
                    })
                    .collect();
                rules.push(Rule {
                    prefix: format!("{}/{plural}/", etcd_prefix.trim_end_matches('/')),
                    providers,
                });
            }
        }
        Ok(Encryption { rules })
    }

    fn rule(&self, key: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| key.starts_with(&r.prefix))
    }

    /// The bytes to store under `key` for the value `plain`.
    pub fn seal(&self, key: &str, plain: Vec<u8>) -> Vec<u8> {
        let Some(rule) = self.rule(key) else {
            return plain;
        };
        match rule.providers.first() {
            Some(Provider::AesCbc(keys)) => {
                let Some((name, secret)) = keys.first() else {
                    return plain;
                };
                let iv: [u8; 16] = rand::random();
                let sealed = Encryptor::new(secret.into(), &iv.into())
                    .encrypt_padded_vec_mut::<Pkcs7>(&plain);
                let mut out =
                    Vec::with_capacity(AESCBC_PREFIX.len() + name.len() + 17 + sealed.len());
                out.extend_from_slice(AESCBC_PREFIX);
                out.extend_from_slice(name.as_bytes());
                out.push(b':');
                out.extend_from_slice(&iv);
                out.extend_from_slice(&sealed);
                out
            }
            Some(Provider::Identity) | None => plain,
        }
    }

    /// The value stored under `key` as `stored`, decrypted by whichever provider wrote it.
    pub fn open<'a>(&self, key: &str, stored: &'a [u8]) -> Result<Cow<'a, [u8]>, String> {
        let Some(rule) = self.rule(key) else {
            return Ok(Cow::Borrowed(stored));
        };
        if let Some(rest) = stored.strip_prefix(AESCBC_PREFIX) {
            let colon = rest
                .iter()
                .position(|b| *b == b':')
                .ok_or("an aescbc value without its key name")?;
            let (name, sealed) = (&rest[..colon], &rest[colon + 1..]);
            let secret = rule
                .providers
                .iter()
                .filter_map(|p| match p {
                    Provider::AesCbc(keys) => Some(keys),
                    Provider::Identity => None,
                })
                .flatten()
                .find(|(n, _)| n.as_bytes() == name)
                .map(|(_, secret)| secret)
                .ok_or_else(|| {
                    format!(
                        "no aescbc key named {:?} is configured",
                        String::from_utf8_lossy(name)
                    )
                })?;
            if sealed.len() < 16 {
                return Err("an aescbc value shorter than its IV".into());
            }
            let (iv, data) = sealed.split_at(16);
            let iv: [u8; 16] = iv.try_into().map_err(|_| "a bad IV")?;
            return Decryptor::new(secret.into(), &iv.into())
                .decrypt_padded_vec_mut::<Pkcs7>(data)
                .map(Cow::Owned)
                .map_err(|_| "the aescbc value does not decrypt with its key".into());
        }
        if rule
            .providers
            .iter()
            .any(|p| matches!(p, Provider::Identity))
        {
            return Ok(Cow::Borrowed(stored));
        }
        Err("the value is not encrypted by any configured provider".into())
    }
}

/// Writes a configuration encrypting Secrets with a new random AES-256 key (`aescbc`, then
/// `identity` so values written before still read), unless `path` exists.
pub fn ensure_config(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let key: [u8; 32] = rand::random();
    let secret = base64::engine::general_purpose::STANDARD.encode(key);
    let text = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: key1\n        secret: {secret}\n  - identity: {{}}\n"
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(providers: &str) -> String {
        format!("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n{providers}")
    }

    const KEY1: &str = "  - aescbc:\n      keys:\n      - {name: key1, secret: c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/IDEyMzQ=}\n";
    const KEY2: &str = "  - aescbc:\n      keys:\n      - {name: key2, secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=}\n";

    #[test]
    fn secrets_are_sealed_and_opened_and_other_keys_are_left_alone() {
        let e = Encryption::parse(&config(&format!("{KEY1}  - identity: {{}}\n")), "/registry")
            .unwrap();
        let plain = br#"{"kind":"Secret","data":{"p":"aHVudGVyMg=="}}"#.to_vec();
        let sealed = e.seal("/registry/secrets/d/s", plain.clone());
        assert!(sealed.starts_with(b"k8s:enc:aescbc:v1:key1:"));
        assert!(!sealed.windows(8).any(|w| w == b"aHVudGVy"));
        assert_ne!(
            sealed,
            e.seal("/registry/secrets/d/s", plain.clone()),
            "a fresh IV each time"
        );
        assert_eq!(
            e.open("/registry/secrets/d/s", &sealed).unwrap().as_ref(),
            plain
        );
        // Written before encryption: read through identity.
        assert_eq!(
            e.open("/registry/secrets/d/old", &plain).unwrap().as_ref(),
            plain
        );
        // Not a listed resource: untouched both ways.
        assert_eq!(e.seal("/registry/configmaps/d/c", plain.clone()), plain);
        assert_eq!(
            e.open("/registry/configmaps/d/c", &plain).unwrap().as_ref(),
            plain
        );
    }

    #[test]
    fn a_rotated_key_still_reads_and_a_missing_or_wrong_one_is_an_error() {
        let old = Encryption::parse(&config(KEY1), "/registry").unwrap();
        let sealed = old.seal("/registry/secrets/d/s", b"{}".to_vec());
        let rotated = Encryption::parse(&config(&format!("{KEY2}{KEY1}")), "/registry").unwrap();
        assert_eq!(
            rotated
                .open("/registry/secrets/d/s", &sealed)
                .unwrap()
                .as_ref(),
            b"{}"
        );
        assert!(rotated
            .seal("/registry/secrets/d/s", b"{}".to_vec())
            .starts_with(b"k8s:enc:aescbc:v1:key2:"));
        let without = Encryption::parse(&config(KEY2), "/registry").unwrap();
        assert_eq!(
            without.open("/registry/secrets/d/s", &sealed).unwrap_err(),
            "no aescbc key named \"key1\" is configured"
        );
        assert!(
            without.open("/registry/secrets/d/s", b"{}").is_err(),
            "no identity"
        );
        let mut tampered = sealed.clone();
        tampered.truncate(sealed.len() - 3);
        assert!(old.open("/registry/secrets/d/s", &tampered).is_err());
    }

    #[test]
    fn bad_configurations_are_refused_with_the_field() {
        let err = |providers: &str| Encryption::parse(&config(providers), "/registry").unwrap_err();
        assert_eq!(
            err("  - aescbc:\n      keys:\n      - {name: k, secret: c2hvcnQ=}\n"),
            "resources[0].providers[0].aescbc.keys[0].secret: must be 32 bytes, base64-encoded"
        );
        assert_eq!(
            err("  - secretbox:\n      keys: []\n"),
            "resources[0].providers[0]: only the aescbc and identity providers are supported"
        );
        assert!(Encryption::parse("kind: Pod\napiVersion: v1\n", "/registry").is_err());
    }

    #[test]
    fn the_generated_configuration_loads_and_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("encryption.yaml");
        ensure_config(&path).unwrap();
        let first = std::fs::read(&path).unwrap();
        ensure_config(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), first);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o077,
            0
        );
        let e = Encryption::load(&path, "/registry").unwrap();
        assert!(e
            .seal("/registry/secrets/a/b", b"{}".to_vec())
            .starts_with(b"k8s:enc:aescbc:v1:key1:"));
    }
}
