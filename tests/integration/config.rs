//! ConfigMaps and Secrets with the stock kubectl: every `kubectl create configmap|secret` form,
//! the columns, upstream's validation (keys, types, sizes, `immutable`), `stringData`, the
//! `type` field selector.

use super::harness::TestCluster;

#[tokio::test]
async fn config_maps_are_created_read_and_frozen_as_upstream() {
    let cluster = TestCluster::builder().start().await;
    let dir = cluster.dir.path();
    std::fs::write(dir.join("app.properties"), "color=blue\n").expect("file");
    std::fs::write(dir.join("vars.env"), "# comment\nA=1\nB=two\n").expect("file");
    let file_arg = format!("--from-file={}", dir.join("app.properties").display());
    let env_arg = format!("--from-env-file={}", dir.join("vars.env").display());
    cluster.kubectl_ok(&[
        "create",
        "configmap",
        "literal",
        "--from-literal=k=v",
        "--from-literal=x=y",
        &file_arg,
    ]);
    cluster.kubectl_ok(&["create", "configmap", "env", &env_arg]);
    let table = cluster.kubectl_ok(&["get", "cm"]);
    // The namespace's own `kube-root-ca.crt` may be listed too, as on any cluster.
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|row| row.first() != Some(&"kube-root-ca.crt"))
        .collect();
    assert_eq!(rows[0], ["NAME", "DATA", "AGE"]);
    assert_eq!(&rows[1][..2], ["env", "2"]);
    assert_eq!(&rows[2][..2], ["literal", "3"]);
    let data = cluster.kubectl_ok(&["get", "configmap", "env", "-o", "jsonpath={.data}"]);
    assert_eq!(data, r#"{"A":"1","B":"two"}"#);
    let yaml = cluster.kubectl_ok(&["get", "cm", "literal", "-o", "yaml"]);
    assert!(
        yaml.contains("app.properties: |\n    color=blue\n"),
        "{yaml}"
    );
    assert!(
        !yaml.contains("generation"),
        "a ConfigMap has no generation:\n{yaml}"
    );
    let described = cluster.kubectl_ok(&["describe", "cm", "literal"]);
    // kubectl prints the keys in a Go map's order, which varies.
    assert!(described.contains("\nData\n====\n"), "{described}");
    for entry in [
        "\napp.properties:\n----\ncolor=blue\n",
        "\nk:\n----\nv\n",
        "\nx:\n----\ny\n",
    ] {
        assert!(described.contains(entry), "{entry:?} in {described}");
    }

    let err = cluster.kubectl_err(&["create", "configmap", "bad", "--from-literal=a b=1"]);
    assert!(
        err.contains("a valid config key must consist of alphanumeric characters"),
        "{err}"
    );

    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: frozen}\nimmutable: true\ndata: {a: \"1\"}\n";
    let path = dir.join("frozen.yaml");
    std::fs::write(&path, manifest).expect("manifest");
    cluster.kubectl_ok(&["apply", "-f", &path.display().to_string()]);
    let err = cluster.kubectl_err(&["patch", "cm", "frozen", "-p", r#"{"data":{"a":"2"}}"#]);
    assert!(err.contains("The ConfigMap \"frozen\" is invalid: data: Forbidden: field is immutable when `immutable` is set"), "{err}");
    let err = cluster.kubectl_err(&["patch", "cm", "frozen", "-p", r#"{"immutable":false}"#]);
    assert!(
        err.contains("immutable: Forbidden: field is immutable when `immutable` is set"),
        "{err}"
    );
    cluster.kubectl_ok(&["label", "cm", "frozen", "still=editable"]);

    // More than 1 MiB of data is refused.
    std::fs::write(dir.join("big"), vec![b'x'; 1024 * 1024 + 1]).expect("file");
    let big_arg = format!("--from-file={}", dir.join("big").display());
    let err = cluster.kubectl_err(&["create", "configmap", "big", &big_arg]);
    assert!(
        err.contains("Too long: must have at most 1048576 bytes"),
        "{err}"
    );
}

#[tokio::test]
async fn secrets_of_every_type_are_validated_as_upstream() {
    let cluster = TestCluster::builder().start().await;
    let dir = cluster.dir.path();
    cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "plain",
        "--from-literal=user=admin",
        "--from-literal=password=hunter2",
    ]);
    let certs = cluster.certs();
    cluster.kubectl_ok(&[
        "create",
        "secret",
        "tls",
        "web-tls",
        &format!("--cert={}", certs.join("ca.crt").display()),
        &format!("--key={}", certs.join("ca.key").display()),
    ]);
    cluster.kubectl_ok(&[
        "create",
        "secret",
        "docker-registry",
        "pull",
        "--docker-server=registry.example",
        "--docker-username=u",
        "--docker-password=p",
    ]);
    let table = cluster.kubectl_ok(&["get", "secrets"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAME", "TYPE", "DATA", "AGE"]);
    assert_eq!(&rows[1][..3], ["plain", "Opaque", "2"]);
    assert_eq!(
        &rows[2][..3],
        ["pull", "kubernetes.io/dockerconfigjson", "1"]
    );
    assert_eq!(&rows[3][..3], ["web-tls", "kubernetes.io/tls", "2"]);
    let tls = cluster.kubectl_ok(&[
        "get",
        "secrets",
        "--field-selector",
        "type=kubernetes.io/tls",
        "-o",
        "name",
    ]);
    assert_eq!(tls, "secret/web-tls\n");
    let password =
        cluster.kubectl_ok(&["get", "secret", "plain", "-o", "jsonpath={.data.password}"]);
    assert_eq!(password, "aHVudGVyMg==");

    let err = cluster.kubectl_err(&[
        "create",
        "secret",
        "generic",
        "half-tls",
        "--type=kubernetes.io/tls",
        "--from-literal=tls.crt=x",
    ]);
    assert!(
        err.contains("Secret \"half-tls\" is invalid: data[tls.key]: Required value"),
        "{err}"
    );
    let err = cluster.kubectl_err(&[
        "create",
        "secret",
        "generic",
        "ssh",
        "--type=kubernetes.io/ssh-auth",
        "--from-literal=other=x",
    ]);
    assert!(
        err.contains("data[ssh-privatekey]: Required value"),
        "{err}"
    );

    // stringData is folded into data on create and on update, and never stored itself.
    let manifest =
        "apiVersion: v1\nkind: Secret\nmetadata: {name: strings}\nstringData: {token: abc}\n";
    let path = dir.join("strings.yaml");
    std::fs::write(&path, manifest).expect("manifest");
    cluster.kubectl_ok(&["create", "-f", &path.display().to_string()]);
    let stored = cluster.kubectl_ok(&["get", "secret", "strings", "-o", "json"]);
    let stored: serde_json::Value = serde_json::from_str(&stored).expect("json");
    assert_eq!(stored["data"]["token"], "YWJj");
    assert_eq!(stored["type"], "Opaque");
    assert!(stored.get("stringData").is_none(), "{stored}");
    cluster.kubectl_ok(&[
        "patch",
        "secret",
        "strings",
        "-p",
        r#"{"stringData":{"token":"xyz"}}"#,
    ]);
    let token = cluster.kubectl_ok(&["get", "secret", "strings", "-o", "jsonpath={.data.token}"]);
    assert_eq!(token, "eHl6");

    let err = cluster.kubectl_err(&[
        "patch",
        "secret",
        "plain",
        "-p",
        r#"{"type":"kubernetes.io/tls"}"#,
    ]);
    assert!(
        err.contains("type: Invalid value: \"kubernetes.io/tls\": field is immutable"),
        "{err}"
    );
}

/// The book's ConfigMap chapter (`cm/`) with a local image: a Pod whose ConfigMap does not exist yet
/// waits in `CreateContainerConfigError` with upstream's message, then starts once it is
/// created, with the values in its environment (`env` and `envFrom`); Secrets too. The kubelet
/// reads them as its node's identity, which may read only what its Pods refer to.
#[tokio::test]
async fn pods_take_their_environment_from_config_maps_and_secrets() {
    use crate::up::{UpCluster, TEST_IMAGE};
    let cluster = UpCluster::start(None);
    // The chapter's two Pods (`alpine-env.yml`, `alpine-env-all.yml`), its `alpine` image
    // replaced by the local test image: one names each key, the other takes the whole map.
    let pod = |name: &str, env: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: alpine\n    image: {TEST_IMAGE}\n    imagePullPolicy: Never\n    command: [\"sleep\"]\n    args: [\"100000\"]\n{env}"
        )
    };
    let keys = "    env:\n    - name: something\n      valueFrom:\n        configMapKeyRef:\n          name: my-config\n          key: something\n    - name: weather\n      valueFrom:\n        configMapKeyRef:\n          name: my-config\n          key: weather\n";
    let whole = "    envFrom:\n    - configMapRef:\n        name: my-config\n";
    cluster.apply(&pod("alpine-env", keys));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let waiting = loop {
        let reason = cluster.kubectl_ok(&[
            "get",
            "pod",
            "alpine-env",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.reason}: {.status.containerStatuses[0].state.waiting.message}",
        ]);
        if reason.starts_with("CreateContainerConfigError") {
            break reason;
        }
        assert!(std::time::Instant::now() < deadline, "still {reason:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(
        waiting,
        "CreateContainerConfigError: configmap \"my-config\" not found"
    );
    let events = cluster.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=alpine-env",
    ]);
    assert!(
        events.contains("Error: configmap \"my-config\" not found"),
        "{events}"
    );

    cluster.kubectl_ok(&[
        "create",
        "configmap",
        "my-config",
        "--from-literal=something=else",
        "--from-literal=weather=sunny",
    ]);
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/alpine-env",
        "--timeout=90s",
    ]);
    let env = cluster.kubectl_ok(&["exec", "alpine-env", "--", "env"]);
    assert!(
        env.contains("something=else\n") && env.contains("weather=sunny\n"),
        "{env}"
    );

    cluster.apply(&pod("alpine-env-all", whole));
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/alpine-env-all",
        "--timeout=60s",
    ]);
    let env = cluster.kubectl_ok(&["exec", "alpine-env-all", "--", "env"]);
    assert!(
        env.contains("something=else\n") && env.contains("weather=sunny\n"),
        "{env}"
    );

    cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=password=hunter2",
    ]);
    cluster.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: with-secret}}\nspec:\n  containers:\n  - name: c\n    image: {TEST_IMAGE}\n    imagePullPolicy: Never\n    command: [sleep, '3600']\n    env:\n    - name: PASSWORD\n      valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}\n"
    ));
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/with-secret",
        "--timeout=60s",
    ]);
    let password = cluster.kubectl_ok(&["exec", "with-secret", "--", "sh", "-c", "echo $PASSWORD"]);
    assert_eq!(password, "hunter2\n");

    // The node may read what its Pods refer to, and nothing else.
    let node = cluster.kubectl_ok(&[
        "get",
        "pod",
        "with-secret",
        "-o",
        "jsonpath={.spec.nodeName}",
    ]);
    let kubelet = cluster.kubeconfig_as(&format!("system:node:{node}"), &["system:nodes"]);
    let out = cluster.kubectl_with(&kubelet, &["get", "secret", "creds", "-o", "name"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "secret/creds\n");
    cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "unrelated",
        "--from-literal=a=b",
    ]);
    let out = cluster.kubectl_with(&kubelet, &["get", "secret", "unrelated"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("secrets \"unrelated\" is forbidden: User \"system:node:{node}\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\": no relationship found between node '{node}' and this object")),
        "{err}"
    );
}

/// Secrets are encrypted at rest with the key `rkube up` made (upstream's `aescbc` provider):
/// etcd holds ciphertext that names its provider and key, kubectl reads the Secret back, and
/// ConfigMaps stay plain JSON.
#[tokio::test]
async fn secrets_are_encrypted_at_rest_and_read_back_whole() {
    use crate::up::UpCluster;
    let cluster = UpCluster::start(None);
    cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "vault",
        "--from-literal=password=hunter2-correct-horse",
    ]);
    cluster.kubectl_ok(&[
        "create",
        "configmap",
        "plain",
        "--from-literal=k=visible-value",
    ]);
    let state = std::fs::read(cluster.state_dir().join("state.json")).expect("state.json");
    let state: serde_json::Value = serde_json::from_slice(&state).expect("state JSON");
    let url = state["etcd_url"].as_str().expect("etcd_url").to_string();
    let etcd = etcd_client::Client::connect([url], None)
        .await
        .expect("etcd");
    let kv = etcd.kv_client();
    let raw = |key: &'static str| {
        let mut kv = kv.clone();
        async move {
            let resp = kv.get(key, None).await.expect("etcd get");
            resp.kvs().first().expect("stored").value().to_vec()
        }
    };
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode("hunter2-correct-horse");
    let secret = raw("/registry/secrets/default/vault").await;
    assert!(
        secret.starts_with(b"k8s:enc:aescbc:v1:key1:"),
        "{}",
        String::from_utf8_lossy(&secret)
    );
    for needle in [
        encoded.as_bytes(),
        b"hunter2".as_slice(),
        b"vault".as_slice(),
    ] {
        assert!(
            !secret.windows(needle.len()).any(|w| w == needle),
            "{:?} readable in etcd",
            String::from_utf8_lossy(needle)
        );
    }
    let map = raw("/registry/configmaps/default/plain").await;
    assert!(String::from_utf8_lossy(&map).contains("visible-value"));

    let password =
        cluster.kubectl_ok(&["get", "secret", "vault", "-o", "jsonpath={.data.password}"]);
    assert_eq!(password, encoded);
    // Updated, it is sealed again (a fresh IV: the stored bytes change) and reads back.
    cluster.kubectl_ok(&["label", "secret", "vault", "tier=db"]);
    let relabelled = raw("/registry/secrets/default/vault").await;
    assert!(relabelled.starts_with(b"k8s:enc:aescbc:v1:key1:"));
    assert_ne!(relabelled, secret);
    assert_eq!(
        cluster.kubectl_ok(&[
            "get",
            "secret",
            "vault",
            "-o",
            "jsonpath={.metadata.labels.tier} {.data.password}"
        ]),
        format!("db {encoded}")
    );
    let config = std::fs::read_to_string(
        cluster
            .dir
            .path()
            .join("certs")
            .join("encryption-config.yaml"),
    )
    .expect("the configuration rkube up wrote");
    assert!(config.contains("kind: EncryptionConfiguration") && config.contains("aescbc"));
}

/// Image pull secrets as upstream's kubelet uses them: a secret that cannot be read is named in
/// a `FailedToRetrieveImagePullSecret` warning, and the credentials of a
/// `kubernetes.io/dockerconfigjson` Secret for the image's registry reach Docker, which sends
/// them to the registry (here a listener that asks for them and refuses everything).
#[tokio::test]
async fn image_pull_secrets_reach_the_registry() {
    use std::io::{BufRead as _, Write as _};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    let registry = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = registry.local_addr().expect("address").port();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    std::thread::spawn({
        let seen = seen.clone();
        move || {
            for stream in registry.incoming().flatten() {
                let mut reader = std::io::BufReader::new(&stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("authorization:") {
                        let original = &line[line.len() - value.len()..];
                        seen.lock().expect("lock").push(original.trim().to_string());
                    }
                    line.clear();
                }
                let _ = (&stream).write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"rkube-test\"\r\nDocker-Distribution-API-Version: registry/2.0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        }
    });

    let cluster = crate::up::UpCluster::start(None);
    let server = format!("127.0.0.1:{port}");
    cluster.kubectl_ok(&[
        "create",
        "secret",
        "docker-registry",
        "private",
        &format!("--docker-server={server}"),
        "--docker-username=builder",
        "--docker-password=s3cret",
    ]);
    cluster.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: private}}\nspec:\n  imagePullSecrets: [{{name: gone}}, {{name: private}}]\n  containers:\n  - name: app\n    image: {server}/team/app:1\n"
    ));
    use base64::Engine as _;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("builder:s3cret")
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.lock().expect("lock").contains(&expected) {
        assert!(
            Instant::now() < deadline,
            "the registry never saw the credentials: {:?}",
            seen.lock().expect("lock")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let events = cluster.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=private,reason=FailedToRetrieveImagePullSecret",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert_eq!(
        events,
        "Unable to retrieve some image pull secrets (gone); attempting to pull the image may not succeed."
    );
}
