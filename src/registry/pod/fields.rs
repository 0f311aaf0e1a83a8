//! The Pod fields a field selector can name (upstream `pod.ToSelectableFields`).

use crate::registry::pod::validation::spec_of;
use crate::registry::pod::{s, slice};
use k8s_openapi::api::core::v1::Pod;

/// `pod.ToSelectableFields`: the fields `?fieldSelector=` may use on pods. `None` for any other
/// field, which upstream rejects as "field label not supported".
pub fn pod_selectable_field(pod: &Pod, field: &str) -> Option<String> {
    let spec = spec_of(pod);
    let status = pod.status.as_ref();
    let value = match field {
        "metadata.name" => s(&pod.metadata.name).to_string(),
        "metadata.namespace" => s(&pod.metadata.namespace).to_string(),
        "spec.nodeName" => s(&spec.node_name).to_string(),
        "spec.restartPolicy" => s(&spec.restart_policy).to_string(),
        "spec.schedulerName" => s(&spec.scheduler_name).to_string(),
        "spec.serviceAccountName" => s(&spec.service_account_name).to_string(),
        "spec.hostNetwork" => spec.host_network.unwrap_or(false).to_string(),
        "status.phase" => status
            .map(|st| s(&st.phase).to_string())
            .unwrap_or_default(),
        "status.podIP" => pod_ip(pod).to_string(),
        "status.nominatedNodeName" => status
            .map(|st| s(&st.nominated_node_name).to_string())
            .unwrap_or_default(),
        _ => return None,
    };
    Some(value)
}

/// The primary pod IP: `podIPs[0]`, falling back to the legacy `podIP` (v1 conversion).
pub(crate) fn pod_ip(pod: &Pod) -> &str {
    let Some(st) = pod.status.as_ref() else {
        return "";
    };
    match slice(&st.pod_ips).first() {
        Some(ip) => ip.ip.as_str(),
        None => s(&st.pod_ip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::pod::test_support::*;

    #[test]
    fn selectable_fields_cover_upstream_set_only() {
        let mut pod = valid_pod();
        spec_mut(&mut pod).node_name = Some("node-1".into());
        pod.status = Some(serde_json::from_value(json!({"phase": "Running", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.7"}], "nominatedNodeName": "n2"})).expect("status"));
        let cases = [
            ("metadata.name", Some("db")),
            ("metadata.namespace", Some("default")),
            ("spec.nodeName", Some("node-1")),
            ("spec.restartPolicy", Some("Always")),
            ("spec.schedulerName", Some("default-scheduler")),
            ("spec.serviceAccountName", Some("default")),
            ("spec.hostNetwork", Some("false")),
            ("status.phase", Some("Running")),
            ("status.podIP", Some("10.0.0.7")),
            ("status.nominatedNodeName", Some("n2")),
            ("metadata.uid", None),
            ("spec.containers", None),
        ];
        for (field, want) in cases {
            assert_eq!(
                pod_selectable_field(&pod, field).as_deref(),
                want,
                "field {field}"
            );
        }
        pod.status = Some(serde_json::from_value(json!({"podIP": "10.0.0.9"})).expect("status"));
        assert_eq!(
            pod_selectable_field(&pod, "status.podIP").as_deref(),
            Some("10.0.0.9")
        );
    }
}
