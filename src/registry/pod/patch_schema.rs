//! The Pod's strategic-merge-patch metadata: the `patchStrategy`/`patchMergeKey` tags of core/v1
//! `Pod`, `PodSpec` and `PodStatus` in Kubernetes 1.32, and the tests of strategic merge patches
//! on Pods.

use crate::meta::patch::{generic_patch_schema, PatchSchema};

/// Container tags, shared by `containers`, `initContainers` and `ephemeralContainers`
/// (`Container` and `EphemeralContainerCommon` in core/v1 carry the same ones).
fn container_schema() -> PatchSchema {
    PatchSchema::new()
        .merge_list("ports", "containerPort")
        .list_map_keys("ports", &["containerPort", "protocol"])
        .key_default("ports.protocol", serde_json::json!("TCP"))
        .merge_list("env", "name")
        .merge_list("volumeMounts", "mountPath")
        .merge_list("volumeDevices", "devicePath")
}

/// Patch metadata for a PodSpec at the root, for grafting under `spec.template.spec` and the
/// like. Tags as in core/v1 `PodSpec` of Kubernetes 1.32; `tolerations`, `readinessGates` and
/// the lists inside affinity and security contexts have none and are atomic. Server-side apply
/// keys container ports by `containerPort` and `protocol` and spread constraints by
/// `topologyKey` and `whenUnsatisfiable` (their `listMapKey` tags), and sees `nodeSelector`
/// as one value (`mapType=atomic`).
pub fn pod_spec_patch_schema() -> PatchSchema {
    let container = container_schema();
    PatchSchema::new()
        .merge_list("volumes", "name")
        .retain_keys("volumes")
        .merge_list("initContainers", "name")
        .graft("initContainers", &container)
        .merge_list("containers", "name")
        .graft("containers", &container)
        .merge_list("ephemeralContainers", "name")
        .graft("ephemeralContainers", &container)
        .merge_list("imagePullSecrets", "name")
        .merge_list("hostAliases", "ip")
        .merge_list("topologySpreadConstraints", "topologyKey")
        .list_map_keys(
            "topologySpreadConstraints",
            &["topologyKey", "whenUnsatisfiable"],
        )
        .atomic("nodeSelector")
        .merge_list("resourceClaims", "name")
        .retain_keys("resourceClaims")
        .merge_list("schedulingGates", "name")
}

/// Patch metadata for Pods: ObjectMeta, PodSpec and PodStatus tags, and the empty Pod as
/// upstream's Go type encodes it. Also fits a PodTemplateSpec when grafted at `spec.template`
/// (the `status` part then goes unused).
pub fn pod_patch_schema() -> PatchSchema {
    generic_patch_schema()
        .zero_object(serde_json::json!({
            "metadata": {"creationTimestamp": null},
            "spec": {"containers": null},
            "status": {}
        }))
        .graft("spec", &pod_spec_patch_schema())
        .merge_list("status.conditions", "type")
        .merge_list("status.podIPs", "ip")
        .merge_list("status.hostIPs", "ip")
        .merge_list("status.resourceClaimStatuses", "name")
        .retain_keys("status.resourceClaimStatuses")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::patch::tests::*;
    use crate::meta::patch::{apply_patch, go_value, ListStrategy, PatchError, PatchType};
    use serde_json::Value;

    #[test]
    fn the_pod_schema_carries_core_v1_patch_tags() {
        let pod = pod_patch_schema();
        let key = |k: &str| ListStrategy::MergeByKey(k.to_string());
        let cases = [
            ("metadata.finalizers", ListStrategy::MergePrimitives),
            ("metadata.ownerReferences", key("uid")),
            ("spec.volumes", key("name")),
            ("spec.containers", key("name")),
            ("spec.initContainers.env", key("name")),
            ("spec.ephemeralContainers.volumeMounts", key("mountPath")),
            ("spec.containers.volumeDevices", key("devicePath")),
            ("spec.containers.ports", key("containerPort")),
            ("spec.containers.args", ListStrategy::Atomic),
            ("spec.containers.envFrom", ListStrategy::Atomic),
            ("spec.imagePullSecrets", key("name")),
            ("spec.hostAliases", key("ip")),
            ("spec.topologySpreadConstraints", key("topologyKey")),
            ("spec.resourceClaims", key("name")),
            ("spec.schedulingGates", key("name")),
            ("spec.tolerations", ListStrategy::Atomic),
            ("status.conditions", key("type")),
            ("status.podIPs", key("ip")),
            ("status.hostIPs", key("ip")),
            ("status.containerStatuses", ListStrategy::Atomic),
        ];
        for (path, want) in cases {
            assert_eq!(pod.list_strategy(path), want, "{path}");
        }
        assert!(pod.retains_keys("spec.volumes"));
        assert!(pod.retains_keys("spec.resourceClaims"));
        assert!(!pod.retains_keys("spec.containers"));

        let workload = generic_patch_schema().graft("spec.template", &pod_patch_schema());
        assert_eq!(
            workload.list_strategy("spec.template.spec.containers.env"),
            key("name")
        );
    }

    #[test]
    fn strategic_merge_replaces_container_image_by_name() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}),
        );
        let app = &out["spec"]["containers"][0];
        assert_eq!(app["image"], "nginx:1.27");
        assert_eq!(
            app["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}])
        );
        assert_eq!(container_names(&out), ["app", "sidecar"]);
        assert_eq!(out["spec"]["containers"][1]["image"], "envoy:1.0");
    }

    #[test]
    fn strategic_merge_appends_new_containers_in_patch_order() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [
                {"name": "z-extra", "image": "busybox"},
                {"name": "a-extra", "image": "alpine"}
            ]}}),
        );
        // Upstream puts patch elements the server did not have ahead of server-only ones.
        assert_eq!(
            container_names(&out),
            ["z-extra", "a-extra", "app", "sidecar"]
        );
    }

    #[test]
    fn strategic_merge_keeps_server_order_for_patched_and_unpatched_containers() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [{"name": "sidecar", "image": "envoy:2.0"}]}}),
        );
        assert_eq!(container_names(&out), ["app", "sidecar"]);
        assert_eq!(out["spec"]["containers"][1]["image"], "envoy:2.0");
    }

    #[test]
    fn strategic_merge_patch_delete_removes_container() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}),
        );
        assert_eq!(container_names(&out), ["app"]);
        assert!(!out.to_string().contains("$patch"));
    }

    #[test]
    fn strategic_merge_set_element_order_reorders_containers() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]}}),
        );
        assert_eq!(container_names(&out), ["sidecar", "app"]);
        assert_eq!(out["spec"]["containers"][1]["image"], "nginx:1.25");
        assert!(!out.to_string().contains("$setElementOrder"));
    }

    #[test]
    fn strategic_merge_merges_env_by_name() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [{"name": "app", "env": [
                {"name": "DEBUG", "value": "1"},
                {"name": "NEW", "value": "x"}
            ]}]}}),
        );
        assert_eq!(
            out["spec"]["containers"][0]["env"],
            json!([
                {"name": "MODE", "value": "prod"},
                {"name": "DEBUG", "value": "1"},
                {"name": "NEW", "value": "x"}
            ])
        );
    }

    #[test]
    fn strategic_merge_patch_delete_removes_env_var() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [{"name": "app", "env": [
                {"name": "MODE", "$patch": "delete"}
            ]}]}}),
        );
        assert_eq!(
            out["spec"]["containers"][0]["env"],
            json!([{"name": "DEBUG", "value": "0"}])
        );
    }

    #[test]
    fn strategic_merge_merges_container_ports_by_container_port() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [{"name": "app", "ports": [
                {"containerPort": 80, "name": "http"},
                {"containerPort": 443}
            ]}]}}),
        );
        assert_eq!(
            out["spec"]["containers"][0]["ports"],
            json!([
                {"containerPort": 80, "protocol": "TCP", "name": "http"},
                {"containerPort": 443}
            ])
        );
    }

    #[test]
    fn strategic_merge_null_removes_label() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"metadata": {"labels": {"tier": null, "track": "stable"}}}),
        );
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app": "web", "track": "stable"})
        );
    }

    #[test]
    fn strategic_merge_null_for_absent_field_is_ignored() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"metadata": {"annotations": null, "labels": {"nope": null}}}),
        );
        assert_eq!(out, pod());
    }

    #[test]
    fn strategic_merge_retain_keys_switches_volume_source() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {
                "$setElementOrder/volumes": [{"name": "data"}],
                "volumes": [{
                    "$retainKeys": ["hostPath", "name"],
                    "emptyDir": null,
                    "hostPath": {"path": "/srv/data"},
                    "name": "data"
                }]
            }}),
        );
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "data", "hostPath": {"path": "/srv/data"}}])
        );
        assert!(!out.to_string().contains("$retainKeys"));
    }

    #[test]
    fn strategic_merge_retain_keys_rejects_fields_it_does_not_list() {
        let err = smp_err(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"volumes": [{
                "$retainKeys": ["name"],
                "hostPath": {"path": "/srv/data"},
                "name": "data"
            }]}}),
        );
        assert_eq!(
            err,
            PatchError::InvalidDirective("invalid patch format of retainKeys".into())
        );
        assert_eq!(err.status_code(), 400);
    }

    #[test]
    fn strategic_merge_patch_replace_on_map_replaces_it_wholesale() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"metadata": {"labels": {"$patch": "replace", "only": "this", "gone": null}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"only": "this"}));
        assert_eq!(out["metadata"]["name"], "web");
    }

    #[test]
    fn strategic_merge_explicit_patch_merge_is_refused_as_upstream_does() {
        let err = smp_err(
            &pod_patch_schema(),
            pod(),
            json!({"metadata": {"labels": {"$patch": "merge", "extra": "1"}}}),
        );
        assert_eq!(
            err,
            PatchError::Strategic(
                "unknown patch type: merge in map: map[$patch:merge extra:1]".into()
            )
        );
        let err = smp_err(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [{"name": "app", "$patch": "merge", "image": "nginx:2"}]}}),
        );
        assert_eq!(
            err,
            PatchError::Strategic("merging lists cannot yet be specified in the patch".into())
        );
        assert_eq!(err.status_code(), 400);
    }

    #[test]
    fn failures_are_client_errors_with_go_formatted_values() {
        let err = smp_err(&pod_patch_schema(), pod(), json!({"$patch": "bogus"}));
        assert_eq!(
            err.to_string(),
            "unknown patch type: bogus in map: map[$patch:bogus]"
        );
        let err = smp_err(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [{"$patch": "delete"}]}}),
        );
        assert_eq!(
            err.to_string(),
            "map: map[$patch:delete] does not contain declared merge key: name"
        );
        for err in [
            PatchError::Strategic(String::new()),
            PatchError::InvalidDirective(String::new()),
            PatchError::MalformedBody(String::new()),
            PatchError::TooDeep { limit: 1 },
        ] {
            assert_eq!(err.status_code(), 400, "{err:?}");
        }
        assert_eq!(
            go_value(&json!({"b": [1, "x", null, true], "a": {"c": 1.5}})),
            "map[a:map[c:1.5] b:[1 x <nil> true]]"
        );
    }

    #[test]
    fn strategic_merge_patch_delete_on_map_empties_it() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"metadata": {"labels": {"$patch": "delete"}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({}));
    }

    #[test]
    fn strategic_merge_patch_replace_element_replaces_whole_list() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [
                {"name": "only", "image": "busybox"},
                {"$patch": "replace"}
            ]}}),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "only", "image": "busybox"}])
        );
    }

    #[test]
    fn strategic_merge_replaces_tolerations_atomically() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"tolerations": [{"key": "c", "operator": "Equal", "value": "v"}]}}),
        );
        assert_eq!(
            out["spec"]["tolerations"],
            json!([{"key": "c", "operator": "Equal", "value": "v"}])
        );
    }

    #[test]
    fn strategic_merge_directives_never_leak_into_new_values() {
        let out = smp(
            &pod_patch_schema(),
            json!({"metadata": {"name": "p"}}),
            json!({
                "metadata": {"labels": {"$patch": "replace", "a": "b"}},
                "spec": {
                    "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                    "containers": [
                        {"name": "b", "$patch": "delete"},
                        {"name": "b", "image": "img", "$retainKeys": ["name", "image"]},
                        {"name": "a", "env": [{"name": "X", "$patch": "delete"}, {"name": "Y", "value": null}]}
                    ],
                    "tolerations": [{"$patch": "replace"}, {"key": "k", "value": null}],
                    "affinity": {"$patch": "delete"}
                }
            }),
        );
        assert_eq!(
            out,
            json!({
                "metadata": {"name": "p", "labels": {"a": "b"}},
                "spec": {
                    "containers": [
                        {"name": "b", "image": "img"},
                        {"name": "a", "env": [{"name": "Y"}]}
                    ],
                    "tolerations": [{"key": "k"}]
                }
            })
        );
    }

    #[test]
    fn strategic_merge_merges_pod_status_conditions_by_type() {
        let original = json!({"status": {
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}],
            "podIPs": [{"ip": "10.0.0.5"}]
        }});
        let out = smp(
            &pod_patch_schema(),
            original,
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}], "podIPs": [{"ip": "fd00::5"}]}}),
        );
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}])
        );
        assert_eq!(
            out["status"]["podIPs"],
            json!([{"ip": "fd00::5"}, {"ip": "10.0.0.5"}])
        );
    }

    #[test]
    fn strategic_merge_kubectl_apply_three_way_patch_changes_label_and_image() {
        let original = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "db",
                "namespace": "default",
                "resourceVersion": "41",
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration":
                        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"annotations\":{},\"labels\":{\"app\":\"db\",\"tier\":\"cache\"},\"name\":\"db\",\"namespace\":\"default\"},\"spec\":{\"containers\":[{\"image\":\"mongo:3.2\",\"name\":\"db\"}]}}\n"
                },
                "labels": {"app": "db", "tier": "cache"}
            },
            "spec": {
                "containers": [{
                    "name": "db",
                    "image": "mongo:3.2",
                    "imagePullPolicy": "IfNotPresent",
                    "terminationMessagePath": "/dev/termination-log",
                    "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]
                }],
                "nodeName": "node-1",
                "restartPolicy": "Always",
                "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
            },
            "status": {"phase": "Running"}
        });
        let last_applied = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"annotations\":{},\"labels\":{\"app\":\"db\",\"tier\":\"backend\"},\"name\":\"db\",\"namespace\":\"default\"},\"spec\":{\"containers\":[{\"image\":\"mongo:3.4\",\"name\":\"db\"}]}}\n";
        // The body `kubectl apply` sends, byte for byte as Go marshals it (keys sorted).
        let body = format!(
            "{{\"metadata\":{{\"annotations\":{{\"kubectl.kubernetes.io/last-applied-configuration\":{}}},\"labels\":{{\"tier\":\"backend\"}}}},\"spec\":{{\"$setElementOrder/containers\":[{{\"name\":\"db\"}}],\"containers\":[{{\"image\":\"mongo:3.4\",\"name\":\"db\"}}]}}}}",
            serde_json::to_string(last_applied).expect("a string always serializes")
        );
        let out = apply_patch(
            &original,
            body.as_bytes(),
            PatchType::StrategicMerge,
            &pod_patch_schema(),
        )
        .expect("kubectl's patch applies");

        let mut want = original.clone();
        want["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
            json!(last_applied);
        want["metadata"]["labels"]["tier"] = json!("backend");
        want["spec"]["containers"][0]["image"] = json!("mongo:3.4");
        assert_eq!(out, want);
        // Field order of the stored object is kept.
        let keys: Vec<&String> = out["spec"]["containers"][0]
            .as_object()
            .map(|c| c.keys().collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            [
                "name",
                "image",
                "imagePullPolicy",
                "terminationMessagePath",
                "volumeMounts"
            ]
        );
    }

    #[test]
    fn strategic_merge_rejects_bad_patches() {
        let schema = pod_patch_schema();
        type Check = fn(&PatchError) -> bool;
        let cases: Vec<(&str, Value, Check)> = vec![
            (
                "element without its merge key",
                json!({"spec": {"containers": [{"image": "x"}]}}),
                |e| matches!(e, PatchError::Strategic(m) if m.contains("does not contain declared merge key: name")),
            ),
            (
                "unknown $patch on a map",
                json!({"metadata": {"labels": {"$patch": "explode"}}}),
                |e| matches!(e, PatchError::Strategic(m) if m.starts_with("unknown patch type: explode")),
            ),
            (
                "unknown $patch in a list",
                json!({"spec": {"containers": [{"name": "app", "$patch": "explode"}]}}),
                |e| matches!(e, PatchError::Strategic(m) if m.starts_with("unknown patch type: explode")),
            ),
            (
                "$retainKeys that is not a list",
                json!({"spec": {"$retainKeys": "containers"}}),
                |e| matches!(e, PatchError::InvalidDirective(_)),
            ),
            (
                "$setElementOrder without a field",
                json!({"spec": {"$setElementOrder": []}}),
                |e| matches!(e, PatchError::InvalidDirective(m) if m == "invalid patch format of setElementOrder list"),
            ),
            (
                "$deleteFromPrimitiveList with a wrong prefix",
                json!({"metadata": {"$deleteFromPrimitiveListX/finalizers": ["a"]}}),
                |e| matches!(e, PatchError::InvalidDirective(m) if m == "invalid patch format of primitive list"),
            ),
            (
                "mixed element types in a merge list",
                json!({"metadata": {"finalizers": [1]}}),
                |e| matches!(e, PatchError::Strategic(m) if m.starts_with("list element types are not identical")),
            ),
        ];
        for (name, patch, check) in cases {
            let err = smp_err(&schema, pod(), patch);
            assert!(check(&err), "{name}: got {err:?}");
        }
    }

    #[test]
    fn strategic_merge_patch_that_is_not_an_object_is_an_error() {
        for body in ["[]", "\"x\"", "3", "null"] {
            let err = apply_patch(
                &pod(),
                body.as_bytes(),
                PatchType::StrategicMerge,
                &pod_patch_schema(),
            )
            .expect_err("only objects are strategic merge patches");
            assert!(
                matches!(err, PatchError::MalformedBody(_)),
                "{body}: {err:?}"
            );
            assert_eq!(err.status_code(), 400);
        }
    }
}
