//! The `pods/eviction` subresource: a delete that a disruption budget may refuse (upstream
//! `EvictionREST` in `pkg/registry/core/pod/storage/eviction.go`).
//!
//! rkube serves no PodDisruptionBudgets yet, so no budget ever refuses: an eviction deletes the
//! Pod with the Eviction's delete options, gracefully as a plain DELETE would. As upstream, a
//! Pending Pod is only deleted at the revision it was read at (it may not start meanwhile), and
//! a conflict there is retried.

use serde_json::{json, Value};

use super::{DeleteOptions, Store};
use crate::meta::{object, ApiError};

/// How often a Pending Pod's eviction retries after losing a race with a write to the Pod
/// (upstream `EvictionsRetry` takes 20 steps).
const CONFLICT_RETRIES: usize = 20;

/// Checks an Eviction body against the URL: its kind (`policy/v1` or the older `v1beta1`, both
/// accepted upstream; a body that names neither kind nor version is read as the endpoint's
/// `policy/v1` Eviction, as upstream's decoder defaults it) and its name. Returns the
/// `deleteOptions` it carries, if any.
pub fn check(body: &Value, name: &str) -> Result<Option<Value>, ApiError> {
    let text = |field: &str| body.get(field).and_then(Value::as_str).unwrap_or("");
    let kind = match text("kind") {
        "" => "Eviction",
        kind => kind,
    };
    let version = match text("apiVersion") {
        "" => "policy/v1",
        version => version,
    };
    if kind != "Eviction" || !matches!(version, "policy/v1" | "policy/v1beta1") {
        return Err(ApiError::bad_request(format!(
            "no kind \"{kind}\" is registered for version \"{version}\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        )));
    }
    if object::name(body) != name {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    Ok(body.get("deleteOptions").filter(|o| !o.is_null()).cloned())
}

/// Evicts the Pod `namespace/name` with `options`; returns the 201 `Status` upstream answers.
pub async fn create(
    pods: &Store,
    namespace: &str,
    name: &str,
    options: &DeleteOptions,
) -> Result<Value, ApiError> {
    let mut tries = 0;
    loop {
        let pod = pods.get(namespace, name).await?;
        let phase = pod
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        let deleting = pod.pointer("/metadata/deletionTimestamp").is_some();
        // Upstream's shouldEnforceResourceVersion, for the only Pods it matters for without
        // budgets: a Pending Pod must not have become ready since it was read.
        let pin = phase == "Pending" && !deleting && options.resource_version.is_none();
        let mut attempt = options.clone();
        if pin {
            attempt.resource_version = Some(object::resource_version(&pod).to_string());
        }
        match pods.delete(namespace, name, &attempt).await {
            Ok(_) => {
                return Ok(json!({
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "code": 201,
                }))
            }
            Err(e) if e.code == 409 && pin && tries < CONFLICT_RETRIES => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_must_be_an_eviction_of_the_pod_in_the_url() {
        let eviction = |kind: &str, version: &str, name: &str| json!({"kind": kind, "apiVersion": version, "metadata": {"name": name}});
        assert_eq!(
            check(&eviction("Eviction", "policy/v1", "p"), "p"),
            Ok(None)
        );
        assert_eq!(
            check(&eviction("Eviction", "policy/v1beta1", "p"), "p"),
            Ok(None)
        );
        let err = check(&eviction("Eviction", "policy/v1", "q"), "p").expect_err("other pod");
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            "name in URL does not match name in Eviction object"
        );
        let err = check(&eviction("Pod", "v1", "p"), "p").expect_err("not an eviction");
        assert_eq!(err.code, 400);
        // kube-rs sends no kind, and its delete options under a name the type does not have.
        let bare = json!({"metadata": {"name": "p"}, "delete_options": {"dryRun": ["All"]}});
        assert_eq!(check(&bare, "p"), Ok(None));
        let with_options = json!({"kind": "Eviction", "apiVersion": "policy/v1",
            "metadata": {"name": "p"}, "deleteOptions": {"gracePeriodSeconds": 0}});
        assert_eq!(
            check(&with_options, "p"),
            Ok(Some(json!({"gracePeriodSeconds": 0})))
        );
    }
}
