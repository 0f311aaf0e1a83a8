//! The Pod kind: decoding with quantity checks, defaulting, validation, graceful deletion,
//! selectable fields, Table rows, and the `binding` subresource's rules.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodSpec, ServiceAccount};
use serde::Deserialize as _;
use serde_json::{json, Value};

use super::decode::{cannot_handle, decode_typed, Decoded};
use super::store::{self, AdmissionSources, CreateAdmission};
use super::{pod, FieldError, ResourceInfo, TypedStrategy};
use crate::meta::patch::PatchSchema;
use crate::meta::quantity::Quantity;
use crate::meta::{object, ApiError};
use crate::storage::{self, Cacher, Storage as _, StorageError};

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
        "ephemeralcontainers",
        "binding",
        "log",
        "proxy",
        "eviction",
        "exec",
        "attach",
        "portforward",
    ],
};

pub fn info() -> &'static ResourceInfo {
    &INFO
}

pub struct PodStrategy;

/// Quantities are parsed while decoding upstream, so a malformed one is a 400; the stored form
/// is the canonical one ("0.5" becomes "500m"). Every quantity of a pod spec (a Pod's, or a
/// template's for `info`'s kind): the overhead, then each container's limits and requests.
pub(crate) fn canonical_quantities(
    spec: &mut PodSpec,
    info: &ResourceInfo,
) -> Result<(), ApiError> {
    let mut maps = Vec::new();
    maps.extend(spec.overhead.as_mut());
    let resources = spec
        .containers
        .iter_mut()
        .filter_map(|c| c.resources.as_mut())
        .chain(
            spec.ephemeral_containers
                .iter_mut()
                .flatten()
                .filter_map(|c| c.resources.as_mut()),
        )
        .chain(
            spec.init_containers
                .iter_mut()
                .flatten()
                .filter_map(|c| c.resources.as_mut()),
        );
    for r in resources {
        maps.extend(r.limits.as_mut());
        maps.extend(r.requests.as_mut());
    }
    for map in maps {
        for value in map.values_mut() {
            let quantity = Quantity::parse(value.0.trim()).map_err(|e| cannot_handle(info, e))?;
            value.0 = quantity.to_api_string();
        }
    }
    Ok(())
}

/// The ServiceAccount admission plugin's lookup: a new Pod runs as an account that exists
/// (its name defaulted to `default`), and gets what [`pod::service_account::admit`] adds.
struct ServiceAccountAdmission {
    accounts: Arc<Cacher>,
    prefix: String,
}

/// How often a missing `default` account is looked for again before the Pod is refused: the
/// controller creates it moments after its namespace (upstream tries ten times, 100–200 ms
/// apart).
const DEFAULT_ACCOUNT_TRIES: u32 = 10;

impl ServiceAccountAdmission {
    async fn find(&self, namespace: &str, name: &str) -> Result<Option<ServiceAccount>, String> {
        let key = storage::object_key(&self.prefix, "serviceaccounts", namespace, name);
        let decode = |v: &Value| ServiceAccount::deserialize(v).map_err(|e| e.to_string());
        if let Some(cached) = self.accounts.cached(&key) {
            return decode(&cached.object).map(Some);
        }
        let tries = if name == super::serviceaccounts::DEFAULT {
            DEFAULT_ACCOUNT_TRIES
        } else {
            1
        };
        let pause = std::time::Duration::from_millis(rand::random_range(100..200));
        for attempt in 0..tries {
            if attempt > 0 {
                tokio::time::sleep(pause).await;
            }
            match self.accounts.get(&key).await {
                Ok(found) => return decode(&found.object).map(Some),
                Err(StorageError::NotFound(_)) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(None)
    }
}

#[async_trait::async_trait]
impl CreateAdmission for ServiceAccountAdmission {
    async fn admit(&self, namespace: &str, obj: &mut Value) -> Result<(), ApiError> {
        let mut pod = Pod::deserialize(&*obj).map_err(ApiError::internal)?;
        let mirror = pod
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(pod::MIRROR_POD_ANNOTATION));
        if mirror {
            return Ok(());
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.get_or_insert_with(Default::default);
        let account = spec
            .service_account_name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| super::serviceaccounts::DEFAULT.to_string());
        spec.service_account_name = Some(account.clone());
        let refuse = |why: String| {
            ApiError::forbidden(
                INFO.group_resource(),
                &name,
                &format!("error looking up service account {namespace}/{account}: {why}"),
            )
        };
        let found = self.find(namespace, &account).await.map_err(refuse)?;
        let Some(found) = found else {
            return Err(refuse(format!("serviceaccount {account:?} not found")));
        };
        pod::service_account::admit(&mut pod, &found, store::generated_name);
        *obj = serde_json::to_value(&pod).map_err(ApiError::internal)?;
        Ok(())
    }
}

impl TypedStrategy for PodStrategy {
    type Object = Pod;

    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }

    fn create_admission(&self, sources: &AdmissionSources<'_>) -> Option<Arc<dyn CreateAdmission>> {
        Some(Arc::new(ServiceAccountAdmission {
            accounts: sources.cache("serviceaccounts")?,
            prefix: sources.prefix.to_string(),
        }))
    }

    fn decode(&self, body: Value) -> Result<Decoded, ApiError> {
        decode_typed::<Pod>(&INFO, body, |pod: &mut Pod| match pod.spec.as_mut() {
            Some(spec) => canonical_quantities(spec, &INFO),
            None => Ok(()),
        })
    }

    fn admit_create(&self, pod: &mut Pod) -> Result<(), ApiError> {
        pod.status = None;
        pod::default_pod(pod).map_err(|why| {
            let name = pod.metadata.name.as_deref().unwrap_or("");
            ApiError::forbidden(INFO.group_resource(), name, &why)
        })
    }

    fn apply_scheme_defaults(&self, pod: &mut Pod) {
        pod::apply_scheme_defaults(pod);
    }

    fn validate(&self, pod: &Pod) -> Vec<FieldError> {
        pod::validate_pod(pod)
    }

    fn warnings_on_create(&self, pod: &Pod) -> Vec<String> {
        pod::pod_warnings(pod)
    }

    // No `warnings_on_update`: upstream's `podStrategy.WarningsOnUpdate` returns none ("humans
    // don't typically interact directly with pods" and updates are a hot path); an update
    // still carries the warnings of its decoding (`fieldValidation=Warn`).

    fn prepare_for_update(&self, new: &mut Pod, old: &Pod) {
        // Writes to the Pod itself cannot change its status (that is `pods/status`).
        new.status.clone_from(&old.status);
        pod::default_pod_for_update(new);
    }

    /// As upstream's `podStatusStrategy.PrepareForUpdate`: the spec and owner references stay
    /// as they were; the rest of the metadata (labels, annotations) is the writer's, so a
    /// status write that changes labels changes them (NodeRestriction refuses that to
    /// kubelets); a status without a QoS class keeps the old one.
    fn prepare_for_status_update(&self, new: &mut Pod, old: &Pod) {
        new.spec.clone_from(&old.spec);
        new.metadata
            .owner_references
            .clone_from(&old.metadata.owner_references);
        let old_qos = old.status.as_ref().and_then(|s| s.qos_class.as_ref());
        if let (Some(status), Some(old_qos)) = (new.status.as_mut(), old_qos) {
            if status.qos_class.as_deref().unwrap_or("").is_empty() {
                status.qos_class = Some(old_qos.clone());
            }
        }
    }

    fn validate_update(&self, new: &Pod, old: &Pod) -> Vec<FieldError> {
        pod::validate_pod_update(new, old)
    }

    /// As upstream's `dropNonEphemeralContainerUpdates`: of the written Pod only
    /// `spec.ephemeralContainers` counts (and the identity the store checks); everything else
    /// is the stored Pod's.
    fn prepare_for_ephemeral_containers_update(&self, new: &mut Pod, old: &Pod) {
        let ephemeral = new
            .spec
            .as_mut()
            .and_then(|spec| spec.ephemeral_containers.take());
        let mut kept = old.clone();
        kept.metadata.resource_version = new.metadata.resource_version.take();
        if let Some(spec) = kept.spec.as_mut() {
            spec.ephemeral_containers = ephemeral;
        }
        // Upstream defaults the whole decoded Pod; the stored part already is.
        pod::strategy::apply_scheme_defaults(&mut kept);
        *new = kept;
    }

    fn validate_ephemeral_containers_update(&self, new: &Pod, old: &Pod) -> Vec<FieldError> {
        pod::validate_pod_ephemeral_containers_update(new, old)
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ]
    }

    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        // Read field by field: a JSON pointer would split and unescape its path on every
        // object a selector list scans.
        let at = |map: &str, key: &str| obj.get(map).and_then(|m| m.get(key));
        let text = |map: &str, key: &str| {
            at(map, key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        Some(match field {
            "metadata.name" => text("metadata", "name"),
            "metadata.namespace" => text("metadata", "namespace"),
            "spec.nodeName" => text("spec", "nodeName"),
            "spec.restartPolicy" => text("spec", "restartPolicy"),
            "spec.schedulerName" => text("spec", "schedulerName"),
            "spec.serviceAccountName" => text("spec", "serviceAccountName"),
            "spec.hostNetwork" => at("spec", "hostNetwork")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string(),
            "status.phase" => text("status", "phase"),
            "status.podIP" => text("status", "podIP"),
            "status.nominatedNodeName" => text("status", "nominatedNodeName"),
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
        let Ok(pod) = Pod::deserialize(obj) else {
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
    use crate::registry::UpdateTarget;

    fn pod(node: &str, phase: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db", "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": "db", "image": "mongo:3.3"}]},
            "status": {"phase": phase}})
    }

    /// The create phase as the store runs it: one conversion in, one out.
    fn create(obj: &mut Value) -> Result<Vec<String>, ApiError> {
        crate::registry::Strategy::prepare_create(&PodStrategy, obj)
    }

    fn update(new: &mut Value, old: &Value) -> Result<Vec<String>, ApiError> {
        crate::registry::Strategy::prepare_update(&PodStrategy, new, old, UpdateTarget::Main)
    }

    #[test]
    fn a_refused_admission_reaches_the_caller() {
        let mut obj = pod("", "Pending");
        obj["spec"]["priorityClassName"] = json!("high");
        let err = create(&mut obj).expect_err("no PriorityClass named high exists");
        assert_eq!(err.code, 403);
        assert_eq!(err.reason, "Forbidden");
        assert_eq!(
            err.message,
            "pods \"db\" is forbidden: no PriorityClass with name high was found"
        );

        let mut obj = pod("", "Pending");
        obj["spec"]["priority"] = json!(7);
        let err = create(&mut obj).expect_err("a priority that contradicts the class");
        assert_eq!(err.code, 403);

        let mut obj = pod("", "Pending");
        obj["spec"]["priorityClassName"] = json!("system-node-critical");
        create(&mut obj).expect("a built-in class is admitted");
        assert_eq!(obj["spec"]["priority"], json!(2_000_001_000));
        assert_eq!(obj["status"]["phase"], json!("Pending"));
    }

    #[test]
    fn an_invalid_pod_is_refused_with_its_field_errors() {
        let mut obj = pod("", "Pending");
        obj["spec"]["containers"][0]["image"] = json!("");
        let err = create(&mut obj).expect_err("no image");
        assert_eq!(err.code, 422);
        assert_eq!(
            err.details.causes[0].field, "spec.containers[0].image",
            "{err:?}"
        );
    }

    #[test]
    fn create_warns_about_a_name_that_is_not_a_dns_label() {
        let mut obj = pod("", "Pending");
        obj["metadata"]["name"] = json!("db.example");
        assert_eq!(
            create(&mut obj).expect("valid"),
            vec!["metadata.name: this is used in the Pod's hostname, which can result in surprising behavior; a DNS label is recommended: [must not contain dots]".to_string()]
        );
        assert!(create(&mut pod("", "Pending")).expect("valid").is_empty());
    }

    #[test]
    fn updates_of_pods_carry_no_strategy_warnings_as_upstream() {
        // Upstream's `podStrategy.WarningsOnUpdate` returns nothing, even for what a create
        // would warn about (two containers with the same port).
        let mut old = pod("", "Pending");
        old["spec"]["containers"] = json!([
            {"name": "a", "image": "i", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "i", "ports": [{"containerPort": 80}]}
        ]);
        let warnings = create(&mut old).expect("valid");
        assert_eq!(
            warnings,
            vec!["spec.containers[1].ports[0]: duplicate port definition with spec.containers[0].ports[0]".to_string()]
        );
        let mut new = old.clone();
        new["spec"]["activeDeadlineSeconds"] = json!(60);
        assert_eq!(update(&mut new, &old).expect("valid"), Vec::<String>::new());
        assert_eq!(new["spec"]["activeDeadlineSeconds"], json!(60));
    }

    #[test]
    fn update_of_the_pod_keeps_the_stored_status() {
        let mut old = pod("n1", "Running");
        create(&mut old).expect("valid");
        old["status"] = json!({"phase": "Running"});
        let mut new = old.clone();
        new["status"] = json!({"phase": "Failed"});
        update(&mut new, &old).expect("valid");
        assert_eq!(new["status"], json!({"phase": "Running"}));

        let mut without = old.clone();
        if let Some(o) = without.as_object_mut() {
            o.remove("status");
        }
        let mut new = old.clone();
        new["status"] = json!({"phase": "Failed"});
        update(&mut new, &without).expect("valid");
        assert_eq!(new.get("status"), None);
    }

    #[test]
    fn a_status_write_keeps_the_spec_and_the_qos_class() {
        let mut old = pod("n1", "Running");
        create(&mut old).expect("valid");
        let mut new = old.clone();
        new["spec"]["activeDeadlineSeconds"] = json!(5);
        new["status"] = json!({"phase": "Running"});
        let warnings = crate::registry::Strategy::prepare_update(
            &PodStrategy,
            &mut new,
            &old,
            UpdateTarget::Status,
        )
        .expect("valid");
        assert!(warnings.is_empty());
        assert_eq!(new["spec"], old["spec"]);
        assert_eq!(
            new["status"],
            json!({"phase": "Running", "qosClass": "BestEffort"})
        );
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
        let err = crate::registry::Strategy::decode(&PodStrategy, body).expect_err("bad quantity");
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
        let decoded = crate::registry::Strategy::decode(&PodStrategy, body).expect("decodes");
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
