//! The ReplicaSet kind (apps/v1, namespaced), as upstream's `pkg/registry/apps/replicaset`:
//! a selector, a replica count and a Pod template, defaulted and validated as upstream's
//! `SetDefaults_ReplicaSet` and `ValidateReplicaSet`; `status` and `scale` subresources, a
//! generation that counts changes to the spec.

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use serde_json::{json, Value};

use super::decode::{decode_typed, Decoded};
use super::workloads;
use super::{
    age, column, field_error, pod, pods, FieldError, ResourceInfo, TypedStrategy, AGE_DESCRIPTION,
    NAME_DESCRIPTION,
};
use crate::meta::label_selector;
use crate::meta::patch::PatchSchema;
use crate::meta::ApiError;

static INFO: ResourceInfo = ResourceInfo {
    group: "apps",
    version: "v1",
    kind: "ReplicaSet",
    plural: "replicasets",
    singular: "replicaset",
    short_names: &["rs"],
    categories: &["all"],
    namespaced: true,
    subresources: &["status", "scale"],
};

pub fn info() -> &'static ResourceInfo {
    &INFO
}

pub struct ReplicaSetStrategy;

/// Upstream `ValidateNonnegativeField`.
fn non_negative(errs: &mut Vec<FieldError>, path: &str, value: Option<i32>) {
    if let Some(v) = value.filter(|v| *v < 0) {
        errs.push(FieldError::invalid(
            path,
            v as i64,
            "must be greater than or equal to 0",
        ));
    }
}

/// Go's `%#v`-like rendering of a selector for error values (upstream prints the Go struct).
/// Upstream `ValidateReplicaSetSpec` with `ValidatePodTemplateSpecForReplicaSet`.
pub fn validate_spec(spec: &ReplicaSetSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    non_negative(&mut errs, "spec.replicas", spec.replicas);
    non_negative(&mut errs, "spec.minReadySeconds", spec.min_ready_seconds);
    let selector = &spec.selector;
    if label_selector::is_empty(selector) {
        errs.push(FieldError::invalid(
            "spec.selector",
            workloads::selector_literal(Some(&spec.selector)),
            "empty selector is invalid for deployment",
        ));
    }
    for (i, e) in selector.match_expressions.iter().flatten().enumerate() {
        let path = format!("spec.selector.matchExpressions[{i}].operator");
        if !matches!(
            e.operator.as_str(),
            "In" | "NotIn" | "Exists" | "DoesNotExist"
        ) {
            errs.push(FieldError::invalid(
                path,
                e.operator.clone(),
                "not a valid selector operator",
            ));
        }
    }
    errs.extend(field_error::validate_labels(
        &selector.match_labels.clone().unwrap_or_default(),
        "spec.selector.matchLabels",
    ));
    let template = spec.template.clone().unwrap_or_default();
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    if !label_selector::is_empty(selector) && !label_selector::matches(selector, &labels) {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            field_error::Literal(field_error::go_string_map(&labels)),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(pod::validate_pod_template_spec(&template, "spec.template"));
    if let Some(pod_spec) = template.spec.as_ref() {
        let policy = pod_spec.restart_policy.clone().unwrap_or_default();
        if policy != "Always" {
            errs.push(FieldError::not_supported(
                "spec.template.spec.restartPolicy",
                policy,
                &["Always"],
            ));
        }
        if let Some(secs) = pod_spec.active_deadline_seconds {
            errs.push(FieldError::invalid(
                "spec.template.spec.activeDeadlineSeconds",
                secs,
                "activeDeadlineSeconds in ReplicaSet is not Supported",
            ));
        }
    }
    errs
}

/// Upstream `ValidateReplicaSetStatus`.
fn validate_status(rs: &ReplicaSet) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(s) = rs.status.as_ref() else {
        return errs;
    };
    non_negative(&mut errs, "status.replicas", Some(s.replicas));
    non_negative(
        &mut errs,
        "status.fullyLabeledReplicas",
        s.fully_labeled_replicas,
    );
    non_negative(&mut errs, "status.readyReplicas", s.ready_replicas);
    non_negative(&mut errs, "status.availableReplicas", s.available_replicas);
    non_negative(
        &mut errs,
        "status.observedGeneration",
        s.observed_generation.map(|g| g as i32),
    );
    let msg = "must be less than or equal to replicas";
    if s.fully_labeled_replicas.unwrap_or(0) > s.replicas {
        errs.push(FieldError::invalid(
            "status.fullyLabeledReplicas",
            s.fully_labeled_replicas.unwrap_or(0) as i64,
            msg,
        ));
    }
    if s.ready_replicas.unwrap_or(0) > s.replicas {
        errs.push(FieldError::invalid(
            "status.readyReplicas",
            s.ready_replicas.unwrap_or(0) as i64,
            msg,
        ));
    }
    if s.available_replicas.unwrap_or(0) > s.ready_replicas.unwrap_or(0) {
        errs.push(FieldError::invalid(
            "status.availableReplicas",
            s.available_replicas.unwrap_or(0) as i64,
            "must be less than or equal to readyReplicas",
        ));
    }
    errs
}

fn default_template(rs: &mut ReplicaSet) {
    if let Some(spec) = rs.spec.as_mut() {
        if let Some(pod_spec) = spec.template.as_mut().and_then(|t| t.spec.as_mut()) {
            pod::strategy::default_pod_spec(pod_spec);
        }
    }
}

impl TypedStrategy for ReplicaSetStrategy {
    type Object = ReplicaSet;

    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }

    fn decode(&self, body: Value) -> Result<Decoded, ApiError> {
        decode_typed::<ReplicaSet>(&INFO, body, |rs: &mut ReplicaSet| {
            match rs
                .spec
                .as_mut()
                .and_then(|s| s.template.as_mut())
                .and_then(|t| t.spec.as_mut())
            {
                Some(spec) => pods::canonical_quantities(spec, &INFO),
                None => Ok(()),
            }
        })
    }

    /// apps/v1 `SetDefaults_ReplicaSet`: one replica. (Labels copied from the template were
    /// extensions/v1beta1's default; apps/v1 requires a selector instead.)
    fn apply_scheme_defaults(&self, rs: &mut ReplicaSet) {
        let spec = rs.spec.get_or_insert_with(Default::default);
        spec.replicas.get_or_insert(1);
        default_template(rs);
    }

    /// `PrepareForCreate`: no status, generation 1.
    fn admit_create(&self, rs: &mut ReplicaSet) -> Result<(), ApiError> {
        self.apply_scheme_defaults(rs);
        rs.status = None;
        rs.metadata.generation = Some(1);
        Ok(())
    }

    fn validate(&self, rs: &ReplicaSet) -> Vec<FieldError> {
        let mut errs = field_error::validate_object_meta(
            &rs.metadata,
            true,
            field_error::name_is_dns_subdomain,
        );
        errs.extend(validate_spec(&rs.spec.clone().unwrap_or_default()));
        errs
    }

    /// `PrepareForUpdate`: the status is the status writer's; a changed spec is a new
    /// generation.
    fn prepare_for_update(&self, new: &mut ReplicaSet, old: &ReplicaSet) {
        self.apply_scheme_defaults(new);
        workloads::prepare_update(new, old, false);
    }

    /// Writes through `status` change only the status.
    fn prepare_for_status_update(&self, new: &mut ReplicaSet, old: &ReplicaSet) {
        workloads::prepare_status_update(new, old);
    }

    /// `ValidateReplicaSetUpdate`: the spec as on create, and the selector is immutable in
    /// apps/v1; status writes validate the status.
    fn validate_update(&self, new: &ReplicaSet, old: &ReplicaSet) -> Vec<FieldError> {
        let mut errs = field_error::validate_object_meta_update(&new.metadata, &old.metadata);
        let new_spec = new.spec.clone().unwrap_or_default();
        let old_spec = old.spec.clone().unwrap_or_default();
        errs.extend(validate_spec(&new_spec));
        if new_spec.selector != old_spec.selector {
            errs.push(FieldError::invalid(
                "spec.selector",
                workloads::selector_literal(Some(&new_spec.selector)),
                "field is immutable",
            ));
        }
        errs.extend(validate_status(new));
        errs
    }

    fn patch_schema(&self) -> PatchSchema {
        workloads::template_patch_schema()
    }

    fn column_definitions(&self) -> Value {
        let own = [
            column("Name", "string", "name", NAME_DESCRIPTION, 0),
            column("Desired", "integer", "", "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset", 0),
            column("Current", "integer", "", "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset", 0),
            column("Ready", "integer", "", "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.", 0),
            column("Age", "string", "", AGE_DESCRIPTION, 0),
        ];
        let template = workloads::template_columns("Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors");
        Value::Array(own.into_iter().chain(template).collect())
    }

    fn row(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let rs: ReplicaSet = serde::Deserialize::deserialize(obj).unwrap_or_default();
        let spec = rs.spec.unwrap_or_default();
        let status = rs.status.unwrap_or_default();
        let mut row = vec![
            json!(rs.metadata.name.unwrap_or_default()),
            json!(spec.replicas.unwrap_or(0)),
            json!(status.replicas),
            json!(status.ready_replicas.unwrap_or(0)),
            json!(age(obj, now)),
        ];
        let selector = label_selector::format(&spec.selector);
        let template = spec.template.as_ref().and_then(|t| t.spec.as_ref());
        row.extend(workloads::template_cells(template, &selector));
        row
    }
}

/// The autoscaling/v1 `Scale` of a stored ReplicaSet (upstream `scaleFromReplicaSet`).
pub fn scale_of(rs: &Value) -> Value {
    let meta = &rs["metadata"];
    let selector = serde::Deserialize::deserialize(&rs["spec"]["selector"])
        .map(|s| label_selector::to_query(&s))
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": rs["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {
            "replicas": rs["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector,
        },
    })
}

/// The ReplicaSet `current` with the replica count of `wanted`, a Scale written through the
/// `scale` subresource (upstream `scaleUpdatedObjectInfo`): a resourceVersion in the Scale must
/// be the ReplicaSet's, and the count must not be negative.
pub fn apply_scale(current: &Value, wanted: &Value) -> Result<Value, ApiError> {
    let name = crate::meta::object::name(current).to_string();
    let gr = INFO.group_resource();
    let rv = crate::meta::object::resource_version(current);
    match wanted.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
        Some(given) if !given.is_empty() && given != rv => {
            return Err(ApiError::conflict(
                gr,
                &name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ))
        }
        _ => {}
    }
    let replicas = wanted
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if replicas < 0 {
        let err = FieldError::invalid(
            "spec.replicas",
            replicas,
            "must be greater than or equal to 0",
        );
        // Upstream: `NewInvalid(autoscaling.Kind("Scale"), ...)`, the kind qualified by its
        // group in the message and bare in the details.
        let mut invalid = ApiError::invalid(
            "Scale.autoscaling",
            crate::meta::GroupResource {
                group: "autoscaling",
                resource: "scale",
            },
            &name,
            vec![err.cause()],
        );
        invalid.details.kind = "Scale".into();
        return Err(invalid);
    }
    let mut next = current.clone();
    next["spec"]["replicas"] = json!(replicas);
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Strategy, UpdateTarget};

    /// The book's `rs/go-demo-2.yml`, with the test image.
    fn go_demo() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "go-demo-2", "namespace": "default"},
            "spec": {"replicas": 2,
                "selector": {"matchLabels": {"type": "backend", "service": "go-demo-2"}},
                "template": {"metadata": {"labels": {"type": "backend", "service": "go-demo-2", "db": "mongo", "language": "go"}},
                    "spec": {"containers": [{"name": "db", "image": "mongo:3.3"},
                        {"name": "api", "image": "vfarcic/go-demo-2"}]}}}})
    }

    fn created(body: Value) -> Result<Value, ApiError> {
        let mut obj = Strategy::decode(&ReplicaSetStrategy, body)?.object;
        Strategy::prepare_create(&ReplicaSetStrategy, &mut obj)?;
        Ok(obj)
    }

    #[test]
    fn defaults_are_one_replica_and_template_defaults() {
        let mut body = go_demo();
        body["spec"]
            .as_object_mut()
            .expect("object")
            .remove("replicas");
        body["status"] = json!({"replicas": 7});
        let rs = created(body).expect("valid");
        assert_eq!(rs["spec"]["replicas"], 1);
        assert_eq!(rs["metadata"]["generation"], 1);
        assert!(rs.get("status").is_none_or(|s| s.is_null()), "{rs}");
        assert_eq!(rs["spec"]["template"]["spec"]["restartPolicy"], "Always");
    }

    #[test]
    fn invalid_specs_are_refused_in_upstreams_words() {
        type Edit = fn(&mut Value);
        let cases: &[(&str, Edit, &str)] = &[
            (
                "selector mismatch",
                |b| b["spec"]["selector"]["matchLabels"]["type"] = json!("frontend"),
                "spec.template.metadata.labels: Invalid value: map[string]string{\"db\":\"mongo\", \"language\":\"go\", \"service\":\"go-demo-2\", \"type\":\"backend\"}: `selector` does not match template `labels`",
            ),
            (
                "negative replicas",
                |b| b["spec"]["replicas"] = json!(-1),
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                "empty selector",
                |b| b["spec"]["selector"] = json!({}),
                "spec.selector: Invalid value:",
            ),
            (
                "restart policy",
                |b| b["spec"]["template"]["spec"]["restartPolicy"] = json!("Never"),
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            ),
        ];
        for (name, edit, want) in cases {
            let mut body = go_demo();
            edit(&mut body);
            let err = created(body).expect_err(name);
            assert_eq!(err.code, 422, "{name}");
            assert!(err.message.contains(want), "{name}: {}", err.message);
        }
    }

    #[test]
    fn the_selector_is_immutable_and_spec_changes_bump_the_generation() {
        let old = created(go_demo()).expect("valid");
        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(5);
        Strategy::prepare_update(&ReplicaSetStrategy, &mut scaled, &old, UpdateTarget::Main)
            .expect("valid");
        assert_eq!(scaled["metadata"]["generation"], 2);
        let mut moved = old.clone();
        moved["spec"]["selector"]["matchLabels"] = json!({"type": "backend"});
        let err =
            Strategy::prepare_update(&ReplicaSetStrategy, &mut moved, &old, UpdateTarget::Main)
                .expect_err("immutable");
        assert!(
            err.message.contains("spec.selector: Invalid value:"),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("field is immutable"),
            "{}",
            err.message
        );
    }

    #[test]
    fn status_writes_change_only_the_status() {
        let old = created(go_demo()).expect("valid");
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(9);
        new["status"] = json!({"replicas": 2, "readyReplicas": 1, "availableReplicas": 1, "fullyLabeledReplicas": 2, "observedGeneration": 1});
        Strategy::prepare_update(&ReplicaSetStrategy, &mut new, &old, UpdateTarget::Status)
            .expect("valid");
        assert_eq!(new["spec"]["replicas"], 2);
        assert_eq!(new["status"]["readyReplicas"], 1);
        assert_eq!(new["metadata"]["generation"], 1);
    }

    #[test]
    fn rows_and_scale_show_desired_current_ready() {
        let mut rs = created(go_demo()).expect("valid");
        rs["status"] = json!({"replicas": 2, "readyReplicas": 1});
        let row = Strategy::row(&ReplicaSetStrategy, &rs, jiff::Timestamp::now());
        assert_eq!(row[0], "go-demo-2");
        assert_eq!(&row[1..4], &[json!(2), json!(2), json!(1)]);
        assert_eq!(row[5], "db,api");
        assert_eq!(row[6], "mongo:3.3,vfarcic/go-demo-2");
        assert_eq!(row[7], "service=go-demo-2,type=backend");
        let scale = scale_of(&rs);
        assert_eq!(scale["spec"]["replicas"], 2);
        assert_eq!(
            scale["status"]["selector"],
            "service=go-demo-2,type=backend"
        );
    }

    #[test]
    fn a_negative_scale_is_refused_in_upstreams_words() {
        let rs = created(go_demo()).expect("valid");
        let err = apply_scale(&rs, &json!({"spec": {"replicas": -1}})).expect_err("refused");
        assert_eq!(err.code, 422);
        assert_eq!(
            err.message,
            "Scale.autoscaling \"go-demo-2\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(err.details.kind, "Scale");
        let scaled = apply_scale(&rs, &json!({"spec": {"replicas": 5}})).expect("scaled");
        assert_eq!(scaled["spec"]["replicas"], 5);
    }
}
