//! The Node kind (cluster-scoped), with the columns `kubectl get nodes` prints.

use k8s_openapi::api::core::v1::Node;
use serde_json::{json, Value};

use super::decode::{decode_as, Decoded};
use super::{
    age, column, field_error, FieldError, ResourceInfo, TypedStrategy, AGE_DESCRIPTION,
    NAME_DESCRIPTION,
};
use crate::meta::patch::{generic_patch_schema, PatchSchema};
use crate::meta::{object, ApiError};

static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    kind: "Node",
    plural: "nodes",
    singular: "node",
    short_names: &["no"],
    categories: &[],
    namespaced: false,
    subresources: &["status", "proxy"],
};

pub fn info() -> &'static ResourceInfo {
    &INFO
}

/// The taint the node lifecycle controller keeps in step with `spec.unschedulable`.
pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

pub struct NodeStrategy;

/// Adds or removes the unschedulable taint to match `spec.unschedulable`. Upstream the node
/// lifecycle controller does this shortly after `kubectl cordon`; rkube has no controller
/// manager, so the API does it in the same write (deviation: no delay in between).
fn sync_unschedulable_taint(node: &mut Value) {
    let cordoned = node
        .pointer("/spec/unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(spec) = node
        .as_object_mut()
        .map(|o| o.entry("spec").or_insert_with(|| json!({})))
    else {
        return;
    };
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    let taints = spec.entry("taints").or_insert_with(|| json!([]));
    let Some(list) = taints.as_array_mut() else {
        return;
    };
    let has = list.iter().any(|t| t["key"] == UNSCHEDULABLE_TAINT);
    if cordoned && !has {
        list.push(json!({"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule", "timeAdded": object::now_rfc3339()}));
    } else if !cordoned && has {
        list.retain(|t| t["key"] != UNSCHEDULABLE_TAINT);
    }
    if list.is_empty() {
        spec.remove("taints");
    }
}

/// Upstream's `fieldIsDeprecatedWarnings`, sent on create and on every update of a Node.
fn deprecated_field_warnings(node: &Value) -> Vec<String> {
    let mut warnings = Vec::new();
    if node
        .pointer("/spec/configSource")
        .is_some_and(|v| !v.is_null())
    {
        warnings.push("spec.configSource: the feature is removed".to_string());
    }
    let external_id = node
        .pointer("/spec/externalID")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !external_id.is_empty() {
        warnings.push(
            "spec.externalID: this field is deprecated, and is unused by Kubernetes".to_string(),
        );
    }
    warnings
}

impl TypedStrategy for NodeStrategy {
    type Object = Value;

    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }

    fn decode(&self, body: Value) -> Result<Decoded, ApiError> {
        decode_as::<Node>(&INFO, body)
    }

    fn admit_create(&self, obj: &mut Value) -> Result<(), ApiError> {
        sync_unschedulable_taint(obj);
        Ok(())
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        super::validate_meta(obj, false, field_error::name_is_dns_subdomain)
    }

    fn warnings_on_create(&self, obj: &Value) -> Vec<String> {
        deprecated_field_warnings(obj)
    }

    fn warnings_on_update(&self, new: &Value, old: &Value) -> Vec<String> {
        let _ = old;
        deprecated_field_warnings(new)
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        match old.get("status") {
            Some(status) => new["status"] = status.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        sync_unschedulable_taint(new);
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        super::keep_all_but_status(new, old);
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["metadata.name", "spec.unschedulable"]
    }

    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "spec.unschedulable" => Some(
                obj.pointer("/spec/unschedulable")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                    .to_string(),
            ),
            _ => super::default_field_value(&INFO, obj, field),
        }
    }

    fn patch_schema(&self) -> PatchSchema {
        node_patch_schema()
    }

    fn column_definitions(&self) -> Value {
        json!([
            column("Name", "string", "name", NAME_DESCRIPTION, 0),
            column("Status", "string", "", "The status of the node", 0),
            column("Roles", "string", "", "The roles of the node", 0),
            column("Age", "string", "", AGE_DESCRIPTION, 0),
            column("Version", "string", "", "Kubelet Version reported by the node.", 0),
            column("Internal-IP", "string", "", "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).", 1),
            column("External-IP", "string", "", "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).", 1),
            column("OS-Image", "string", "", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", 1),
            column("Kernel-Version", "string", "", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1),
            column("Container-Runtime", "string", "", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).", 1),
        ])
    }

    /// Upstream `printNode`.
    fn row(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let text = |p: &str| {
            obj.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        json_row(obj, now, &text)
    }
}

fn json_row(obj: &Value, now: jiff::Timestamp, text: &dyn Fn(&str) -> String) -> Vec<Value> {
    let ready = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .map(|c| match c["status"].as_str() {
            Some("True") => "Ready",
            // False and Unknown alike: kubectl says Unknown only of a Node with no Ready
            // condition at all.
            _ => "NotReady",
        })
        .unwrap_or("Unknown");
    let mut status = ready.to_string();
    if obj.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = object::labels(obj)
        .iter()
        .filter_map(|(k, v)| {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                Some(role.to_string())
            } else if k == "kubernetes.io/role" {
                Some(v.clone())
            } else {
                None
            }
        })
        .filter(|r| !r.is_empty())
        .collect();
    roles.sort();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |kind: &str| {
        obj.pointer("/status/addresses")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find(|a| a["type"] == kind))
            .and_then(|a| a["address"].as_str())
            .unwrap_or("<none>")
            .to_string()
    };
    let or_unknown = |s: String| {
        if s.is_empty() {
            "<unknown>".to_string()
        } else {
            s
        }
    };
    vec![
        json!(object::name(obj)),
        json!(status),
        json!(roles),
        json!(age(obj, now)),
        json!(text("/status/nodeInfo/kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(or_unknown(text("/status/nodeInfo/osImage"))),
        json!(or_unknown(text("/status/nodeInfo/kernelVersion"))),
        json!(or_unknown(text("/status/nodeInfo/containerRuntimeVersion"))),
    ]
}

/// Patch metadata for Nodes: ObjectMeta, `spec.podCIDRs` (merge), `status.conditions` and
/// `status.addresses` (both merged by `type`). `spec.taints` has no tag and is atomic, and
/// server-side apply sees `status.addresses` as one value too (`listType=atomic`). The empty
/// Node is the one upstream's Go type encodes.
pub fn node_patch_schema() -> PatchSchema {
    generic_patch_schema()
        .merge_primitive_list("spec.podCIDRs")
        .merge_list("status.conditions", "type")
        .merge_list("status.addresses", "type")
        .atomic("status.addresses")
        .zero_object(json!({
            "metadata": {"creationTimestamp": null},
            "spec": {},
            "status": {
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
                "nodeInfo": {
                    "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "",
                    "osImage": "", "containerRuntimeVersion": "", "kubeletVersion": "",
                    "kubeProxyVersion": "", "operatingSystem": "", "architecture": ""
                }
            }
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::patch::tests::smp;

    #[test]
    fn cordoning_adds_the_unschedulable_taint_and_uncordoning_removes_it() {
        let mut node = json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}});
        sync_unschedulable_taint(&mut node);
        assert_eq!(node["spec"]["taints"][0]["key"], UNSCHEDULABLE_TAINT);
        node["spec"]["unschedulable"] = json!(false);
        sync_unschedulable_taint(&mut node);
        assert!(node["spec"].get("taints").is_none());
    }

    #[test]
    fn rows_show_status_roles_and_version_like_upstream() {
        let node = json!({"metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                "nodeInfo": {"kubeletVersion": "v1.32.0"},
                "addresses": [{"type": "InternalIP", "address": "10.0.0.2"}]}});
        let row = NodeStrategy.row(&node, jiff::Timestamp::now());
        assert_eq!(row[1], "Ready,SchedulingDisabled");
        assert_eq!(row[2], "control-plane");
        assert_eq!(row[4], "v1.32.0");
        assert_eq!(row[5], "10.0.0.2");
        assert_eq!(row[6], "<none>");
    }

    #[test]
    fn the_node_schema_carries_core_v1_patch_tags() {
        use crate::meta::patch::ListStrategy;
        let key = |k: &str| ListStrategy::MergeByKey(k.to_string());
        let node = node_patch_schema();
        assert_eq!(
            node.list_strategy("spec.podCIDRs"),
            ListStrategy::MergePrimitives
        );
        assert_eq!(node.list_strategy("spec.taints"), ListStrategy::Atomic);
        assert_eq!(node.list_strategy("status.addresses"), key("type"));
        assert_eq!(node.list_strategy("status.conditions"), key("type"));
    }

    #[test]
    fn strategic_merge_merges_node_pod_cidrs_and_addresses() {
        let node = json!({
            "metadata": {"name": "n1"},
            "spec": {"podCIDRs": ["10.0.0.0/24"], "taints": [{"key": "a", "effect": "NoSchedule"}]},
            "status": {
                "addresses": [{"type": "InternalIP", "address": "192.0.2.1"}],
                "conditions": [{"type": "Ready", "status": "False"}, {"type": "DiskPressure", "status": "False"}]
            }
        });
        let out = smp(
            &node_patch_schema(),
            node,
            json!({
                "spec": {"podCIDRs": ["fd00::/64"], "taints": [{"key": "b", "effect": "NoExecute"}]},
                "status": {
                    "addresses": [{"type": "Hostname", "address": "n1"}],
                    "conditions": [{"type": "Ready", "status": "True"}]
                }
            }),
        );
        // As upstream orders a merged list: what the patch adds goes ahead of what only the
        // server had, unless both were on the server.
        assert_eq!(out["spec"]["podCIDRs"], json!(["fd00::/64", "10.0.0.0/24"]));
        assert_eq!(
            out["spec"]["taints"],
            json!([{"key": "b", "effect": "NoExecute"}])
        );
        assert_eq!(
            out["status"]["addresses"],
            json!([
                {"type": "Hostname", "address": "n1"},
                {"type": "InternalIP", "address": "192.0.2.1"}
            ])
        );
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "False"}])
        );
    }
}
