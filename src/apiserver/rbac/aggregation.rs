//! ClusterRole aggregation, as upstream's clusterrole-aggregation controller
//! (`pkg/controller/clusterroleaggregation`), run in the API server beside the view it reads:
//! a ClusterRole with an `aggregationRule` gets as its `rules` the rules of every other
//! ClusterRole one of its selectors matches (taken in name order, each rule once). It runs
//! whenever a ClusterRole changes; a role aggregated into another (`edit` into `admin`) settles
//! on the next round, which its own change triggers.

use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::RbacView;
use crate::meta::label_selector;
use crate::registry::Store;

/// The rules `role` should hold given every ClusterRole, or None if it aggregates nothing.
pub fn aggregated_rules(role: &ClusterRole, all: &[ClusterRole]) -> Option<Vec<PolicyRule>> {
    let selectors = role
        .aggregation_rule
        .as_ref()?
        .cluster_role_selectors
        .as_deref()?;
    let own = role.metadata.name.as_deref();
    let mut matching: Vec<&ClusterRole> = all
        .iter()
        .filter(|other| other.metadata.name.as_deref() != own)
        .filter(|other| {
            let labels = other.metadata.labels.clone().unwrap_or_default();
            selectors
                .iter()
                .any(|s| !label_selector::is_empty(s) && label_selector::matches(s, &labels))
        })
        .collect();
    matching.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut rules: Vec<PolicyRule> = Vec::new();
    for other in matching {
        for rule in other.rules.iter().flatten() {
            if !rules.contains(rule) {
                rules.push(rule.clone());
            }
        }
    }
    Some(rules)
}

/// Updates every aggregated ClusterRole whose rules differ from what its selectors gather,
/// each time a ClusterRole changes, until `shutdown`.
pub async fn run(view: Arc<RbacView>, store: Arc<Store>, shutdown: CancellationToken) {
    loop {
        let all = view.cluster_roles();
        for role in &all {
            let Some(rules) = aggregated_rules(role, &all) else {
                continue;
            };
            if role.rules.clone().unwrap_or_default() == rules {
                continue;
            }
            let name = role.metadata.name.clone().unwrap_or_default();
            let value = json!(rules);
            let result = store
                .update_with("", &name, "", false, &mut |current| {
                    let mut next = current.clone();
                    next["rules"] = value.clone();
                    Ok(next)
                })
                .await;
            match result {
                Ok(_) => tracing::info!(clusterrole = %name, "aggregated rules updated"),
                Err(e) => tracing::warn!(clusterrole = %name, error = %e, "cannot aggregate rules"),
            }
        }
        tokio::select! {
            () = view.cluster_roles_changed.notified() => {}
            () = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(value: serde_json::Value) -> ClusterRole {
        serde_json::from_value(value).expect("a ClusterRole")
    }

    #[test]
    fn an_aggregated_role_gathers_the_rules_of_every_matching_role_once() {
        let view = role(json!({"metadata": {"name": "view"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "true"}}]}}));
        let rule = |r: &str| json!({"verbs": ["get"], "apiGroups": [""], "resources": [r]});
        let all = vec![
            view.clone(),
            role(
                json!({"metadata": {"name": "b", "labels": {"agg": "true"}}, "rules": [rule("pods"), rule("secrets")]}),
            ),
            role(
                json!({"metadata": {"name": "a", "labels": {"agg": "true"}}, "rules": [rule("pods")]}),
            ),
            role(json!({"metadata": {"name": "c"}, "rules": [rule("nodes")]})),
        ];
        let rules = aggregated_rules(&view, &all).expect("aggregated");
        let names: Vec<String> = rules
            .iter()
            .map(|r| r.resources.clone().unwrap_or_default().join(","))
            .collect();
        assert_eq!(names, ["pods", "secrets"]);
        assert!(aggregated_rules(&all[3], &all).is_none());
    }
}
