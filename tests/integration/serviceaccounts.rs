//! ServiceAccounts with stock kubectl on a cluster from `rkube up`: every namespace is given
//! its `default` account and the `kube-root-ca.crt` ConfigMap (the cluster CA, byte for
//! byte) by the controller manager, each made again when deleted and put back when changed;
//! `kubectl create serviceaccount`, its table and upstream's validation and warning.

use std::time::{Duration, Instant};

use crate::up::UpCluster;

/// Polls `kubectl <args>` until its output satisfies `done`, for at most 30 s.
fn eventually(cluster: &UpCluster, args: &[&str], done: impl Fn(&str) -> bool) -> String {
    cluster.kubectl_until(args, Duration::from_secs(30), done)
}

#[tokio::test]
async fn every_namespace_gets_its_default_account_and_the_root_ca() {
    let cluster = UpCluster::start(None);
    let ca = std::fs::read_to_string(cluster.dir.path().join("certs").join("ca.crt"))
        .expect("the cluster CA");

    // The namespaces `rkube up` makes, and one made now.
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        eventually(
            &cluster,
            &["get", "sa", "default", "-n", ns, "-o", "name"],
            |t| t == "serviceaccount/default\n",
        );
    }
    cluster.kubectl_ok(&["create", "namespace", "team"]);
    let table = eventually(&cluster, &["get", "serviceaccounts", "-n", "team"], |t| {
        t.contains("default")
    });
    let header: Vec<&str> = table
        .lines()
        .next()
        .expect("header")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "SECRETS", "AGE"]);
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .expect("row")
        .split_whitespace()
        .collect();
    assert_eq!(&row[..2], ["default", "0"]);
    let published = eventually(
        &cluster,
        &[
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-n",
            "team",
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ],
        |t| !t.is_empty(),
    );
    assert_eq!(published, ca);
    let description = cluster.kubectl_ok(&[
        "get",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "team",
        "-o",
        "jsonpath={.metadata.annotations.kubernetes\\.io/description}",
    ]);
    assert!(
        description
            .starts_with("Contains a CA bundle that can be used to verify the kube-apiserver"),
        "{description}"
    );

    // Deleted, the account comes back as a new object.
    let uid = |cluster: &UpCluster| {
        cluster.kubectl_ok(&[
            "get",
            "sa",
            "default",
            "-n",
            "team",
            "-o",
            "jsonpath={.metadata.uid}",
        ])
    };
    let before = uid(&cluster);
    assert_eq!(
        cluster.kubectl_ok(&["delete", "sa", "default", "-n", "team"]),
        "serviceaccount \"default\" deleted\n"
    );
    eventually(
        &cluster,
        &[
            "get",
            "sa",
            "default",
            "-n",
            "team",
            "-o",
            "jsonpath={.metadata.uid}",
        ],
        |t| !t.is_empty() && t != before,
    );

    // Changed, the CA bundle is put back; deleted, it is published again.
    cluster.kubectl_ok(&[
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "team",
        "--type=merge",
        "-p",
        r#"{"data":{"ca.crt":"not a CA"}}"#,
    ]);
    let ca_in_team = [
        "get",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "team",
        "-o",
        "jsonpath={.data.ca\\.crt}",
    ];
    eventually(&cluster, &ca_in_team, |t| t == ca);
    cluster.kubectl_ok(&["delete", "configmap", "kube-root-ca.crt", "-n", "team"]);
    eventually(&cluster, &ca_in_team, |t| t == ca);

    // Accounts of one's own, with upstream's validation and warning.
    assert_eq!(
        cluster.kubectl_ok(&["create", "serviceaccount", "ci"]),
        "serviceaccount/ci created\n"
    );
    let err = cluster.kubectl_err(&["create", "serviceaccount", "Not_Valid"]);
    assert!(
        err.contains(r#"error: failed to create serviceaccount: ServiceAccount "Not_Valid" is invalid: metadata.name: Invalid value: "Not_Valid": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters"#),
        "{err}"
    );
    let out = cluster.kubectl(&[
        "annotate",
        "sa",
        "ci",
        "kubernetes.io/enforce-mountable-secrets=true",
    ]);
    assert!(out.status.success());
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(
        warning.contains("Warning: metadata.annotations[kubernetes.io/enforce-mountable-secrets]: deprecated in v1.32+; prefer separate namespaces to isolate access to mounted secrets"),
        "{warning}"
    );
    let described = cluster.kubectl_ok(&["describe", "sa", "ci"]);
    let field = |name: &str| {
        described
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in {described}"))
            .to_string()
    };
    assert_eq!(field("Name:"), "ci");
    assert_eq!(field("Image pull secrets:"), "<none>");
    assert_eq!(field("Mountable secrets:"), "<none>");
    assert_eq!(field("Tokens:"), "<none>");
    let names = cluster.kubectl_ok(&["get", "sa", "-o", "name"]);
    assert_eq!(names, "serviceaccount/ci\nserviceaccount/default\n");
}

/// A kubeconfig that reaches `cluster` with `token` as its only credential.
fn token_kubeconfig(cluster: &UpCluster, name: &str, token: &str) -> std::path::PathBuf {
    let field = |path: &str| {
        cluster.kubectl_ok(&[
            "config",
            "view",
            "--raw",
            "--minify",
            "-o",
            &format!("jsonpath={{.clusters[0].cluster.{path}}}"),
        ])
    };
    let (server, ca) = (field("server"), field("certificate-authority-data"));
    let path = cluster.dir.path().join(format!("{name}.kubeconfig"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"{server}\", certificate-authority-data: {ca}}}\nusers:\n- name: u\n  user: {{token: \"{token}\"}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u, namespace: default}}\ncurrent-context: x\n"
        ),
    )
    .expect("kubeconfig written");
    path
}

/// `kubectl` with another kubeconfig.
fn kubectl_as(kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs")
}

/// A token's lifetime in seconds, from its claims.
fn lifetime(claims: &serde_json::Value) -> i64 {
    let at = |name: &str| claims[name].as_i64().expect("a numeric date");
    at("exp") - at("iat")
}

/// The claims of a JWT, unverified.
fn claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

#[tokio::test]
async fn tokens_are_issued_bound_and_authenticated_as_upstream() {
    let cluster = UpCluster::start(None);
    eventually(&cluster, &["get", "sa", "default", "-o", "name"], |t| {
        t == "serviceaccount/default\n"
    });
    let uid = cluster.kubectl_ok(&["get", "sa", "default", "-o", "jsonpath={.metadata.uid}"]);

    let token = cluster.kubectl_ok(&["create", "token", "default"]);
    let token = token.trim();
    let c = claims(token);
    assert_eq!(c["sub"], "system:serviceaccount:default:default");
    assert_eq!(c["iss"], "https://kubernetes.default.svc.cluster.local");
    assert_eq!(
        c["aud"],
        serde_json::json!(["https://kubernetes.default.svc.cluster.local"])
    );
    assert_eq!(lifetime(&c), 3600);
    assert_eq!(c["kubernetes.io"]["namespace"], "default");
    assert_eq!(c["kubernetes.io"]["serviceaccount"]["uid"], uid.as_str());

    // The token is the account: who it is, and only what its bindings allow.
    let as_sa = token_kubeconfig(&cluster, "sa", token);
    let whoami = kubectl_as(
        &as_sa,
        &["auth", "whoami", "-o", "jsonpath={.status.userInfo}"],
    );
    let info: serde_json::Value = serde_json::from_slice(&whoami.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&whoami.stderr)));
    assert_eq!(info["username"], "system:serviceaccount:default:default");
    assert_eq!(info["uid"], uid.as_str());
    assert_eq!(
        info["extra"],
        serde_json::json!({"authentication.kubernetes.io/credential-id": [format!("JTI={}", c["jti"].as_str().expect("a jti"))]})
    );
    assert_eq!(
        info["groups"],
        serde_json::json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );
    let denied = kubectl_as(&as_sa, &["get", "pods"]);
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains(r#"pods is forbidden: User "system:serviceaccount:default:default" cannot list resource "pods" in API group "" in the namespace "default""#),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    cluster.kubectl_ok(&[
        "create",
        "rolebinding",
        "sa-view",
        "--clusterrole=view",
        "--serviceaccount=default:default",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kubectl_as(&as_sa, &["get", "pods"]).status.success() {
        assert!(Instant::now() < deadline, "the binding never took effect");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Authenticating reads the account from the watch cache, not from etcd: ten requests
    // with the token cost fewer than ten storage reads of accounts (none, but for the
    // cluster's own readers).
    let account_reads = || {
        let metrics = cluster.kubectl_ok(&["get", "--raw", "/metrics"]);
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(
                    r#"etcd_request_duration_seconds_count{operation="get",type="serviceaccounts"} "#,
                )
            })
            .map_or(0, |n| n.trim().parse::<u64>().expect("a count"))
    };
    let before = account_reads();
    for _ in 0..10 {
        assert!(kubectl_as(&as_sa, &["get", "pods"]).status.success());
    }
    let reads = account_reads() - before;
    assert!(
        reads < 10,
        "{reads} storage reads of accounts for 10 requests"
    );
    // The Python client, with the token from the same kubeconfig.
    let script = r#"
from kubernetes import client, config
config.load_kube_config()
pods = client.CoreV1Api().list_namespaced_pod("default")
print("python as the account: ok", len(pods.items))
"#;
    let out = crate::clients::python_with(&as_sa, &["-c", script]).await;
    assert!(out.contains("python as the account: ok"), "{out}");

    // kube-rs, with the same kubeconfig: the account may list Pods, and Secrets are 403.
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&as_sa).expect("kubeconfig"),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kube-rs reads the token kubeconfig");
    let client = kube::Client::try_from(config).expect("client");
    kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), "default")
        .list(&Default::default())
        .await
        .expect("kube-rs lists Pods as the account");
    match kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client, "default")
        .list(&Default::default())
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("Secrets should be forbidden to a viewer: {other:?}"),
    }

    // What a webhook or an aggregated server would ask: TokenReview and SubjectAccessReview.
    let review = |name: &str, manifest: String, jsonpath: &str| {
        let file = cluster.dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, manifest).expect("manifest written");
        let path = file.display().to_string();
        cluster.kubectl(&["create", "-f", &path, "-o", &format!("jsonpath={jsonpath}")])
    };
    let token_review = |name: &str, token: &str, audiences: &str| {
        review(
            name,
            format!("apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n  token: \"{token}\"\n  audiences: {audiences}\n"),
            "{.status.authenticated} {.status.user.username} {.status.audiences} {.status.error}",
        )
    };
    let out = token_review("review-ok", token, "[]");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        r#"true system:serviceaccount:default:default ["https://kubernetes.default.svc.cluster.local"] "#
    );
    let out = token_review("review-vault", token, "[vault]");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "   invalid bearer token"
    );
    let out = token_review("review-empty", "", "[]");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("token is required for TokenReview in authentication"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let access = |name: &str, subject: &str, verb: &str| {
        review(
            name,
            format!("apiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\nspec:\n{subject}  resourceAttributes: {{namespace: default, verb: {verb}, resource: pods}}\n"),
            "{.status.allowed}",
        )
    };
    let subject =
        "  user: system:serviceaccount:default:default\n  groups: [system:serviceaccounts]\n";
    assert_eq!(
        String::from_utf8_lossy(&access("sar-list", subject, "list").stdout),
        "true"
    );
    assert_eq!(
        String::from_utf8_lossy(&access("sar-delete", subject, "delete").stdout),
        "false"
    );
    let out = access("sar-nobody", "", "list");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(r#"SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid value: "": at least one of user or group must be specified"#),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let local = |name: &str, namespace: &str| {
        review(
            name,
            format!("apiVersion: authorization.k8s.io/v1\nkind: LocalSubjectAccessReview\nmetadata: {{namespace: default}}\nspec:\n{subject}  resourceAttributes: {{namespace: {namespace}, verb: list, resource: pods}}\n"),
            "{.metadata.namespace} {.status.allowed}",
        )
    };
    assert_eq!(
        String::from_utf8_lossy(&local("lsar", "default").stdout),
        "default true"
    );
    let out = local("lsar-elsewhere", "kube-system");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(r#"LocalSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes.namespace: Invalid value: "kube-system": must match metadata.namespace"#),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Bound to a Pod, a token lives as long as the Pod.
    cluster.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: holder}}\nspec:\n  terminationGracePeriodSeconds: 0\n  containers:\n  - {{name: c, image: {}, imagePullPolicy: Never, command: [sleep, '3600']}}\n",
        crate::up::TEST_IMAGE
    ));
    let bound = cluster.kubectl_ok(&[
        "create",
        "token",
        "default",
        "--bound-object-kind=Pod",
        "--bound-object-name=holder",
        "--duration=20m",
    ]);
    let bound = bound.trim();
    let c = claims(bound);
    assert_eq!(c["kubernetes.io"]["pod"]["name"], "holder");
    assert_eq!(lifetime(&c), 1200);
    let as_pod = token_kubeconfig(&cluster, "pod", bound);
    assert!(kubectl_as(&as_pod, &["get", "pods"]).status.success());
    cluster.kubectl_ok(&["delete", "pod", "holder", "--grace-period=0", "--force"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let out = kubectl_as(&as_pod, &["get", "pods"]);
        if !out.status.success() {
            break String::from_utf8_lossy(&out.stderr).into_owned();
        }
        assert!(Instant::now() < deadline, "the Pod's token outlived it");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        refused.contains("You must be logged in to the server (Unauthorized)"),
        "{refused}"
    );

    // What a request may not ask for, in upstream's words.
    let err = cluster.kubectl_err(&["create", "token", "default", "--duration=1m"]);
    assert!(
        err.contains(r#"TokenRequest.authentication.k8s.io "default" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"#),
        "{err}"
    );
    let err = cluster.kubectl_err(&[
        "create",
        "token",
        "default",
        "--bound-object-kind=Pod",
        "--bound-object-name=absent",
    ]);
    assert!(err.contains(r#"pods "absent" not found"#), "{err}");
    let raw = |name: &str, query: &str, body: &str| {
        let file = cluster.dir.path().join(format!("{name}.json"));
        std::fs::write(&file, body).expect("body written");
        let path = format!("/api/v1/namespaces/default/serviceaccounts/default/token{query}");
        cluster.kubectl_err(&["create", "--raw", &path, "-f", &file.display().to_string()])
    };
    for (name, query, body, want) in [
        (
            "typed",
            "",
            r#"{"spec": {"expirationSeconds": "an hour"}}"#,
            r#"TokenRequest in version "v1" cannot be handled as a TokenRequest: spec.expirationSeconds"#,
        ),
        (
            "renamed",
            "",
            r#"{"metadata": {"name": "other"}}"#,
            "name in URL does not match name in TokenRequest body",
        ),
        (
            "kind",
            "",
            r#"{"spec": {"boundObjectRef": {"kind": "ConfigMap", "name": "x"}}}"#,
            r#"cannot bind token for serviceaccount "default" to object of kind "ConfigMap""#,
        ),
        (
            "dry",
            "?dryRun=bogus",
            "{}",
            r#"dryRun: Unsupported value: []string{"bogus"}: supported values: "All""#,
        ),
        ("garbage", "", "not json", "couldn't get version/kind"),
    ] {
        let err = raw(name, query, body);
        assert!(err.contains(want), "{name}: {err}");
    }
    let err = cluster.kubectl_err(&["create", "token", "default", "--as=alice"]);
    assert!(
        err.contains(r#"serviceaccounts "default" is forbidden: User "alice" cannot create resource "serviceaccounts/token" in API group "" in the namespace "default""#),
        "{err}"
    );
    let err = cluster.kubectl_err(&["create", "token", "absent"]);
    assert!(
        err.contains(r#"serviceaccounts "absent" not found"#),
        "{err}"
    );

    // A forged token, and the account's own once the account is gone (even though the
    // controller makes a new `default` at once), are refused.
    let forged = format!("{}x", token);
    let as_forged = token_kubeconfig(&cluster, "forged", &forged);
    let out = kubectl_as(&as_forged, &["get", "pods"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unauthorized"));
    cluster.kubectl_ok(&["delete", "sa", "default"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = kubectl_as(&as_sa, &["get", "pods"]);
        if String::from_utf8_lossy(&out.stderr).contains("Unauthorized") {
            break;
        }
        assert!(Instant::now() < deadline, "the token outlived its account");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// ServiceAccount admission, as upstream's plugin: a Pod runs as `default` unless it names an
/// account, the account must exist (403 otherwise), and it gets the `kube-api-access-*`
/// volume in every container unless the Pod or its account turns automounting off.
#[tokio::test]
async fn pods_run_as_an_existing_account_with_its_token_volume() {
    let cluster = crate::harness::TestCluster::builder().start().await;
    let pod = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n{extra}  initContainers: [{{name: i, image: x}}]\n  containers: [{{name: a, image: x}}, {{name: b, image: x}}]\n"
        )
    };
    let apply = |manifest: &str| cluster.kubectl_stdin(&["apply", "-f", "-"], Some(manifest));
    let apply_ok = |manifest: &str| {
        let out = apply(manifest);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let spec_of = |name: &str| -> serde_json::Value {
        serde_json::from_str(&cluster.kubectl_ok(&["get", "pod", name, "-o", "jsonpath={.spec}"]))
            .expect("JSON")
    };
    apply_ok(&pod("plain", ""));
    let spec = spec_of("plain");
    assert_eq!(spec["serviceAccountName"], "default");
    let volumes = spec["volumes"].as_array().expect("volumes");
    assert_eq!(volumes.len(), 1);
    let name = volumes[0]["name"].as_str().expect("a name");
    assert!(
        name.starts_with("kube-api-access-") && name.len() == "kube-api-access-".len() + 5,
        "{name}"
    );
    assert_eq!(
        volumes[0]["projected"]["sources"][0]["serviceAccountToken"],
        serde_json::json!({"expirationSeconds": 3607, "path": "token"})
    );
    for list in ["initContainers", "containers"] {
        for c in spec[list].as_array().expect("containers") {
            assert_eq!(
                c["volumeMounts"],
                serde_json::json!([{"name": name, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]),
                "{c}"
            );
        }
    }

    let out = apply(&pod("ghost", "  serviceAccountName: missing\n"));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Error from server (Forbidden): error when creating \"STDIN\": pods \"ghost\" is forbidden: error looking up service account default/missing: serviceaccount \"missing\" not found"
    );

    apply_ok(&pod("quiet", "  automountServiceAccountToken: false\n"));
    let volumes = cluster.kubectl_ok(&["get", "pod", "quiet", "-o", "jsonpath={.spec.volumes}"]);
    assert_eq!(volumes, "");

    // An account that opts out, and its image pull secrets, which a Pod naming none inherits.
    let account = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: builder}\nautomountServiceAccountToken: false\nimagePullSecrets: [{name: registry}]\n";
    apply_ok(account);
    apply_ok(&pod("built", "  serviceAccountName: builder\n"));
    let spec = spec_of("built");
    assert!(spec.get("volumes").is_none(), "{spec}");
    assert_eq!(
        spec["imagePullSecrets"],
        serde_json::json!([{"name": "registry"}])
    );

    // A new namespace's first Pod waits for its `default` account rather than failing.
    cluster.kubectl_ok(&["create", "namespace", "fresh"]);
    let out = cluster.kubectl_stdin(
        &["apply", "-n", "fresh", "-f", "-"],
        Some(&pod("first", "")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
