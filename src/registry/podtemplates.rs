//! The PodTemplate kind (core/v1, namespaced): a stored pod template, as upstream's
//! `pkg/registry/core/podtemplate` keeps it: defaulted and validated as the Pods it would make,
//! with a generation that counts changes to the template.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplate;
use serde_json::{json, Value};

use super::decode::{decode_typed, Decoded};
use super::{column, field_error, pod, pods, FieldError, ResourceInfo, TypedStrategy};
use crate::meta::patch::{generic_patch_schema, PatchSchema};
use crate::meta::ApiError;

static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    kind: "PodTemplate",
    plural: "podtemplates",
    singular: "podtemplate",
    short_names: &[],
    categories: &[],
    namespaced: true,
    subresources: &[],
};

pub fn info() -> &'static ResourceInfo {
    &INFO
}

pub struct PodTemplateStrategy;

/// Labels as upstream's `labels.FormatLabels` prints them: `k=v` by key, or `<none>`.
fn format_labels(labels: Option<&BTreeMap<String, String>>) -> String {
    match labels {
        Some(labels) if !labels.is_empty() => labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<none>".to_string(),
    }
}

impl TypedStrategy for PodTemplateStrategy {
    type Object = PodTemplate;

    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }

    fn decode(&self, body: Value) -> Result<Decoded, ApiError> {
        decode_typed::<PodTemplate>(&INFO, body, |t: &mut PodTemplate| {
            match t.template.as_mut().and_then(|t| t.spec.as_mut()) {
                Some(spec) => pods::canonical_quantities(spec, &INFO),
                None => Ok(()),
            }
        })
    }

    /// The scheme's pod spec defaults (not a Pod's own: no service links, no requests from
    /// limits), and generation 1.
    fn admit_create(&self, t: &mut PodTemplate) -> Result<(), ApiError> {
        if let Some(spec) = t
            .template
            .get_or_insert_with(Default::default)
            .spec
            .as_mut()
        {
            pod::strategy::default_pod_spec(spec);
        }
        t.metadata.generation = Some(1);
        Ok(())
    }

    fn validate(&self, t: &PodTemplate) -> Vec<FieldError> {
        let mut errs = field_error::validate_object_meta(
            &t.metadata,
            true,
            field_error::name_is_dns_subdomain,
        );
        errs.extend(pod::validate_pod_template_spec(
            &t.template.clone().unwrap_or_default(),
            "template",
        ));
        errs
    }

    /// Any change to the template is a new generation.
    fn prepare_for_update(&self, new: &mut PodTemplate, old: &PodTemplate) {
        if let Some(spec) = new.template.as_mut().and_then(|t| t.spec.as_mut()) {
            pod::strategy::default_pod_spec(spec);
        }
        let generation = old.metadata.generation.unwrap_or(0);
        new.metadata.generation = Some(if new.template == old.template {
            generation
        } else {
            generation + 1
        });
    }

    /// PodTemplates have no status subresource; the front door never routes one here.
    fn prepare_for_status_update(&self, new: &mut PodTemplate, old: &PodTemplate) {
        new.clone_from(old);
    }

    fn validate_update(&self, new: &PodTemplate, old: &PodTemplate) -> Vec<FieldError> {
        let mut errs = field_error::validate_object_meta_update(&new.metadata, &old.metadata);
        errs.extend(pod::validate_pod_template_spec(
            &new.template.clone().unwrap_or_default(),
            "template",
        ));
        errs
    }

    fn patch_schema(&self) -> PatchSchema {
        generic_patch_schema().graft("template.spec", &pod::patch_schema::pod_spec_patch_schema())
    }

    fn column_definitions(&self) -> Value {
        json!([
            column("Name", "string", "name", super::NAME_DESCRIPTION, 0),
            column(
                "Containers",
                "string",
                "",
                "Names of each container in the template.",
                0
            ),
            column(
                "Images",
                "string",
                "",
                "Images referenced by each container in the template.",
                0
            ),
            column(
                "Pod Labels",
                "string",
                "",
                "The labels for the pod template.",
                0
            ),
        ])
    }

    fn row(&self, obj: &Value, _now: jiff::Timestamp) -> Vec<Value> {
        let Ok(t) = <PodTemplate as serde::Deserialize>::deserialize(obj) else {
            return vec![
                json!(crate::meta::object::name(obj)),
                json!(""),
                json!(""),
                json!(""),
            ];
        };
        let template = t.template.unwrap_or_default();
        let containers = template.spec.map(|s| s.containers).unwrap_or_default();
        let join = |f: fn(&k8s_openapi::api::core::v1::Container) -> &str| {
            containers.iter().map(f).collect::<Vec<_>>().join(",")
        };
        vec![
            json!(t.metadata.name.unwrap_or_default()),
            json!(join(|c| c.name.as_str())),
            json!(join(|c| c.image.as_deref().unwrap_or(""))),
            json!(format_labels(
                template.metadata.and_then(|m| m.labels).as_ref()
            )),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Strategy, UpdateTarget};

    /// Upstream's own fixture for its pod template command tests.
    fn nginx() -> Value {
        json!({"apiVersion": "v1", "kind": "PodTemplate",
            "metadata": {"name": "nginx", "namespace": "default"},
            "template": {"metadata": {"labels": {"name": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx",
                    "ports": [{"containerPort": 80}]}]}}})
    }

    fn created(body: Value) -> Result<Value, ApiError> {
        let mut obj = Strategy::decode(&PodTemplateStrategy, body)?.object;
        Strategy::prepare_create(&PodTemplateStrategy, &mut obj)?;
        Ok(obj)
    }

    #[test]
    fn a_template_gets_pod_spec_defaults_but_not_a_pods_own() {
        let t = created(nginx()).expect("valid");
        assert_eq!(t["metadata"]["generation"], 1);
        let spec = &t["template"]["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(spec["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(spec["containers"][0]["resources"], json!({}));
        assert!(spec.get("enableServiceLinks").is_none(), "{spec}");
    }

    #[test]
    fn a_template_is_validated_at_template_paths() {
        let mut bad = nginx();
        bad["template"]["metadata"]["labels"]["bad key!"] = json!("x");
        bad["template"]["spec"]["containers"][0]["image"] = json!(null);
        bad["template"]["spec"]["ephemeralContainers"] = json!([{"name": "e", "image": "i"}]);
        let err = created(bad).expect_err("invalid");
        assert_eq!(err.code, 422);
        let fields: Vec<&str> = err
            .details
            .causes
            .iter()
            .map(|c| c.field.as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "template.labels",
                "template.spec.containers[0].image",
                "template.spec.ephemeralContainers",
            ],
            "{}",
            err.message
        );
        assert!(err.message.starts_with(
            "PodTemplate \"nginx\" is invalid: [template.labels: Invalid value: \"bad key!\""
        ));
    }

    #[test]
    fn a_changed_template_is_a_new_generation() {
        let old = created(nginx()).expect("valid");
        let mut same = old.clone();
        same["metadata"]["labels"] = json!({"a": "b"});
        Strategy::prepare_update(&PodTemplateStrategy, &mut same, &old, UpdateTarget::Main)
            .expect("valid");
        assert_eq!(same["metadata"]["generation"], 1);
        let mut changed = old.clone();
        changed["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        Strategy::prepare_update(&PodTemplateStrategy, &mut changed, &old, UpdateTarget::Main)
            .expect("valid");
        assert_eq!(changed["metadata"]["generation"], 2);
    }

    #[test]
    fn rows_show_containers_images_and_pod_labels() {
        let t = created(nginx()).expect("valid");
        let row = Strategy::row(&PodTemplateStrategy, &t, jiff::Timestamp::now());
        assert_eq!(
            row,
            [
                json!("nginx"),
                json!("nginx"),
                json!("nginx"),
                json!("name=nginx")
            ]
        );
        let mut bare = t.clone();
        bare["template"]["metadata"] = json!({});
        let row = Strategy::row(&PodTemplateStrategy, &bare, jiff::Timestamp::now());
        assert_eq!(row[3], "<none>");
    }
}
