//! The volumes whose files the kubelet writes itself: `configMap`, `secret`, `downwardAPI` and
//! `projected` (upstream's "API data" volumes). What goes into one is computed purely
//! ([`payload`]) from the objects the pod worker read; [`write`] then lays it out as upstream's
//! `AtomicWriter` does, so a running container sees a whole old or a whole new set of files and
//! never a mix:
//!
//! ```text
//! <dir>/..2026_11_28_10_00_00.1234   the files of one version
//! <dir>/..data -> ..2026_11_28_10_00_00.1234
//! <dir>/<name> -> ..data/<name>      for each top-level name, what the container opens
//! ```
//!
//! An update writes the next version beside the current one, swaps `..data` with a rename and
//! only then removes the old version. Volumes that may hold secrets (secret, projected) live
//! under `/dev/shm`, on tmpfs, never on disk.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, DownwardAPIVolumeFile, KeyToPath, Pod, Secret,
    ServiceAccountTokenProjection, Volume,
};

use super::env;

/// The mode of a file whose volume names none (upstream's `0644` default).
pub const DEFAULT_MODE: u32 = 0o644;
/// The link that names the current version.
const DATA_DIR: &str = "..data";
const DATA_DIR_TMP: &str = "..data_tmp";

/// One file of a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// The files of a volume by their path inside it.
pub type Payload = BTreeMap<String, File>;

/// The kinds of volume this module fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ConfigMap,
    Secret,
    DownwardApi,
    Projected,
}

impl Kind {
    pub fn of(volume: &Volume) -> Option<Kind> {
        if volume.config_map.is_some() {
            Some(Kind::ConfigMap)
        } else if volume.secret.is_some() {
            Some(Kind::Secret)
        } else if volume.downward_api.is_some() {
            Some(Kind::DownwardApi)
        } else if volume.projected.is_some() {
            Some(Kind::Projected)
        } else {
            None
        }
    }

    /// The plugin's directory name, as upstream's kubelet names it under a Pod's directory.
    pub fn plugin_dir(self) -> &'static str {
        match self {
            Kind::ConfigMap => "kubernetes.io~configmap",
            Kind::Secret => "kubernetes.io~secret",
            Kind::DownwardApi => "kubernetes.io~downward-api",
            Kind::Projected => "kubernetes.io~projected",
        }
    }

    /// Whether the volume may hold secrets, and so is kept in memory.
    pub fn in_memory(self) -> bool {
        matches!(self, Kind::Secret | Kind::Projected)
    }
}

/// Where a volume's files are kept on the host: under the Pod's directory, or for volumes
/// that may hold secrets under `shm_dir` (on tmpfs), beside memory-backed emptyDirs (whose
/// names, DNS labels, cannot be a plugin's).
pub fn host_dir(kind: Kind, pod_dir: &Path, shm_dir: &Path, name: &str) -> PathBuf {
    if kind.in_memory() {
        shm_dir.join(kind.plugin_dir()).join(name)
    } else {
        pod_dir.join("volumes").join(kind.plugin_dir()).join(name)
    }
}

/// A service account token a projected volume asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenSource {
    pub audience: Option<String>,
    pub expiration_seconds: i64,
}

impl TokenSource {
    /// What a projection asks for: its audience (none: the API server's), its expiry (an
    /// hour unless given, as upstream defaults it).
    pub fn of(projection: &ServiceAccountTokenProjection) -> TokenSource {
        TokenSource {
            audience: projection.audience.clone().filter(|a| !a.is_empty()),
            expiration_seconds: projection.expiration_seconds.unwrap_or(3600),
        }
    }
}

/// What the pod worker read for a Pod's volumes; `None` for an object that does not exist.
#[derive(Debug, Default)]
pub struct Inputs {
    pub config_maps: HashMap<String, Option<ConfigMap>>,
    pub secrets: HashMap<String, Option<Secret>>,
    /// Tokens issued for the Pod, by what was asked.
    pub tokens: HashMap<TokenSource, String>,
}

/// What a volume needs read before its payload can be made: ConfigMaps, Secrets, tokens.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub config_maps: Vec<String>,
    pub secrets: Vec<String>,
    pub tokens: Vec<TokenSource>,
}

/// The objects and tokens `volume` is made from.
pub fn needs(volume: &Volume) -> Needs {
    let mut needs = Needs::default();
    if let Some(cm) = &volume.config_map {
        needs.config_maps.push(cm.name.clone());
    }
    if let Some(s) = &volume.secret {
        needs.secrets.extend(s.secret_name.clone());
    }
    for source in volume
        .projected
        .iter()
        .flat_map(|p| p.sources.iter().flatten())
    {
        if let Some(cm) = &source.config_map {
            needs.config_maps.push(cm.name.clone());
        }
        if let Some(s) = &source.secret {
            needs.secrets.push(s.name.clone());
        }
        if let Some(t) = &source.service_account_token {
            needs.tokens.push(TokenSource::of(t));
        }
    }
    needs
}

fn mode_of(mode: Option<i32>, default: Option<i32>) -> u32 {
    mode.or(default)
        .and_then(|m| u32::try_from(m).ok())
        .unwrap_or(DEFAULT_MODE)
        & 0o777
}

/// The files of a key/value source: every key, or the `items` asked for (a missing key is an
/// error unless the source is optional).
fn keyed(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: Option<i32>,
    optional: bool,
    missing_key: impl Fn(&str) -> String,
) -> Result<Payload, String> {
    let mut files = Payload::new();
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (key, value) in data {
                files.insert(
                    key.clone(),
                    File {
                        data: value.clone(),
                        mode: mode_of(None, default_mode),
                    },
                );
            }
        }
        Some(items) => {
            for item in items {
                match data.get(&item.key) {
                    Some(value) => {
                        files.insert(
                            item.path.clone(),
                            File {
                                data: value.clone(),
                                mode: mode_of(item.mode, default_mode),
                            },
                        );
                    }
                    None if optional => {}
                    None => return Err(missing_key(&item.key)),
                }
            }
        }
    }
    Ok(files)
}

fn config_map_data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    for (k, v) in cm.binary_data.iter().flatten() {
        data.insert(k.clone(), v.0.clone());
    }
    data
}

fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    // `stringData` is folded into `data` by the API server; a stored one still counts.
    for (k, v) in secret.string_data.iter().flatten() {
        data.insert(k.clone(), v.clone().into_bytes());
    }
    data
}

/// The kind of key/value source a volume reads, for its data and upstream's messages.
#[derive(Clone, Copy)]
enum Source {
    ConfigMap,
    Secret,
}

/// A ConfigMap's or Secret's files; a missing object is empty when optional.
fn source_files(
    source: Source,
    name: &str,
    items: Option<&Vec<KeyToPath>>,
    default_mode: Option<i32>,
    optional: bool,
    inputs: &Inputs,
) -> Result<Payload, String> {
    let (data, what) = match source {
        Source::ConfigMap => (
            inputs
                .config_maps
                .get(name)
                .and_then(Option::as_ref)
                .map(config_map_data),
            "configmap",
        ),
        Source::Secret => (
            inputs
                .secrets
                .get(name)
                .and_then(Option::as_ref)
                .map(secret_data),
            "secret",
        ),
    };
    match data {
        Some(data) => keyed(&data, items, default_mode, optional, |key| match source {
            Source::ConfigMap => format!("configmap references non-existent config key: {key}"),
            Source::Secret => format!("references non-existent secret key: {key}"),
        }),
        None if optional => Ok(Payload::new()),
        None => Err(format!("{what} {name:?} not found")),
    }
}

/// Labels and annotations as the downward API writes them: `key="value"` lines in key order,
/// values quoted as Go's `%q` quotes them.
pub fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", crate::meta::validation::go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The files of downward-API items.
fn downward_files(
    items: &[DownwardAPIVolumeFile],
    default_mode: Option<i32>,
    ctx: &env::Context<'_>,
) -> Result<Payload, String> {
    let mut files = Payload::new();
    for item in items {
        let text = if let Some(field) = &item.field_ref {
            let meta = &ctx.pod.metadata;
            match field.field_path.as_str() {
                "metadata.labels" => format_map(meta.labels.as_ref()),
                "metadata.annotations" => format_map(meta.annotations.as_ref()),
                path => env::field_value(path, ctx),
            }
        } else if let Some(resource) = &item.resource_field_ref {
            let name = resource.container_name.as_deref().unwrap_or("");
            let container = containers(ctx.pod)
                .find(|c| c.name == name)
                .ok_or_else(|| format!("container {name:?} not found"))?;
            env::resource_value(container, &resource.resource, resource.divisor.as_ref())?
        } else {
            continue;
        };
        files.insert(
            item.path.clone(),
            File {
                data: text.into_bytes(),
                mode: mode_of(item.mode, default_mode),
            },
        );
    }
    Ok(files)
}

fn containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    pod.spec.iter().flat_map(|s| {
        s.init_containers
            .iter()
            .flatten()
            .chain(s.containers.iter())
    })
}

/// The files of `volume`, from what was read; `Ok(None)` for a volume of another kind. The
/// error is what upstream's `MountVolume.SetUp` reports.
pub fn payload(
    volume: &Volume,
    ctx: &env::Context<'_>,
    inputs: &Inputs,
) -> Result<Option<Payload>, String> {
    if let Some(cm) = &volume.config_map {
        return source_files(
            Source::ConfigMap,
            &cm.name,
            cm.items.as_ref(),
            cm.default_mode,
            cm.optional.unwrap_or(false),
            inputs,
        )
        .map(Some);
    }
    if let Some(s) = &volume.secret {
        return source_files(
            Source::Secret,
            s.secret_name.as_deref().unwrap_or(""),
            s.items.as_ref(),
            s.default_mode,
            s.optional.unwrap_or(false),
            inputs,
        )
        .map(Some);
    }
    if let Some(d) = &volume.downward_api {
        return downward_files(d.items.as_deref().unwrap_or(&[]), d.default_mode, ctx).map(Some);
    }
    let Some(projected) = &volume.projected else {
        return Ok(None);
    };
    let mode = projected.default_mode;
    let mut files = Payload::new();
    for source in projected.sources.iter().flatten() {
        if let Some(cm) = &source.config_map {
            let optional = cm.optional.unwrap_or(false);
            files.extend(source_files(
                Source::ConfigMap,
                &cm.name,
                cm.items.as_ref(),
                mode,
                optional,
                inputs,
            )?);
        }
        if let Some(s) = &source.secret {
            let optional = s.optional.unwrap_or(false);
            files.extend(source_files(
                Source::Secret,
                &s.name,
                s.items.as_ref(),
                mode,
                optional,
                inputs,
            )?);
        }
        if let Some(d) = &source.downward_api {
            files.extend(downward_files(
                d.items.as_deref().unwrap_or(&[]),
                mode,
                ctx,
            )?);
        }
        if let Some(t) = &source.service_account_token {
            let token = inputs
                .tokens
                .get(&TokenSource::of(t))
                .ok_or_else(|| "no service account token was issued".to_string())?;
            files.insert(
                t.path.clone(),
                File {
                    data: token.clone().into_bytes(),
                    mode: mode_of(None, mode),
                },
            );
        }
    }
    Ok(Some(files))
}

/// Lays `payload` out in `dir` (see the module's description); returns whether anything
/// changed. Paths that would leave the directory are refused.
pub fn write(dir: &Path, payload: &Payload) -> io::Result<bool> {
    for path in payload.keys() {
        let escapes = Path::new(path).components().any(|c| {
            !matches!(c, std::path::Component::Normal(_))
                || c.as_os_str().to_string_lossy().starts_with("..")
        });
        if path.is_empty() || escapes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid path {path:?} in a volume"),
            ));
        }
    }
    std::fs::create_dir_all(dir)?;
    let data_link = dir.join(DATA_DIR);
    let current = std::fs::read_link(&data_link).ok();
    if let Some(current) = &current {
        if read_version(&dir.join(current)).ok().as_ref() == Some(payload) {
            link_visible(dir, payload)?;
            return Ok(false);
        }
    }
    let version = format!(
        "..{}.{}",
        jiff::Zoned::now().strftime("%Y_%m_%d_%H_%M_%S"),
        rand::random_range(1_000_000_000u64..10_000_000_000)
    );
    let version_dir = dir.join(&version);
    std::fs::create_dir(&version_dir)?;
    std::fs::set_permissions(&version_dir, std::fs::Permissions::from_mode(0o755))?;
    for (path, file) in payload {
        let target = version_dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, &file.data)?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(file.mode))?;
    }
    let tmp = dir.join(DATA_DIR_TMP);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&version, &tmp)?;
    std::fs::rename(&tmp, &data_link)?;
    link_visible(dir, payload)?;
    if let Some(old) = current {
        let old = dir.join(old);
        if old != version_dir {
            std::fs::remove_dir_all(old)?;
        }
    }
    Ok(true)
}

/// Makes each top-level name of the payload a link into `..data`, and removes the names
/// of an earlier version that the payload no longer has.
fn link_visible(dir: &Path, payload: &Payload) -> io::Result<()> {
    let top: std::collections::BTreeSet<&str> = payload
        .keys()
        .filter_map(|p| p.split('/').find(|s| !s.is_empty()))
        .collect();
    for name in &top {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new(DATA_DIR).join(name), &link)?;
        }
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !top.contains(name.as_str()) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// The files of one written version, to compare with the next.
fn read_version(dir: &Path) -> io::Result<Payload> {
    fn walk(root: &Path, dir: &Path, out: &mut Payload) -> io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let meta = entry.metadata()?;
            if meta.is_dir() {
                walk(root, &path, out)?;
            } else {
                let relative = path
                    .strip_prefix(root)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                out.insert(
                    relative.to_string_lossy().into_owned(),
                    File {
                        data: std::fs::read(&path)?,
                        mode: meta.permissions().mode() & 0o777,
                    },
                );
            }
        }
        Ok(())
    }
    let mut out = Payload::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn volume(v: serde_json::Value) -> Volume {
        serde_json::from_value(v).unwrap()
    }

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1",
                "labels": {"b": "two", "a": "one \"quoted\"\n"}},
            "spec": {"containers": [{"name": "c", "image": "x",
                "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}}}]},
        }))
        .unwrap()
    }

    fn ctx(pod: &Pod) -> env::Context<'_> {
        env::Context {
            pod,
            node: "n1",
            host_ip: "10.0.0.1",
            pod_ip: "10.0.0.2",
            services: &[],
        }
    }

    fn inputs() -> Inputs {
        let cm: ConfigMap = serde_json::from_value(json!({
            "data": {"game.properties": "lives=3", "ui": "dark"},
            "binaryData": {"raw": "AAE="},
        }))
        .unwrap();
        let secret: Secret = serde_json::from_value(
            json!({"data": {"username": "YWRtaW4=", "password": "cGFzcw=="}}),
        )
        .unwrap();
        let mut inputs = Inputs::default();
        inputs.config_maps.insert("cfg".into(), Some(cm));
        inputs.config_maps.insert("gone".into(), None);
        inputs.secrets.insert("creds".into(), Some(secret));
        inputs.tokens.insert(
            TokenSource {
                audience: None,
                expiration_seconds: 3607,
            },
            "jwt".into(),
        );
        inputs
    }

    fn text(payload: &Payload, path: &str) -> String {
        String::from_utf8(payload[path].data.clone()).unwrap()
    }

    #[test]
    fn a_config_map_gives_every_key_or_the_items_asked_for() {
        let p = pod();
        let all = payload(
            &volume(json!({"name": "v", "configMap": {"name": "cfg"}})),
            &ctx(&p),
            &inputs(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            all.keys().collect::<Vec<_>>(),
            ["game.properties", "raw", "ui"]
        );
        assert_eq!(all["raw"].data, [0, 1]);
        assert_eq!(all["ui"].mode, 0o644);
        let some = payload(
            &volume(json!({"name": "v", "configMap": {"name": "cfg", "defaultMode": 0o400,
                "items": [{"key": "ui", "path": "conf/ui.txt", "mode": 0o600}, {"key": "game.properties", "path": "g"}]}})),
            &ctx(&p),
            &inputs(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(some.keys().collect::<Vec<_>>(), ["conf/ui.txt", "g"]);
        assert_eq!(some["conf/ui.txt"].mode, 0o600);
        assert_eq!(some["g"].mode, 0o400);
    }

    #[test]
    fn missing_sources_and_keys_fail_unless_optional() {
        let p = pod();
        let err = |v| payload(&volume(v), &ctx(&p), &inputs()).unwrap_err();
        assert_eq!(
            err(json!({"name": "v", "configMap": {"name": "gone"}})),
            "configmap \"gone\" not found"
        );
        assert_eq!(
            err(json!({"name": "v", "secret": {"secretName": "nope"}})),
            "secret \"nope\" not found"
        );
        assert_eq!(
            err(
                json!({"name": "v", "configMap": {"name": "cfg", "items": [{"key": "k", "path": "k"}]}})
            ),
            "configmap references non-existent config key: k"
        );
        assert_eq!(
            err(
                json!({"name": "v", "secret": {"secretName": "creds", "items": [{"key": "k", "path": "k"}]}})
            ),
            "references non-existent secret key: k"
        );
        let empty = payload(
            &volume(json!({"name": "v", "configMap": {"name": "gone", "optional": true}})),
            &ctx(&p),
            &inputs(),
        )
        .unwrap()
        .unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn a_secret_volume_writes_the_decoded_values_with_its_modes() {
        let p = pod();
        // The book's Jenkins volume: two keys under new names, read-only for all.
        let files = payload(
            &volume(json!({"name": "jenkins-creds", "secret": {"secretName": "creds", "defaultMode": 0o444,
                "items": [{"key": "username", "path": "jenkins-user"}, {"key": "password", "path": "jenkins-pass"}]}})),
            &ctx(&p),
            &inputs(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(text(&files, "jenkins-user"), "admin");
        assert_eq!(text(&files, "jenkins-pass"), "pass");
        assert_eq!(files["jenkins-pass"].mode, 0o444);
    }

    #[test]
    fn downward_api_files_read_as_upstream_writes_them() {
        let p = pod();
        let files = payload(
            &volume(json!({"name": "v", "downwardAPI": {"items": [
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}},
            ]}})),
            &ctx(&p),
            &inputs(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            text(&files, "labels"),
            "a=\"one \\\"quoted\\\"\\n\"\nb=\"two\""
        );
        assert_eq!(text(&files, "name"), "p");
        assert_eq!(text(&files, "mem"), "64");
    }

    #[test]
    fn the_admitted_projected_volume_holds_token_ca_and_namespace() {
        let p = pod();
        let mut inputs = inputs();
        let root: ConfigMap = serde_json::from_value(json!({"data": {"ca.crt": "PEM"}})).unwrap();
        inputs
            .config_maps
            .insert("kube-root-ca.crt".into(), Some(root));
        // The volume ServiceAccount admission adds.
        let v = volume(
            json!({"name": "kube-api-access-x", "projected": {"defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ]}}),
        );
        assert_eq!(
            needs(&v),
            Needs {
                config_maps: vec!["kube-root-ca.crt".into()],
                secrets: vec![],
                tokens: vec![TokenSource {
                    audience: None,
                    expiration_seconds: 3607
                }],
            }
        );
        let files = payload(&v, &ctx(&p), &inputs).unwrap().unwrap();
        assert_eq!(text(&files, "token"), "jwt");
        assert_eq!(text(&files, "ca.crt"), "PEM");
        assert_eq!(text(&files, "namespace"), "ns");
        assert!(files.values().all(|f| f.mode == 0o644));
    }

    fn file(data: &str) -> File {
        File {
            data: data.as_bytes().to_vec(),
            mode: 0o644,
        }
    }

    #[test]
    fn an_update_swaps_the_whole_version_and_drops_removed_names() {
        let dir = tempfile::tempdir().unwrap();
        let first = Payload::from([("a".into(), file("1")), ("sub/b".into(), file("2"))]);
        assert!(write(dir.path(), &first).unwrap());
        let before = std::fs::read_link(dir.path().join("..data")).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("a")).unwrap(), "1");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("sub/b")).unwrap(),
            "2"
        );
        assert_eq!(
            std::fs::read_link(dir.path().join("a")).unwrap(),
            Path::new("..data/a")
        );
        // The same payload again changes nothing.
        assert!(!write(dir.path(), &first).unwrap());
        assert_eq!(
            std::fs::read_link(dir.path().join("..data")).unwrap(),
            before
        );

        let second = Payload::from([("a".into(), file("3")), ("c".into(), file("4"))]);
        assert!(write(dir.path(), &second).unwrap());
        let after = std::fs::read_link(dir.path().join("..data")).unwrap();
        assert_ne!(after, before);
        assert!(
            !dir.path().join(&before).exists(),
            "the old version is removed"
        );
        assert_eq!(std::fs::read_to_string(dir.path().join("a")).unwrap(), "3");
        assert_eq!(std::fs::read_to_string(dir.path().join("c")).unwrap(), "4");
        assert!(std::fs::symlink_metadata(dir.path().join("sub")).is_err());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(".."))
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn paths_that_leave_the_volume_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["../x", "/etc/x", "a/../../x", "..data/x"] {
            let payload = Payload::from([(bad.to_string(), file("x"))]);
            assert!(write(dir.path(), &payload).is_err(), "{bad}");
        }
    }
}
