//! Unit tests of the protobuf transcoder: envelopes, messages, special types, watch frames,
//! round trips, malformed bodies and the bytes kubectl really sends.

use serde_json::json;

use super::schema::{msg, one, Message};
use super::*;

/// A message from (field number, wire bytes) pairs, as a test writes one by hand.
fn message(fields: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (number, bytes) in fields {
        put_len(*number, bytes, &mut out);
    }
    out
}

fn varint_field(number: u32, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(number, v, &mut out);
    out
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = message(&[(1, api_version.into()), (2, kind.into())]);
    let mut out = MAGIC.to_vec();
    out.extend(message(&[
        (1, type_meta),
        (2, raw.to_vec()),
        (3, vec![]),
        (4, vec![]),
    ]));
    out
}

/// Go's zero `time.Time` as upstream's Time message carries it when a generator writes it.
fn zero_time() -> Vec<u8> {
    varint_field(1, GO_ZERO_TIME as u64)
}

/// A Namespace as upstream's generated marshaller writes `kubectl create namespace dev`: every
/// non-pointer field present, most of them empty.
fn gogo_namespace() -> Vec<u8> {
    let meta = [
        message(&[
            (1, b"dev".to_vec()),
            (2, vec![]),
            (3, vec![]),
            (4, vec![]),
            (5, vec![]),
            (8, zero_time()),
        ]),
        varint_field(7, 0),
    ]
    .concat();
    let raw = message(&[(1, meta), (2, vec![]), (3, message(&[(1, vec![])]))]);
    envelope("v1", "Namespace", &raw)
}

#[test]
fn a_namespace_decodes_without_its_zero_fields() {
    let value = decode_object(&gogo_namespace()).expect("decodes");
    assert_eq!(
        value,
        json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "dev"}, "spec": {}, "status": {}})
    );
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web", "namespace": "default", "uid": "0b1c",
            "resourceVersion": "42", "generation": 1,
            "creationTimestamp": "2026-01-02T03:04:05Z",
            "labels": {"app": "web", "empty": ""},
            "annotations": {"note": "ü ✓"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1",
                "uid": "9", "controller": true}],
            "managedFields": [{"manager": "kubectl", "operation": "Update",
                "apiVersion": "v1", "time": "2026-01-02T03:04:05Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:containers": {}}}}]
        },
        "spec": {
            "containers": [{
                "name": "c", "image": "busybox:1", "command": ["sh", "-c", "sleep 1"],
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}},
                "livenessProbe": {"httpGet": {"path": "/", "port": "http"},
                    "periodSeconds": 10},
                "readinessProbe": {"tcpSocket": {"port": 8080}},
                "env": [{"name": "A", "value": "1"},
                    {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}],
                "tty": true
            }],
            "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1Gi"}},
                {"name": "s", "secret": {"secretName": "x", "defaultMode": 420}}],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": false,
            "nodeName": "n1",
            "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 30}]
        },
        "status": {
            "phase": "Running", "podIP": "10.0.0.2",
            "startTime": "2026-01-02T03:04:06Z",
            "conditions": [{"type": "Ready", "status": "True",
                "lastTransitionTime": "2026-01-02T03:04:07Z"}]
        }
    })
}

#[test]
fn objects_round_trip_through_protobuf() {
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "n1", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40,
            "renewTime": "2026-01-02T03:04:05.123456Z"}});
    let event = json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "e", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
        "reason": "Scheduled", "count": 1, "type": "Normal",
        "eventTime": "2026-01-02T03:04:05.000001Z"});
    let status = json!({"apiVersion": "v1", "kind": "Status", "metadata": {},
        "status": "Failure", "message": "pods \"x\" not found", "reason": "NotFound",
        "details": {"name": "x", "kind": "pods"}, "code": 404});
    let list = json!({"apiVersion": "v1", "kind": "PodList",
        "metadata": {"resourceVersion": "7", "continue": "abc"}, "items": [pod()]});
    let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": "web", "namespace": "default"},
        "deleteOptions": {"gracePeriodSeconds": 0, "dryRun": ["All"]}});
    // A list's items carry no TypeMeta in protobuf, as upstream's do not.
    let mut bare = pod();
    if let Some(obj) = bare.as_object_mut() {
        obj.remove("apiVersion");
        obj.remove("kind");
    }
    let list_back = json!({"apiVersion": "v1", "kind": "PodList",
        "metadata": {"resourceVersion": "7", "continue": "abc"}, "items": [bare]});
    let node = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
        "spec": {"podCIDR": "10.0.1.0/24", "podCIDRs": ["10.0.1.0/24"], "unschedulable": true,
            "taints": [{"key": "k", "effect": "NoSchedule", "timeAdded": "2026-01-02T03:04:05Z"}]},
        "status": {"capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "allocatable": {"cpu": "1900m"},
            "conditions": [{"type": "Ready", "status": "True",
                "lastHeartbeatTime": "2026-01-02T03:04:05Z", "reason": "KubeletReady"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"kubeletVersion": "v1.32.0", "architecture": "amd64"},
            "images": [{"names": ["rkube/pause:0.1.0"], "sizeBytes": 1_130_000}]}});
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "view", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}]},
        "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]},
                  {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]});
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "b", "namespace": "default"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
                     {"kind": "ServiceAccount", "name": "robot", "namespace": "default"}]});
    let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "metadata": {},
        "spec": {"resourceAttributes": {"namespace": "default", "verb": "get", "resource": "pods"}},
        "status": {"allowed": true, "reason": "RBAC: allowed"}});
    let cases = [
        (role.clone(), role),
        (binding.clone(), binding),
        (review.clone(), review),
        (node.clone(), node),
        (pod(), pod()),
        (lease.clone(), lease),
        (event.clone(), event),
        (status.clone(), status),
        (list, list_back),
        (eviction.clone(), eviction),
    ];
    for (object, want) in cases {
        let bytes = encode_object(&object).expect("a known kind");
        assert!(bytes.starts_with(MAGIC));
        let back = decode_object(&bytes).expect("decodes");
        assert_eq!(back, want);
        // And protobuf → JSON → protobuf gives the same bytes.
        let again = encode_object(&back).expect("known");
        assert_eq!(again, bytes);
    }
}

#[test]
fn special_messages_are_json_scalars() {
    let cases: &[(Kind, Vec<u8>, Option<Value>)] = &[
        (
            Kind::Time,
            varint_field(1, 1_767_323_045),
            Some(json!("2026-01-02T03:04:05Z")),
        ),
        (Kind::Time, vec![], None),
        (Kind::Time, zero_time(), None),
        (
            Kind::MicroTime,
            [varint_field(1, 1_767_323_045), varint_field(2, 123_456_789)].concat(),
            Some(json!("2026-01-02T03:04:05.123456Z")),
        ),
        (
            Kind::Quantity,
            message(&[(1, b"100m".to_vec())]),
            Some(json!("100m")),
        ),
        (Kind::IntOrString, varint_field(2, 8080), Some(json!(8080))),
        (
            Kind::IntOrString,
            [varint_field(1, 1), message(&[(3, b"http".to_vec())])].concat(),
            Some(json!("http")),
        ),
        (
            Kind::FieldsV1,
            message(&[(1, br#"{"f:a":{}}"#.to_vec())]),
            Some(json!({"f:a": {}})),
        ),
        (
            Kind::RawExtension,
            message(&[(1, b"[1,2]".to_vec())]),
            Some(json!([1, 2])),
        ),
        (Kind::RawExtension, vec![], None),
        (Kind::Str, b"x".to_vec(), Some(json!("x"))),
        (Kind::Str, vec![], None),
        (Kind::Bytes, b"\x00\xff".to_vec(), Some(json!("AP8="))),
    ];
    for (kind, bytes, want) in cases {
        let got = decode_value(&SCHEMA, *kind, Wire::Len(bytes), 1).expect("decodes");
        assert_eq!(&got, want, "{kind:?} {bytes:?}");
    }
    let scalars: &[(Kind, Wire<'_>, Value)] = &[
        (Kind::Bool, Wire::Varint(0), json!(false)),
        (Kind::I32, Wire::Varint(u64::MAX), json!(-1)),
        (Kind::I64, Wire::Varint(1 << 40), json!(1_u64 << 40)),
        (Kind::F64, Wire::Fixed64(1.5_f64.to_bits()), json!(1.5)),
    ];
    for (kind, wire, want) in scalars {
        assert_eq!(scalar(*kind, *wire).as_ref(), Some(want), "{kind:?}");
    }
}

#[test]
fn repeated_scalars_arrive_packed_or_unpacked() {
    // ContainerRestartRuleOnExitCodes.values is `repeated int32`.
    let unpacked = [varint_field(2, 1), varint_field(2, 2)].concat();
    let mut packed_run = Vec::new();
    encode_varint(1, &mut packed_run);
    encode_varint(2, &mut packed_run);
    let packed = message(&[(2, packed_run)]);
    let m = SCHEMA
        .message("core.v1.ContainerRestartRuleOnExitCodes")
        .expect("in the table");
    for body in [unpacked, packed] {
        let got = decode_message(&SCHEMA, m, &body, 1).expect("decodes");
        assert_eq!(Value::Object(got), json!({"values": [1, 2]}));
    }
}

#[test]
fn inline_fields_stand_in_their_parent() {
    // Volume.volumeSource (field 2) is embedded in Go: its fields are the Volume's own.
    let host_path = message(&[(1, b"/data".to_vec()), (2, vec![])]);
    let source = message(&[(1, host_path)]);
    let volume = message(&[(1, b"v".to_vec()), (2, source)]);
    let m = SCHEMA.message("core.v1.Volume").expect("in the table");
    let got = decode_message(&SCHEMA, m, &volume, 1).expect("decodes");
    assert_eq!(
        Value::Object(got),
        json!({"name": "v", "hostPath": {"path": "/data"}})
    );
}

#[test]
fn watch_frames_carry_the_whole_object_encoding() {
    let object = encode_object(&pod()).expect("known");
    let frame = watch_frame("MODIFIED", &object);
    let len = u32::from_be_bytes(frame[..4].try_into().expect("four bytes")) as usize;
    assert_eq!(len, frame.len() - 4);
    let m = SCHEMA.message("meta.v1.WatchEvent").expect("in the table");
    let event = decode_message(&SCHEMA, m, &frame[4..], 1).expect("decodes");
    assert_eq!(
        Value::Object(event),
        json!({"type": "MODIFIED", "object": pod()})
    );
}

/// A message that holds itself, to nest deeper than any served kind can.
static RECURSIVE: &[Message] = &[msg("t.Node", &[one(1, "child", Kind::Msg("t.Node"))])];
const RECURSIVE_SCHEMA: Schema = Schema {
    kinds: &[("v1", "Node", "t.Node")],
    messages: RECURSIVE,
};

fn nested(levels: usize) -> Vec<u8> {
    let mut raw = Vec::new();
    for _ in 0..levels {
        raw = message(&[(1, raw)]);
    }
    envelope("v1", "Node", &raw)
}

#[test]
fn malformed_bodies_are_errors_worded_as_upstream() {
    let ns = gogo_namespace();
    let raw_start = ns.len() - {
        // The raw object: everything after the TypeMeta field, less the two empty trailers.
        let type_meta_len = 2 + 2 + 2 + "Namespace".len() + 2 + 2;
        ns.len() - MAGIC.len() - type_meta_len
    };
    let _ = raw_start;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "no magic",
            b"{\"kind\":\"Namespace\"}".to_vec(),
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]",
        ),
        (
            "magic only",
            MAGIC.to_vec(),
            "Object 'Kind' is missing in 'runtime.TypeMeta{APIVersion:\"\", Kind:\"\"}'",
        ),
        ("truncated", ns[..ns.len() - 7].to_vec(), "unexpected EOF"),
        (
            "truncated varint",
            [MAGIC, &[0x0a, 0xff, 0xff][..]].concat(),
            "unexpected EOF",
        ),
        (
            "overlong varint",
            [MAGIC, &[0x0a][..], &[0xff; 11][..]].concat(),
            "proto: integer overflow",
        ),
        (
            "length beyond the body",
            [MAGIC, &[0x12, 0x7f, 0x01][..]].concat(),
            "unexpected EOF",
        ),
        (
            "unknown kind",
            envelope("v1", "ResourceQuota", &[]),
            "no kind \"ResourceQuota\" is registered for version \"v1\"",
        ),
        (
            "bad wire type in the object",
            envelope("v1", "Namespace", &varint_field(1, 3)),
            "proto: wrong wireType = 0 for field Metadata",
        ),
        (
            "illegal wire type",
            envelope("v1", "Namespace", &[0x0f]),
            "proto: illegal wireType 7 for field 1",
        ),
        (
            "tag zero",
            envelope("v1", "Namespace", &[0x02, 0x00]),
            "proto: illegal tag 0 (wire type 2)",
        ),
        (
            "invalid UTF-8",
            envelope("v1", "Namespace", &message(&[(1, message(&[(1, vec![0xff])]))])),
            "invalid UTF-8",
        ),
    ];
    for (name, body, want) in cases {
        let got = decode_object(&body).expect_err(name);
        assert!(got.0.contains(want), "{name}: {got}");
    }
    assert!(decode_envelope(&RECURSIVE_SCHEMA, &nested(90), ("", ""), 0).is_ok());
    let deep = decode_envelope(&RECURSIVE_SCHEMA, &nested(101), ("", ""), 0)
        .expect_err("too deep")
        .error;
    assert!(deep.0.contains("maximum nesting depth of 100"), "{deep}");
}

#[test]
fn a_three_mebibyte_body_decodes_or_fails_without_panicking() {
    let big = "x".repeat(3 * 1024 * 1024 - 200);
    let mut ns = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "big", "annotations": {"a": big}}});
    let bytes = encode_object(&ns).expect("known");
    assert!(bytes.len() <= 3 * 1024 * 1024);
    assert_eq!(decode_object(&bytes).expect("decodes"), ns);
    // The same body cut anywhere, or with one byte changed, is an error or an object.
    for cut in [5, 100, bytes.len() / 2, bytes.len() - 1] {
        assert!(decode_object(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut flipped = bytes.clone();
    for at in (4..60).step_by(3) {
        flipped[at] ^= 0x5a;
        let _ = decode_object(&flipped);
    }
    ns["metadata"]["annotations"] = json!({});
}

#[test]
fn unknown_fields_are_skipped() {
    let raw = [
        message(&[(1, message(&[(1, b"dev".to_vec())]))]),
        varint_field(99, 5),
        message(&[(98, b"future".to_vec())]),
    ]
    .concat();
    let got = decode_object(&envelope("v1", "Namespace", &raw)).expect("decodes");
    assert_eq!(
        got,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}})
    );
}

#[test]
fn kinds_outside_the_table_are_not_encoded_and_odd_values_are_left_out() {
    let table = json!({"apiVersion": "meta.k8s.io/v1", "kind": "Table", "rows": []});
    assert_eq!(encode_object(&table), None);
    let number = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": 5}});
    let bytes = encode_object(&number).expect("known");
    assert_eq!(
        decode_object(&bytes).expect("decodes")["metadata"]["name"],
        "5",
        "a number stands in for a string"
    );
    // A value that does not fit its field is left out; the rest of the object is written.
    let odd = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "l", "labels": ["not", "a", "map"]},
        "spec": {"holderIdentity": "n1", "renewTime": "yesterday", "leaseDurationSeconds": "x"}});
    let bytes = encode_object(&odd).expect("known");
    assert_eq!(
        decode_object(&bytes).expect("decodes"),
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "l"}, "spec": {"holderIdentity": "n1"}})
    );
}

/// Bodies kubectl v1.32 sent (taken from its `-v=10` request dumps): `create namespace dev`,
/// `debug web --copy-to=web-copy --image=rkube/pause:0.1.0 --container=dbg`, and
/// `debug node/pbx-control-plane --image=rkube/pause:0.1.0`. Each decodes to the JSON beside it.
#[test]
fn bodies_kubectl_sent_decode_to_their_json() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protobuf");
    for name in ["namespace", "pod-debug-copy", "pod-debug-node"] {
        let body = std::fs::read(dir.join(format!("{name}.bin"))).expect("fixture");
        let got = decode_object(&body).expect("decodes");
        let path = dir.join(format!("{name}.json"));
        let want: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("expected JSON"))
                .expect("JSON");
        assert_eq!(got, want, "{name}");
        // Encoding the JSON again and decoding it gives the same object.
        let again = encode_object(&got).expect("known");
        assert_eq!(decode_object(&again).expect("decodes"), want, "{name}");
        // The watch cache counts an event's protobuf form at its JSON's size.
        let json = serde_json::to_vec(&got).expect("JSON");
        assert!(
            again.len() <= json.len(),
            "{name}: {} > {}",
            again.len(),
            json.len()
        );
    }
}

/// What client-go's typed clients send besides objects: DeleteOptions (under any group's
/// apiVersion, as upstream registers it in each) and a Binding.
#[test]
fn delete_options_and_bindings_decode() {
    let options = [
        varint_field(1, 0),
        message(&[(2, message(&[(1, b"uid-1".to_vec())]))]),
        message(&[(4, b"Foreground".to_vec()), (5, b"All".to_vec())]),
    ]
    .concat();
    for api_version in ["v1", "meta.k8s.io/v1", "policy/v1"] {
        let got =
            decode_object(&envelope(api_version, "DeleteOptions", &options)).expect("decodes");
        assert_eq!(
            got,
            json!({"apiVersion": api_version, "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                "preconditions": {"uid": "uid-1"}, "propagationPolicy": "Foreground",
                "dryRun": ["All"]})
        );
    }
    let binding = message(&[
        (1, message(&[(1, b"web".to_vec())])),
        (2, message(&[(1, b"Node".to_vec()), (3, b"n1".to_vec())])),
    ]);
    let got = decode_object(&envelope("v1", "Binding", &binding)).expect("decodes");
    assert_eq!(
        got,
        json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web"},
            "target": {"kind": "Node", "name": "n1"}})
    );
}

/// Arbitrary bytes after the magic, and a valid Pod with bytes changed or cut, decode to an
/// object or to an error: never a panic.
#[test]
fn arbitrary_bytes_never_panic() {
    // A small xorshift generator: the same bytes on every run.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let len = (next() % 64) as usize;
        let mut body = MAGIC.to_vec();
        body.extend((0..len).map(|_| next() as u8));
        let _ = decode_object(&body);
    }
    let pod = encode_object(&pod()).expect("known");
    for _ in 0..3000 {
        let mut body = pod.clone();
        for _ in 0..1 + next() % 4 {
            let at = MAGIC.len() + (next() as usize) % (body.len() - MAGIC.len());
            body[at] = next() as u8;
        }
        let cut = MAGIC.len() + (next() as usize) % (body.len() - MAGIC.len());
        let _ = decode_object(&body);
        let _ = decode_object(&body[..cut]);
    }
}

/// A failure is worded as upstream's handlers word it: naming the body's kind when the
/// envelope was read, else the kind the endpoint wanted and the start of the body.
#[test]
fn body_errors_name_the_kinds() {
    let target = ("v1", "Pod");
    let bad_object = envelope("v1", "Pod", &varint_field(1, 3));
    let e = decode_body(&bad_object, target).expect_err("bad");
    assert_eq!(
        e.message("Pod", &bad_object),
        "Pod in version \"v1\" cannot be handled as a Pod: proto: wrong wireType = 0 for field Metadata"
    );
    let json = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}"#;
    let e = decode_body(json, target).expect_err("no magic");
    assert_eq!(
        e.message("Pod", json),
        "the object provided is unrecognized (must be of type Pod): provided data does not appear to be a protobuf message, expected prefix [107 56 115 0] ({\"apiVersion\":\"v1\",\"kind\":\"Pod ...)"
    );
    let cut = [MAGIC, &[0x0a, 0xff][..]].concat();
    let e = decode_body(&cut, target).expect_err("cut");
    assert_eq!(
        e.message("Pod", &cut),
        "the object provided is unrecognized (must be of type Pod): unexpected EOF (6b3873000aff)"
    );
    let quota = envelope("v1", "ResourceQuota", &[]);
    let e = decode_body(&quota, target).expect_err("not served");
    assert_eq!(
        e.message("Pod", &quota),
        "ResourceQuota in version \"v1\" cannot be handled as a Pod: no kind \"ResourceQuota\" is registered for version \"v1\" in scheme \"k8s.io/kubernetes/pkg/api/legacyscheme/scheme.go:30\""
    );
    // An envelope without a kind is read as the endpoint's kind.
    let bare = envelope("", "", &message(&[(1, message(&[(1, b"p".to_vec())]))]));
    assert_eq!(
        decode_body(&bare, target).expect("defaults"),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})
    );
}

/// `kubectl create deployment` sends protobuf in which every value field is present: its
/// zeros must not appear in the stored Deployment, while `replicas: 0` (a pointer) stays.
#[test]
fn a_deployment_decodes_without_its_value_fields_zeros() {
    let sent = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "generation": 0},
        "spec": {"replicas": 0, "minReadySeconds": 0, "paused": false,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}, "generation": 0},
                "spec": {"containers": [{"name": "c", "image": "x", "stdin": false}],
                    "hostNetwork": false}}}});
    let bytes = encode_object(&sent).expect("encodes");
    let value = decode_object(&bytes).expect("decodes");
    assert_eq!(
        value,
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    );
}

/// A Job round-trips through protobuf; the zeros of its status counts (Go values) drop out,
/// while `ready: 0` (a pointer) stays.
#[test]
fn a_job_decodes_without_its_status_counts_zeros() {
    let sent = json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "pi"},
        "spec": {"completions": 3, "parallelism": 2, "backoffLimit": 6, "suspend": false,
            "completionMode": "NonIndexed", "activeDeadlineSeconds": 30,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}},
            "template": {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": "u"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}},
        "status": {"active": 0, "succeeded": 2, "failed": 0, "ready": 0,
            "startTime": "2024-01-01T00:00:00Z",
            "conditions": [{"type": "Complete", "status": "True", "reason": "CompletionsReached",
                "lastTransitionTime": "2024-01-01T00:00:10Z"}]}});
    let bytes = encode_object(&sent).expect("encodes");
    let value = decode_object(&bytes).expect("decodes");
    let mut want = sent.clone();
    let status = want["status"].as_object_mut().expect("status");
    status.remove("active");
    status.remove("failed");
    assert_eq!(value, want);
}

#[test]
fn named_slices_are_bare_json_arrays() {
    // `ExtraValue` is `repeated string items` in protobuf and a plain array in JSON.
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
        "metadata": {}, "status": {"userInfo": {"username": "system:serviceaccount:d:sa",
            "uid": "u1", "groups": ["system:serviceaccounts"],
            "extra": {"authentication.kubernetes.io/pod-name": ["web"],
                "authentication.kubernetes.io/credential-id": ["JTI=1"]}}}});
    let bytes = encode_object(&review).expect("encodes");
    let back = decode_object(&bytes).expect("decodes");
    assert_eq!(back["status"]["userInfo"], review["status"]["userInfo"]);
}

/// A CronJob round-trips through protobuf, its job template's Pod spec losing the Go zero
/// values a Pod's does, and its status keeping its Job references.
#[test]
fn a_cronjob_round_trips_and_its_job_templates_pod_zeros_drop_out() {
    let sent = json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {"schedule": "*/1 * * * *", "timeZone": "Europe/Paris", "suspend": false,
            "concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 30,
            "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
            "jobTemplate": {"metadata": {"labels": {"app": "hello"}},
                "spec": {"backoffLimit": 2, "template": {"spec": {"restartPolicy": "OnFailure",
                    "hostNetwork": false,
                    "containers": [{"name": "c", "image": "x", "stdin": false}]}}}}},
        "status": {"active": [{"kind": "Job", "namespace": "default", "name": "hello-28401069",
                "uid": "u1", "apiVersion": "batch/v1", "resourceVersion": "7"}],
            "lastScheduleTime": "2024-01-01T00:09:00Z",
            "lastSuccessfulTime": "2024-01-01T00:08:30Z"}});
    let bytes = encode_object(&sent).expect("encodes");
    let value = decode_object(&bytes).expect("decodes");
    let mut want = sent.clone();
    let pod = &mut want["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    pod.as_object_mut().expect("pod").remove("hostNetwork");
    pod["containers"][0]
        .as_object_mut()
        .expect("container")
        .remove("stdin");
    assert_eq!(value, want);
}
