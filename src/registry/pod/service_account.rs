//! What the ServiceAccount admission plugin does to a new Pod once its account is found
//! (upstream `plugin/pkg/admission/serviceaccount`): the account's image pull secrets when the
//! Pod names none, and, unless automounting is off, the projected `kube-api-access-*` volume
//! (a bound token, the cluster CA, the namespace) mounted read-only in every container.

use k8s_openapi::api::core::v1::{
    ConfigMapProjection, DownwardAPIProjection, DownwardAPIVolumeFile, KeyToPath,
    ObjectFieldSelector, Pod, ProjectedVolumeSource, ServiceAccount, ServiceAccountTokenProjection,
    Volume, VolumeMount, VolumeProjection,
};

use super::DEFAULT_VOLUME_MODE;

/// Where every container finds its account's credentials.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The prefix of the generated volume's name.
pub const TOKEN_VOLUME_PREFIX: &str = "kube-api-access-";
/// The ConfigMap the root CA is published in, in every namespace.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
/// The expiry the admitted volume asks for: upstream's `WarnOnlyBoundTokenExpirationSeconds`,
/// an hour and seven seconds.
pub const ADMITTED_TOKEN_EXPIRATION_SECONDS: i64 = 3607;

/// Whether the account's token goes into the Pod: the Pod's choice, else the account's, else yes.
pub fn should_automount(pod: &Pod, account: &ServiceAccount) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.automount_service_account_token)
        .or(account.automount_service_account_token)
        .unwrap_or(true)
}

/// Admits `pod` as running as `account`; `generate` makes the volume's name from its prefix.
pub fn admit(pod: &mut Pod, account: &ServiceAccount, generate: impl FnOnce(&str) -> String) {
    let automount = should_automount(pod, account);
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    if spec.image_pull_secrets.as_ref().is_none_or(Vec::is_empty) {
        if let Some(secrets) = account
            .image_pull_secrets
            .as_ref()
            .filter(|s| !s.is_empty())
        {
            spec.image_pull_secrets = Some(secrets.clone());
        }
    }
    if !automount {
        return;
    }
    let existing = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name.starts_with(TOKEN_VOLUME_PREFIX))
        .map(|v| v.name.clone());
    let name = existing
        .clone()
        .unwrap_or_else(|| generate(TOKEN_VOLUME_PREFIX));
    let mount = VolumeMount {
        name: name.clone(),
        mount_path: TOKEN_MOUNT_PATH.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    };
    let mut needed = false;
    let containers = spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut());
    for container in containers {
        let mounts = container.volume_mounts.get_or_insert_with(Vec::new);
        // A container with anything at the path keeps it.
        if mounts.iter().all(|m| m.mount_path != TOKEN_MOUNT_PATH) {
            mounts.push(mount.clone());
            needed = true;
        }
    }
    if needed && existing.is_none() {
        spec.volumes.get_or_insert_with(Vec::new).push(Volume {
            name,
            projected: Some(token_volume_source()),
            ..Volume::default()
        });
    }
}

/// The projected source of the admitted volume, with its defaults written out as upstream
/// writes them.
pub fn token_volume_source() -> ProjectedVolumeSource {
    ProjectedVolumeSource {
        default_mode: Some(DEFAULT_VOLUME_MODE),
        sources: Some(vec![
            VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    path: "token".into(),
                    expiration_seconds: Some(ADMITTED_TOKEN_EXPIRATION_SECONDS),
                    audience: None,
                }),
                ..VolumeProjection::default()
            },
            VolumeProjection {
                config_map: Some(ConfigMapProjection {
                    name: ROOT_CA_CONFIG_MAP.into(),
                    items: Some(vec![KeyToPath {
                        key: "ca.crt".into(),
                        path: "ca.crt".into(),
                        mode: None,
                    }]),
                    optional: None,
                }),
                ..VolumeProjection::default()
            },
            VolumeProjection {
                downward_api: Some(DownwardAPIProjection {
                    items: Some(vec![DownwardAPIVolumeFile {
                        path: "namespace".into(),
                        field_ref: Some(ObjectFieldSelector {
                            api_version: Some("v1".into()),
                            field_path: "metadata.namespace".into(),
                        }),
                        ..DownwardAPIVolumeFile::default()
                    }]),
                }),
                ..VolumeProjection::default()
            },
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).expect("pod")
    }

    fn fixed(prefix: &str) -> String {
        format!("{prefix}abcde")
    }

    #[test]
    fn every_container_mounts_one_generated_volume() {
        let mut p = pod(json!({
            "initContainers": [{"name": "i", "image": "x"}],
            "containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "x"}],
        }));
        admit(&mut p, &ServiceAccount::default(), fixed);
        let spec = p.spec.expect("spec");
        let volumes = spec.volumes.expect("volumes");
        assert_eq!(volumes.len(), 1);
        assert_eq!(volumes[0].name, "kube-api-access-abcde");
        let value = serde_json::to_value(&volumes[0]).expect("json");
        assert_eq!(value["projected"]["defaultMode"], 420);
        assert_eq!(
            value["projected"]["sources"][0]["serviceAccountToken"],
            json!({"expirationSeconds": 3607, "path": "token"})
        );
        assert_eq!(
            value["projected"]["sources"][1]["configMap"],
            json!({"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]})
        );
        assert_eq!(
            value["projected"]["sources"][2]["downwardAPI"]["items"][0],
            json!({"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}})
        );
        let containers = spec
            .init_containers
            .into_iter()
            .flatten()
            .chain(spec.containers);
        for c in containers {
            let mounts = serde_json::to_value(c.volume_mounts).expect("json");
            assert_eq!(
                mounts,
                json!([{"name": "kube-api-access-abcde", "mountPath": TOKEN_MOUNT_PATH, "readOnly": true}])
            );
        }
    }

    #[test]
    fn the_pod_then_the_account_may_turn_automounting_off() {
        let off: ServiceAccount =
            serde_json::from_value(json!({"automountServiceAccountToken": false})).expect("sa");
        let mut p = pod(json!({"containers": [{"name": "a", "image": "x"}]}));
        admit(&mut p, &off, fixed);
        assert!(p.spec.expect("spec").volumes.is_none());
        let mut p = pod(json!({
            "automountServiceAccountToken": true,
            "containers": [{"name": "a", "image": "x"}],
        }));
        admit(&mut p, &off, fixed);
        assert_eq!(p.spec.expect("spec").volumes.map(|v| v.len()), Some(1));
    }

    #[test]
    fn a_container_that_mounts_the_path_itself_keeps_its_mount() {
        let mut p = pod(json!({
            "containers": [{"name": "a", "image": "x",
                "volumeMounts": [{"name": "mine", "mountPath": TOKEN_MOUNT_PATH}]}],
            "volumes": [{"name": "mine", "emptyDir": {}}],
        }));
        admit(&mut p, &ServiceAccount::default(), fixed);
        let spec = p.spec.expect("spec");
        assert_eq!(spec.volumes.map(|v| v.len()), Some(1));
        assert_eq!(
            spec.containers[0].volume_mounts.as_ref().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn the_account_pull_secrets_fill_only_an_empty_list() {
        let account: ServiceAccount =
            serde_json::from_value(json!({"imagePullSecrets": [{"name": "reg"}]})).expect("sa");
        let mut p = pod(json!({"containers": [{"name": "a", "image": "x"}]}));
        admit(&mut p, &account, fixed);
        assert_eq!(
            serde_json::to_value(p.spec.expect("spec").image_pull_secrets).expect("json"),
            json!([{"name": "reg"}])
        );
        let mut p = pod(json!({
            "imagePullSecrets": [{"name": "own"}],
            "containers": [{"name": "a", "image": "x"}],
        }));
        admit(&mut p, &account, fixed);
        assert_eq!(
            serde_json::to_value(p.spec.expect("spec").image_pull_secrets).expect("json"),
            json!([{"name": "own"}])
        );
    }
}
