//! A container's environment as upstream's kubelet makes it (`makeEnvironmentVariables`):
//! `envFrom` first (ConfigMaps and Secrets, with prefixes), then `env` in order, where a value
//! may use `$(VAR)` references to what came before and `valueFrom` reads a ConfigMap or Secret
//! key, a field of the Pod (the downward API) or a resource of the container.
//!
//! Resolution is pure: the kubelet reads the ConfigMaps and Secrets a container refers to first
//! ([`references`]) and hands them in as [`Sources`]; a missing one that is not `optional` is
//! the error upstream shows under `CreateContainerConfigError`.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::meta::quantity::Quantity;

/// The ConfigMaps and Secrets read for a container; `None` for one that does not exist.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    pub config_maps: HashMap<String, Option<BTreeMap<String, String>>>,
    pub secrets: HashMap<String, Option<BTreeMap<String, Vec<u8>>>>,
}

/// What the Pod's environment may read besides its own spec.
pub struct Context<'a> {
    pub pod: &'a Pod,
    pub node: &'a str,
    pub host_ip: &'a str,
    pub pod_ip: &'a str,
    /// The variables of the Services every container is told of (see [`service_env`]).
    pub services: &'a [(String, String)],
}

/// The variables that tell a container where the `kubernetes` Service (the API server) is,
/// as upstream's kubelet writes them for a Service with one port named `https`.
pub fn service_env(host: &str, port: u16) -> Vec<(String, String)> {
    let url = format!("tcp://{host}:{port}");
    let prefix = format!("KUBERNETES_PORT_{port}_TCP");
    vec![
        ("KUBERNETES_SERVICE_HOST".into(), host.to_string()),
        ("KUBERNETES_SERVICE_PORT".into(), port.to_string()),
        ("KUBERNETES_SERVICE_PORT_HTTPS".into(), port.to_string()),
        ("KUBERNETES_PORT".into(), url.clone()),
        (prefix.clone(), url),
        (format!("{prefix}_PROTO"), "tcp".into()),
        (format!("{prefix}_PORT"), port.to_string()),
        (format!("{prefix}_ADDR"), host.to_string()),
    ]
}

/// The ConfigMaps and the Secrets a container's environment names.
pub fn references(container: &Container) -> (Vec<String>, Vec<String>) {
    let (mut config_maps, mut secrets) = (Vec::new(), Vec::new());
    for from in container.env_from.iter().flatten() {
        if let Some(r) = &from.config_map_ref {
            config_maps.push(r.name.clone());
        }
        if let Some(r) = &from.secret_ref {
            secrets.push(r.name.clone());
        }
    }
    for var in container.env.iter().flatten() {
        let Some(from) = &var.value_from else {
            continue;
        };
        if let Some(r) = &from.config_map_key_ref {
            config_maps.push(r.name.clone());
        }
        if let Some(r) = &from.secret_key_ref {
            secrets.push(r.name.clone());
        }
    }
    config_maps.sort();
    config_maps.dedup();
    secrets.sort();
    secrets.dedup();
    (config_maps, secrets)
}

/// Expands `$(VAR)` references as the kubelet does; `$$` escapes, unknown references stay.
pub fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let var = &inner[..end];
                    match env.iter().rev().find(|(k, _)| k == var) {
                        Some((_, v)) => out.push_str(v),
                        None => out.push_str(&format!("$({var})")),
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Sets `name` (a later value of the same name replaces the earlier, as upstream's map does,
/// keeping the first position).
fn set(env: &mut Vec<(String, String)>, name: String, value: String) {
    match env.iter_mut().find(|(k, _)| *k == name) {
        Some(slot) => slot.1 = value,
        None => env.push((name, value)),
    }
}

/// The environment of `container`, or upstream's message for what is missing.
pub fn resolve(
    container: &Container,
    ctx: &Context<'_>,
    sources: &Sources,
) -> Result<Vec<(String, String)>, String> {
    let namespace = ctx.pod.metadata.namespace.as_deref().unwrap_or("");
    let mut env: Vec<(String, String)> = Vec::new();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match sources.config_maps.get(&r.name).cloned().flatten() {
                Some(data) => {
                    for (k, v) in data {
                        set(&mut env, format!("{prefix}{k}"), v);
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(format!("configmap {:?} not found", r.name)),
            }
        }
        if let Some(r) = &from.secret_ref {
            match sources.secrets.get(&r.name).cloned().flatten() {
                Some(data) => {
                    for (k, v) in data {
                        set(
                            &mut env,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v).into(),
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(format!("secret {:?} not found", r.name)),
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(value), _) => expand(value, &[ctx.services, &env].concat()),
            (None, Some(from)) => {
                if let Some(r) = &from.config_map_key_ref {
                    match sources.config_maps.get(&r.name).cloned().flatten() {
                        Some(data) => match data.get(&r.key) {
                            Some(v) => v.clone(),
                            None if r.optional == Some(true) => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in ConfigMap {namespace}/{}",
                                    r.key, r.name
                                ))
                            }
                        },
                        None if r.optional == Some(true) => continue,
                        None => return Err(format!("configmap {:?} not found", r.name)),
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    match sources.secrets.get(&r.name).cloned().flatten() {
                        Some(data) => match data.get(&r.key) {
                            Some(v) => String::from_utf8_lossy(v).into_owned(),
                            None if r.optional == Some(true) => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in Secret {namespace}/{}",
                                    r.key, r.name
                                ))
                            }
                        },
                        None if r.optional == Some(true) => continue,
                        None => return Err(format!("secret {:?} not found", r.name)),
                    }
                } else if let Some(field) = &from.field_ref {
                    field_value(&field.field_path, ctx)
                } else if let Some(resource) = &from.resource_field_ref {
                    resource_value(container, &resource.resource, resource.divisor.as_ref())?
                } else {
                    String::new()
                }
            }
            (None, None) => String::new(),
        };
        set(&mut env, var.name.clone(), value);
    }
    // The Services' variables come last and give way to the container's own.
    for (name, value) in ctx.services {
        if !env.iter().any(|(k, _)| k == name) {
            env.push((name.clone(), value.clone()));
        }
    }
    Ok(env)
}

/// A downward-API field of the Pod.
pub(super) fn field_value(path: &str, ctx: &Context<'_>) -> String {
    let pod = ctx.pod;
    let meta = &pod.metadata;
    let from_map = |map: &Option<BTreeMap<String, String>>, key: &str| {
        map.as_ref()
            .and_then(|m| m.get(key))
            .cloned()
            .unwrap_or_default()
    };
    let key_of = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|k| k.strip_suffix("']"))
            .map(str::to_string)
    };
    match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => ctx.node.to_string(),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" | "status.podIPs" => ctx.pod_ip.to_string(),
        "status.hostIP" | "status.hostIPs" => ctx.host_ip.to_string(),
        _ => {
            if let Some(key) = key_of("metadata.labels['") {
                from_map(&meta.labels, &key)
            } else if let Some(key) = key_of("metadata.annotations['") {
                from_map(&meta.annotations, &key)
            } else {
                String::new()
            }
        }
    }
}

/// A container resource (`limits.cpu`, `requests.memory`, …) in units of the divisor, rounded
/// up as upstream's `ExtractContainerResourceValue`. Without a limit upstream reports the node's
/// allocatable; rkube reports 0 for an unset request and the machine's capacity for an unset
/// limit is not known here, so an unset limit reads as its request.
pub(super) fn resource_value(
    container: &Container,
    resource: &str,
    divisor: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
) -> Result<String, String> {
    let resources = container.resources.clone().unwrap_or_default();
    let (section, name) = resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource : {resource:?}"))?;
    let pick = |map: &Option<
        BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >| {
        map.as_ref()
            .and_then(|m| m.get(name))
            .and_then(|q| Quantity::parse(&q.0).ok())
    };
    let quantity = match section {
        "limits" => pick(&resources.limits).or_else(|| pick(&resources.requests)),
        "requests" => pick(&resources.requests),
        _ => return Err(format!("unsupported container resource : {resource:?}")),
    };
    let divisor = divisor
        .and_then(|d| Quantity::parse(&d.0).ok())
        .filter(|d| d.milli_value() > 0);
    let Some(quantity) = quantity else {
        return Ok("0".to_string());
    };
    let value = match name {
        "cpu" => {
            let divisor_milli = divisor.map_or(1000, |d| d.milli_value());
            let milli = quantity.milli_value();
            (milli + divisor_milli - 1) / divisor_milli
        }
        _ => {
            let divisor = divisor.map_or(1, |d| d.value().max(1));
            let v = quantity.value();
            (v + divisor - 1) / divisor
        }
    };
    Ok(value.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(v: serde_json::Value) -> Container {
        serde_json::from_value(v).unwrap()
    }

    fn pod() -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u1",
            "labels": {"app": "web"}}, "spec": {"containers": [], "serviceAccountName": "sa"}}),
        )
        .unwrap()
    }

    fn sources() -> Sources {
        let mut s = Sources::default();
        s.config_maps.insert(
            "cm".into(),
            Some([("color".into(), "blue".into()), ("size".into(), "L".into())].into()),
        );
        s.config_maps.insert("gone".into(), None);
        s.secrets.insert(
            "sec".into(),
            Some([("pw".into(), b"hunter2".to_vec())].into()),
        );
        s
    }

    #[test]
    fn variables_come_from_every_source_in_upstreams_order() {
        let p = pod();
        let ctx = Context {
            pod: &p,
            node: "n1",
            host_ip: "10.0.0.1",
            pod_ip: "10.1.0.2",
            services: &service_env("172.18.0.1", 6443),
        };
        let c = container(json!({"name": "c",
            "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}, {"secretRef": {"name": "sec"}}],
            "env": [
                {"name": "CM_color", "value": "red"},
                {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "color"}}},
                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "pw"}}},
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
                {"name": "MISSING_OK", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "x", "optional": true}}},
                {"name": "BOTH", "value": "$(COLOR)-$(PW)-$$(NODE)"},
                {"name": "API", "value": "https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)"},
                {"name": "KUBERNETES_SERVICE_PORT_HTTPS", "value": "mine"}],
            "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}}));
        let env = resolve(&c, &ctx, &sources()).unwrap();
        let got: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            got,
            [
                "CM_color=red",
                "CM_size=L",
                "pw=hunter2",
                "COLOR=blue",
                "PW=hunter2",
                "NODE=n1",
                "APP=web",
                "SA=sa",
                "IP=10.1.0.2",
                "MEM=64",
                "CPU=1",
                "BOTH=blue-hunter2-$(NODE)",
                "API=https://172.18.0.1:6443",
                "KUBERNETES_SERVICE_PORT_HTTPS=mine",
                "KUBERNETES_SERVICE_HOST=172.18.0.1",
                "KUBERNETES_SERVICE_PORT=6443",
                "KUBERNETES_PORT=tcp://172.18.0.1:6443",
                "KUBERNETES_PORT_6443_TCP=tcp://172.18.0.1:6443",
                "KUBERNETES_PORT_6443_TCP_PROTO=tcp",
                "KUBERNETES_PORT_6443_TCP_PORT=6443",
                "KUBERNETES_PORT_6443_TCP_ADDR=172.18.0.1",
            ]
        );
        assert_eq!(
            references(&c),
            (
                vec!["cm".to_string(), "gone".to_string()],
                vec!["sec".to_string()]
            )
        );
    }

    #[test]
    fn missing_sources_fail_with_upstreams_messages() {
        let p = pod();
        let ctx = Context {
            pod: &p,
            node: "n1",
            host_ip: "",
            pod_ip: "",
            services: &[],
        };
        let cases = [
            (
                json!({"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k"}}}]}),
                "configmap \"gone\" not found",
            ),
            (
                json!({"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nope"}}}]}),
                "couldn't find key nope in ConfigMap ns/cm",
            ),
            (
                json!({"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]}),
                "secret \"absent\" not found",
            ),
            (
                json!({"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "k"}}}]}),
                "couldn't find key k in Secret ns/sec",
            ),
            (
                json!({"envFrom": [{"configMapRef": {"name": "gone"}}]}),
                "configmap \"gone\" not found",
            ),
        ];
        for (spec, message) in cases {
            let mut spec = spec;
            spec["name"] = json!("c");
            assert_eq!(
                resolve(&container(spec), &ctx, &sources()).unwrap_err(),
                message
            );
        }
        let optional = container(
            json!({"name": "c", "envFrom": [{"configMapRef": {"name": "gone", "optional": true}}]}),
        );
        assert!(resolve(&optional, &ctx, &sources()).unwrap().is_empty());
    }

    #[test]
    fn variable_references_expand_like_the_kubelet() {
        let env = vec![("A".to_string(), "1".to_string())];
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &env), "1-$(B)-$(A)-$");
        assert_eq!(expand("$(A", &env), "$(A");
        assert_eq!(expand("x$(A)y", &env), "x1y");
        assert_eq!(expand("cost $5", &env), "cost $5");
    }
}
