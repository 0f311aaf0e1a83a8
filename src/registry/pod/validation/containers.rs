//! Container validation: names, images, ports, env, mounts, devices, resources, probes and
//! lifecycle handlers (upstream `validateContainers` and its helpers).

use crate::meta::quantity::Quantity as MetaQuantity;
use crate::registry::field_error::{
    is_config_map_key, is_dns1123_label, is_http_header_name, is_qualified_name,
    is_relaxed_env_var_name, is_valid_port_name, is_valid_port_num, name_is_dns_subdomain,
    FieldError, Literal,
};
use crate::registry::pod::validation::volumes::{local_descending_path, no_backsteps};
use crate::registry::pod::validation::{qualified_name_errors, PodContext};
use crate::registry::pod::{child, index, is_empty, key, quantity_milli, s, slice};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvFromSource, EnvVar, HTTPGetAction, LifecycleHandler,
    ObjectFieldSelector, Probe, ResourceFieldSelector, ResourceRequirements, VolumeDevice,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::{BTreeMap, BTreeSet};

/// `validateContainers` for `spec.containers`.
pub(crate) fn validate_containers(
    containers: &[Container],
    ctx: &PodContext<'_>,
) -> Vec<FieldError> {
    let path = "spec.containers";
    let mut errs = Vec::new();
    if containers.is_empty() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    let mut names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = index(path, i);
        errs.extend(validate_container_common(c, ctx, &p));
        if !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(child(&p, "name"), &c.name));
        }
        if let Some(l) = &c.lifecycle {
            errs.extend(validate_lifecycle(
                l,
                ctx.grace_period,
                &child(&p, "lifecycle"),
            ));
        }
        errs.extend(validate_probes(c, ctx.grace_period, &p));
        if c.restart_policy.is_some() {
            errs.push(FieldError::forbidden(
                child(&p, "restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    errs.extend(host_port_conflicts(containers.iter().enumerate(), path));
    errs
}

/// `validateInitContainers`: names must also be unique against regular containers; only
/// restartable ("sidecar") init containers may have probes or lifecycle hooks.
pub(crate) fn validate_init_containers(
    inits: &[Container],
    regular: &[Container],
    ctx: &PodContext<'_>,
) -> Vec<FieldError> {
    let path = "spec.initContainers";
    let mut errs = Vec::new();
    let mut names: BTreeSet<&str> = regular.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in inits.iter().enumerate() {
        let p = index(path, i);
        errs.extend(validate_container_common(c, ctx, &p));
        let mut restart_always = false;
        if let Some(rp) = &c.restart_policy {
            if rp != "Always" {
                errs.push(FieldError::not_supported(
                    child(&p, "restartPolicy"),
                    rp,
                    &["Always"],
                ));
            }
            restart_always = rp == "Always";
        }
        if names.contains(c.name.as_str()) {
            errs.push(FieldError::duplicate(child(&p, "name"), &c.name));
        } else if !c.name.is_empty() {
            names.insert(c.name.as_str());
        }
        // Init containers run one at a time, so each is checked alone; upstream indexes that
        // one-element list, hence the `[0]` in the reported path.
        errs.extend(host_port_conflicts(std::iter::once((0, c)), path));
        if restart_always {
            if let Some(l) = &c.lifecycle {
                errs.extend(validate_lifecycle(
                    l,
                    ctx.grace_period,
                    &child(&p, "lifecycle"),
                ));
            }
            errs.extend(validate_probes(c, ctx.grace_period, &p));
        } else {
            let forbidden = "may not be set for init containers without restartPolicy=Always";
            for (set, name) in [
                (c.lifecycle.is_some(), "lifecycle"),
                (c.liveness_probe.is_some(), "livenessProbe"),
                (c.readiness_probe.is_some(), "readinessProbe"),
                (c.startup_probe.is_some(), "startupProbe"),
            ] {
                if set {
                    errs.push(FieldError::forbidden(child(&p, name), forbidden));
                }
            }
        }
    }
    errs
}

/// `checkHostPortConflicts`: the same protocol/hostIP/hostPort twice.
pub(crate) fn host_port_conflicts<'a>(
    containers: impl Iterator<Item = (usize, &'a Container)>,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (ci, c) in containers {
        for (pi, port) in slice(&c.ports).iter().enumerate() {
            let hp = port.host_port.unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let k = format!("{}/{}/{hp}", s(&port.protocol), s(&port.host_ip));
            if !seen.insert(k.clone()) {
                errs.push(FieldError::duplicate(
                    format!("{path}[{ci}].ports[{pi}].hostPort"),
                    k,
                ));
            }
        }
    }
    errs
}

/// `validateContainerCommon`.
pub(crate) fn validate_container_common(
    c: &Container,
    ctx: &PodContext<'_>,
    p: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name_path = child(p, "name");
    if c.name.is_empty() {
        errs.push(FieldError::required(&name_path, ""));
    } else {
        for msg in is_dns1123_label(&c.name) {
            errs.push(FieldError::invalid(&name_path, &c.name, msg));
        }
    }
    // Only presence is checked: reference syntax is the runtime's concern.
    if is_empty(&c.image) {
        errs.push(FieldError::required(child(p, "image"), ""));
    }
    match s(&c.termination_message_policy) {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(
            child(p, "terminationMessagePolicy"),
            "",
        )),
        other => errs.push(FieldError::not_supported(
            child(p, "terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    errs.extend(validate_container_ports(
        slice(&c.ports),
        &child(p, "ports"),
    ));
    errs.extend(validate_env(slice(&c.env), &child(p, "env")));
    errs.extend(validate_env_from(slice(&c.env_from), &child(p, "envFrom")));
    errs.extend(validate_volume_mounts(c, ctx, &child(p, "volumeMounts")));
    errs.extend(validate_volume_devices(c, ctx, &child(p, "volumeDevices")));
    match s(&c.image_pull_policy) {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(FieldError::required(child(p, "imagePullPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            child(p, "imagePullPolicy"),
            other,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    if let Some(r) = &c.resources {
        errs.extend(validate_resources(r, ctx, &child(p, "resources")));
    }
    errs.extend(validate_resize_policy(c, &child(p, "resizePolicy")));
    errs
}

/// `validateContainerPorts`. Duplicate containerPort/protocol pairs are only warnings
/// (see [`pod_warnings`]).
pub(crate) fn validate_container_ports(ports: &[ContainerPort], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = index(path, i);
        let name = s(&port.name);
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(FieldError::invalid(child(&p, "name"), name, m));
                }
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(child(&p, "name"), name));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(child(&p, "containerPort"), ""));
        } else {
            for m in is_valid_port_num(i64::from(port.container_port)) {
                errs.push(FieldError::invalid(
                    child(&p, "containerPort"),
                    port.container_port,
                    m,
                ));
            }
        }
        let hp = port.host_port.unwrap_or(0);
        if hp != 0 {
            for m in is_valid_port_num(i64::from(hp)) {
                errs.push(FieldError::invalid(child(&p, "hostPort"), hp, m));
            }
        }
        match s(&port.protocol) {
            "" => errs.push(FieldError::required(child(&p, "protocol"), "")),
            "TCP" | "UDP" | "SCTP" => {}
            other => errs.push(FieldError::not_supported(
                child(&p, "protocol"),
                other,
                &["SCTP", "TCP", "UDP"],
            )),
        }
    }
    errs
}

/// `ValidateEnv` with v1.32's default relaxed names (any printable ASCII but `=`).
pub(crate) fn validate_env(vars: &[EnvVar], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, ev) in vars.iter().enumerate() {
        let p = index(path, i);
        if ev.name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else {
            for m in is_relaxed_env_var_name(&ev.name) {
                errs.push(FieldError::invalid(child(&p, "name"), &ev.name, m));
            }
        }
        errs.extend(validate_env_value_from(ev, &child(&p, "valueFrom")));
    }
    errs
}

pub(crate) fn validate_env_value_from(ev: &EnvVar, p: &str) -> Vec<FieldError> {
    const ENV_FIELDS: [&str; 9] = [
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.serviceAccountName",
        "status.hostIP",
        "status.hostIPs",
        "status.podIP",
        "status.podIPs",
    ];
    let mut errs = Vec::new();
    let Some(from) = &ev.value_from else {
        return errs;
    };
    let mut sources = 0;
    if let Some(f) = &from.field_ref {
        sources += 1;
        errs.extend(validate_field_selector(
            f,
            &ENV_FIELDS,
            &child(p, "fieldRef"),
        ));
    }
    if let Some(r) = &from.resource_field_ref {
        sources += 1;
        errs.extend(validate_resource_field_selector(
            r,
            &child(p, "resourceFieldRef"),
            false,
        ));
    }
    if let Some(c) = &from.config_map_key_ref {
        sources += 1;
        errs.extend(validate_key_selector(
            &c.name,
            &c.key,
            &child(p, "configMapKeyRef"),
        ));
    }
    if let Some(c) = &from.secret_key_ref {
        sources += 1;
        errs.extend(validate_key_selector(
            &c.name,
            &c.key,
            &child(p, "secretKeyRef"),
        ));
    }
    if sources == 0 {
        errs.push(FieldError::invalid(
            p,
            "",
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        ));
    } else if !is_empty(&ev.value) {
        errs.push(FieldError::invalid(
            p,
            "",
            "may not be specified when `value` is not empty",
        ));
    } else if sources > 1 {
        errs.push(FieldError::invalid(
            p,
            "",
            "may not have more than one field specified at a time",
        ));
    }
    errs
}

/// `validateObjectFieldSelector` including the downward-API label conversion checks.
pub(crate) fn validate_field_selector(
    f: &ObjectFieldSelector,
    allowed: &[&str],
    p: &str,
) -> Vec<FieldError> {
    let api_version = s(&f.api_version);
    if api_version.is_empty() {
        return vec![FieldError::required(child(p, "apiVersion"), "")];
    }
    if f.field_path.is_empty() {
        return vec![FieldError::required(child(p, "fieldPath"), "")];
    }
    let conversion_error = |msg: String| {
        vec![FieldError::invalid(
            child(p, "fieldPath"),
            &f.field_path,
            format!("error converting fieldPath: {msg}"),
        )]
    };
    if api_version != "v1" {
        return conversion_error(format!("unsupported pod version: {api_version}"));
    }
    let fp = f.field_path.as_str();
    if let Some((path, subscript)) = split_subscripted_path(fp) {
        return match path {
            "metadata.annotations" => qualified_name_errors(&subscript.to_lowercase(), p),
            "metadata.labels" => qualified_name_errors(subscript, p),
            _ => conversion_error(format!("field label does not support subscript: {fp}")),
        };
    }
    let internal = match fp {
        "metadata.annotations"
        | "metadata.labels"
        | "metadata.name"
        | "metadata.namespace"
        | "metadata.uid"
        | "spec.nodeName"
        | "spec.restartPolicy"
        | "spec.serviceAccountName"
        | "spec.schedulerName"
        | "status.phase"
        | "status.hostIP"
        | "status.hostIPs"
        | "status.podIP"
        | "status.podIPs" => fp,
        // Old clients still send spec.host.
        "spec.host" => "spec.nodeName",
        _ => return conversion_error(format!("field label not supported: {fp}")),
    };
    if allowed.contains(&internal) {
        Vec::new()
    } else {
        vec![FieldError::not_supported(
            child(p, "fieldPath"),
            internal,
            allowed,
        )]
    }
}

/// `fieldpath.SplitMaybeSubscriptedPath`: `metadata.labels['key']` -> (`metadata.labels`, `key`).
pub(crate) fn split_subscripted_path(fp: &str) -> Option<(&str, &str)> {
    let inner = fp.strip_suffix("']")?;
    let (path, subscript) = inner.split_once("['")?;
    if path.is_empty() {
        None
    } else {
        Some((path, subscript))
    }
}

pub(crate) fn validate_resource_field_selector(
    r: &ResourceFieldSelector,
    p: &str,
    in_volume: bool,
) -> Vec<FieldError> {
    const RESOURCES: [&str; 6] = [
        "limits.cpu",
        "limits.ephemeral-storage",
        "limits.memory",
        "requests.cpu",
        "requests.ephemeral-storage",
        "requests.memory",
    ];
    let mut errs = Vec::new();
    if in_volume && is_empty(&r.container_name) {
        errs.push(FieldError::required(child(p, "containerName"), ""));
    } else if r.resource.is_empty() {
        errs.push(FieldError::required(child(p, "resource"), ""));
    } else if !RESOURCES.contains(&r.resource.as_str())
        && !r.resource.starts_with("requests.hugepages-")
        && !r.resource.starts_with("limits.hugepages-")
    {
        errs.push(FieldError::not_supported(
            child(p, "resource"),
            &r.resource,
            &RESOURCES,
        ));
    }
    if let Some(d) = &r.divisor {
        errs.extend(validate_divisor(&r.resource, &d.0, p));
    }
    errs
}

/// `validateContainerResourceDivisor`, comparing values numerically instead of by canonical text.
pub(crate) fn validate_divisor(resource: &str, divisor: &str, p: &str) -> Vec<FieldError> {
    let Ok(d) = MetaQuantity::parse(divisor) else {
        return Vec::new();
    };
    if d.is_zero() {
        return Vec::new();
    }
    const BYTE_DIVISORS: [&str; 13] = [
        "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
    ];
    let one_of = |allowed: &[&str]| {
        allowed
            .iter()
            .any(|a| MetaQuantity::parse(a).ok() == Some(d.clone()))
    };
    let bytes_msg = |what: &str| {
        format!("only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the {what} resource")
    };
    let msg = match resource {
        "limits.cpu" | "requests.cpu" if !one_of(&["1m", "1"]) => {
            Some("only divisor's values 1m and 1 are supported with the cpu resource".to_string())
        }
        "limits.memory" | "requests.memory" if !one_of(&BYTE_DIVISORS) => Some(bytes_msg("memory")),
        "limits.ephemeral-storage" | "requests.ephemeral-storage" if !one_of(&BYTE_DIVISORS) => {
            Some(bytes_msg("local ephemeral storage"))
        }
        r if (r.starts_with("requests.hugepages-") || r.starts_with("limits.hugepages-"))
            && !one_of(&BYTE_DIVISORS) =>
        {
            Some(bytes_msg("hugepages"))
        }
        _ => None,
    };
    msg.map(|m| vec![FieldError::invalid(child(p, "divisor"), resource, m)])
        .unwrap_or_default()
}

/// `validateConfigMapKeySelector` / `validateSecretKeySelector`.
pub(crate) fn validate_key_selector(name: &str, key: &str, p: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for m in name_is_dns_subdomain(name, false) {
        errs.push(FieldError::invalid(child(p, "name"), name, m));
    }
    if key.is_empty() {
        errs.push(FieldError::required(child(p, "key"), ""));
    } else {
        for m in is_config_map_key(key) {
            errs.push(FieldError::invalid(child(p, "key"), key, m));
        }
    }
    errs
}

/// `ValidateEnvFrom`.
pub(crate) fn validate_env_from(sources: &[EnvFromSource], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, ev) in sources.iter().enumerate() {
        let p = index(path, i);
        let prefix = s(&ev.prefix);
        if !prefix.is_empty() {
            for m in is_relaxed_env_var_name(prefix) {
                errs.push(FieldError::invalid(child(&p, "prefix"), prefix, m));
            }
        }
        let mut n = 0;
        for (set, name, field) in [
            (
                ev.config_map_ref.is_some(),
                ev.config_map_ref.as_ref().map(|r| r.name.as_str()),
                "configMapRef",
            ),
            (
                ev.secret_ref.is_some(),
                ev.secret_ref.as_ref().map(|r| r.name.as_str()),
                "secretRef",
            ),
        ] {
            if !set {
                continue;
            }
            n += 1;
            let name = name.unwrap_or("");
            let np = format!("{p}.{field}.name");
            if name.is_empty() {
                errs.push(FieldError::required(np, ""));
            } else {
                // Upstream checks these names as prefixes (trailing '-' allowed).
                for m in name_is_dns_subdomain(name, true) {
                    errs.push(FieldError::invalid(&np, name, m));
                }
            }
        }
        if n == 0 {
            errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

/// `ValidateVolumeMounts`. Upstream reports subPath/subPathExpr/mountPropagation problems at the
/// list path (without the index); we keep that quirk so messages match.
pub(crate) fn validate_volume_mounts(
    c: &Container,
    ctx: &PodContext<'_>,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let devices: BTreeMap<&str, &str> = slice(&c.volume_devices)
        .iter()
        .map(|d| (d.name.as_str(), d.device_path.as_str()))
        .collect();
    let mut mount_points = BTreeSet::new();
    for (i, m) in slice(&c.volume_mounts).iter().enumerate() {
        let p = index(path, i);
        if m.name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        }
        if !ctx.volumes.contains_key(m.name.as_str()) {
            errs.push(FieldError::not_found(child(&p, "name"), &m.name));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(child(&p, "mountPath"), ""));
        }
        if !mount_points.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                child(&p, "mountPath"),
                &m.mount_path,
                "must be unique",
            ));
        }
        if devices.contains_key(m.name.as_str()) {
            errs.push(FieldError::invalid(
                child(&p, "name"),
                &m.name,
                "must not already exist in volumeDevices",
            ));
        }
        if devices.values().any(|d| *d == m.mount_path) {
            errs.push(FieldError::invalid(
                child(&p, "mountPath"),
                &m.mount_path,
                "must not already exist as a path in volumeDevices",
            ));
        }
        if ctx
            .volumes
            .get(m.name.as_str())
            .is_some_and(|v| v.image.is_some())
        {
            if !is_empty(&m.sub_path) {
                errs.push(FieldError::invalid(
                    child(&p, "subPath"),
                    s(&m.sub_path),
                    "not allowed in image volume sources",
                ));
            }
            if !is_empty(&m.sub_path_expr) {
                errs.push(FieldError::invalid(
                    child(&p, "subPathExpr"),
                    s(&m.sub_path_expr),
                    "not allowed in image volume sources",
                ));
            }
        }
        if !is_empty(&m.sub_path) {
            errs.extend(local_descending_path(
                s(&m.sub_path),
                &child(path, "subPath"),
            ));
        }
        if !is_empty(&m.sub_path_expr) {
            if !is_empty(&m.sub_path) {
                errs.push(FieldError::invalid(
                    child(&p, "subPathExpr"),
                    s(&m.sub_path_expr),
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(local_descending_path(
                s(&m.sub_path_expr),
                &child(path, "subPathExpr"),
            ));
        }
        errs.extend(validate_mount_propagation(
            m,
            c,
            &child(path, "mountPropagation"),
        ));
        errs.extend(validate_recursive_read_only(
            m,
            &child(path, "recursiveReadOnly"),
        ));
    }
    errs
}

pub(crate) fn validate_mount_propagation(
    m: &VolumeMount,
    c: &Container,
    p: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(mode) = &m.mount_propagation else {
        return errs;
    };
    if !matches!(mode.as_str(), "Bidirectional" | "HostToContainer" | "None") {
        errs.push(FieldError::not_supported(
            p,
            mode,
            &["Bidirectional", "HostToContainer", "None"],
        ));
    }
    let privileged = c
        .security_context
        .as_ref()
        .and_then(|sc| sc.privileged)
        .unwrap_or(false);
    if mode == "Bidirectional" && !privileged {
        errs.push(FieldError::forbidden(
            p,
            "Bidirectional mount propagation is available only to privileged containers",
        ));
    }
    errs
}

pub(crate) fn validate_recursive_read_only(m: &VolumeMount, p: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(rro) = &m.recursive_read_only else {
        return errs;
    };
    match rro.as_str() {
        "Disabled" => {}
        "Enabled" | "IfPossible" => {
            if !m.read_only.unwrap_or(false) {
                errs.push(FieldError::forbidden(
                    p,
                    "may only be specified when readOnly is true",
                ));
            }
            if m.mount_propagation
                .as_deref()
                .is_some_and(|mp| mp != "None")
            {
                errs.push(FieldError::forbidden(
                    p,
                    "may only be specified when mountPropagation is None or not specified",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            p,
            other,
            &["Disabled", "Enabled", "IfPossible"],
        )),
    }
    errs
}

/// `ValidateVolumeDevices`: block devices must come from PVC-backed volumes.
pub(crate) fn validate_volume_devices(
    c: &Container,
    ctx: &PodContext<'_>,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mounts: BTreeMap<&str, &str> = slice(&c.volume_mounts)
        .iter()
        .map(|m| (m.name.as_str(), m.mount_path.as_str()))
        .collect();
    let mut names = BTreeSet::new();
    let mut paths = BTreeSet::new();
    for (i, d) in slice(&c.volume_devices).iter().enumerate() {
        let d: &VolumeDevice = d;
        let p = index(path, i);
        let matched = ctx.volumes.get(d.name.as_str());
        if d.name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        }
        if names.contains(d.name.as_str()) {
            errs.push(FieldError::invalid(
                child(&p, "name"),
                &d.name,
                "must be unique",
            ));
        }
        match matched {
            Some(v) if v.persistent_volume_claim.is_none() && v.ephemeral.is_none() => {
                errs.push(FieldError::invalid(
                    child(&p, "name"),
                    &d.name,
                    "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
                ));
            }
            Some(_) => {}
            None => errs.push(FieldError::not_found(child(&p, "name"), &d.name)),
        }
        if d.device_path.is_empty() {
            errs.push(FieldError::required(child(&p, "devicePath"), ""));
        }
        if paths.contains(d.device_path.as_str()) {
            errs.push(FieldError::invalid(
                child(&p, "devicePath"),
                &d.device_path,
                "must be unique",
            ));
        }
        if !d.device_path.is_empty() && !no_backsteps(&d.device_path, "").is_empty() {
            errs.push(FieldError::invalid(
                child(&p, "devicePath"),
                &d.device_path,
                "can not contain backsteps ('..')",
            ));
        } else {
            paths.insert(d.device_path.as_str());
        }
        if mounts.contains_key(d.name.as_str()) {
            errs.push(FieldError::invalid(
                child(&p, "name"),
                &d.name,
                "must not already exist in volumeMounts",
            ));
        }
        if mounts.values().any(|m| *m == d.device_path) {
            errs.push(FieldError::invalid(
                child(&p, "devicePath"),
                &d.device_path,
                "must not already exist as a path in volumeMounts",
            ));
        }
        if !d.name.is_empty() {
            names.insert(d.name.as_str());
        }
    }
    errs
}

// ---- resources ------------------------------------------------------------------------------

pub(crate) const QUANTITY_SYNTAX_ERROR: &str =
    "must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// Names that count as "standard" for `validateResourceName` (quota and compute names).
pub(crate) fn is_standard_resource_name(name: &str) -> bool {
    const STANDARD: [&str; 20] = [
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "storage",
        "requests.storage",
        "services.nodeports",
        "services.loadbalancers",
    ];
    STANDARD.contains(&name)
        || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
}

/// `IsNativeResource`: unprefixed, or in the kubernetes.io namespace.
pub(crate) fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// `IsExtendedResourceName`: a domain-prefixed, non-native name usable in quota as `requests.<name>`.
pub(crate) fn is_extended_resource_name(name: &str) -> bool {
    !is_native_resource(name)
        && !name.starts_with("requests.")
        && is_qualified_name(&format!("requests.{name}")).is_empty()
}

/// `IsOvercommitAllowed`: extended resources and hugepages need requests == limits.
pub(crate) fn is_overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !name.starts_with("hugepages-")
}

pub(crate) fn is_integer_resource(name: &str) -> bool {
    matches!(
        name,
        "pods"
            | "services"
            | "replicationcontrollers"
            | "resourcequotas"
            | "secrets"
            | "configmaps"
            | "persistentvolumeclaims"
            | "services.nodeports"
            | "services.loadbalancers"
    ) || is_extended_resource_name(name)
}

/// `validateContainerResourceName`. Resource names print unquoted because the Go type has a
/// `String()` method.
pub(crate) fn validate_container_resource_name(name: &str, p: &str) -> Vec<FieldError> {
    let errs = qualified_name_errors(name, p);
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/') {
        if !is_standard_resource_name(name) {
            return vec![FieldError::invalid(
                p,
                Literal(name.to_string()),
                "must be a standard resource type or fully qualified",
            )];
        }
        let container_standard = matches!(name, "cpu" | "memory" | "ephemeral-storage")
            || name.starts_with("hugepages-");
        if !container_standard {
            return vec![FieldError::invalid(
                p,
                Literal(name.to_string()),
                "must be a standard resource for containers",
            )];
        }
    } else if !is_native_resource(name) && !is_extended_resource_name(name) {
        return vec![FieldError::invalid(
            p,
            Literal(name.to_string()),
            "doesn't follow extended resource name standard",
        )];
    }
    Vec::new()
}

/// `ValidateResourceQuantityValue`; `None` (with an error) when the text is not a quantity.
pub(crate) fn validate_quantity_value(
    name: &str,
    q: &Quantity,
    p: &str,
    errs: &mut Vec<FieldError>,
) -> Option<i128> {
    let Some(milli) = quantity_milli(&q.0) else {
        // Upstream never gets here: the JSON decoder rejects the request with a 400.
        errs.push(FieldError::invalid(p, &q.0, QUANTITY_SYNTAX_ERROR));
        return None;
    };
    if milli < 0 {
        errs.push(FieldError::invalid(
            p,
            &q.0,
            "must be greater than or equal to 0",
        ));
    }
    if is_integer_resource(name) && milli % 1000 != 0 {
        errs.push(FieldError::invalid(
            p,
            Literal(q.0.clone()),
            "must be an integer",
        ));
    }
    Some(milli)
}

/// `validateResourceRequirements` for containers (and pod overhead). Quantities are echoed as
/// written rather than in upstream's canonical form (the shared quantity type will fix that).
pub(crate) fn validate_resources(
    r: &ResourceRequirements,
    ctx: &PodContext<'_>,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let lim_path = child(path, "limits");
    let req_path = child(path, "requests");
    let empty = BTreeMap::new();
    let limits = r.limits.as_ref().unwrap_or(&empty);
    let requests = r.requests.as_ref().unwrap_or(&empty);
    let (mut lim_cpu_mem, mut req_cpu_mem, mut hugepages) = (false, false, false);
    let mut limit_values = BTreeMap::new();
    for (name, q) in limits {
        let p = key(&lim_path, name);
        errs.extend(validate_container_resource_name(name, &p));
        if let Some(v) = validate_quantity_value(name, q, &p, &mut errs) {
            limit_values.insert(name.as_str(), v);
        }
        hugepages |= name.starts_with("hugepages-");
        lim_cpu_mem |= name == "cpu" || name == "memory";
    }
    for (name, q) in requests {
        let p = key(&req_path, name);
        errs.extend(validate_container_resource_name(name, &p));
        let value = validate_quantity_value(name, q, &p, &mut errs);
        if let Some(limit_q) = limits.get(name) {
            if let (Some(v), Some(l)) = (value, limit_values.get(name.as_str())) {
                if v != *l && !is_overcommit_allowed(name) {
                    errs.push(FieldError::invalid(
                        &req_path,
                        &q.0,
                        format!("must be equal to {name} limit of {}", limit_q.0),
                    ));
                } else if v > *l {
                    errs.push(FieldError::invalid(
                        &req_path,
                        &q.0,
                        format!(
                            "must be less than or equal to {name} limit of {}",
                            limit_q.0
                        ),
                    ));
                }
            }
        } else if !is_overcommit_allowed(name) {
            errs.push(FieldError::required(
                &lim_path,
                "Limit must be set for non overcommitable resources",
            ));
        }
        hugepages |= name.starts_with("hugepages-");
        req_cpu_mem |= name == "cpu" || name == "memory";
    }
    if !lim_cpu_mem && !req_cpu_mem && hugepages {
        errs.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
    let mut claims = BTreeSet::new();
    for (i, claim) in slice(&r.claims).iter().enumerate() {
        let p = index(&child(path, "claims"), i);
        if claim.name.is_empty() {
            errs.push(FieldError::required(p, ""));
            continue;
        }
        if !claims.insert(claim.name.as_str()) {
            errs.push(FieldError::duplicate(&p, &claim.name));
        }
        if !ctx.claim_names.contains(claim.name.as_str()) {
            let known: Vec<&str> = ctx.claim_names.iter().copied().collect();
            let detail = if known.is_empty() {
                "must be one of the names in pod.spec.resourceClaims which is empty".to_string()
            } else {
                format!(
                    "must be one of the names in pod.spec.resourceClaims: {}",
                    known.join(", ")
                )
            };
            errs.push(FieldError::not_found(&p, &claim.name).with_detail(detail));
        }
    }
    errs
}

/// `validateResizePolicy`.
pub(crate) fn validate_resize_policy(c: &Container, p: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, rp) in slice(&c.resize_policy).iter().enumerate() {
        if !seen.insert(rp.resource_name.as_str()) {
            errs.push(FieldError::duplicate(
                index(p, i),
                Literal(rp.resource_name.clone()),
            ));
        }
        match rp.resource_name.as_str() {
            "cpu" | "memory" => {}
            "" => errs.push(FieldError::required(p, "")),
            other => errs.push(FieldError::not_supported(
                p,
                Literal(other.to_string()),
                &["cpu", "memory"],
            )),
        }
        match rp.restart_policy.as_str() {
            "NotRequired" | "RestartContainer" => {}
            "" => errs.push(FieldError::required(p, "")),
            other => errs.push(FieldError::not_supported(
                p,
                other,
                &["NotRequired", "RestartContainer"],
            )),
        }
    }
    errs
}

// ---- probes and handlers --------------------------------------------------------------------

pub(crate) fn validate_probes(c: &Container, grace: Option<i64>, p: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(probe) = &c.liveness_probe {
        let pp = child(p, "livenessProbe");
        errs.extend(validate_probe(probe, grace, &pp));
        if probe.success_threshold.unwrap_or(0) != 1 {
            errs.push(FieldError::invalid(
                child(&pp, "successThreshold"),
                probe.success_threshold.unwrap_or(0),
                "must be 1",
            ));
        }
    }
    if let Some(probe) = &c.readiness_probe {
        let pp = child(p, "readinessProbe");
        errs.extend(validate_probe(probe, grace, &pp));
        if let Some(t) = probe.termination_grace_period_seconds {
            errs.push(FieldError::invalid(
                child(&pp, "terminationGracePeriodSeconds"),
                t,
                "must not be set for readinessProbes",
            ));
        }
    }
    if let Some(probe) = &c.startup_probe {
        let pp = child(p, "startupProbe");
        errs.extend(validate_probe(probe, grace, &pp));
        if probe.success_threshold.unwrap_or(0) != 1 {
            errs.push(FieldError::invalid(
                child(&pp, "successThreshold"),
                probe.success_threshold.unwrap_or(0),
                "must be 1",
            ));
        }
    }
    errs
}

/// `validateProbe`: exactly one handler, non-negative timings, positive probe-level grace.
pub(crate) fn validate_probe(probe: &Probe, grace: Option<i64>, p: &str) -> Vec<FieldError> {
    let handlers = Handlers {
        exec: probe.exec.as_ref().map(|e| slice(&e.command).is_empty()),
        http_get: probe.http_get.as_ref(),
        tcp_port: probe.tcp_socket.as_ref().map(|t| &t.port),
        grpc_port: probe.grpc.as_ref().map(|g| g.port),
        sleep_seconds: None,
    };
    let mut errs = validate_handler(&handlers, grace, p);
    for (name, v) in [
        ("initialDelaySeconds", probe.initial_delay_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ] {
        let v = i64::from(v.unwrap_or(0));
        if v < 0 {
            errs.push(FieldError::invalid(
                child(p, name),
                v,
                "must be greater than or equal to 0",
            ));
        }
    }
    if let Some(t) = probe.termination_grace_period_seconds {
        if t <= 0 {
            errs.push(FieldError::invalid(
                child(p, "terminationGracePeriodSeconds"),
                t,
                "must be greater than 0",
            ));
        }
    }
    errs
}

pub(crate) fn validate_lifecycle(
    l: &k8s_openapi::api::core::v1::Lifecycle,
    grace: Option<i64>,
    p: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (h, name) in [(&l.post_start, "postStart"), (&l.pre_stop, "preStop")] {
        if let Some(h) = h {
            errs.extend(validate_handler(&handlers_of(h), grace, &child(p, name)));
        }
    }
    errs
}

/// The union of probe and lifecycle handler kinds, as upstream's `commonHandler`.
pub(crate) struct Handlers<'a> {
    /// `Some(command_is_empty)` when an exec action is present.
    exec: Option<bool>,
    http_get: Option<&'a HTTPGetAction>,
    tcp_port: Option<&'a IntOrString>,
    grpc_port: Option<i32>,
    sleep_seconds: Option<i64>,
}

pub(crate) fn handlers_of(h: &LifecycleHandler) -> Handlers<'_> {
    Handlers {
        exec: h.exec.as_ref().map(|e| slice(&e.command).is_empty()),
        http_get: h.http_get.as_ref(),
        tcp_port: h.tcp_socket.as_ref().map(|t| &t.port),
        grpc_port: None,
        sleep_seconds: h.sleep.as_ref().map(|s| s.seconds),
    }
}

/// `validateHandler`: exactly one handler type.
pub(crate) fn validate_handler(h: &Handlers<'_>, grace: Option<i64>, p: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut n = 0;
    let mut take = |name: &str, errs: &mut Vec<FieldError>| {
        if n > 0 {
            errs.push(FieldError::forbidden(
                child(p, name),
                "may not specify more than 1 handler type",
            ));
            false
        } else {
            n += 1;
            true
        }
    };
    if let Some(command_empty) = h.exec {
        if take("exec", &mut errs) && command_empty {
            errs.push(FieldError::required(format!("{p}.exec.command"), ""));
        }
    }
    if let Some(g) = h.http_get {
        if take("httpGet", &mut errs) {
            let gp = child(p, "httpGet");
            if is_empty(&g.path) {
                errs.push(FieldError::required(child(&gp, "path"), ""));
            }
            errs.extend(port_num_or_name(&g.port, &child(&gp, "port")));
            let scheme = s(&g.scheme);
            if scheme != "HTTP" && scheme != "HTTPS" {
                errs.push(FieldError::not_supported(
                    child(&gp, "scheme"),
                    scheme,
                    &["HTTP", "HTTPS"],
                ));
            }
            for header in slice(&g.http_headers) {
                for m in is_http_header_name(&header.name) {
                    errs.push(FieldError::invalid(
                        child(&gp, "httpHeaders"),
                        &header.name,
                        m,
                    ));
                }
            }
        }
    }
    if let Some(port) = h.tcp_port {
        if take("tcpSocket", &mut errs) {
            errs.extend(port_num_or_name(port, &format!("{p}.tcpSocket.port")));
        }
    }
    if let Some(port) = h.grpc_port {
        if take("grpc", &mut errs) {
            errs.extend(port_num_or_name(
                &IntOrString::Int(port),
                &format!("{p}.grpc.port"),
            ));
        }
    }
    if let Some(secs) = h.sleep_seconds {
        if take("sleep", &mut errs) {
            if let Some(g) = grace {
                if secs <= 0 || secs > g {
                    errs.push(FieldError::invalid(
                        child(p, "sleep"),
                        secs,
                        format!("must be greater than 0 and less than terminationGracePeriodSeconds ({g}). Enable AllowPodLifecycleSleepActionZeroValue feature gate for zero sleep."),
                    ));
                }
            }
        }
    }
    if n == 0 {
        errs.push(FieldError::required(p, "must specify a handler type"));
    }
    errs
}

/// `ValidatePortNumOrName`.
pub(crate) fn port_num_or_name(port: &IntOrString, p: &str) -> Vec<FieldError> {
    match port {
        IntOrString::Int(n) => is_valid_port_num(i64::from(*n))
            .into_iter()
            .map(|m| FieldError::invalid(p, *n, m))
            .collect(),
        IntOrString::String(name) => is_valid_port_name(name)
            .into_iter()
            .map(|m| FieldError::invalid(p, name, m))
            .collect(),
    }
}
