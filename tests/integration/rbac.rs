//! RBAC end to end with the real kubectl: Roles, ClusterRoles and their bindings made with
//! `kubectl create`, a matrix of users, groups and service accounts (by impersonation) each
//! checked with `kubectl auth can-i` and with a real request, `auth can-i --list`,
//! `auth whoami`, upstream's 403 wording, escalation refused, Table columns, and aggregation of
//! a new ClusterRole into `view`.

use std::time::{Duration, Instant};

use crate::harness::TestCluster;

/// Who a row acts as: a user and the groups added with `--as-group`.
fn identity(user: &str, groups: &[&str]) -> Vec<String> {
    let mut args = vec![format!("--as={user}")];
    args.extend(groups.iter().map(|g| format!("--as-group={g}")));
    args
}

/// Runs kubectl as `who` and returns (success, stdout, stderr).
fn kubectl_as(cluster: &TestCluster, who: &[String], args: &[&str]) -> (bool, String, String) {
    let mut all: Vec<&str> = who.iter().map(String::as_str).collect();
    all.extend_from_slice(args);
    let out = cluster.kubectl(&all);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `kubectl auth can-i`: "yes" with exit code 0, or "no" with exit code 1.
fn can_i(cluster: &TestCluster, who: &[String], verb: &str, resource: &str, ns: &str) -> bool {
    let mut args = vec!["auth", "can-i", verb, resource];
    if !ns.is_empty() {
        args.extend(["-n", ns]);
    }
    let mut all: Vec<&str> = who.iter().map(String::as_str).collect();
    all.extend_from_slice(&args);
    let out = cluster.kubectl(&all);
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match out.status.code() {
        Some(0) => {
            assert_eq!(stdout, "yes", "{args:?}");
            true
        }
        Some(1) => {
            assert!(stdout.starts_with("no"), "{args:?}: {stdout}");
            false
        }
        other => panic!(
            "kubectl auth can-i {args:?} exited {other:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Polls `check` until it holds or 30 s pass (the authorizer follows the objects by watch).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn users_groups_and_service_accounts_get_exactly_what_their_bindings_grant() {
    let cluster = TestCluster::builder().start().await;
    let ns = "rbac-matrix";
    cluster.kubectl_ok(&["create", "namespace", ns]);
    cluster.kubectl_ok(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list,watch",
        "--resource=pods",
        "-n",
        ns,
    ]);
    cluster.kubectl_ok(&[
        "create",
        "rolebinding",
        "alice-reads",
        "--role=pod-reader",
        "--user=alice",
        "-n",
        ns,
    ]);
    cluster.kubectl_ok(&[
        "create",
        "clusterrole",
        "cm-maker",
        "--verb=create,get",
        "--resource=configmaps",
    ]);
    cluster.kubectl_ok(&[
        "create",
        "rolebinding",
        "dev-cm",
        "--clusterrole=cm-maker",
        "--group=dev",
        "-n",
        ns,
    ]);
    cluster.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "robot-view",
        "--clusterrole=view",
        &format!("--serviceaccount={ns}:robot"),
    ]);

    let alice = identity("alice", &[]);
    let bob_in_dev = identity("bob", &["dev"]);
    let robot = identity(&format!("system:serviceaccount:{ns}:robot"), &[]);
    let other_robot = identity("system:serviceaccount:default:robot", &[]);
    eventually("alice's binding", || {
        can_i(&cluster, &alice, "list", "pods", ns)
    });
    eventually("the robot's binding", || {
        can_i(&cluster, &robot, "list", "deployments.apps", "default")
    });
    eventually("dev's binding", || {
        can_i(&cluster, &bob_in_dev, "create", "configmaps", ns)
    });

    // (who, verb, resource, namespace, a real request doing it, the 403 it gets if refused)
    type Row<'a> = (
        &'a [String],
        &'a str,
        &'a str,
        &'a str,
        Vec<&'a str>,
        Option<String>,
    );
    let forbidden = |user: &str, verb: &str, resource: &str, group: &str, ns: &str| {
        let shown = if group.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}.{group}")
        };
        Some(format!(
            "{shown} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" in the namespace \"{ns}\""
        ))
    };
    let rows: Vec<Row<'_>> = vec![
        (
            &alice,
            "list",
            "pods",
            ns,
            vec!["get", "pods", "-n", ns],
            None,
        ),
        (
            &alice,
            "list",
            "pods",
            "default",
            vec!["get", "pods", "-n", "default"],
            forbidden("alice", "list", "pods", "", "default"),
        ),
        (
            &alice,
            "create",
            "configmaps",
            ns,
            vec!["create", "configmap", "a", "-n", ns],
            forbidden("alice", "create", "configmaps", "", ns),
        ),
        (
            &bob_in_dev,
            "create",
            "configmaps",
            ns,
            vec!["create", "configmap", "b", "-n", ns],
            None,
        ),
        (
            &bob_in_dev,
            "create",
            "configmaps",
            "default",
            vec!["create", "configmap", "b", "-n", "default"],
            forbidden("bob", "create", "configmaps", "", "default"),
        ),
        (
            &bob_in_dev,
            "list",
            "pods",
            ns,
            vec!["get", "pods", "-n", ns],
            forbidden("bob", "list", "pods", "", ns),
        ),
        (
            &robot,
            "list",
            "deployments.apps",
            "default",
            vec!["get", "deployments", "-n", "default"],
            None,
        ),
        (
            &robot,
            "list",
            "pods",
            "kube-system",
            vec!["get", "pods", "-n", "kube-system"],
            None,
        ),
        (
            &robot,
            "list",
            "secrets",
            ns,
            vec!["get", "secrets", "-n", ns],
            forbidden(
                &format!("system:serviceaccount:{ns}:robot"),
                "list",
                "secrets",
                "",
                ns,
            ),
        ),
        (
            &robot,
            "create",
            "configmaps",
            ns,
            vec!["create", "configmap", "c", "-n", ns],
            forbidden(
                &format!("system:serviceaccount:{ns}:robot"),
                "create",
                "configmaps",
                "",
                ns,
            ),
        ),
        (
            &other_robot,
            "list",
            "pods",
            "default",
            vec!["get", "pods", "-n", "default"],
            forbidden(
                "system:serviceaccount:default:robot",
                "list",
                "pods",
                "",
                "default",
            ),
        ),
    ];
    for (who, verb, resource, namespace, request, refused) in rows {
        let allowed = can_i(&cluster, who, verb, resource, namespace);
        assert_eq!(
            allowed,
            refused.is_none(),
            "can-i {who:?} {verb} {resource} -n {namespace}"
        );
        let (ok, _, stderr) = kubectl_as(&cluster, who, &request);
        match refused {
            None => assert!(ok, "{who:?} {request:?}: {stderr}"),
            Some(message) => {
                assert!(!ok, "{who:?} {request:?} should be refused");
                // kubectl get prints `Error from server (Forbidden): `, kubectl create
                // `error: failed to create configmap: ` before the server's message.
                assert!(stderr.contains("orbidden"), "{stderr}");
                assert!(
                    stderr.trim_end().ends_with(&message),
                    "{who:?} {request:?}: {stderr}"
                );
            }
        }
    }

    // Non-resource paths: discovery and health for everyone, `/metrics` only when granted.
    let (ok, _, stderr) = kubectl_as(&cluster, &alice, &["get", "--raw", "/healthz"]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = kubectl_as(&cluster, &alice, &["get", "--raw", "/metrics"]);
    assert!(!ok);
    assert!(
        stderr.contains(r#"forbidden: User \"alice\" cannot get path \"/metrics\""#)
            || stderr.contains(r#"forbidden: User "alice" cannot get path "/metrics""#),
        "{stderr}"
    );
    assert!(!can_i(&cluster, &alice, "get", "/metrics", ""));
    cluster.kubectl_ok(&[
        "create",
        "clusterrole",
        "metrics-reader",
        "--verb=get",
        "--non-resource-url=/metrics",
    ]);
    cluster.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "alice-metrics",
        "--clusterrole=metrics-reader",
        "--user=alice",
    ]);
    eventually("alice's metrics binding", || {
        can_i(&cluster, &alice, "get", "/metrics", "")
    });
    let (ok, metrics, stderr) = kubectl_as(&cluster, &alice, &["get", "--raw", "/metrics"]);
    assert!(ok, "{stderr}");
    assert!(metrics.contains("apiserver_request_total"), "{metrics}");

    // What alice may do in the namespace, as `auth can-i --list` prints it.
    let (ok, list, stderr) = kubectl_as(&cluster, &alice, &["auth", "can-i", "--list", "-n", ns]);
    assert!(ok, "{stderr}");
    let line = |resource: &str| {
        list.lines()
            .find(|l| l.split_whitespace().next() == Some(resource))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    assert_eq!(
        line("pods").as_deref(),
        Some("pods [] [] [get list watch]"),
        "{list}"
    );
    assert_eq!(
        line("selfsubjectaccessreviews.authorization.k8s.io").as_deref(),
        Some("selfsubjectaccessreviews.authorization.k8s.io [] [] [create]"),
        "{list}"
    );
    let url_rules = list
        .lines()
        .filter(|l| l.starts_with(' '))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "));
    assert!(
        url_rules.clone().any(|l| l == "[/api/*] [] [get]"),
        "{list}"
    );
    assert!(
        url_rules.clone().any(|l| l == "[/version] [] [get]"),
        "{list}"
    );
    assert!(line("configmaps").is_none(), "{list}");

    // Who the server thinks the caller is.
    let (ok, whoami, stderr) = kubectl_as(&cluster, &bob_in_dev, &["auth", "whoami"]);
    assert!(ok, "{stderr}");
    let whoami: Vec<String> = whoami
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        whoami,
        [
            "ATTRIBUTE VALUE",
            "Username bob",
            "Groups [dev system:authenticated]"
        ]
    );

    // Table columns as kube-apiserver prints them.
    let wide = cluster.kubectl_ok(&["get", "rolebindings", "-n", ns, "-o", "wide"]);
    let header: Vec<&str> = wide
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    );
    let alice_row: Vec<&str> = wide
        .lines()
        .find(|l| l.starts_with("alice-reads"))
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(alice_row[1], "Role/pod-reader");
    assert_eq!(alice_row[3], "alice");
    let crb = cluster.kubectl_ok(&["get", "clusterrolebinding", "robot-view", "-o", "wide"]);
    assert!(crb.contains("ClusterRole/view"), "{crb}");
    assert!(crb.contains(&format!("{ns}/robot")), "{crb}");
    let roles = cluster.kubectl_ok(&["get", "clusterrole", "cm-maker"]);
    let header: Vec<&str> = roles
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "CREATED", "AT"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_and_bindings_that_grant_more_than_their_writer_holds_are_refused() {
    let cluster = TestCluster::builder().start().await;
    let ns = "rbac-escalation";
    cluster.kubectl_ok(&["create", "namespace", ns]);
    cluster.kubectl_ok(&[
        "create",
        "role",
        "role-writer",
        "--verb=get,list,create",
        "--resource=roles,rolebindings,pods",
        "-n",
        ns,
    ]);
    cluster.kubectl_ok(&[
        "create",
        "rolebinding",
        "carol",
        "--role=role-writer",
        "--user=carol",
        "-n",
        ns,
    ]);
    let carol = identity("carol", &["team"]);
    eventually("carol's binding", || {
        can_i(&cluster, &carol, "create", "roles", ns)
    });

    // A role within what carol holds is fine; one beyond it is refused with upstream's text.
    let (ok, _, stderr) = kubectl_as(
        &cluster,
        &carol,
        &[
            "create",
            "role",
            "reader",
            "--verb=get,list",
            "--resource=pods",
            "-n",
            ns,
        ],
    );
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = kubectl_as(
        &cluster,
        &carol,
        &[
            "create",
            "role",
            "deleter",
            "--verb=get,delete",
            "--resource=pods,secrets",
            "-n",
            ns,
        ],
    );
    assert!(!ok);
    assert!(
        stderr.trim_end().ends_with(
        "roles.rbac.authorization.k8s.io \"deleter\" is forbidden: user \"carol\" (groups=[\"team\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"delete\"]}"
        ),
        "{stderr}"
    );
    // Binding a role she holds entirely is fine; binding `admin` is not.
    let (ok, _, stderr) = kubectl_as(
        &cluster,
        &carol,
        &[
            "create",
            "rolebinding",
            "dave-reads",
            "--role=reader",
            "--user=dave",
            "-n",
            ns,
        ],
    );
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = kubectl_as(
        &cluster,
        &carol,
        &[
            "create",
            "rolebinding",
            "dave-admin",
            "--clusterrole=admin",
            "--user=dave",
            "-n",
            ns,
        ],
    );
    assert!(!ok);
    assert!(
        stderr.contains("rolebindings.rbac.authorization.k8s.io \"dave-admin\" is forbidden: user \"carol\" (groups=[\"team\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:"),
        "{stderr}"
    );
    // With `bind` on that ClusterRole she may bind it without holding it.
    cluster.kubectl_ok(&[
        "create",
        "clusterrole",
        "admin-binder",
        "--verb=bind",
        "--resource=clusterroles",
        "--resource-name=admin",
    ]);
    cluster.kubectl_ok(&[
        "create",
        "rolebinding",
        "carol-binds",
        "--clusterrole=admin-binder",
        "--user=carol",
        "-n",
        ns,
    ]);
    eventually("carol's bind right", || {
        kubectl_as(
            &cluster,
            &carol,
            &[
                "create",
                "rolebinding",
                "dave-admin",
                "--clusterrole=admin",
                "--user=dave",
                "-n",
                ns,
            ],
        )
        .0
    });
    eventually("dave's admin binding", || {
        can_i(&cluster, &identity("dave", &[]), "delete", "secrets", ns)
    });
    // A binding whose role is missing is reported in the refusal.
    cluster.kubectl_ok(&[
        "create",
        "rolebinding",
        "erin-ghost",
        "--role=ghost",
        "--user=erin",
        "-n",
        ns,
    ]);
    eventually("the dangling binding", || {
        let (_, _, stderr) =
            kubectl_as(&cluster, &identity("erin", &[]), &["get", "pods", "-n", ns]);
        stderr.trim()
            == format!("Error from server (Forbidden): pods is forbidden: User \"erin\" cannot list resource \"pods\" in API group \"\" in the namespace \"{ns}\": RBAC: role.rbac.authorization.k8s.io \"ghost\" not found")
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_role_labelled_aggregate_to_view_is_aggregated_into_view_edit_and_admin() {
    let cluster = TestCluster::builder().start().await;
    // The bootstrap policy is in place: view aggregates the built-in read rules.
    let view = cluster.kubectl_ok(&["get", "clusterrole", "view", "-o", "json"]);
    assert!(view.contains("\"deployments\""), "{view}");
    let manifest = r#"{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "widget-reader",
            "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [{"apiGroups": [""], "resources": ["podtemplates"], "verbs": ["get", "list"]}]}"#;
    let out = cluster.kubectl_stdin(&["create", "-f", "-"], Some(manifest));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for role in ["view", "edit", "admin"] {
        eventually(&format!("podtemplates in {role}"), || {
            cluster
                .kubectl_ok(&[
                    "get",
                    "clusterrole",
                    role,
                    "-o",
                    "jsonpath={.rules[*].resources}",
                ])
                .contains("podtemplates")
        });
    }
    cluster.kubectl_ok(&[
        "create",
        "rolebinding",
        "frank-view",
        "--clusterrole=view",
        "--user=frank",
        "-n",
        "default",
    ]);
    let frank = identity("frank", &[]);
    eventually("frank's view binding", || {
        can_i(&cluster, &frank, "list", "podtemplates", "default")
    });
    let (ok, _, stderr) = kubectl_as(&cluster, &frank, &["get", "podtemplates", "-n", "default"]);
    assert!(ok, "{stderr}");
    assert!(!can_i(
        &cluster,
        &frank,
        "delete",
        "podtemplates",
        "default"
    ));
    // Removing the label takes the rules out again.
    cluster.kubectl_ok(&[
        "label",
        "clusterrole",
        "widget-reader",
        "rbac.authorization.k8s.io/aggregate-to-view-",
    ]);
    eventually("podtemplates gone from view", || {
        !cluster
            .kubectl_ok(&[
                "get",
                "clusterrole",
                "view",
                "-o",
                "jsonpath={.rules[*].resources}",
            ])
            .contains("podtemplates")
    });
    eventually("frank's podtemplates right gone", || {
        !can_i(&cluster, &frank, "list", "podtemplates", "default")
    });
    cluster.kubectl_ok(&["delete", "clusterrole", "widget-reader"]);
    cluster.kubectl_ok(&["delete", "rolebinding", "frank-view", "-n", "default"]);
}
