//! Server-side apply in the store: a PATCH with `application/apply-patch+yaml` merges its
//! configuration into the stored object through the same update path as every other write
//! (decoding, the kind's update rules, admission), or creates the object when there is none.

use serde_json::Value;

use super::{CreateOptions, Proposal, Store, Tracking};
use crate::meta::managed_fields;
use crate::meta::{ApiError, Cause};

impl Store {
    /// Server-side apply (PATCH with `application/apply-patch+yaml`): merges the configuration
    /// in `body` (YAML or JSON) into the object, or creates the object from it when there is
    /// none, as upstream's apply patcher does. Returns the object, the warnings, and whether
    /// it was created.
    pub async fn apply(
        &self,
        namespace: &str,
        name: &str,
        subresource: &str,
        body: &[u8],
        options: &CreateOptions,
    ) -> Result<(Value, Vec<String>, bool), ApiError> {
        let config = self.apply_configuration(body)?;
        let manager = options.field_manager.clone().unwrap_or_default();
        let schema = self.strategy.patch_schema();
        let writer = self.writer(&manager, subresource);
        let conflict = |c: managed_fields::Conflicts| {
            let causes =
                c.0.iter()
                    .map(|one| Cause {
                        reason: "FieldManagerConflict".into(),
                        message: format!("conflict with {}", one.manager),
                        field: managed_fields::path_string(&one.path),
                    })
                    .collect();
            ApiError::apply_conflict(c.message(), causes)
        };
        match self.get(namespace, name).await {
            Err(e) if e.code == 404 && subresource.is_empty() => {
                let made =
                    managed_fields::apply(&schema.zero(), &config, &schema, &writer, options.force)
                        .map_err(conflict)?;
                let mut obj = made;
                self.check_name(&mut obj, namespace, name)?;
                let create = CreateOptions {
                    field_manager: None,
                    ..options.clone()
                };
                let (created, warnings) = self.create(namespace, obj, &create).await?;
                return Ok((created, warnings, true));
            }
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        let mut decode_warnings = Vec::new();
        let (result, update_warnings) = self
            .update_with_warnings(
                namespace,
                name,
                subresource,
                options.dry_run,
                Tracking::Applied,
                &mut |current| {
                    let made =
                        managed_fields::apply(current, &config, &schema, &writer, options.force)
                            .map_err(conflict)?;
                    let (mut obj, w) = self.decode(made.into(), options.field_validation)?;
                    self.check_name(&mut obj, namespace, name)?;
                    decode_warnings = w;
                    self.check_update_preconditions(
                        &obj,
                        current,
                        name,
                        &Proposal::Replace(obj.clone()),
                    )?;
                    options.admit(&obj, Some(current))?;
                    Ok(obj)
                },
            )
            .await?;
        Ok((result, [decode_warnings, update_warnings].concat(), false))
    }

    /// An apply body as upstream's apply patcher reads it: YAML (of which JSON is a part), an
    /// object of this kind, with no `managedFields`.
    fn apply_configuration(&self, body: &[u8]) -> Result<Value, ApiError> {
        let config: Value = serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        let info = self.info();
        let text = |field: &str| config.get(field).and_then(Value::as_str).unwrap_or("");
        let (group, version) = match text("apiVersion").split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", text("apiVersion")),
        };
        if group != info.group || version != info.version || text("kind") != info.kind {
            return Err(ApiError::bad_request(format!(
                "invalid object type: {group}/{version}, Kind={}",
                text("kind")
            )));
        }
        if config
            .pointer("/metadata/managedFields")
            .is_some_and(|m| !m.is_null())
        {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        Ok(config)
    }
}
