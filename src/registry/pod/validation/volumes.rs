//! Pod volume validation (upstream `ValidateVolumes` and the per-source validators).

use k8s_openapi::api::core::v1::{DownwardAPIVolumeFile, KeyToPath, Volume};

use crate::registry::field_error::{go_quote, is_dns1123_label, name_is_dns_subdomain, FieldError};
use crate::registry::pod::strategy::volume_sources;
use crate::registry::pod::validation::containers::{
    validate_field_selector, validate_resource_field_selector,
};
use crate::registry::pod::{child, index, is_empty, quantity_milli, s, slice};
use std::collections::{BTreeMap, BTreeSet};

/// `ValidateVolumes`: returns the usable volumes by name (only error-free ones, as upstream) and
/// the errors.
pub(crate) fn validate_volumes<'a>(
    volumes: &'a [Volume],
    pod_name: &str,
) -> (BTreeMap<&'a str, &'a Volume>, Vec<FieldError>) {
    let mut errs = Vec::new();
    let mut usable: BTreeMap<&str, &Volume> = BTreeMap::new();
    let created_pvcs: BTreeSet<String> = if pod_name.is_empty() {
        BTreeSet::new()
    } else {
        volumes
            .iter()
            .filter(|v| v.ephemeral.is_some())
            .map(|v| format!("{pod_name}-{}", v.name))
            .collect()
    };
    for (i, v) in volumes.iter().enumerate() {
        let p = index("spec.volumes", i);
        let name_path = child(&p, "name");
        let mut el = validate_volume_source(v, &p, pod_name);
        if v.name.is_empty() {
            el.push(FieldError::required(&name_path, ""));
        } else {
            for msg in is_dns1123_label(&v.name) {
                el.push(FieldError::invalid(&name_path, &v.name, msg));
            }
        }
        if usable.contains_key(v.name.as_str()) {
            el.push(FieldError::duplicate(&name_path, &v.name));
        }
        if el.is_empty() {
            usable.insert(v.name.as_str(), v);
        } else {
            errs.extend(el);
        }
        if let Some(pvc) = &v.persistent_volume_claim {
            if created_pvcs.contains(&pvc.claim_name) {
                errs.push(FieldError::invalid(
                    format!("{p}.persistentVolumeClaim.claimName"),
                    &pvc.claim_name,
                    "must not reference a PVC that gets created for an ephemeral volume",
                ));
            }
        }
    }
    (usable, errs)
}

pub(crate) fn file_mode_errors(mode: Option<i32>, path: &str) -> Vec<FieldError> {
    match mode {
        Some(m) if !(0..=0o777).contains(&m) => {
            vec![FieldError::invalid(
                path,
                m,
                "must be a number between 0 and 0777 (octal), both inclusive",
            )]
        }
        _ => Vec::new(),
    }
}

/// Exactly one source per volume, plus the per-source checks for the sources rkube can run.
/// Other (cloud/legacy) sources are only counted.
pub(crate) fn validate_volume_source(v: &Volume, p: &str, pod_name: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = 0;
    for (name, present) in volume_sources(v) {
        if !present {
            continue;
        }
        if seen > 0 {
            errs.push(FieldError::forbidden(
                child(p, name),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        seen += 1;
        errs.extend(validate_one_source(v, name, p, pod_name));
    }
    if seen == 0 {
        errs.push(FieldError::required(p, "must specify a volume type"));
    }
    errs
}

pub(crate) fn validate_one_source(
    v: &Volume,
    which: &str,
    p: &str,
    pod_name: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match which {
        "emptyDir" => {
            let limit = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref());
            if limit
                .and_then(|q| quantity_milli(&q.0))
                .is_some_and(|m| m < 0)
            {
                errs.push(FieldError::forbidden(
                    format!("{p}.emptyDir.sizeLimit"),
                    "SizeLimit field must be a valid resource quantity",
                ));
            }
        }
        "hostPath" => {
            if let Some(h) = &v.host_path {
                let hp = child(p, "hostPath");
                if h.path.is_empty() {
                    errs.push(FieldError::required(child(&hp, "path"), ""));
                    return errs;
                }
                errs.extend(no_backsteps(&h.path, &child(&hp, "path")));
                if let Some(t) = &h.type_ {
                    const TYPES: [&str; 8] = [
                        "",
                        "BlockDevice",
                        "CharDevice",
                        "Directory",
                        "DirectoryOrCreate",
                        "File",
                        "FileOrCreate",
                        "Socket",
                    ];
                    if !TYPES.contains(&t.as_str()) {
                        errs.push(FieldError::not_supported(child(&hp, "type"), t, &TYPES));
                    }
                }
            }
        }
        "gitRepo" => {
            if let Some(g) = &v.git_repo {
                if g.repository.is_empty() {
                    errs.push(FieldError::required(format!("{p}.gitRepo.repository"), ""));
                }
                errs.extend(local_descending_path(
                    s(&g.directory),
                    &format!("{p}.gitRepo.directory"),
                ));
            }
        }
        "secret" => {
            if let Some(x) = &v.secret {
                let sp = child(p, "secret");
                if is_empty(&x.secret_name) {
                    errs.push(FieldError::required(child(&sp, "secretName"), ""));
                }
                errs.extend(file_mode_errors(x.default_mode, &child(&sp, "defaultMode")));
                for (i, kp) in slice(&x.items).iter().enumerate() {
                    errs.extend(validate_key_to_path(kp, &format!("{sp}.items[{i}]")));
                }
            }
        }
        "configMap" => {
            if let Some(x) = &v.config_map {
                let cp = child(p, "configMap");
                if x.name.is_empty() {
                    errs.push(FieldError::required(child(&cp, "name"), ""));
                }
                errs.extend(file_mode_errors(x.default_mode, &child(&cp, "defaultMode")));
                for (i, kp) in slice(&x.items).iter().enumerate() {
                    errs.extend(validate_key_to_path(kp, &format!("{cp}.items[{i}]")));
                }
            }
        }
        "persistentVolumeClaim"
            if v.persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name.is_empty()) =>
        {
            errs.push(FieldError::required(
                format!("{p}.persistentVolumeClaim.claimName"),
                "",
            ));
        }
        "nfs" => {
            if let Some(n) = &v.nfs {
                if n.server.is_empty() {
                    errs.push(FieldError::required(format!("{p}.nfs.server"), ""));
                }
                if n.path.is_empty() {
                    errs.push(FieldError::required(format!("{p}.nfs.path"), ""));
                }
                if !n.path.starts_with('/') {
                    errs.push(FieldError::invalid(
                        format!("{p}.nfs.path"),
                        &n.path,
                        "must be an absolute path",
                    ));
                }
            }
        }
        "downwarAPI" => {
            if let Some(d) = &v.downward_api {
                let dp = child(p, "downwardAPI");
                errs.extend(file_mode_errors(d.default_mode, &child(&dp, "defaultMode")));
                // Upstream reports item problems at the source path, not at items[i].
                for item in slice(&d.items) {
                    errs.extend(validate_downward_file(item, &dp));
                }
            }
        }
        "projected" => {
            if let Some(x) = &v.projected {
                errs.extend(validate_projected(x, &child(p, "projected")));
            }
        }
        "ephemeral" => {
            if let Some(e) = &v.ephemeral {
                if e.volume_claim_template.is_none() {
                    errs.push(FieldError::required(
                        format!("{p}.ephemeral.volumeClaimTemplate"),
                        "",
                    ));
                } else if !pod_name.is_empty() && !v.name.is_empty() {
                    let pvc = format!("{pod_name}-{}", v.name);
                    for msg in name_is_dns_subdomain(&pvc, false) {
                        errs.push(FieldError::invalid(
                            child(p, "name"),
                            &v.name,
                            format!("PVC name {}: {msg}", go_quote(&pvc)),
                        ));
                    }
                }
            }
        }
        "image" if v.image.as_ref().is_some_and(|i| is_empty(&i.reference)) => {
            errs.push(FieldError::required(format!("{p}.image.reference"), ""));
        }
        _ => {}
    }
    errs
}

pub(crate) fn validate_key_to_path(kp: &KeyToPath, p: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if kp.key.is_empty() {
        errs.push(FieldError::required(child(p, "key"), ""));
    }
    if kp.path.is_empty() {
        errs.push(FieldError::required(child(p, "path"), ""));
    }
    errs.extend(local_non_reserved_path(&kp.path, &child(p, "path")));
    errs.extend(file_mode_errors(kp.mode, &child(p, "mode")));
    errs
}

pub(crate) fn validate_downward_file(f: &DownwardAPIVolumeFile, p: &str) -> Vec<FieldError> {
    const VOLUME_FIELDS: [&str; 5] = [
        "metadata.annotations",
        "metadata.labels",
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
    ];
    let mut errs = Vec::new();
    if f.path.is_empty() {
        errs.push(FieldError::required(child(p, "path"), ""));
    }
    errs.extend(local_non_reserved_path(&f.path, &child(p, "path")));
    if let Some(fr) = &f.field_ref {
        errs.extend(validate_field_selector(
            fr,
            &VOLUME_FIELDS,
            &child(p, "fieldRef"),
        ));
        if f.resource_field_ref.is_some() {
            errs.push(FieldError::invalid(
                p,
                "resource",
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            ));
        }
    } else if let Some(rf) = &f.resource_field_ref {
        errs.extend(validate_resource_field_selector(
            rf,
            &child(p, "resourceFieldRef"),
            true,
        ));
    } else {
        errs.push(FieldError::required(
            p,
            "one of fieldRef and resourceFieldRef is required",
        ));
    }
    errs.extend(file_mode_errors(f.mode, &child(p, "mode")));
    errs
}

pub(crate) fn validate_projected(
    x: &k8s_openapi::api::core::v1::ProjectedVolumeSource,
    p: &str,
) -> Vec<FieldError> {
    let mut errs = file_mode_errors(x.default_mode, &child(p, "defaultMode"));
    let mut paths: BTreeSet<String> = BTreeSet::new();
    let mut note_path = |path: &str, value: &str, errs: &mut Vec<FieldError>| {
        if !path.is_empty() && !paths.insert(path.to_string()) {
            errs.push(FieldError::invalid(p, value, "conflicting duplicate paths"));
        }
    };
    for (i, src) in slice(&x.sources).iter().enumerate() {
        let sp = format!("{p}.sources[{i}]");
        let mut n = 0;
        if let Some(sec) = &src.secret {
            n += 1;
            if sec.name.is_empty() {
                errs.push(FieldError::required(format!("{sp}.secret.name"), ""));
            }
            for (j, kp) in slice(&sec.items).iter().enumerate() {
                errs.extend(validate_key_to_path(kp, &format!("{sp}.secret.items[{j}]")));
                note_path(&kp.path, &sec.name, &mut errs);
            }
        }
        if let Some(cm) = &src.config_map {
            n += 1;
            if cm.name.is_empty() {
                errs.push(FieldError::required(format!("{sp}.configMap.name"), ""));
            }
            for (j, kp) in slice(&cm.items).iter().enumerate() {
                errs.extend(validate_key_to_path(
                    kp,
                    &format!("{sp}.configMap.items[{j}]"),
                ));
                note_path(&kp.path, &cm.name, &mut errs);
            }
        }
        if let Some(d) = &src.downward_api {
            n += 1;
            for item in slice(&d.items) {
                errs.extend(validate_downward_file(item, &format!("{sp}.downwardAPI")));
                note_path(&item.path, &item.path, &mut errs);
            }
        }
        if let Some(t) = &src.service_account_token {
            n += 1;
            let exp = t.expiration_seconds.unwrap_or(0);
            let ep = format!("{sp}.serviceAccountToken.expirationSeconds");
            if exp < 600 {
                errs.push(FieldError::invalid(
                    &ep,
                    exp,
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if exp > 1 << 32 {
                errs.push(FieldError::invalid(
                    &ep,
                    exp,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
            // Upstream reports the token path at the projected source root.
            if t.path.is_empty() {
                errs.push(FieldError::required(child(p, "path"), ""));
            } else {
                errs.extend(local_non_reserved_path(&t.path, &child(p, "path")));
            }
        }
        if src.cluster_trust_bundle.is_some() {
            n += 1;
        }
        if n > 1 {
            errs.push(FieldError::forbidden(
                sp,
                "may not specify more than 1 volume type per source",
            ));
        }
    }
    errs
}

/// `validatePathNoBacksteps`: no `..` element (one error is enough).
pub(crate) fn no_backsteps(path: &str, field: &str) -> Vec<FieldError> {
    // filepath.ToSlash is the identity on Linux, so only '/' separates elements.
    if path.split('/').any(|e| e == "..") {
        vec![FieldError::invalid(field, path, "must not contain '..'")]
    } else {
        Vec::new()
    }
}

/// `validateLocalDescendingPath`: relative, and no `..` element.
pub(crate) fn local_descending_path(path: &str, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if path.starts_with('/') {
        errs.push(FieldError::invalid(field, path, "must be a relative path"));
    }
    errs.extend(no_backsteps(path, field));
    errs
}

/// `ValidateLocalNonReservedPath`: also may not start with `..` (e.g. `..data`, which the
/// atomic-writer uses internally).
pub(crate) fn local_non_reserved_path(path: &str, field: &str) -> Vec<FieldError> {
    let mut errs = local_descending_path(path, field);
    if path.starts_with("..") && !path.starts_with("../") {
        errs.push(FieldError::invalid(field, path, "must not start with '..'"));
    }
    errs
}

// ---- containers -----------------------------------------------------------------------------
