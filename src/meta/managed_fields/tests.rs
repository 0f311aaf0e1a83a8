//! Tests of managed fields on writes, following what kube-apiserver records for the same
//! sequence of writes.

use super::*;
use serde_json::json;

fn schema() -> PatchSchema {
    PatchSchema::new()
        .merge_primitive_list("metadata.finalizers")
        .merge_list("spec.containers", "name")
        .zero_object(json!({"metadata": {"creationTimestamp": null}, "spec": {"containers": null}, "status": {}}))
}

fn writer<'a>(manager: &'a str, subresource: &'a str, now: &str) -> Writer<'a> {
    Writer {
        manager,
        api_version: "v1".into(),
        subresource,
        now: now.to_string(),
    }
}

fn pod(labels: Value, image: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "uid": "u1",
            "creationTimestamp": "2026-01-01T00:00:00Z", "labels": labels},
        "spec": {"containers": [{"name": "c", "image": image}]},
        "status": {}
    })
}

fn managers(obj: &Value) -> Vec<String> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    let sub = e["subresource"].as_str().unwrap_or("");
                    format!(
                        "{}/{}{}",
                        e["manager"].as_str().unwrap_or(""),
                        e["operation"].as_str().unwrap_or(""),
                        if sub.is_empty() {
                            String::new()
                        } else {
                            format!("/{sub}")
                        }
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn fields_of(obj: &Value, manager: &str) -> Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .and_then(|entries| entries.iter().find(|e| e["manager"] == manager))
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

fn create(obj: &Value, manager: &str) -> Value {
    let mut new = obj.clone();
    track_update(
        &schema().zero(),
        &mut new,
        None,
        &schema(),
        &writer(manager, "", "2026-01-01T00:00:00Z"),
    );
    new
}

fn update(live: &Value, mut new: Value, manager: &str, sub: &str, now: &str) -> Value {
    let sent = new["metadata"]
        .as_object_mut()
        .and_then(|m| m.remove("managedFields"));
    track_update(
        live,
        &mut new,
        sent.as_ref(),
        &schema(),
        &writer(manager, sub, now),
    );
    new
}

#[test]
fn a_create_owns_what_it_set_but_not_the_server_metadata() {
    let created = create(&pod(json!({"app": "a"}), "i:1"), "kubectl-create");
    assert_eq!(managers(&created), ["kubectl-create/Update"]);
    let entry = &created["metadata"]["managedFields"][0];
    assert_eq!(entry["apiVersion"], "v1");
    assert_eq!(entry["time"], "2026-01-01T00:00:00Z");
    assert_eq!(entry["fieldsType"], "FieldsV1");
    assert!(entry.get("subresource").is_none());
    assert_eq!(
        entry["fieldsV1"],
        json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}})
    );
}

#[test]
fn a_sequence_of_writes_records_each_manager_as_upstream_does() {
    let created = create(&pod(json!({"app": "a"}), "i:1"), "kubectl-create");
    // kubectl label: adds a label.
    let labelled = update(
        &created,
        pod(json!({"app": "a", "tier": "t"}), "i:1"),
        "kubectl-label",
        "",
        "2026-01-01T00:00:01Z",
    );
    // kubectl patch: changes the image the create set.
    let mut next = labelled.clone();
    next["spec"]["containers"][0]["image"] = json!("i:2");
    let patched = update(&labelled, next, "kubectl-patch", "", "2026-01-01T00:00:02Z");
    assert_eq!(
        managers(&patched),
        [
            "kubectl-create/Update",
            "kubectl-label/Update",
            "kubectl-patch/Update"
        ]
    );
    assert_eq!(
        fields_of(&patched, "kubectl-label"),
        json!({"f:metadata": {"f:labels": {"f:tier": {}}}})
    );
    assert_eq!(
        fields_of(&patched, "kubectl-patch"),
        json!({"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {"f:image": {}}}}})
    );
    assert_eq!(
        fields_of(&patched, "kubectl-create"),
        json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:name": {}}}}})
    );
    // A status write is its own entry, and the same manager again merges into its entry.
    let mut status = patched.clone();
    status["status"] = json!({"phase": "Running"});
    let with_status = update(
        &patched,
        status,
        "kubelet",
        "status",
        "2026-01-01T00:00:03Z",
    );
    let mut relabel = with_status.clone();
    relabel["metadata"]["labels"]["tier"] = json!("u");
    relabel["metadata"]["labels"]["zone"] = json!("z");
    let relabelled = update(
        &with_status,
        relabel,
        "kubectl-label",
        "",
        "2026-01-01T00:00:04Z",
    );
    assert_eq!(
        managers(&relabelled),
        [
            "kubectl-create/Update",
            "kubectl-patch/Update",
            "kubelet/Update/status",
            "kubectl-label/Update"
        ]
    );
    assert_eq!(
        fields_of(&relabelled, "kubectl-label"),
        json!({"f:metadata": {"f:labels": {"f:tier": {}, "f:zone": {}}}})
    );
}

#[test]
fn removing_a_field_removes_it_from_every_manager_and_empty_entries_go() {
    let created = create(&pod(json!({"app": "a"}), "i:1"), "kubectl-create");
    let labelled = update(
        &created,
        pod(json!({"app": "a", "tier": "t"}), "i:1"),
        "kubectl-label",
        "",
        "2026-01-01T00:00:01Z",
    );
    let unlabelled = update(
        &labelled,
        pod(json!({"app": "a"}), "i:1"),
        "kubectl-label",
        "",
        "2026-01-01T00:00:02Z",
    );
    assert_eq!(managers(&unlabelled), ["kubectl-create/Update"]);
}

#[test]
fn a_write_that_changes_nothing_keeps_the_entries_and_their_times() {
    let created = create(&pod(json!({"app": "a"}), "i:1"), "kubectl-create");
    let same = update(
        &created,
        pod(json!({"app": "a"}), "i:1"),
        "kubectl-replace",
        "",
        "2026-01-01T00:00:09Z",
    );
    assert_eq!(
        same["metadata"]["managedFields"],
        created["metadata"]["managedFields"]
    );
}

#[test]
fn sent_managed_fields_follow_upstreams_rules() {
    let created = create(&pod(json!({"app": "a"}), "i:1"), "kubectl-create");
    let live_entries = created["metadata"]["managedFields"].clone();
    let custom = json!([{"manager": "mine", "operation": "Update", "apiVersion": "v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}}}]);
    let with = |sent: Value, sub: &str| {
        let mut new = pod(json!({"app": "a"}), "i:1");
        new["metadata"]["managedFields"] = sent;
        managers(&update(
            &created,
            new,
            "writer",
            sub,
            "2026-01-01T00:00:05Z",
        ))
    };
    // (sent managedFields, subresource, managers after)
    let cases = [
        (json!([]), "", vec![]),
        (json!([{}]), "", vec![]),
        (custom.clone(), "", vec!["mine/Update".to_string()]),
        (
            custom.clone(),
            "status",
            vec!["kubectl-create/Update".to_string()],
        ),
        (
            json!([{"manager": "x", "operation": "Bogus", "apiVersion": "v1", "fieldsType": "FieldsV1"}]),
            "",
            vec!["kubectl-create/Update".to_string()],
        ),
        (
            json!([{"manager": "x", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV2"}]),
            "",
            vec!["kubectl-create/Update".to_string()],
        ),
        (live_entries, "", vec!["kubectl-create/Update".to_string()]),
    ];
    for (i, (sent, sub, want)) in cases.into_iter().enumerate() {
        assert_eq!(with(sent, sub), want, "case {i}");
    }
}

#[test]
fn an_object_with_no_managed_fields_stays_untracked_on_update() {
    let live = pod(json!({"app": "a"}), "i:1");
    let updated = update(
        &live,
        pod(json!({"app": "b"}), "i:1"),
        "kubectl-edit",
        "",
        "2026-01-01T00:00:05Z",
    );
    assert!(updated["metadata"].get("managedFields").is_none());
}

#[test]
fn past_ten_update_managers_the_oldest_merge_into_ancient_changes() {
    let mut obj = create(&pod(json!({}), "i:1"), "kubectl-create");
    for i in 0..11 {
        let mut next = obj.clone();
        next["metadata"]["labels"][format!("l{i}")] = json!("v");
        obj = update(
            &obj,
            next,
            &format!("m{i:02}"),
            "",
            &format!("2026-01-01T00:01:{i:02}Z"),
        );
    }
    let names = managers(&obj);
    assert_eq!(names.len(), MAX_UPDATE_MANAGERS);
    assert_eq!(names[0], "ancient-changes/Update");
    assert_eq!(
        fields_of(&obj, "ancient-changes")["f:metadata"]["f:labels"],
        // The create's empty `labels` map, then the first two labels.
        json!({".": {}, "f:l0": {}, "f:l1": {}})
    );
}

#[test]
fn entries_sort_apply_first_then_by_time_then_by_manager() {
    let entry = |manager: &str, operation: &str, time: &str| Entry {
        manager: manager.into(),
        operation: operation.into(),
        api_version: "v1".into(),
        time: Some(time.into()),
        subresource: String::new(),
        fields: FieldSet::new(),
    };
    let list = encode(&[
        entry("b", UPDATE, "2026-01-01T00:00:01Z"),
        entry("z", APPLY, "2026-01-01T00:00:09Z"),
        entry("a", UPDATE, "2026-01-01T00:00:01Z"),
        entry("c", UPDATE, "2026-01-01T00:00:00Z"),
    ]);
    let order: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["manager"].as_str())
        .collect();
    assert_eq!(order, ["z", "c", "a", "b"]);
}

// --- server-side apply ----------------------------------------------------------------------

fn apply_schema() -> PatchSchema {
    schema()
        .merge_list("spec.containers.ports", "containerPort")
        .list_map_keys("spec.containers.ports", &["containerPort", "protocol"])
        .key_default("spec.containers.ports.protocol", json!("TCP"))
}

fn applied(live: &Value, config: &Value, manager: &str, force: bool) -> Result<Value, Conflicts> {
    apply(
        live,
        config,
        &apply_schema(),
        &writer(manager, "", "2026-01-01T00:00:10Z"),
        force,
    )
}

fn config(labels: Value, image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": labels},
        "spec": {"containers": [{"name": "c", "image": image}]}})
}

#[test]
fn merge_follows_the_schema() {
    // (live, config, merged)
    let cases = [
        (
            json!({"a": 1, "m": {"x": 1, "y": 2}}),
            json!({"m": {"y": 3, "z": 4}}),
            json!({"a": 1, "m": {"x": 1, "y": 3, "z": 4}}),
        ),
        (
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c", "image": "1"}]}}),
            json!({"spec": {"containers": [{"name": "c", "image": "2"}, {"name": "d"}]}}),
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c", "image": "2"}, {"name": "d"}]}}),
        ),
        (
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}),
            json!({"spec": {"containers": [{"name": "b", "image": "x"}, {"name": "a"}]}}),
            json!({"spec": {"containers": [{"name": "b", "image": "x"}, {"name": "a"}]}}),
        ),
        (
            json!({"spec": {"tolerations": [{"key": "a"}]}}),
            json!({"spec": {"tolerations": [{"key": "b"}]}}),
            json!({"spec": {"tolerations": [{"key": "b"}]}}),
        ),
        (
            json!({"metadata": {"finalizers": ["x", "y"]}}),
            json!({"metadata": {"finalizers": ["z"]}}),
            json!({"metadata": {"finalizers": ["x", "y", "z"]}}),
        ),
        (
            json!({"a": {"b": 1}}),
            json!({"a": "now a string"}),
            json!({"a": "now a string"}),
        ),
    ];
    let schema = apply_schema();
    for (i, (live, config, want)) in cases.into_iter().enumerate() {
        assert_eq!(
            merge(Some(&live), Some(&config), schema.root()),
            Some(want),
            "case {i}"
        );
    }
}

#[test]
fn applied_fields_are_what_the_configuration_sets() {
    let cases = [
        (
            config(json!({"app": "a"}), "i"),
            json!({"f:metadata": {"f:labels": {"f:app": {}}, "f:name": {}}, "f:apiVersion": {}, "f:kind": {},
                "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}}),
        ),
        (
            json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "protocol": "TCP"}]}], "tolerations": [{"key": "a"}], "securityContext": {}}}),
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:name": {}, "f:ports": {
                "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}}},
                "f:securityContext": {}, "f:tolerations": {}}}),
        ),
        (
            json!({"metadata": {"finalizers": ["x"]}}),
            json!({"f:metadata": {"f:finalizers": {"v:\"x\"": {}}}}),
        ),
    ];
    for (i, (config, want)) in cases.into_iter().enumerate() {
        assert_eq!(
            applied_fields(&config, apply_schema().root()).to_fields_v1(),
            want,
            "case {i}"
        );
    }
}

#[test]
fn an_apply_creates_and_owns_exactly_what_it_applied() {
    let created = applied(
        &apply_schema().zero(),
        &config(json!({"app": "a"}), "i:1"),
        "kubectl",
        false,
    )
    .expect("no conflict");
    assert_eq!(managers(&created), ["kubectl/Apply"]);
    assert_eq!(created["spec"]["containers"][0]["image"], "i:1");
    assert_eq!(
        fields_of(&created, "kubectl"),
        json!({"f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}})
    );
}

#[test]
fn conflicts_name_the_other_manager_and_the_field_as_upstream_does() {
    let live = create(&pod(json!({"app": "a"}), "i:1"), "kubectl-create");
    // (config, manager, force, Err(message) or the managers after)
    type Case<'a> = (Value, &'a str, bool, Result<Vec<&'a str>, &'a str>);
    let cases: Vec<Case<'_>> = vec![
        (config(json!({"app": "a"}), "i:1"), "kubectl", false, Ok(vec!["kubectl/Apply", "kubectl-create/Update"])),
        (
            config(json!({"app": "a"}), "i:2"),
            "kubectl",
            false,
            Err("Apply failed with 1 conflict: conflict with \"kubectl-create\" using v1: .spec.containers[name=\"c\"].image"),
        ),
        (
            config(json!({"app": "b"}), "i:2"),
            "kubectl",
            false,
            Err("Apply failed with 2 conflicts: conflicts with \"kubectl-create\" using v1:\n- .metadata.labels.app\n- .spec.containers[name=\"c\"].image"),
        ),
        (config(json!({"app": "b"}), "i:2"), "kubectl", true, Ok(vec!["kubectl/Apply", "kubectl-create/Update"])),
    ];
    for (i, (config, manager, force, want)) in cases.into_iter().enumerate() {
        match (applied(&live, &config, manager, force), want) {
            (Ok(obj), Ok(want)) => assert_eq!(managers(&obj), want, "case {i}"),
            (Err(c), Err(want)) => assert_eq!(c.message(), want, "case {i}"),
            (got, want) => panic!("case {i}: got {got:?}, want {want:?}"),
        }
    }
    let forced =
        applied(&live, &config(json!({"app": "b"}), "i:2"), "kubectl", true).expect("forced");
    assert_eq!(
        fields_of(&forced, "kubectl-create"),
        json!({"f:metadata": {"f:labels": {}}, "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:name": {}}}}})
    );
}

#[test]
fn an_apply_removes_what_it_no_longer_applies_unless_another_manager_owns_it() {
    let first = applied(
        &apply_schema().zero(),
        &config(json!({"a": "1", "b": "2"}), "i"),
        "kubectl",
        false,
    )
    .expect("create");
    let second = applied(&first, &config(json!({"a": "1"}), "i"), "kubectl", false).expect("apply");
    assert_eq!(second["metadata"]["labels"], json!({"a": "1"}));
    // The same label also applied by another manager stays.
    let shared = applied(&first, &config(json!({"b": "2"}), "i"), "other", false).expect("shared");
    let third = applied(&shared, &config(json!({"a": "1"}), "i"), "kubectl", false).expect("apply");
    assert_eq!(third["metadata"]["labels"], json!({"a": "1", "b": "2"}));
    assert_eq!(managers(&third), ["kubectl/Apply", "other/Apply"]);
}

#[test]
fn an_object_without_managed_fields_is_owned_before_its_first_apply() {
    let live = pod(json!({"app": "a"}), "i:1");
    let err = applied(&live, &config(json!({"app": "a"}), "i:2"), "kubectl", false)
        .expect_err("conflict");
    assert_eq!(
        err.message(),
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using v1: .spec.containers[name=\"c\"].image"
    );
}

#[test]
fn kubectls_first_apply_takes_over_what_client_side_apply_set() {
    let mut live = create(
        &pod(json!({"app": "a"}), "i:1"),
        "kubectl-client-side-apply",
    );
    let last = config(json!({"app": "a"}), "i:1").to_string();
    live["metadata"]["annotations"] = json!({ LAST_APPLIED: last });
    let changed = config(json!({"app": "a"}), "i:2");
    let other = applied(&live, &changed, "someone", false).expect_err("others still conflict");
    assert_eq!(other.0.len(), 1);
    let upgraded = applied(&live, &changed, "kubectl", false).expect("kubectl takes over");
    assert_eq!(upgraded["spec"]["containers"][0]["image"], "i:2");
    let annotation = upgraded["metadata"]["annotations"][LAST_APPLIED]
        .as_str()
        .expect("kept");
    let annotation: Value = serde_json::from_str(annotation).expect("JSON");
    assert_eq!(annotation["spec"]["containers"][0]["image"], "i:2");
    // A field changed since the last client-side apply is still a conflict.
    let mut drifted = live.clone();
    drifted["spec"]["containers"][0]["image"] = json!("i:9");
    assert!(applied(&drifted, &changed, "kubectl", false).is_err());
}

#[test]
fn a_dropped_item_another_manager_changed_keeps_its_key() {
    let first = applied(
        &apply_schema().zero(),
        &config(json!({}), "i:1"),
        "kubectl",
        false,
    )
    .expect("create");
    let mut changed = first.clone();
    changed["spec"]["containers"][0]["image"] = json!("i:2");
    let patched = update(&first, changed, "kubectl-patch", "", "2026-01-01T00:00:05Z");
    let mut without = config(json!({}), "unused");
    without["spec"]["containers"] = json!([]);
    let after = applied(&patched, &without, "kubectl", false).expect("apply");
    assert_eq!(
        after["spec"]["containers"],
        json!([{"name": "c", "image": "i:2"}])
    );
}

#[test]
fn a_port_applied_without_its_protocol_is_the_tcp_port() {
    let mut live = pod(json!({}), "i");
    live["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "protocol": "TCP"}]);
    let live = create(&live, "kubectl-create");
    let mut cfg = config(json!({}), "i");
    cfg["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "name": "http"}]);
    let after = applied(&live, &cfg, "kubectl", false).expect("no conflict");
    assert_eq!(
        after["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}])
    );
    let port =
        &fields_of(&after, "kubectl")["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["f:ports"];
    assert!(
        port.get("k:{\"containerPort\":80,\"protocol\":\"TCP\"}")
            .is_some(),
        "{port}"
    );
}
