//! The Pod kind, modelled on kube-apiserver v1.32 (`pkg/registry/core/pod` and
//! `pkg/apis/core/validation`): create defaulting and admission ([`strategy`]), create and update
//! validation ([`validation`]), the QoS class ([`qos`]), field selectors ([`fields`]) and the
//! `kubectl get pods` Table row ([`printing`]).
//!
//! Everything here is a pure function over typed `k8s_openapi` pods; storage, admission lookups
//! and HTTP live elsewhere. Where upstream behaviour needs data we do not have (PriorityClass
//! objects, ServiceAccount objects) the function documents what the caller must do.

pub mod fields;
pub mod patch_schema;
pub mod printing;
pub mod qos;
pub mod service_account;
pub mod strategy;
pub mod validation;

pub use fields::pod_selectable_field;
pub use printing::{pod_column_definitions, pod_row_conditions, pod_table_row, PodRow};
pub use qos::pod_qos_class;
pub(crate) use strategy::apply_scheme_defaults;
pub use strategy::{
    admit_priority, builtin_priority_class, default_pod, default_pod_for_update, pod_warnings,
    ResolvedPriorityClass,
};
pub use validation::{
    validate_pod, validate_pod_ephemeral_containers_update, validate_pod_template_spec,
    validate_pod_update,
};

use crate::meta::quantity::Quantity as MetaQuantity;

/// `v1.DefaultTerminationGracePeriodSeconds`.
pub(crate) const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;
/// `v1.DefaultSchedulerName`.
pub(crate) const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
/// `v1.TerminationMessagePathDefault`.
pub(crate) const TERMINATION_MESSAGE_PATH_DEFAULT: &str = "/dev/termination-log";
/// 0644, the default mode of secret/configMap/downwardAPI/projected volumes.
pub(crate) const DEFAULT_VOLUME_MODE: i32 = 0o644;
/// Default `expirationSeconds` of a projected service account token.
pub(crate) const DEFAULT_TOKEN_EXPIRATION_SECONDS: i64 = 3600;
/// `DefaultTolerationSeconds` admission: both node-lifecycle taints are tolerated for 300s.
pub(crate) const DEFAULT_TOLERATION_SECONDS: i64 = 300;
pub(crate) const TAINT_NODE_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub(crate) const TAINT_NODE_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// `kubernetes.io/config.mirror`: static pods mirrored by the kubelet.
pub(crate) const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
pub(crate) const POD_DELETION_COST_ANNOTATION: &str = "controller.kubernetes.io/pod-deletion-cost";
/// Reason the node lifecycle controller puts on pods of an unreachable node.
pub(crate) const NODE_UNREACHABLE_POD_REASON: &str = "NodeLost";
pub(crate) const SCHEDULING_GATED: &str = "SchedulingGated";
pub(crate) const MAX_INT32: i64 = i32::MAX as i64;

/// A quantity's value in milli-units (rounded away from zero, as `MilliValue()` does), or `None`
/// for text that is not a quantity.
pub(crate) fn quantity_milli(text: &str) -> Option<i128> {
    MetaQuantity::parse(text).ok().map(|q| q.milli_value())
}

/// What quantities are compared by when specs are compared semantically: the exact value, so
/// `1Gi` equals `1024Mi` and `1e3` equals `1k` (upstream compares with `Quantity.Cmp`);
/// unparsable text compares verbatim.
pub(crate) fn quantity_key(q: &str) -> String {
    match MetaQuantity::parse(q) {
        Ok(q) => format!("{}n", q.nano_value()),
        Err(_) => q.to_string(),
    }
}

// =============================================================================================
// Small helpers.
// =============================================================================================

pub(crate) fn child(p: &str, c: &str) -> String {
    format!("{p}.{c}")
}
pub(crate) fn index(p: &str, i: usize) -> String {
    format!("{p}[{i}]")
}
pub(crate) fn key(p: &str, k: &str) -> String {
    format!("{p}[{k}]")
}
/// Go treats an empty string and an absent one identically for non-pointer fields.
pub(crate) fn s(o: &Option<String>) -> &str {
    o.as_deref().unwrap_or("")
}
pub(crate) fn is_empty(o: &Option<String>) -> bool {
    s(o).is_empty()
}
pub(crate) fn set_if_empty(o: &mut Option<String>, v: &str) {
    if is_empty(o) {
        *o = Some(v.to_string());
    }
}
pub(crate) fn slice<T>(o: &Option<Vec<T>>) -> &[T] {
    o.as_deref().unwrap_or(&[])
}

#[cfg(test)]
pub(crate) mod test_support {
    #![allow(dead_code)]
    //! Fixtures shared by the pod tests.
    use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};

    use super::default_pod;
    use crate::registry::field_error::FieldError;

    pub(crate) use serde_json::json;

    pub(crate) const DIGEST: &str =
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    pub(crate) fn pod_from(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("test pod must deserialize")
    }

    /// The manifest from the brief, as `kubectl create -f` sends it.
    pub(crate) fn db_manifest() -> Pod {
        pod_from(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "db", "labels": {"type": "db", "vendor": "MongoLabs"}},
            "spec": {"containers": [{"name": "db", "image": "mongo:3.3", "command": ["mongod"], "args": ["--rest", "--httpinterface"]}]}
        }))
    }

    /// The db pod after defaulting and the store's namespace assignment: valid as is.
    pub(crate) fn valid_pod() -> Pod {
        let mut pod = db_manifest();
        default_pod(&mut pod).expect("the pod is admitted");
        pod.metadata.namespace = Some("default".into());
        pod
    }

    pub(crate) fn spec_mut(pod: &mut Pod) -> &mut PodSpec {
        pod.spec.as_mut().expect("test pods have a spec")
    }

    pub(crate) fn container_mut(pod: &mut Pod) -> &mut Container {
        &mut spec_mut(pod).containers[0]
    }

    pub(crate) fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    pub(crate) fn ts(s: &str) -> jiff::Timestamp {
        s.parse().expect("valid timestamp")
    }
}
