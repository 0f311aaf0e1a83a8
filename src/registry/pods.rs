//! The Pod kind: decoding with quantity checks, defaulting, validation, graceful deletion,
//! selectable fields, Table rows, and the `binding` subresource's rules.

use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

use super::decode::{cannot_handle, decode_as, Decoded};
use super::{pod, FieldError, ResourceInfo, Strategy};
use crate::meta::patch::PatchSchema;
use crate::meta::quantity::Quantity;
use crate::meta::{object, ApiError};

static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    kind: "Pod",
    plural: "pods",
    singular: "pod",
    short_names: &["po"],
    categories: &["all"],
    namespaced: true,
    subresources: &[
        "status",
        "binding",
        "log",
        "exec",
        "attach",
        "portforward",
        "eviction",
    ],
};

pub fn info() -> &'static ResourceInfo {
    &INFO
}

pub struct PodStrategy;

fn typed(obj: &Value) -> Option<Pod> {
    serde_json::from_value(obj.clone()).ok()
}

/// Runs `f` on the typed Pod and writes the result back; an object that does not decode
/// (impossible after `decode`) is left alone.
fn with_typed(obj: &mut Value, f: impl FnOnce(&mut Pod)) {
    if let Some(mut pod) = typed(obj) {
        f(&mut pod);
        if let Ok(value) = serde_json::to_value(&pod) {
            *obj = value;
        }
    }
}

/// Every map of quantities in a Pod: container requests and limits, and the Pod overhead.
fn quantity_maps(obj: &mut Value) -> Vec<&mut serde_json::Map<String, Value>> {
    let mut maps = Vec::new();
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return maps;
    };
    let mut overhead = None;
    let mut containers = Vec::new();
    for (key, value) in spec.iter_mut() {
        match key.as_str() {
            "overhead" => overhead = value.as_object_mut(),
            "containers" | "initContainers" | "ephemeralContainers" => {
                if let Some(list) = value.as_array_mut() {
                    containers.extend(list.iter_mut());
                }
            }
            _ => {}
        }
    }
    maps.extend(overhead);
    for container in containers {
        if let Some(resources) = container
            .get_mut("resources")
            .and_then(Value::as_object_mut)
        {
            for (key, value) in resources.iter_mut() {
                if key == "limits" || key == "requests" {
                    if let Some(map) = value.as_object_mut() {
                        maps.push(map);
                    }
                }
            }
        }
    }
    maps
}

impl Strategy for PodStrategy {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }

    fn decode(&self, body: Value) -> Result<Decoded, ApiError> {
        let mut decoded = decode_as::<Pod>(&INFO, body)?;
        // Quantities are parsed while decoding upstream, so a malformed one is a 400; the
        // stored form is the canonical one ("0.5" becomes "500m").
        for map in quantity_maps(&mut decoded.object) {
            for value in map.values_mut() {
                let text = match &*value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let quantity = Quantity::parse(text.trim()).map_err(|e| cannot_handle(&INFO, e))?;
                *value = Value::String(quantity.to_api_string());
            }
        }
        Ok(decoded)
    }

    /// Only reached outside a request (the store calls [`Strategy::admit_create`]); a refusal
    /// by admission has no client to go to here, so it is logged and the pod keeps the
    /// defaults applied before it.
    fn prepare_for_create(&self, obj: &mut Value) {
        if let Err(refusal) = self.admit_create(obj) {
            tracing::warn!(pod = %crate::meta::object::name(obj), "pod not admitted: {refusal}");
        }
    }

    fn admit_create(&self, obj: &mut Value) -> Result<(), ApiError> {
        if let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
        let mut refusal = Ok(());
        with_typed(obj, |p| refusal = pod::default_pod(p));
        refusal.map_err(|why| {
            ApiError::forbidden(INFO.group_resource(), crate::meta::object::name(obj), &why)
        })
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        match typed(obj) {
            Some(pod) => pod::validate_pod(&pod),
            None => vec![FieldError::invalid(
                "spec",
                "",
                "the object does not decode as a Pod",
            )],
        }
    }

    fn warnings_on_create(&self, obj: &Value) -> Vec<String> {
        typed(obj)
            .map(|pod| pod::pod_warnings(&pod))
            .unwrap_or_default()
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        // Writes to the Pod itself cannot change its status (that is `pods/status`).
        super::keep_stored_field(new, old, "status");
        with_typed(new, pod::default_pod_for_update);
    }

    /// As upstream's `podStatusStrategy.PrepareForUpdate`: the spec and owner references stay
    /// as they were; the rest of the metadata (labels, annotations) is the writer's, so a
    /// status write that changes labels changes them (NodeRestriction refuses that to
    /// kubelets); a status without a QoS class keeps the old one.
    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        super::keep_stored_field(new, old, "spec");
        let meta = crate::meta::object::metadata_mut(new);
        match old.pointer("/metadata/ownerReferences") {
            Some(owners) => {
                meta.insert("ownerReferences".into(), owners.clone());
            }
            None => {
                meta.remove("ownerReferences");
            }
        }
        let qos = new
            .pointer("/status/qosClass")
            .and_then(Value::as_str)
            .unwrap_or("");
        if qos.is_empty() {
            if let Some(old_qos) = old.pointer("/status/qosClass") {
                if let Some(status) = new.get_mut("status").and_then(Value::as_object_mut) {
                    status.insert("qosClass".into(), old_qos.clone());
                }
            }
        }
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        match (typed(new), typed(old)) {
            (Some(new), Some(old)) => pod::validate_pod_update(&new, &old),
            _ => vec![FieldError::invalid(
                "spec",
                "",
                "the object does not decode as a Pod",
            )],
        }
    }

    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        let text = |pointer: &str| {
            obj.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        Some(match field {
            "metadata.name" => text("/metadata/name"),
            "metadata.namespace" => text("/metadata/namespace"),
            "spec.nodeName" => text("/spec/nodeName"),
            "spec.restartPolicy" => text("/spec/restartPolicy"),
            "spec.schedulerName" => text("/spec/schedulerName"),
            "spec.serviceAccountName" => text("/spec/serviceAccountName"),
            "spec.hostNetwork" => obj
                .pointer("/spec/hostNetwork")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string(),
            "status.phase" => text("/status/phase"),
            "status.podIP" => text("/status/podIP"),
            "status.nominatedNodeName" => text("/status/nominatedNodeName"),
            _ => return None,
        })
    }

    /// Upstream `CheckGracefulDelete`: unscheduled and finished Pods go at once; others get
    /// the requested period or their `terminationGracePeriodSeconds`, negative meaning 1.
    fn delete_grace(&self, obj: &Value, requested: Option<i64>) -> Option<i64> {
        let node = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        let phase = obj
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        if node.is_empty() || phase == "Succeeded" || phase == "Failed" {
            return None;
        }
        let grace = requested.unwrap_or_else(|| {
            obj.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30)
        });
        match grace {
            0 => None,
            g if g < 0 => Some(1),
            g => Some(g),
        }
    }

    fn patch_schema(&self) -> PatchSchema {
        pod::patch_schema::pod_patch_schema()
    }

    fn column_definitions(&self) -> Value {
        pod::pod_column_definitions()
    }

    fn row(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let Some(pod) = typed(obj) else {
            return vec![json!(object::name(obj))];
        };
        let row = pod::pod_table_row(&pod, now);
        [
            row.name,
            row.ready,
            row.status,
            row.restarts,
            row.age,
            row.ip,
            row.node,
            row.nominated_node,
            row.readiness_gates,
        ]
        .into_iter()
        .map(Value::String)
        .collect()
    }
}

/// Applies a Binding to a Pod, as upstream `setPodHostAndAnnotations`: the Pod gets its node
/// and the `PodScheduled=True` condition, unless it is already bound or being deleted.
pub fn bind(pod: &Value, node: &str, annotations: Option<&Value>) -> Result<Value, ApiError> {
    let name = object::name(pod);
    let binding = crate::meta::GroupResource {
        group: "",
        resource: "pods/binding",
    };
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(ApiError::conflict(
            binding,
            name,
            &format!("pod {name} is being deleted, cannot be assigned to a host"),
        ));
    }
    let current = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !current.is_empty() {
        return Err(ApiError::conflict(
            binding,
            name,
            &format!("pod {name} is already assigned to node {current:?}"),
        ));
    }
    let mut bound = pod.clone();
    bound["spec"]["nodeName"] = json!(node);
    if let Some(Value::Object(extra)) = annotations {
        let meta = object::metadata_mut(&mut bound);
        let target = meta.entry("annotations").or_insert_with(|| json!({}));
        if let Some(target) = target.as_object_mut() {
            for (k, v) in extra {
                target.insert(k.clone(), v.clone());
            }
        }
    }
    let condition = json!({
        "type": "PodScheduled",
        "status": "True",
        "lastProbeTime": null,
        "lastTransitionTime": object::now_rfc3339(),
    });
    let status = bound
        .as_object_mut()
        .expect("a decoded Pod is an object")
        .entry("status")
        .or_insert_with(|| json!({}));
    let conditions = status
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    if let Some(Value::Array(list)) = conditions {
        list.retain(|c| c["type"] != "PodScheduled");
        list.push(condition);
    }
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(node: &str, phase: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db", "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": "db", "image": "mongo:3.3"}]},
            "status": {"phase": phase}})
    }

    #[test]
    fn create_with_an_unknown_priority_class_is_forbidden() {
        let mut obj = pod("", "Pending");
        obj["spec"]["priorityClassName"] = json!("high");
        let err = PodStrategy
            .admit_create(&mut obj)
            .expect_err("no PriorityClass named high exists");
        assert_eq!(err.code, 403);
        assert_eq!(err.reason, "Forbidden");
        assert_eq!(
            err.message,
            "pods \"db\" is forbidden: no PriorityClass with name high was found"
        );

        let mut obj = pod("", "Pending");
        obj["spec"]["priority"] = json!(7);
        let err = PodStrategy
            .admit_create(&mut obj)
            .expect_err("a priority that contradicts the class");
        assert_eq!(err.code, 403);

        let mut obj = pod("", "Pending");
        obj["spec"]["priorityClassName"] = json!("system-node-critical");
        PodStrategy
            .admit_create(&mut obj)
            .expect("a built-in class is admitted");
        assert_eq!(obj["spec"]["priority"], json!(2_000_001_000));
        assert_eq!(obj["status"]["phase"], json!("Pending"));
    }

    #[test]
    fn create_warns_about_a_name_that_is_not_a_dns_label() {
        let mut obj = pod("", "Pending");
        obj["metadata"]["name"] = json!("db.example");
        assert_eq!(
            PodStrategy.warnings_on_create(&obj),
            vec!["metadata.name: this is used in the Pod's hostname, which can result in surprising behavior; a DNS label is recommended: [must not contain dots]".to_string()]
        );
        assert!(PodStrategy
            .warnings_on_create(&pod("", "Pending"))
            .is_empty());
    }

    #[test]
    fn update_of_the_pod_keeps_the_stored_status() {
        let old = pod("n1", "Running");
        let mut new = pod("n1", "Failed");
        PodStrategy.prepare_for_update(&mut new, &old);
        assert_eq!(new["status"], json!({"phase": "Running"}));

        let mut without = old.clone();
        if let Some(o) = without.as_object_mut() {
            o.remove("status");
        }
        let mut new = pod("n1", "Failed");
        PodStrategy.prepare_for_update(&mut new, &without);
        assert_eq!(new.get("status"), None);
    }

    #[test]
    fn unscheduled_and_finished_pods_are_deleted_at_once() {
        let s = PodStrategy;
        assert_eq!(s.delete_grace(&pod("", "Pending"), None), None);
        assert_eq!(s.delete_grace(&pod("n1", "Succeeded"), Some(30)), None);
        assert_eq!(s.delete_grace(&pod("n1", "Running"), None), Some(30));
        assert_eq!(s.delete_grace(&pod("n1", "Running"), Some(0)), None);
        assert_eq!(s.delete_grace(&pod("n1", "Running"), Some(-5)), Some(1));
    }

    #[test]
    fn binding_fails_if_pod_already_assigned() {
        let err = bind(&pod("n1", "Pending"), "n2", None).expect_err("bound already");
        assert_eq!(err.code, 409);
        assert_eq!(
            err.message,
            "Operation cannot be fulfilled on pods/binding \"db\": pod db is already assigned to node \"n1\""
        );
    }

    #[test]
    fn binding_sets_node_and_scheduled_condition() {
        let bound = bind(&pod("", "Pending"), "n2", None).expect("binds");
        assert_eq!(bound["spec"]["nodeName"], "n2");
        assert_eq!(bound["status"]["conditions"][0]["type"], "PodScheduled");
        assert_eq!(bound["status"]["conditions"][0]["status"], "True");
    }

    #[test]
    fn bad_quantities_are_a_bad_request() {
        let body = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"},
            "spec": {"containers": [{"name": "c", "image": "i",
                "resources": {"limits": {"memory": "1.5.5Gi"}}}]}});
        let err = PodStrategy.decode(body).expect_err("bad quantity");
        assert_eq!(err.code, 400);
        assert!(err
            .message
            .contains("quantities must match the regular expression"));
    }

    #[test]
    fn quantities_are_stored_canonically() {
        let body = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"},
            "spec": {"containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"cpu": 0.5, "memory": "1024Mi"}}}]}});
        let decoded = PodStrategy.decode(body).expect("decodes");
        let requests = &decoded.object["spec"]["containers"][0]["resources"]["requests"];
        assert_eq!(requests["cpu"], "500m");
        assert_eq!(requests["memory"], "1Gi");
    }

    #[test]
    fn selectable_fields_match_upstream() {
        let p = pod("n1", "Running");
        let s = PodStrategy;
        assert_eq!(s.field_value(&p, "spec.nodeName").as_deref(), Some("n1"));
        assert_eq!(
            s.field_value(&p, "status.phase").as_deref(),
            Some("Running")
        );
        assert_eq!(
            s.field_value(&p, "spec.hostNetwork").as_deref(),
            Some("false")
        );
        assert_eq!(s.field_value(&p, "spec.foo"), None);
    }
}
