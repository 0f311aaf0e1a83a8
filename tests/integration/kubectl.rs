//! The README's kubectl session, command by command, against a real cluster.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::harness::TestCluster;

fn columns(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[tokio::test]
async fn get_ns_lists_the_system_namespaces() {
    let cluster = TestCluster::builder().start().await;
    let out = cluster.kubectl_ok(&["get", "ns"]);
    let mut lines = out.lines();
    assert_eq!(
        columns(lines.next().expect("header")),
        ["NAME", "STATUS", "AGE"]
    );
    let names: Vec<&str> = lines.map(|l| columns(l)[0]).collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
    assert!(out.contains("Active"));
}

#[tokio::test]
async fn create_then_get_prints_a_pending_pod() {
    let cluster = TestCluster::builder().start().await;
    let out = cluster.kubectl_ok(&["create", "-f", "pod/db.yml"]);
    assert_eq!(out.trim(), "pod/db created");

    let out = cluster.kubectl_ok(&["get", "pods"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        columns(lines[0]),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    let row = columns(lines[1]);
    assert_eq!(&row[..4], ["db", "0/1", "Pending", "0"]);
    assert!(row[4].ends_with('s'), "age in seconds: {}", row[4]);

    let wide = cluster.kubectl_ok(&["get", "pods", "-o", "wide"]);
    assert_eq!(
        columns(wide.lines().next().expect("header")),
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ]
    );
    let row = columns(wide.lines().nth(1).expect("row"));
    assert_eq!(&row[5..], ["<none>", "<none>", "<none>", "<none>"]);

    assert_eq!(
        cluster.kubectl_ok(&["get", "po", "-o", "name"]).trim(),
        "pod/db"
    );
    assert_eq!(
        cluster.kubectl_ok(&[
            "get",
            "pods",
            "-o",
            "jsonpath={.items[*].spec.containers[*].name}"
        ]),
        "db"
    );
    assert_eq!(
        cluster.kubectl_ok(&[
            "get",
            "pod",
            "db",
            "-o",
            "jsonpath={.spec.containers[*].name}"
        ]),
        "db"
    );
    let labels = cluster.kubectl_ok(&["get", "pods", "--show-labels"]);
    assert!(labels.lines().next().expect("header").ends_with("LABELS"));
    assert!(labels.contains("type=db,vendor=MongoLabs"), "{labels}");
    let by_file = cluster.kubectl_ok(&["get", "-f", "pod/db.yml"]);
    assert!(by_file.lines().nth(1).expect("row").starts_with("db "));
}

#[tokio::test]
async fn stored_pod_is_defaulted_as_kube_apiserver_defaults_it() {
    let cluster = TestCluster::builder().start().await;
    cluster.kubectl_ok(&["create", "-f", "pod/db.yml"]);
    let json = cluster.kubectl_ok(&["get", "pod", "db", "-o", "json"]);
    let pod: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(pod["apiVersion"], "v1");
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(pod["metadata"]["namespace"], "default");
    assert!(pod["metadata"]["uid"]
        .as_str()
        .is_some_and(|u| u.len() == 36));
    assert!(pod["metadata"]["creationTimestamp"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    assert!(pod["metadata"]["resourceVersion"]
        .as_str()
        .is_some_and(|rv| rv.parse::<i64>().is_ok()));
    let spec = &pod["spec"];
    assert_eq!(spec["restartPolicy"], "Always");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(spec["schedulerName"], "default-scheduler");
    assert_eq!(spec["enableServiceLinks"], true);
    let c = &spec["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(pod["status"]["qosClass"], "BestEffort");

    let yaml = cluster.kubectl_ok(&["get", "pod", "db", "-o", "yaml"]);
    assert!(yaml.contains("restartPolicy: Always"));
    assert!(yaml.contains("phase: Pending"));
}

#[tokio::test]
async fn describe_shows_a_pending_pod() {
    let cluster = TestCluster::builder().start().await;
    cluster.kubectl_ok(&["create", "-f", "pod/db.yml"]);
    let out = cluster.kubectl_ok(&["describe", "pod", "db"]);
    // kubectl aligns the columns itself; compare each line with its spacing folded.
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for expected in [
        "Name: db",
        "Namespace: default",
        "Node: <none>",
        "Labels: type=db",
        "vendor=MongoLabs",
        "Status: Pending",
        "Image: mongo:3.3",
        "mongod",
        "--rest",
        "QoS Class: BestEffort",
        "Events: <none>",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "missing {expected:?} in:\n{out}"
        );
    }
}

/// `kubectl get pods -w` as a background process whose lines arrive on a channel.
struct Watcher {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Watcher {
    fn start(cluster: &TestCluster, args: &[&str]) -> Watcher {
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .arg("--cache-dir")
            .arg(cluster.dir.path().join("kube-cache"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl runs");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Watcher { child, lines }
    }

    /// The next line, waiting at most `timeout`.
    fn next(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn get_pods_watch_streams_label_changes_and_deletion() {
    let cluster = TestCluster::builder().start().await;
    cluster.kubectl_ok(&["create", "-f", "pod/db.yml"]);
    let watcher = Watcher::start(&cluster, &["get", "pods", "-w"]);
    let wait = Duration::from_secs(10);
    assert_eq!(
        columns(&watcher.next(wait).expect("header")),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    assert!(watcher.next(wait).expect("row").starts_with("db "));

    cluster.kubectl_ok(&["label", "pod", "db", "tier=backend"]);
    let row = watcher.next(wait).expect("a row for the label change");
    assert_eq!(&columns(&row)[..3], ["db", "0/1", "Pending"]);

    let out = cluster.kubectl_ok(&["delete", "-f", "pod/db.yml"]);
    assert_eq!(out.trim(), "pod \"db\" deleted");
    let row = watcher.next(wait).expect("a row for the deletion");
    assert!(row.starts_with("db "), "{row}");
    assert!(cluster
        .kubectl_ok(&["get", "pods", "-o", "name"])
        .trim()
        .is_empty());
}

#[tokio::test]
async fn apply_creates_then_patches() {
    let cluster = TestCluster::builder().start().await;
    let manifest = std::fs::read_to_string("pod/db.yml").expect("manifest");
    let out = cluster.kubectl_stdin(&["apply", "-f", "-"], Some(&manifest));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "pod/db created"
    );

    let out = cluster.kubectl_stdin(&["apply", "-f", "-"], Some(&manifest));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "pod/db unchanged"
    );

    let changed = manifest
        .replace("vendor: MongoLabs", "vendor: MongoLabs\n    tier: backend")
        .replace("mongo:3.3", "mongo:3.4");
    let out = cluster.kubectl_stdin(&["apply", "-f", "-"], Some(&changed));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "pod/db configured"
    );
    let image = cluster.kubectl_ok(&[
        "get",
        "pod",
        "db",
        "-o",
        "jsonpath={.spec.containers[0].image} {.metadata.labels.tier}",
    ]);
    assert_eq!(image, "mongo:3.4 backend");

    // Changing the command is not allowed on a Pod: upstream's 422.
    let immutable = changed.replace("[\"mongod\"]", "[\"mongo\"]");
    let out = cluster.kubectl_stdin(&["apply", "-f", "-"], Some(&immutable));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "Pod \"db\" is invalid: spec: Forbidden: pod updates may not change fields other than"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn label_annotate_and_patch_behave_as_upstream() {
    let cluster = TestCluster::builder().start().await;
    cluster.kubectl_ok(&["create", "-f", "pod/db.yml"]);
    assert_eq!(
        cluster
            .kubectl_ok(&["label", "pod", "db", "tier=backend"])
            .trim(),
        "pod/db labeled"
    );
    assert_eq!(
        cluster
            .kubectl_ok(&["annotate", "pod", "db", "owner=team-a"])
            .trim(),
        "pod/db annotated"
    );
    let err = cluster.kubectl_err(&["label", "pod", "db", "tier=front"]);
    assert!(
        err.contains("'tier' already has a value (backend), and --overwrite is false"),
        "{err}"
    );
    assert_eq!(
        cluster.kubectl_ok(&["label", "pod", "db", "tier-"]).trim(),
        "pod/db unlabeled"
    );

    let out = cluster.kubectl_ok(&[
        "patch",
        "pod",
        "db",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"labels":{"a":"1"}}}"#,
    ]);
    assert_eq!(out.trim(), "pod/db patched");
    cluster.kubectl_ok(&[
        "patch",
        "pod",
        "db",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/containers/0/image","value":"mongo:3.5"}]"#,
    ]);
    cluster.kubectl_ok(&[
        "patch",
        "pod",
        "db",
        "--type",
        "strategic",
        "-p",
        r#"{"spec":{"containers":[{"name":"db","image":"mongo:3.6"}]}}"#,
    ]);
    let got = cluster.kubectl_ok(&["get", "pod", "db", "-o", "jsonpath={.metadata.labels.a} {.metadata.annotations.owner} {.spec.containers[0].image} {.spec.containers[0].command[0]}"]);
    assert_eq!(got, "1 team-a mongo:3.6 mongod");

    let err = cluster.kubectl_err(&[
        "patch",
        "pod",
        "db",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"restartPolicy":"Never"}}"#,
    ]);
    assert!(
        err.contains("is invalid: spec: Forbidden: pod updates may not change fields"),
        "{err}"
    );
    let err = cluster.kubectl_err(&[
        "patch",
        "pod",
        "db",
        "--type",
        "json",
        "-p",
        r#"[{"op":"test","path":"/metadata/name","value":"nope"}]"#,
    ]);
    assert!(err.contains("testing value /metadata/name failed"), "{err}");
}

#[tokio::test]
async fn edit_saves_through_a_strategic_merge_patch() {
    let cluster = TestCluster::builder().start().await;
    cluster.kubectl_ok(&["create", "-f", "pod/db.yml"]);
    let editor = cluster.dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/vendor: MongoLabs/vendor: Edited/' \"$1\"\n",
    )
    .expect("editor");
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .arg("--cache-dir")
        .arg(cluster.dir.path().join("kube-cache"))
        .args(["edit", "pod", "db"])
        .env("KUBE_EDITOR", &editor)
        .output()
        .expect("kubectl edit runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "pod/db edited");
    assert_eq!(
        cluster.kubectl_ok(&[
            "get",
            "pod",
            "db",
            "-o",
            "jsonpath={.metadata.labels.vendor}"
        ]),
        "Edited"
    );
}

#[tokio::test]
async fn selectors_filter_like_upstream() {
    let cluster = TestCluster::builder().start().await;
    cluster.kubectl_ok(&["create", "-f", "pod/db.yml"]);
    cluster.kubectl_ok(&["run", "web", "--image=nginx:1.27", "--labels=type=web"]);
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["get", "pods", "-o", "name"];
        all.extend_from_slice(args);
        cluster
            .kubectl_ok(&all)
            .lines()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(names(&["-l", "type=db"]), ["pod/db"]);
    assert_eq!(names(&["-l", "vendor in (MongoLabs)"]), ["pod/db"]);
    assert_eq!(names(&["-l", "type!=db"]), ["pod/web"]);
    assert_eq!(names(&["-l", "!vendor"]), ["pod/web"]);
    assert_eq!(
        names(&["--field-selector", "status.phase=Pending"]),
        ["pod/db", "pod/web"]
    );
    assert_eq!(
        names(&["--field-selector", "spec.nodeName="]),
        ["pod/db", "pod/web"]
    );
    assert_eq!(names(&["--field-selector", "metadata.name=db"]), ["pod/db"]);
    assert!(names(&["--field-selector", "status.phase=Running"]).is_empty());
    let err = cluster.kubectl_err(&["get", "pods", "--field-selector", "spec.foo=x"]);
    assert!(err.contains("Error from server (BadRequest): Unable to find \"/v1, Resource=pods\" that match label selector \"\", field selector \"spec.foo=x\": field label not supported: spec.foo")
        || err.contains("field label not supported: spec.foo"), "{err}");
}

#[tokio::test]
async fn errors_read_as_upstream() {
    let cluster = TestCluster::builder().start().await;
    cluster.kubectl_ok(&["create", "-f", "pod/db.yml"]);
    let err = cluster.kubectl_err(&["create", "-f", "pod/db.yml"]);
    assert!(err.contains("Error from server (AlreadyExists): error when creating \"pod/db.yml\": pods \"db\" already exists"), "{err}");
    let err = cluster.kubectl_err(&["get", "pod", "nope"]);
    assert!(
        err.contains("Error from server (NotFound): pods \"nope\" not found"),
        "{err}"
    );
    // kubectl asks for the namespace after a 404 and names what is really missing.
    let err = cluster.kubectl_err(&["get", "pod", "db", "-n", "nowhere"]);
    assert!(
        err.contains("Error from server (NotFound): namespaces \"nowhere\" not found"),
        "{err}"
    );

    let create = |yaml: &str| {
        let out = cluster.kubectl_stdin(&["create", "-f", "-"], Some(yaml));
        assert!(!out.status.success(), "accepted: {yaml}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = create("apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: nowhere}\nspec: {containers: [{name: c, image: i}]}\n");
    assert!(err.contains("Error from server (NotFound): error when creating \"STDIN\": namespaces \"nowhere\" not found"), "{err}");
    let err = create("apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec: {containers: [{name: c, image: i}]}\n");
    assert!(err.contains("The Pod \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{err}");
    let err = create("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: c, image: i}, {name: c, image: j}]}\n");
    assert!(
        err.contains("spec.containers[1].name: Duplicate value: \"c\""),
        "{err}"
    );
    let err = create("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: []}\n");
    assert!(err.contains("spec.containers: Required value"), "{err}");
    let err = create("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {restartPolicy: Sometimes, containers: [{name: c, image: i}]}\n");
    assert!(err.contains("spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""), "{err}");
    let err = create("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: c, image: i, resources: {limits: {memory: 1.5.5Gi}}}]}\n");
    assert!(
        err.contains("quantities must match the regular expression"),
        "{err}"
    );
    let err = create("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: c, image: i, imagee: j}]}\n");
    assert!(
        err.contains("Error from server (BadRequest)")
            && err.contains("strict decoding error: unknown field \"spec.containers[0].imagee\""),
        "{err}"
    );
    let err = create("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: c, image: i, resources: {requests: {cpu: 2}, limits: {cpu: 1}}}]}\n");
    assert!(
        err.contains("must be less than or equal to cpu limit"),
        "{err}"
    );

    // A stale resourceVersion is a conflict.
    let stale = cluster.kubectl_ok(&["get", "pod", "db", "-o", "json"]);
    cluster.kubectl_ok(&["label", "pod", "db", "x=1"]);
    let out = cluster.kubectl_stdin(&["replace", "-f", "-"], Some(&stale));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Error from server (Conflict)")
            && err.contains("the object has been modified"),
        "{err}"
    );
    // Nothing was lost along the way.
    assert_eq!(
        cluster.kubectl_ok(&["get", "pod", "db", "-o", "jsonpath={.metadata.labels.x}"]),
        "1"
    );
}

/// `kubectl debug POD --image=…` adds an ephemeral container through
/// `pods/ephemeralcontainers`; the subresource keeps the rest of the Pod, refuses to change or
/// remove one already there (upstream's 422), and writes to the Pod itself cannot add one.
#[tokio::test]
async fn debug_adds_an_ephemeral_container_through_its_subresource() {
    let cluster = TestCluster::builder().start().await;
    cluster.kubectl_ok(&["create", "-f", "pod/db.yml"]);
    cluster.kubectl_ok(&[
        "debug",
        "db",
        "--image=busybox:1.36",
        "--container=debugger",
        "--target=db",
        "--",
        "sleep",
        "3600",
    ]);
    let names = cluster.kubectl_ok(&[
        "get",
        "pod",
        "db",
        "-o",
        "jsonpath={.spec.ephemeralContainers[*].name}:{.spec.ephemeralContainers[0].targetContainerName}:{.spec.ephemeralContainers[0].terminationMessagePolicy}",
    ]);
    assert_eq!(names, "debugger:db:File");

    let raw = cluster.kubectl_ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/db/ephemeralcontainers",
    ]);
    let pod: serde_json::Value = serde_json::from_str(&raw).expect("a Pod");
    assert_eq!(pod["kind"], "Pod");

    // Removing the container, or changing it, is refused.
    let err = cluster.kubectl_err(&[
        "patch",
        "pod",
        "db",
        "--subresource=ephemeralcontainers",
        "--type=json",
        "-p",
        r#"[{"op": "replace", "path": "/spec/ephemeralContainers/0/image", "value": "busybox:2"}]"#,
    ]);
    assert!(
        err.contains("existing ephemeral containers \"debugger\" may not be changed"),
        "{err}"
    );
    // The subresource writes nothing but ephemeral containers.
    cluster.kubectl_ok(&[
        "patch",
        "pod",
        "db",
        "--subresource=ephemeralcontainers",
        "--type=merge",
        "-p",
        r#"{"metadata": {"labels": {"debugged": "yes"}}}"#,
    ]);
    let labels = cluster.kubectl_ok(&[
        "get",
        "pod",
        "db",
        "-o",
        "jsonpath={.metadata.labels.debugged}",
    ]);
    assert_eq!(labels, "");
    // The Pod itself cannot take one.
    let err = cluster.kubectl_err(&[
        "patch",
        "pod",
        "db",
        "--type=json",
        "-p",
        r#"[{"op": "add", "path": "/spec/ephemeralContainers/-", "value": {"name": "x", "image": "busybox"}}]"#,
    ]);
    assert!(err.contains("pod updates may not change fields"), "{err}");
}

/// Upstream's pod template command tests: create from its fixture, print, read back, delete.
#[tokio::test]
async fn podtemplates_are_served_as_upstream_command_tests_use_them() {
    let cluster = TestCluster::builder().start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("podtemplate.json");
    std::fs::write(
        &file,
        r#"{"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "nginx"},
            "template": {"metadata": {"labels": {"name": "nginx"}},
              "spec": {"containers": [{"name": "nginx", "image": "nginx",
                "ports": [{"containerPort": 80}]}]}}}"#,
    )
    .expect("write the fixture");
    let path = file.to_str().expect("utf-8 path");
    assert_eq!(
        cluster.kubectl_ok(&["get", "podtemplates", "-o", "name"]),
        ""
    );
    assert_eq!(
        cluster.kubectl_ok(&["create", "-f", path]).trim(),
        "podtemplate/nginx created"
    );
    let out = cluster.kubectl_ok(&["get", "podtemplates"]);
    let lines: Vec<Vec<&str>> = out.lines().map(columns).collect();
    assert_eq!(
        lines,
        [
            vec!["NAME", "CONTAINERS", "IMAGES", "POD", "LABELS"],
            vec!["nginx", "nginx", "nginx", "name=nginx"],
        ]
    );
    let yaml = cluster.kubectl_ok(&["get", "podtemplates", "-o", "yaml"]);
    assert!(yaml.contains("image: nginx"), "{yaml}");
    assert_eq!(
        cluster.kubectl_ok(&[
            "get",
            "podtemplate",
            "nginx",
            "-o",
            "jsonpath={.metadata.generation}"
        ]),
        "1"
    );
    let err = cluster.kubectl_err(&[
        "patch",
        "podtemplate",
        "nginx",
        "-p",
        r#"{"template": {"spec": {"containers": [{"name": "nginx", "image": ""}]}}}"#,
    ]);
    assert!(
        err.contains("template.spec.containers[0].image: Required value"),
        "{err}"
    );
    assert_eq!(
        cluster
            .kubectl_ok(&["delete", "podtemplate", "nginx"])
            .trim(),
        "podtemplate \"nginx\" deleted"
    );
    assert_eq!(
        cluster.kubectl_ok(&["get", "podtemplates", "-o", "name"]),
        ""
    );
}

/// Upstream's cluster-management command tests (`node-management.sh`) on a Node without a
/// kubelet, as there: taints, cordon, and drain with dry runs that change nothing (a
/// server-side dry-run eviction must not mark a bound Pod for deletion), a pod selector that
/// evicts only what it selects, and the errors for conflicting arguments. The Pods' grace
/// period is 1 s so that the drain stops waiting for the evicted one after 2 s (its deletion
/// timestamp is the end of its grace period, as upstream sets it).
#[tokio::test]
async fn node_management_commands_work_as_upstream_tests_expect() {
    let cluster = TestCluster::builder().start().await;
    let create = |manifest: String| {
        let out = cluster.kubectl_stdin(&["create", "-f", "-"], Some(&manifest));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    create(r#"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "127.0.0.1"}}"#.into());
    for (name, label) in [("test-pod-1", r#""e": "f""#), ("test-pod-2", r#""c": "d""#)] {
        create(format!(
            r#"{{"kind": "Pod", "apiVersion": "v1",
                "metadata": {{"name": "{name}", "labels": {{{label}, "type": "test-pod"}}}},
                "spec": {{"nodeName": "127.0.0.1", "terminationGracePeriodSeconds": 1,
                    "containers": [{{"name": "container-1", "resources": {{}}, "image": "test-image"}}]}}}}"#
        ));
    }
    let get = |template: &str| {
        cluster.kubectl_ok(&[
            "get",
            "nodes",
            "127.0.0.1",
            "-o",
            &format!("go-template={template}"),
        ])
    };
    let taints = r#"{{range .spec.taints}}{{if eq .key "dedicated"}}{{.key}}={{.value}}:{{.effect}}{{end}}{{end}}"#;

    for dry in ["--dry-run=client", "--dry-run=server"] {
        cluster.kubectl_ok(&[
            "taint",
            "node",
            "127.0.0.1",
            dry,
            "dedicated=foo:PreferNoSchedule",
        ]);
    }
    assert_eq!(get(taints), "");
    cluster.kubectl_ok(&[
        "taint",
        "node",
        "127.0.0.1",
        "dedicated=foo:PreferNoSchedule",
    ]);
    assert_eq!(get(taints), "dedicated=foo:PreferNoSchedule");
    cluster.kubectl_ok(&["taint", "node", "127.0.0.1", "dedicated-"]);
    cluster.kubectl_ok(&["taint", "node", "127.0.0.1", "dedicated:PreferNoSchedule"]);
    assert_eq!(get(taints), "dedicated=<no value>:PreferNoSchedule");
    cluster.kubectl_ok(&[
        "taint",
        "node",
        "127.0.0.1",
        "--dry-run=server",
        "dedicated-",
    ]);
    assert_eq!(get(taints), "dedicated=<no value>:PreferNoSchedule");
    cluster.kubectl_ok(&["taint", "node", "127.0.0.1", "dedicated-"]);
    assert_eq!(get(taints), "");

    let unschedulable = "{{.spec.unschedulable}}";
    let pods = || {
        cluster.kubectl_ok(&["get", "pods", "-o", "go-template={{range .items}}{{.metadata.name}}{{if .metadata.deletionTimestamp}}(deleting){{end}},{{end}}"])
    };
    for dry in ["--dry-run=client", "--dry-run=server"] {
        cluster.kubectl_ok(&["cordon", "127.0.0.1", dry]);
        cluster.kubectl_ok(&["drain", "127.0.0.1", dry, "--force"]);
        cluster.kubectl_ok(&[
            "drain",
            "127.0.0.1",
            "--pod-selector",
            "e in (f)",
            dry,
            "--force",
        ]);
    }
    assert_eq!(get(unschedulable), "<no value>");
    assert_eq!(pods(), "test-pod-1,test-pod-2,", "dry runs evict nothing");

    let out = cluster.kubectl_ok(&[
        "drain",
        "127.0.0.1",
        "--force",
        "--pod-selector",
        "e in (f)",
        "--skip-wait-for-delete-timeout=1",
    ]);
    assert!(out.contains("evicting pod default/test-pod-1"), "{out}");
    assert_eq!(pods(), "test-pod-1(deleting),test-pod-2,");
    assert_eq!(get(unschedulable), "true");

    cluster.kubectl_ok(&["uncordon", "127.0.0.1"]);
    assert_eq!(get(unschedulable), "<no value>");
    for dry in ["--dry-run=client", "--dry-run=server"] {
        let out = cluster.kubectl_ok(&["uncordon", "127.0.0.1", dry]);
        assert!(out.contains("already uncordoned"), "{out}");
    }
    cluster.kubectl_ok(&["label", "node", "127.0.0.1", "test=label"]);
    let err = cluster.kubectl_err(&["drain", "127.0.0.1", "--selector", "test=label"]);
    assert!(err.contains("cannot specify both a node name"), "{err}");
    let out = cluster.kubectl_ok(&["cordon", "--selector", "test=label"]);
    assert!(out.contains("node/127.0.0.1 cordoned"), "{out}");
    let out = cluster.kubectl_ok(&["cordon", "--selector", "invalid=label"]);
    assert!(!out.contains("cordoned"), "{out}");
    assert_eq!(get(unschedulable), "true");
}
