//! The Lease kind (`coordination.k8s.io/v1`): node heartbeats in `kube-node-lease`.

use k8s_openapi::api::coordination::v1::Lease;
use serde_json::{json, Value};

use super::decode::{decode_as, Decoded};
use super::{
    age, column, field_error, FieldError, ResourceInfo, TypedStrategy, AGE_DESCRIPTION,
    NAME_DESCRIPTION,
};
use crate::meta::{object, ApiError};

static INFO: ResourceInfo = ResourceInfo {
    group: "coordination.k8s.io",
    version: "v1",
    kind: "Lease",
    plural: "leases",
    singular: "lease",
    short_names: &[],
    categories: &[],
    namespaced: true,
    subresources: &[],
};

pub fn info() -> &'static ResourceInfo {
    &INFO
}

pub struct LeaseStrategy;

impl TypedStrategy for LeaseStrategy {
    type Object = Value;

    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }

    fn decode(&self, body: Value) -> Result<Decoded, ApiError> {
        decode_as::<Lease>(&INFO, body)
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errors = super::validate_meta(obj, true, field_error::name_is_dns_subdomain);
        if let Some(secs) = obj
            .pointer("/spec/leaseDurationSeconds")
            .and_then(Value::as_i64)
        {
            if secs <= 0 {
                errors.push(FieldError::invalid(
                    "spec.leaseDurationSeconds",
                    secs,
                    "must be greater than 0",
                ));
            }
        }
        errors
    }

    /// A Lease is written by whoever holds it; a writer that did not read it first must not
    /// overwrite another's (upstream's leaseStrategy allows no unconditional update).
    fn allow_unconditional_update(&self) -> bool {
        false
    }

    /// A Lease has no status: the whole object is written by its holder.
    fn prepare_for_update(&self, _new: &mut Value, _old: &Value) {}

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        super::keep_all_but_status(new, old);
    }

    fn column_definitions(&self) -> Value {
        json!([
            column("Name", "string", "name", NAME_DESCRIPTION, 0),
            column("Holder", "string", "", "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.", 0),
            column("Age", "string", "", AGE_DESCRIPTION, 0),
        ])
    }

    fn row(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            json!(object::name(obj)),
            json!(obj
                .pointer("/spec/holderIdentity")
                .and_then(Value::as_str)
                .unwrap_or("")),
            json!(age(obj, now)),
        ]
    }
}
