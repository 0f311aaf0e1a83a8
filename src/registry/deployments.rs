//! The Deployment kind (apps/v1, namespaced), as upstream's `pkg/registry/apps/deployment`:
//! a selector, a replica count, a Pod template and a rollout strategy, defaulted and validated
//! as upstream's `SetDefaults_Deployment` and `ValidateDeployment`; `status` and `scale`
//! subresources; a generation that counts changes to the spec and to the annotations.

// k8s-openapi's `DeploymentStrategy` is a spec's rollout strategy; here the name is the
// registry strategy's, as every kind's.
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy as RolloutStrategy, ReplicaSetSpec,
    RollingUpdateDeployment,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{json, Value};

use super::decode::{decode_typed, Decoded};
use super::workloads;
use super::{
    age, column, field_error, pod, pods, replicasets, FieldError, ResourceInfo, TypedStrategy,
    AGE_DESCRIPTION, NAME_DESCRIPTION,
};
use crate::meta::label_selector;
use crate::meta::patch::PatchSchema;
use crate::meta::ApiError;

static INFO: ResourceInfo = ResourceInfo {
    group: "apps",
    version: "v1",
    kind: "Deployment",
    plural: "deployments",
    singular: "deployment",
    short_names: &["deploy"],
    categories: &["all"],
    namespaced: true,
    subresources: &["status", "scale"],
};

pub fn info() -> &'static ResourceInfo {
    &INFO
}

pub struct DeploymentStrategy;

/// Upstream `ValidateNonnegativeField`.
fn non_negative(errs: &mut Vec<FieldError>, path: &str, value: Option<i64>) {
    if let Some(v) = value.filter(|v| *v < 0) {
        errs.push(FieldError::invalid(
            path,
            v,
            "must be greater than or equal to 0",
        ));
    }
}

/// How an `IntOrString` prints in an error: its `String()` form.
fn int_or_string_value(v: &IntOrString) -> field_error::Literal {
    field_error::Literal(match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    })
}

/// The percentage of a valid percent string (`"25%"`), as upstream `getPercentValue`.
fn percent(v: &IntOrString) -> Option<i64> {
    match v {
        IntOrString::String(s) => {
            let digits = s.strip_suffix('%')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse().ok()
        }
        IntOrString::Int(_) => None,
    }
}

/// Upstream `getIntOrPercentValue`: the percentage of a percent, else the integer (a string
/// that is neither counts as 0).
fn int_or_percent_value(v: Option<&IntOrString>) -> i64 {
    match v {
        Some(IntOrString::Int(i)) => *i as i64,
        Some(s) => percent(s).unwrap_or(0),
        None => 0,
    }
}

/// Upstream `ValidatePositiveIntOrPercent`.
fn validate_positive_int_or_percent(
    errs: &mut Vec<FieldError>,
    v: Option<&IntOrString>,
    path: &str,
) {
    match v {
        Some(IntOrString::String(s)) if percent(&IntOrString::String(s.clone())).is_none() => errs
            .push(FieldError::invalid(
                path,
                field_error::Literal(s.clone()),
                crate::meta::validation::regex_error(
                    "a valid percent string must be a numeric string followed by an ending '%'",
                    "[0-9]+%",
                    &["1%", "93%"],
                ),
            )),
        Some(IntOrString::Int(i)) => non_negative(errs, path, Some(*i as i64)),
        _ => {}
    }
}

/// Upstream `ValidateRollingUpdateDeployment`.
fn validate_rolling_update(ru: &RollingUpdateDeployment, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let unavailable_path = format!("{path}.maxUnavailable");
    validate_positive_int_or_percent(&mut errs, ru.max_unavailable.as_ref(), &unavailable_path);
    validate_positive_int_or_percent(
        &mut errs,
        ru.max_surge.as_ref(),
        &format!("{path}.maxSurge"),
    );
    if int_or_percent_value(ru.max_unavailable.as_ref()) == 0
        && int_or_percent_value(ru.max_surge.as_ref()) == 0
    {
        let value = ru
            .max_unavailable
            .as_ref()
            .map(int_or_string_value)
            .unwrap_or(field_error::Literal("0".into()));
        errs.push(FieldError::invalid(
            &unavailable_path,
            value,
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    if let Some(v) = ru.max_unavailable.as_ref() {
        if percent(v).is_some_and(|p| p > 100) {
            errs.push(FieldError::invalid(
                &unavailable_path,
                int_or_string_value(v),
                "must not be greater than 100%",
            ));
        }
    }
    errs
}

/// Upstream `ValidateDeploymentStrategy`.
fn validate_strategy(strategy: &RolloutStrategy) -> Vec<FieldError> {
    let path = "spec.strategy";
    match strategy.type_.as_deref().unwrap_or("") {
        "Recreate" => match strategy.rolling_update {
            Some(_) => vec![FieldError::forbidden(
                format!("{path}.rollingUpdate"),
                "may not be specified when strategy `type` is 'Recreate'",
            )],
            None => Vec::new(),
        },
        "RollingUpdate" => match strategy.rolling_update.as_ref() {
            None => vec![FieldError::required(
                format!("{path}.rollingUpdate"),
                "this should be defaulted and never be nil",
            )],
            Some(ru) => validate_rolling_update(ru, &format!("{path}.rollingUpdate")),
        },
        other => vec![FieldError::not_supported(
            format!("{path}.type"),
            other.to_string(),
            &["Recreate", "RollingUpdate"],
        )],
    }
}

/// Upstream `ValidateDeploymentSpec`: the selector and template rules are the ReplicaSet's
/// (`ValidatePodTemplateSpecForReplicaSet`), then the rollout's own fields.
pub fn validate_spec(spec: &DeploymentSpec) -> Vec<FieldError> {
    let as_replicaset = ReplicaSetSpec {
        replicas: spec.replicas,
        min_ready_seconds: spec.min_ready_seconds,
        selector: spec.selector.clone(),
        template: Some(spec.template.clone()),
    };
    let mut errs = replicasets::validate_spec(&as_replicaset);
    errs.extend(validate_strategy(
        &spec.strategy.clone().unwrap_or_default(),
    ));
    non_negative(
        &mut errs,
        "spec.revisionHistoryLimit",
        spec.revision_history_limit.map(i64::from),
    );
    if let Some(deadline) = spec.progress_deadline_seconds {
        non_negative(
            &mut errs,
            "spec.progressDeadlineSeconds",
            Some(deadline as i64),
        );
        if deadline <= spec.min_ready_seconds.unwrap_or(0) {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                deadline as i64,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

/// Upstream `ValidateDeploymentStatus`.
fn validate_status(d: &Deployment) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(s) = d.status.as_ref() else {
        return errs;
    };
    let fields = [
        ("status.observedGeneration", s.observed_generation),
        ("status.replicas", s.replicas.map(i64::from)),
        ("status.updatedReplicas", s.updated_replicas.map(i64::from)),
        ("status.readyReplicas", s.ready_replicas.map(i64::from)),
        (
            "status.availableReplicas",
            s.available_replicas.map(i64::from),
        ),
        (
            "status.unavailableReplicas",
            s.unavailable_replicas.map(i64::from),
        ),
        ("status.collisionCount", s.collision_count.map(i64::from)),
    ];
    for (path, value) in fields {
        non_negative(&mut errs, path, value);
    }
    let replicas = s.replicas.unwrap_or(0);
    let msg = "cannot be greater than status.replicas";
    for (path, value) in [
        ("status.updatedReplicas", s.updated_replicas),
        ("status.readyReplicas", s.ready_replicas),
        ("status.availableReplicas", s.available_replicas),
    ] {
        if value.unwrap_or(0) > replicas {
            errs.push(FieldError::invalid(path, value.unwrap_or(0) as i64, msg));
        }
    }
    if s.available_replicas.unwrap_or(0) > s.ready_replicas.unwrap_or(0) {
        errs.push(FieldError::invalid(
            "status.availableReplicas",
            s.available_replicas.unwrap_or(0) as i64,
            "cannot be greater than readyReplicas",
        ));
    }
    errs
}

/// Go's `%#v`-like rendering of a selector for error values, as the ReplicaSet's.
impl TypedStrategy for DeploymentStrategy {
    type Object = Deployment;

    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }

    fn decode(&self, body: Value) -> Result<Decoded, ApiError> {
        decode_typed::<Deployment>(&INFO, body, |d: &mut Deployment| {
            match d.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
                Some(spec) => pods::canonical_quantities(spec, &INFO),
                None => Ok(()),
            }
        })
    }

    /// apps/v1 `SetDefaults_Deployment`: one replica, a RollingUpdate of 25% surge and 25%
    /// unavailable, ten old ReplicaSets kept, a progress deadline of 600 seconds; the template
    /// defaulted as a Pod's.
    fn apply_scheme_defaults(&self, d: &mut Deployment) {
        let spec = d.spec.get_or_insert_with(Default::default);
        spec.replicas.get_or_insert(1);
        let strategy = spec.strategy.get_or_insert_with(Default::default);
        let kind = strategy
            .type_
            .get_or_insert_with(|| "RollingUpdate".to_string());
        if kind == "RollingUpdate" {
            let ru = strategy.rolling_update.get_or_insert_with(Default::default);
            ru.max_unavailable
                .get_or_insert_with(|| IntOrString::String("25%".into()));
            ru.max_surge
                .get_or_insert_with(|| IntOrString::String("25%".into()));
        }
        spec.revision_history_limit.get_or_insert(10);
        spec.progress_deadline_seconds.get_or_insert(600);
        if let Some(pod_spec) = spec.template.spec.as_mut() {
            pod::strategy::default_pod_spec(pod_spec);
        }
    }

    /// `PrepareForCreate`: no status, generation 1.
    fn admit_create(&self, d: &mut Deployment) -> Result<(), ApiError> {
        self.apply_scheme_defaults(d);
        d.status = None;
        d.metadata.generation = Some(1);
        Ok(())
    }

    fn validate(&self, d: &Deployment) -> Vec<FieldError> {
        let mut errs = field_error::validate_object_meta(
            &d.metadata,
            true,
            field_error::name_is_dns_subdomain,
        );
        errs.extend(validate_spec(&d.spec.clone().unwrap_or_default()));
        errs
    }

    /// `PrepareForUpdate`: the status is the status writer's; a changed spec or changed
    /// annotations (which the controller copies onto ReplicaSets) is a new generation.
    fn prepare_for_update(&self, new: &mut Deployment, old: &Deployment) {
        self.apply_scheme_defaults(new);
        let annotations_changed = new.metadata.annotations != old.metadata.annotations;
        workloads::prepare_update(new, old, annotations_changed);
    }

    /// Writes through `status` change the status and the annotations: upstream's status
    /// strategy resets only the spec and the labels, and the Deployment controller records
    /// `deployment.kubernetes.io/revision` with its status write.
    fn prepare_for_status_update(&self, new: &mut Deployment, old: &Deployment) {
        let annotations = new.metadata.annotations.take();
        workloads::prepare_status_update(new, old);
        new.metadata.annotations = annotations;
    }

    /// `ValidateDeploymentUpdate`: the spec as on create, and the selector is immutable in
    /// apps/v1; status writes validate the status.
    fn validate_update(&self, new: &Deployment, old: &Deployment) -> Vec<FieldError> {
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
            column("Ready", "string", "", "Number of the pod with ready state", 0),
            column("Up-to-date", "string", "", "Total number of non-terminated pods targeted by this deployment that have the desired template spec.", 0),
            column("Available", "string", "", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.", 0),
            column("Age", "string", "", AGE_DESCRIPTION, 0),
        ];
        let template = workloads::template_columns("Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.");
        Value::Array(own.into_iter().chain(template).collect())
    }

    /// Upstream `printDeployment`: READY is ready/desired.
    fn row(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let d: Deployment = serde::Deserialize::deserialize(obj).unwrap_or_default();
        let spec = d.spec.unwrap_or_default();
        let status = d.status.unwrap_or_default();
        let mut row = vec![
            json!(d.metadata.name.unwrap_or_default()),
            json!(format!(
                "{}/{}",
                status.ready_replicas.unwrap_or(0),
                spec.replicas.unwrap_or(0)
            )),
            json!(status.updated_replicas.unwrap_or(0)),
            json!(status.available_replicas.unwrap_or(0)),
            json!(age(obj, now)),
        ];
        let selector = label_selector::format(&spec.selector);
        row.extend(workloads::template_cells(
            spec.template.spec.as_ref(),
            &selector,
        ));
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Strategy, UpdateTarget};

    fn nginx() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
    }

    fn created(body: Value) -> Result<Value, ApiError> {
        let mut obj = Strategy::decode(&DeploymentStrategy, body)?.object;
        Strategy::prepare_create(&DeploymentStrategy, &mut obj)?;
        Ok(obj)
    }

    #[test]
    fn defaults_follow_apps_v1() {
        let mut body = nginx();
        body["spec"]
            .as_object_mut()
            .expect("object")
            .remove("replicas");
        let d = created(body).expect("valid");
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(
            d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
            "25%"
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(d["metadata"]["generation"], 1);
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        let mut recreate = nginx();
        recreate["spec"]["strategy"] = json!({"type": "Recreate"});
        let d = created(recreate).expect("valid");
        assert!(d["spec"]["strategy"].get("rollingUpdate").is_none(), "{d}");
    }

    #[test]
    fn invalid_specs_are_refused_in_upstreams_words() {
        type Edit = fn(&mut Value);
        let cases: &[(&str, Edit, &str)] = &[
            (
                "selector mismatch",
                |b| b["spec"]["selector"]["matchLabels"]["app"] = json!("db"),
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
            ),
            (
                "both zero",
                |b| b["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}),
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0%: may not be 0 when `maxSurge` is 0",
            ),
            (
                "rollingUpdate with Recreate",
                |b| b["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
                "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
            ),
            (
                "unknown strategy",
                |b| b["spec"]["strategy"] = json!({"type": "BlueGreen"}),
                "spec.strategy.type: Unsupported value: \"BlueGreen\": supported values: \"Recreate\", \"RollingUpdate\"",
            ),
            (
                "over 100%",
                |b| b["spec"]["strategy"] = json!({"rollingUpdate": {"maxUnavailable": "110%"}}),
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 110%: must not be greater than 100%",
            ),
            (
                "not a percent",
                |b| b["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": "20Percent"}}),
                "spec.strategy.rollingUpdate.maxSurge: Invalid value: 20Percent: a valid percent string must be",
            ),
            (
                "deadline within minReadySeconds",
                |b| {
                    b["spec"]["minReadySeconds"] = json!(10);
                    b["spec"]["progressDeadlineSeconds"] = json!(10);
                },
                "spec.progressDeadlineSeconds: Invalid value: 10: must be greater than minReadySeconds",
            ),
            (
                "negative history",
                |b| b["spec"]["revisionHistoryLimit"] = json!(-1),
                "spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                "empty selector",
                |b| b["spec"]["selector"] = json!({}),
                "empty selector is invalid for deployment",
            ),
        ];
        for (name, edit, want) in cases {
            let mut body = nginx();
            edit(&mut body);
            let err = created(body).expect_err(name);
            assert_eq!(err.code, 422, "{name}");
            assert!(err.message.contains(want), "{name}: {}", err.message);
        }
    }

    #[test]
    fn the_selector_is_immutable_and_spec_or_annotation_changes_bump_the_generation() {
        let old = created(nginx()).expect("valid");
        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(5);
        Strategy::prepare_update(&DeploymentStrategy, &mut scaled, &old, UpdateTarget::Main)
            .expect("valid");
        assert_eq!(scaled["metadata"]["generation"], 2);
        let mut annotated = old.clone();
        annotated["metadata"]["annotations"] = json!({"a": "b"});
        Strategy::prepare_update(
            &DeploymentStrategy,
            &mut annotated,
            &old,
            UpdateTarget::Main,
        )
        .expect("valid");
        assert_eq!(annotated["metadata"]["generation"], 2);
        let mut labelled = old.clone();
        labelled["metadata"]["labels"] = json!({"a": "b"});
        Strategy::prepare_update(&DeploymentStrategy, &mut labelled, &old, UpdateTarget::Main)
            .expect("valid");
        assert_eq!(labelled["metadata"]["generation"], 1);
        let mut moved = old.clone();
        moved["spec"]["selector"]["matchLabels"] = json!({"app": "web", "tier": "x"});
        moved["spec"]["template"]["metadata"]["labels"] = json!({"app": "web", "tier": "x"});
        let err =
            Strategy::prepare_update(&DeploymentStrategy, &mut moved, &old, UpdateTarget::Main)
                .expect_err("immutable");
        assert!(
            err.message.contains("spec.selector: Invalid value:")
                && err.message.contains("field is immutable"),
            "{}",
            err.message
        );
    }

    #[test]
    fn status_writes_change_the_status_and_annotations_only() {
        let old = created(nginx()).expect("valid");
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(9);
        new["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "1"});
        new["metadata"]["labels"] = json!({"x": "y"});
        new["status"] = json!({"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2, "unavailableReplicas": 1, "observedGeneration": 1});
        Strategy::prepare_update(&DeploymentStrategy, &mut new, &old, UpdateTarget::Status)
            .expect("valid");
        assert_eq!(new["spec"]["replicas"], 3);
        assert_eq!(new["status"]["readyReplicas"], 2);
        assert_eq!(
            new["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
            "1"
        );
        assert!(new["metadata"].get("labels").is_none(), "{new}");
        assert_eq!(new["metadata"]["generation"], 1);
        let mut bad = old.clone();
        bad["status"] = json!({"replicas": 1, "readyReplicas": 1, "availableReplicas": 2});
        let err =
            Strategy::prepare_update(&DeploymentStrategy, &mut bad, &old, UpdateTarget::Status)
                .expect_err("invalid");
        assert!(
            err.message
                .contains("status.availableReplicas: Invalid value: 2: cannot be greater than status.replicas"),
            "{}",
            err.message
        );
    }

    #[test]
    fn rows_show_ready_over_desired() {
        let mut d = created(nginx()).expect("valid");
        d["status"] = json!({"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2});
        let row = Strategy::row(&DeploymentStrategy, &d, jiff::Timestamp::now());
        assert_eq!(row[0], "web");
        assert_eq!(&row[1..4], &[json!("2/3"), json!(3), json!(2)]);
        assert_eq!(row[5], "web");
        assert_eq!(row[6], "nginx:1.27");
        assert_eq!(row[7], "app=web");
        let scale = replicasets::scale_of(&d);
        assert_eq!(scale["spec"]["replicas"], 3);
        assert_eq!(scale["status"]["selector"], "app=web");
    }
}
