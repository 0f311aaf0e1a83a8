//! kind-style cluster configs (`kind: Cluster`, `apiVersion: kind.x-k8s.io/v1alpha4`).
//!
//! The fields rkube honours are those of kind that make sense without node containers, plus
//! per-node `capacity` (what kind users asked for in kind#877). Every other kind field is
//! refused with its path named, never silently ignored.

use std::collections::BTreeMap;

use serde_json::Value;

pub const DEFAULT_NAME: &str = "rkube";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    ControlPlane,
    Worker,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub name: String,
    pub role: Role,
    pub labels: BTreeMap<String, String>,
    /// `cpu`, `memory`, `pods` as quantities; what is not given comes from the machine.
    pub capacity: BTreeMap<String, String>,
    /// The control-plane taint, when the cluster has workers (as kind does).
    pub taint_control_plane: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub name: String,
    pub nodes: Vec<NodeConfig>,
    pub api_server_address: Option<String>,
    pub api_server_port: Option<u16>,
    /// What `kubeadmConfigPatches` set in a `KubeletConfiguration`, for every kubelet.
    pub kubelet: KubeletSettings,
    /// What `kubeadmConfigPatches` set in a `ClusterConfiguration` for the controller manager.
    pub controller_manager: ControllerManagerSettings,
}

/// The kubelet settings a kind config may patch in (`kind: KubeletConfiguration` in
/// `kubeadmConfigPatches`): the container log rotation and the node's heartbeats, which rkube
/// passes on as the kubelets' flags of the same names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KubeletSettings {
    pub container_log_max_size: Option<String>,
    pub container_log_max_files: Option<u32>,
    pub node_lease_duration_seconds: Option<u32>,
    pub node_status_update_frequency: Option<String>,
}

impl KubeletSettings {
    /// The kubelet flags these settings become.
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(size) = &self.container_log_max_size {
            args.extend(["--container-log-max-size".to_string(), size.clone()]);
        }
        if let Some(files) = self.container_log_max_files {
            args.extend(["--container-log-max-files".to_string(), files.to_string()]);
        }
        if let Some(seconds) = self.node_lease_duration_seconds {
            args.extend(["--node-lease-duration-seconds".into(), seconds.to_string()]);
        }
        if let Some(every) = &self.node_status_update_frequency {
            args.extend(["--node-status-update-frequency".into(), every.clone()]);
        }
        args
    }

    /// Takes a `KubeletConfiguration` patch: the fields above, anything else refused by name.
    fn patch(
        &mut self,
        map: &serde_json::Map<String, Value>,
        path: &str,
    ) -> Result<(), ConfigError> {
        for (key, value) in map {
            match key.as_str() {
                "kind" | "apiVersion" => {}
                "containerLogMaxSize" => {
                    let size = value.as_str().filter(|v| {
                        crate::meta::quantity::Quantity::parse(v)
                            .is_ok_and(|q| !q.is_negative() && !q.is_zero())
                    });
                    let size = size.ok_or_else(|| {
                        invalid(
                            &format!("{path}.containerLogMaxSize"),
                            "must be a positive quantity such as 10Mi",
                        )
                    })?;
                    self.container_log_max_size = Some(size.to_string());
                }
                "containerLogMaxFiles" => {
                    let files = value
                        .as_u64()
                        .and_then(|f| u32::try_from(f).ok())
                        .filter(|f| *f >= 2)
                        .ok_or_else(|| {
                            invalid(
                                &format!("{path}.containerLogMaxFiles"),
                                "must be at least 2",
                            )
                        })?;
                    self.container_log_max_files = Some(files);
                }
                "nodeLeaseDurationSeconds" => {
                    let seconds = value
                        .as_u64()
                        .and_then(|s| u32::try_from(s).ok())
                        .filter(|s| *s > 0)
                        .ok_or_else(|| {
                            invalid(
                                &format!("{path}.nodeLeaseDurationSeconds"),
                                "must be a positive number of seconds",
                            )
                        })?;
                    self.node_lease_duration_seconds = Some(seconds);
                }
                "nodeStatusUpdateFrequency" => {
                    let every = value
                        .as_str()
                        .filter(|v| crate::meta::duration::parse(v).is_ok_and(|d| !d.is_zero()))
                        .ok_or_else(|| {
                            invalid(
                                &format!("{path}.nodeStatusUpdateFrequency"),
                                "must be a positive duration such as 10s",
                            )
                        })?;
                    self.node_status_update_frequency = Some(every.to_string());
                }
                other => {
                    return Err(ConfigError::Unsupported {
                        fields: vec![format!("{path}.{other}")],
                    })
                }
            }
        }
        Ok(())
    }
}

/// The controller manager's flags a kind config may set, as kind users do, through a
/// kubeadm `ClusterConfiguration` patch's `controllerManager.extraArgs` (a map in kubeadm's
/// v1beta3, a list of `name`/`value` in v1beta4). Only flags `rkube controller-manager` has
/// are taken, their values checked here so that `rkube up` never starts a controller
/// manager that refuses its own command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ControllerManagerSettings {
    /// `(flag, value)` in the order given.
    pub extra_args: Vec<(String, String)>,
}

impl ControllerManagerSettings {
    /// The flags these settings become.
    pub fn args(&self) -> Vec<String> {
        self.extra_args
            .iter()
            .map(|(name, value)| format!("--{name}={value}"))
            .collect()
    }

    /// Takes a `ClusterConfiguration` patch: `controllerManager.extraArgs`, nothing else.
    fn patch(
        &mut self,
        map: &serde_json::Map<String, Value>,
        path: &str,
    ) -> Result<(), ConfigError> {
        for (key, value) in map {
            match key.as_str() {
                "kind" | "apiVersion" => {}
                "controllerManager" => {
                    let path = format!("{path}.controllerManager");
                    let Some(section) = value.as_object() else {
                        return Err(invalid(&path, "must be a map"));
                    };
                    for (key, value) in section {
                        if key != "extraArgs" {
                            return Err(ConfigError::Unsupported {
                                fields: vec![format!("{path}.{key}")],
                            });
                        }
                        self.extra_args(value, &format!("{path}.extraArgs"))?;
                    }
                }
                other => {
                    return Err(ConfigError::Unsupported {
                        fields: vec![format!("{path}.{other}")],
                    })
                }
            }
        }
        Ok(())
    }

    fn extra_args(&mut self, value: &Value, path: &str) -> Result<(), ConfigError> {
        let pairs: Vec<(String, Value)> = match value {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Value::Array(list) => list
                .iter()
                .enumerate()
                .map(|(i, entry)| {
                    let name = entry.get("name").and_then(Value::as_str);
                    let value = entry.get("value");
                    match (name, value) {
                        (Some(name), Some(value)) => Ok((name.to_string(), value.clone())),
                        _ => Err(invalid(
                            &format!("{path}[{i}]"),
                            "must have a name and a value",
                        )),
                    }
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(invalid(
                    path,
                    "must be a map of flag names to values, or a list of name and value",
                ))
            }
        };
        for (name, value) in pairs {
            let field = format!("{path}.{name}");
            let value = match &value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return Err(invalid(&field, "must be a string")),
            };
            let checked = match name.as_str() {
                "node-monitor-period"
                | "node-monitor-grace-period"
                | "leader-elect-lease-duration"
                | "leader-elect-renew-deadline"
                | "leader-elect-retry-period" => crate::meta::duration::parse(&value)
                    .map(drop)
                    .map_err(|e| format!("must be a duration such as 40s: {e}")),
                "leader-elect" => value
                    .parse::<bool>()
                    .map(drop)
                    .map_err(|_| "must be true or false".to_string()),
                "terminated-pod-gc-threshold" => value
                    .parse::<usize>()
                    .map(drop)
                    .map_err(|_| "must be a whole number".to_string()),
                "controllers" => {
                    let entries: Vec<String> = value.split(',').map(str::to_string).collect();
                    crate::controller::Selection::parse(&entries).map(drop)
                }
                _ => {
                    return Err(ConfigError::Unsupported {
                        fields: vec![field],
                    })
                }
            };
            checked.map_err(|why| invalid(&field, why))?;
            self.extra_args.push((name, value));
        }
        Ok(())
    }
}

/// Reads `kubeadmConfigPatches`: each entry a YAML document, a `KubeletConfiguration` or a
/// `ClusterConfiguration`; anything else is refused by name.
fn parse_patches(
    patches: &Value,
) -> Result<(KubeletSettings, ControllerManagerSettings), ConfigError> {
    const FIELD: &str = "kubeadmConfigPatches";
    let Some(list) = patches.as_array() else {
        return Err(invalid(FIELD, "must be a list of YAML documents"));
    };
    let mut kubelet = KubeletSettings::default();
    let mut controller_manager = ControllerManagerSettings::default();
    for (i, entry) in list.iter().enumerate() {
        let path = format!("{FIELD}[{i}]");
        let text = entry
            .as_str()
            .ok_or_else(|| invalid(&path, "must be a YAML document in a string"))?;
        let doc: Value =
            serde_yaml::from_str(text).map_err(|e| invalid(&path, format!("cannot parse: {e}")))?;
        let Some(map) = doc.as_object() else {
            return Err(invalid(&path, "must be a map"));
        };
        match map.get("kind").and_then(Value::as_str).unwrap_or("") {
            "KubeletConfiguration" => kubelet.patch(map, &path)?,
            "ClusterConfiguration" => controller_manager.patch(map, &path)?,
            kind => {
                return Err(ConfigError::Unsupported {
                    fields: vec![format!("{path} (kind {kind:?})")],
                })
            }
        }
    }
    Ok((kubelet, controller_manager))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("cannot parse the cluster config: {0}")]
    Parse(String),
    #[error("{field}: {why}")]
    Invalid { field: String, why: String },
    /// Every kind setting of the config that rkube refuses, each named once.
    #[error("{}", unsupported_message(fields))]
    Unsupported { fields: Vec<String> },
}

fn unsupported_message(fields: &[String]) -> String {
    match fields {
        [one] => format!("{one} is a kind setting rkube does not support; remove it"),
        many => format!(
            "{} are kind settings rkube does not support; remove them",
            many.join(", ")
        ),
    }
}

fn invalid(field: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        why: why.into(),
    }
}

/// Kind's fields that rkube knows and refuses, so the error can say it is deliberate.
const KNOWN_UNSUPPORTED: &[&str] = &[
    "featureGates",
    "runtimeConfig",
    "kubeadmConfigPatchesJSON6902",
    "containerdConfigPatches",
    "containerdConfigPatchesJSON6902",
    "image",
    "extraMounts",
    "extraPortMappings",
    "podSubnet",
    "serviceSubnet",
    "disableDefaultCNI",
    "kubeProxyMode",
    "ipFamily",
    "dnsSearch",
];

fn check_keys(
    map: &serde_json::Map<String, Value>,
    path: &str,
    allowed: &[&str],
) -> Result<(), ConfigError> {
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            let field = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if KNOWN_UNSUPPORTED.contains(&key.as_str()) {
                return Err(ConfigError::Unsupported {
                    fields: vec![field],
                });
            }
            return Err(invalid(&field, "unknown field"));
        }
    }
    Ok(())
}

const TOP_LEVEL: &[&str] = &[
    "kind",
    "apiVersion",
    "name",
    "nodes",
    "networking",
    "kubeadmConfigPatches",
];
const NETWORKING: &[&str] = &["apiServerAddress", "apiServerPort"];
const NODE: &[&str] = &["role", "labels", "capacity"];

/// Every kind setting rkube refuses, anywhere in the document, in document order: the user
/// fixes them all in one go instead of meeting them one run at a time.
fn unsupported_fields(top: &serde_json::Map<String, Value>) -> Vec<String> {
    let refused = |map: &serde_json::Map<String, Value>, path: &str, allowed: &[&str]| {
        map.keys()
            .filter(|k| !allowed.contains(&k.as_str()) && KNOWN_UNSUPPORTED.contains(&k.as_str()))
            .map(|k| {
                if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                }
            })
            .collect::<Vec<_>>()
    };
    let mut fields = refused(top, "", TOP_LEVEL);
    if let Some(net) = top.get("networking").and_then(Value::as_object) {
        fields.extend(refused(net, "networking", NETWORKING));
    }
    if let Some(nodes) = top.get("nodes").and_then(Value::as_array) {
        for (i, node) in nodes.iter().enumerate() {
            if let Some(map) = node.as_object() {
                fields.extend(refused(map, &format!("nodes[{i}]"), NODE));
            }
        }
    }
    fields
}

fn string_map(value: &Value, path: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let Some(map) = value.as_object() else {
        return Err(invalid(path, "must be a map"));
    };
    map.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Number(n) => Ok((k.clone(), n.to_string())),
            Value::Bool(b) => Ok((k.clone(), b.to_string())),
            _ => Err(invalid(&format!("{path}.{k}"), "must be a string")),
        })
        .collect()
}

impl ClusterConfig {
    /// The cluster `rkube up` makes without a config: one schedulable control-plane node.
    pub fn single_node() -> ClusterConfig {
        ClusterConfig {
            name: DEFAULT_NAME.into(),
            nodes: vec![NodeConfig {
                name: format!("{DEFAULT_NAME}-control-plane"),
                role: Role::ControlPlane,
                labels: BTreeMap::new(),
                capacity: BTreeMap::new(),
                taint_control_plane: false,
            }],
            api_server_address: None,
            api_server_port: None,
            kubelet: KubeletSettings::default(),
            controller_manager: ControllerManagerSettings::default(),
        }
    }

    /// The same cluster under another name (`--name`); node names follow it.
    pub fn renamed(mut self, name: &str) -> Result<ClusterConfig, ConfigError> {
        if !is_dns_label(name) {
            return Err(invalid(
                "name",
                "must be a lowercase DNS label (a-z, 0-9, '-')",
            ));
        }
        for node in &mut self.nodes {
            if let Some(suffix) = node.name.strip_prefix(&self.name) {
                node.name = format!("{name}{suffix}");
            }
        }
        self.name = name.to_string();
        Ok(self)
    }

    pub fn parse(text: &str) -> Result<ClusterConfig, ConfigError> {
        let doc: Value =
            serde_yaml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        let Some(top) = doc.as_object() else {
            return Err(ConfigError::Parse("the document is not a map".into()));
        };
        let refused = unsupported_fields(top);
        if !refused.is_empty() {
            return Err(ConfigError::Unsupported { fields: refused });
        }
        check_keys(top, "", TOP_LEVEL)?;
        if top.get("kind").and_then(Value::as_str) != Some("Cluster") {
            return Err(invalid("kind", "must be Cluster"));
        }
        match top.get("apiVersion").and_then(Value::as_str) {
            Some("kind.x-k8s.io/v1alpha4") => {}
            _ => return Err(invalid("apiVersion", "must be kind.x-k8s.io/v1alpha4")),
        }
        let name = match top.get("name") {
            None => DEFAULT_NAME.to_string(),
            Some(Value::String(n)) if is_dns_label(n) => n.clone(),
            Some(_) => {
                return Err(invalid(
                    "name",
                    "must be a lowercase DNS label (a-z, 0-9, '-')",
                ))
            }
        };
        let mut api_server_address = None;
        let mut api_server_port = None;
        if let Some(net) = top.get("networking") {
            let Some(net) = net.as_object() else {
                return Err(invalid("networking", "must be a map"));
            };
            check_keys(net, "networking", NETWORKING)?;
            if let Some(addr) = net.get("apiServerAddress") {
                let addr = addr
                    .as_str()
                    .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
                    .ok_or_else(|| {
                        invalid("networking.apiServerAddress", "must be an IP address")
                    })?;
                api_server_address = Some(addr.to_string());
            }
            if let Some(port) = net.get("apiServerPort") {
                let port = port
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| invalid("networking.apiServerPort", "must be a port number"))?;
                api_server_port = Some(port);
            }
        }
        let raw_nodes = match top.get("nodes") {
            None => vec![serde_json::json!({"role": "control-plane"})],
            Some(Value::Array(list)) if !list.is_empty() => list.clone(),
            Some(_) => return Err(invalid("nodes", "must list at least one node")),
        };
        let mut nodes = Vec::new();
        let (mut planes, mut workers) = (0, 0);
        for (i, raw) in raw_nodes.iter().enumerate() {
            let path = format!("nodes[{i}]");
            let Some(map) = raw.as_object() else {
                return Err(invalid(&path, "must be a map"));
            };
            check_keys(map, &path, NODE)?;
            let role = match map
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or("control-plane")
            {
                "control-plane" => Role::ControlPlane,
                "worker" => Role::Worker,
                other => {
                    return Err(invalid(
                        &format!("{path}.role"),
                        format!("unknown role {other:?}: use control-plane or worker"),
                    ))
                }
            };
            let node_name = match role {
                Role::ControlPlane => {
                    planes += 1;
                    numbered(&format!("{name}-control-plane"), planes)
                }
                Role::Worker => {
                    workers += 1;
                    numbered(&format!("{name}-worker"), workers)
                }
            };
            let labels = match map.get("labels") {
                Some(v) => string_map(v, &format!("{path}.labels"))?,
                None => BTreeMap::new(),
            };
            let capacity = match map.get("capacity") {
                Some(v) => string_map(v, &format!("{path}.capacity"))?,
                None => BTreeMap::new(),
            };
            for (key, value) in &capacity {
                let field = format!("{path}.capacity.{key}");
                if !["cpu", "memory", "pods"].contains(&key.as_str()) {
                    return Err(invalid(&field, "only cpu, memory and pods can be set"));
                }
                match crate::meta::quantity::Quantity::parse(value) {
                    Ok(q) if !q.is_negative() && !q.is_zero() => {}
                    _ => {
                        return Err(invalid(
                            &field,
                            format!("{value:?} is not a positive quantity"),
                        ))
                    }
                }
            }
            nodes.push(NodeConfig {
                name: node_name,
                role,
                labels,
                capacity,
                taint_control_plane: false,
            });
        }
        if planes == 0 {
            return Err(invalid("nodes", "needs a control-plane node"));
        }
        if planes > 1 {
            return Err(ConfigError::Unsupported {
                fields: vec!["nodes (more than one control-plane)".into()],
            });
        }
        // kind taints the control plane only when workers exist to run Pods.
        if workers > 0 {
            for node in &mut nodes {
                node.taint_control_plane = node.role == Role::ControlPlane;
            }
        }
        let (kubelet, controller_manager) = match top.get("kubeadmConfigPatches") {
            Some(patches) => parse_patches(patches)?,
            None => Default::default(),
        };
        Ok(ClusterConfig {
            name,
            nodes,
            api_server_address,
            api_server_port,
            kubelet,
            controller_manager,
        })
    }
}

/// kind's node names: `x-worker`, `x-worker2`, `x-worker3`, …
fn numbered(base: &str, n: usize) -> String {
    if n == 1 {
        base.to_string()
    } else {
        format!("{base}{n}")
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Why `text` is refused.
    fn refused(text: &str) -> String {
        ClusterConfig::parse(text).expect_err("refused").to_string()
    }

    #[test]
    fn three_node_config_names_nodes_like_kind_and_taints_the_control_plane() {
        let config = ClusterConfig::parse(
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: demo\nnodes:\n- role: control-plane\n- role: worker\n  labels: {tier: web}\n  capacity: {cpu: 2, memory: 4Gi}\n- role: worker\n",
        )
        .expect("parses");
        let names: Vec<&str> = config.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["demo-control-plane", "demo-worker", "demo-worker2"]);
        assert!(config.nodes[0].taint_control_plane);
        assert!(!config.nodes[1].taint_control_plane);
        assert_eq!(config.nodes[1].labels["tier"], "web");
        assert_eq!(config.nodes[1].capacity["cpu"], "2");
    }

    #[test]
    fn a_lone_control_plane_is_schedulable() {
        let config = ClusterConfig::parse("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n")
            .expect("parses");
        assert_eq!(config.nodes[0].name, "rkube-control-plane");
        assert!(!config.nodes[0].taint_control_plane);
    }

    #[test]
    fn unsupported_kind_fields_are_named() {
        let err = ClusterConfig::parse(
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  extraPortMappings: []\n",
        )
        .expect_err("refused");
        assert_eq!(
            err.to_string(),
            "nodes[0].extraPortMappings is a kind setting rkube does not support; remove it"
        );
        let err = ClusterConfig::parse("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking: {podSubnet: 10.0.0.0/16}\n")
            .expect_err("refused");
        assert_eq!(
            err,
            ConfigError::Unsupported {
                fields: vec!["networking.podSubnet".into()]
            }
        );
        let err = ClusterConfig::parse("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: worker\n  capacity: {gpu: 1}\n")
            .expect_err("refused");
        assert!(err.to_string().starts_with("nodes[0].capacity.gpu"));
    }

    #[test]
    fn kubelet_configuration_patches_set_log_rotation_and_heartbeats_and_nothing_else() {
        let base = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n";
        let config = ClusterConfig::parse(&format!(
            "{base}kubeadmConfigPatches:\n- |\n  kind: KubeletConfiguration\n  apiVersion: kubelet.config.k8s.io/v1beta1\n  containerLogMaxSize: 200Mi\n  containerLogMaxFiles: 3\n  nodeLeaseDurationSeconds: 4\n  nodeStatusUpdateFrequency: 1s\n"
        ))
        .expect("parses");
        assert_eq!(
            config.kubelet.args(),
            [
                "--container-log-max-size",
                "200Mi",
                "--container-log-max-files",
                "3",
                "--node-lease-duration-seconds",
                "4",
                "--node-status-update-frequency",
                "1s"
            ]
        );
        let err = refused(&format!("{base}kubeadmConfigPatches:\n- |\n  kind: KubeletConfiguration\n  nodeStatusUpdateFrequency: 0s\n"));
        assert_eq!(
            err,
            "kubeadmConfigPatches[0].nodeStatusUpdateFrequency: must be a positive duration such as 10s"
        );
        let err = refused(&format!(
            "{base}kubeadmConfigPatches:\n- |\n  kind: InitConfiguration\n"
        ));
        assert_eq!(
            err,
            "kubeadmConfigPatches[0] (kind \"InitConfiguration\") is a kind setting rkube does not support; remove it"
        );
        let err = refused(&format!(
            "{base}kubeadmConfigPatches:\n- |\n  kind: KubeletConfiguration\n  maxPods: 10\n"
        ));
        assert!(err.starts_with("kubeadmConfigPatches[0].maxPods"), "{err}");
        let err = refused(&format!("{base}kubeadmConfigPatches:\n- |\n  kind: KubeletConfiguration\n  containerLogMaxFiles: 1\n"));
        assert_eq!(
            err,
            "kubeadmConfigPatches[0].containerLogMaxFiles: must be at least 2"
        );
    }

    #[test]
    fn cluster_configuration_patches_pass_the_controller_managers_own_flags() {
        let base = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nkubeadmConfigPatches:\n- |\n  kind: ClusterConfiguration\n";
        // kubeadm v1beta3 writes extraArgs as a map, v1beta4 as a list.
        let config = ClusterConfig::parse(&format!(
            "{base}  controllerManager:\n    extraArgs:\n      node-monitor-grace-period: 8s\n      terminated-pod-gc-threshold: 20\n"
        ))
        .expect("parses");
        assert_eq!(
            config.controller_manager.args(),
            [
                "--node-monitor-grace-period=8s",
                "--terminated-pod-gc-threshold=20"
            ]
        );
        let config = ClusterConfig::parse(&format!(
            "{base}  controllerManager:\n    extraArgs:\n    - name: controllers\n      value: \"*,-job-controller\"\n"
        ))
        .expect("parses");
        assert_eq!(
            config.controller_manager.args(),
            ["--controllers=*,-job-controller"]
        );
        let refused = |patch: &str| refused(&format!("{base}{patch}"));
        assert_eq!(
            refused("  apiServer: {}\n"),
            "kubeadmConfigPatches[0].apiServer is a kind setting rkube does not support; remove it"
        );
        assert_eq!(
            refused("  controllerManager:\n    extraArgs:\n      bind-address: 0.0.0.0\n"),
            "kubeadmConfigPatches[0].controllerManager.extraArgs.bind-address is a kind setting \
             rkube does not support; remove it"
        );
        assert!(
            refused("  controllerManager:\n    extraArgs:\n      node-monitor-period: soon\n")
                .starts_with(
                    "kubeadmConfigPatches[0].controllerManager.extraArgs.node-monitor-period: \
                     must be a duration"
                )
        );
        assert!(
            refused("  controllerManager:\n    extraArgs: {controllers: \"nope\"}\n")
                .starts_with("kubeadmConfigPatches[0].controllerManager.extraArgs.controllers: ")
        );
        assert_eq!(
            refused("  controllerManager:\n    extraArgs: [{name: controllers}]\n"),
            "kubeadmConfigPatches[0].controllerManager.extraArgs[0]: must have a name and a value"
        );
    }

    #[test]
    fn every_unsupported_field_is_reported_once() {
        let err = ClusterConfig::parse(
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nfeatureGates: {A: true}\nnetworking:\n  podSubnet: 10.0.0.0/16\n  kubeProxyMode: ipvs\nnodes:\n- role: control-plane\n  extraMounts: []\n- role: worker\n  extraPortMappings: []\n  image: kindest/node\n",
        )
        .expect_err("refused");
        assert_eq!(
            err.to_string(),
            "featureGates, networking.podSubnet, networking.kubeProxyMode, nodes[0].extraMounts, \
             nodes[1].extraPortMappings, nodes[1].image are kind settings rkube does not support; \
             remove them"
        );
    }
}
