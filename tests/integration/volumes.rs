//! The volumes the kubelet fills from the API, on clusters from `rkube up`: the book's
//! ConfigMap and Secret chapters (`cm/alpine.yml`, `secret/jenkins.yml`, their images
//! replaced by the local test image), the downward API, and the service account volume every
//! Pod is given. Files appear as upstream lays them out (`..data` swapped atomically), read-only,
//! secrets on tmpfs, and a changed ConfigMap reaches the running container.

use std::time::Duration;

use crate::up::{UpCluster, TEST_IMAGE};

/// The book's `cm/alpine.yml`: a ConfigMap mounted as a directory of files.
fn alpine_pod() -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: alpine\nspec:\n  containers:\n  - name: alpine\n    image: {TEST_IMAGE}\n    imagePullPolicy: Never\n    command: [\"sleep\"]\n    args: [\"100000\"]\n    volumeMounts:\n    - name: config-vol\n      mountPath: /etc/config\n  volumes:\n  - name: config-vol\n    configMap:\n      name: my-config\n"
    )
}

#[tokio::test]
async fn config_map_files_appear_whole_and_follow_changes() {
    let cluster = UpCluster::start(None);
    let dir = cluster.dir.path();
    // The Pod comes first: until its ConfigMap exists it waits, as upstream's does.
    cluster.apply(&alpine_pod());
    let events = cluster.kubectl_until(
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=alpine,reason=FailedMount",
            "-o",
            "jsonpath={.items[*].message}",
        ],
        Duration::from_secs(60),
        |t| !t.is_empty(),
    );
    assert!(
        events.starts_with(
            "MountVolume.SetUp failed for volume \"config-vol\" : configmap \"my-config\" not found"
        ),
        "{events}"
    );
    let waiting = cluster.kubectl_ok(&[
        "get",
        "pod",
        "alpine",
        "-o",
        "jsonpath={.status.containerStatuses[0].state.waiting.reason}",
    ]);
    assert_eq!(waiting, "ContainerCreating");

    // The chapter's steps: a ConfigMap from a file, then from literals.
    std::fs::write(
        dir.join("prometheus-conf.yml"),
        "global:\n  scrape_interval: 15s\n",
    )
    .expect("file");
    let from_file = format!("--from-file={}", dir.join("prometheus-conf.yml").display());
    cluster.kubectl_ok(&[
        "create",
        "configmap",
        "my-config",
        &from_file,
        "--from-literal=something=else",
    ]);
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/alpine",
        "--timeout=60s",
    ]);
    let listing = cluster.kubectl_ok(&["exec", "alpine", "--", "ls", "-a", "/etc/config"]);
    let names: Vec<&str> = listing.split_whitespace().collect();
    assert!(
        names.contains(&"..data")
            && names.contains(&"prometheus-conf.yml")
            && names.contains(&"something"),
        "{listing}"
    );
    let version = cluster.kubectl_ok(&["exec", "alpine", "--", "readlink", "/etc/config/..data"]);
    assert!(version.starts_with("..20"), "{version}");
    let link = cluster.kubectl_ok(&["exec", "alpine", "--", "readlink", "/etc/config/something"]);
    assert_eq!(link, "..data/something\n");
    let content = cluster.kubectl_ok(&[
        "exec",
        "alpine",
        "--",
        "cat",
        "/etc/config/prometheus-conf.yml",
    ]);
    assert_eq!(content, "global:\n  scrape_interval: 15s\n");
    // Every API-data volume is mounted read-only.
    let out = cluster.kubectl(&["exec", "alpine", "--", "touch", "/etc/config/new"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The kubelet follows each object its Pod reads with a watch of that one object:
    // `my-config` and the account volume's `kube-root-ca.crt` (the controller manager watches
    // every `kube-root-ca.crt` by name too). It reads none of them again by GET.
    let with_pod = single_config_map_watches(&cluster);

    // A changed ConfigMap reaches the running container, as a new version: the old one is
    // gone, never half of each.
    let changed = cluster.kubectl_ok(&[
        "create",
        "configmap",
        "my-config",
        "--from-literal=something=changed",
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    std::fs::write(dir.join("changed.yaml"), changed).expect("manifest");
    cluster.kubectl_ok(&[
        "replace",
        "-f",
        &dir.join("changed.yaml").display().to_string(),
    ]);
    // (`kubectl replace` reads the object once for its resourceVersion.)
    let gets = config_map_gets(&cluster);
    cluster.kubectl_until(
        &["exec", "alpine", "--", "cat", "/etc/config/something"],
        Duration::from_secs(30),
        |t| t == "changed",
    );
    let listing = cluster.kubectl_ok(&["exec", "alpine", "--", "ls", "-a", "/etc/config"]);
    let names: Vec<&str> = listing
        .split_whitespace()
        .filter(|n| *n != "." && *n != "..")
        .collect();
    assert_eq!(
        names.len(),
        3,
        "one version, its link and one file: {listing}"
    );
    assert!(!names.contains(&"prometheus-conf.yml"), "{listing}");
    assert_eq!(config_map_gets(&cluster), gets);

    // With the Pod gone, its two watches end.
    cluster.kubectl_ok(&["delete", "pod", "alpine", "--wait=true"]);
    cluster.kubectl_until(
        &["get", "--raw", "/metrics"],
        Duration::from_secs(30),
        |metrics| watches_in(metrics) + 2 == with_pod,
    );
}

/// The line of `/metrics` counting the watches of single ConfigMaps in flight (selected by
/// `metadata.name`, so of scope `resource`).
const SINGLE_OBJECT_WATCHES: &str = r#"apiserver_longrunning_requests{verb="WATCH",dry_run="",group="",version="v1",resource="configmaps",subresource="",scope="resource",component="apiserver"} "#;

fn watches_in(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(SINGLE_OBJECT_WATCHES))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

fn single_config_map_watches(cluster: &UpCluster) -> u64 {
    watches_in(&cluster.kubectl_ok(&["get", "--raw", "/metrics"]))
}

/// How many single ConfigMaps the API server has been asked for by GET (or by a list of one
/// name, which upstream's metrics count as a GET too).
fn config_map_gets(cluster: &UpCluster) -> u64 {
    let metrics = cluster.kubectl_ok(&["get", "--raw", "/metrics"]);
    let prefix = r#"apiserver_request_total{verb="GET",dry_run="",group="",version="v1",resource="configmaps",subresource="",scope="resource","#;
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn secret_downward_and_service_account_volumes_are_written_as_upstream() {
    let cluster = UpCluster::start(None);
    // The book's `secret/jenkins.yml` Deployment: two keys of `my-creds` under new names,
    // mode 0444, beside an emptyDir; `vfarcic/jenkins` replaced by the test image.
    cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "my-creds",
        "--from-literal=username=jdoe",
        "--from-literal=password=incognito",
    ]);
    cluster.apply(&format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: jenkins\nspec:\n  selector:\n    matchLabels:\n      type: master\n      service: jenkins\n  strategy:\n    type: Recreate\n  template:\n    metadata:\n      labels:\n        type: master\n        service: jenkins\n    spec:\n      containers:\n      - name: jenkins\n        image: {TEST_IMAGE}\n        imagePullPolicy: Never\n        command: [sleep, '100000']\n        resources:\n          limits: {{memory: 64Mi}}\n        env:\n        - name: SECRETS_DIR\n          value: /etc/secrets\n        volumeMounts:\n        - name: jenkins-home\n          mountPath: /var/jenkins_home\n        - name: jenkins-creds\n          mountPath: /etc/secrets\n        - name: info\n          mountPath: /etc/podinfo\n      volumes:\n      - name: jenkins-home\n        emptyDir: {{}}\n      - name: jenkins-creds\n        secret:\n          secretName: my-creds\n          defaultMode: 0444\n          items:\n          - key: username\n            path: jenkins-user\n          - key: password\n            path: jenkins-pass\n      - name: info\n        downwardAPI:\n          items:\n          - path: labels\n            fieldRef: {{fieldPath: metadata.labels}}\n          - path: mem\n            resourceFieldRef: {{containerName: jenkins, resource: limits.memory, divisor: 1Mi}}\n"
    ));
    let pod = cluster.kubectl_until(
        &[
            "get",
            "pods",
            "-l",
            "service=jenkins",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ],
        Duration::from_secs(60),
        |t| !t.is_empty(),
    );
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        &format!("pod/{pod}"),
        "--timeout=60s",
    ]);
    let sh = |script: &str| cluster.kubectl_ok(&["exec", &pod, "--", "sh", "-c", script]);
    assert_eq!(
        sh("cat $SECRETS_DIR/jenkins-user; echo; cat $SECRETS_DIR/jenkins-pass"),
        "jdoe\nincognito"
    );
    assert_eq!(
        sh("stat -L -c '%a %n' /etc/secrets/jenkins-user /etc/secrets/jenkins-pass"),
        "444 /etc/secrets/jenkins-user\n444 /etc/secrets/jenkins-pass\n"
    );
    // The downward API: labels as `key="value"` lines in key order; the pod-template-hash
    // label the Deployment adds comes first.
    let labels = sh("cat /etc/podinfo/labels");
    let lines: Vec<&str> = labels.lines().collect();
    assert_eq!(lines.len(), 3, "{labels}");
    assert!(lines[0].starts_with("pod-template-hash=\""), "{labels}");
    assert_eq!(&lines[1..], ["service=\"jenkins\"", "type=\"master\""]);
    assert_eq!(sh("cat /etc/podinfo/mem"), "64");

    // The account's volume, added by admission: a token bound to this Pod, the cluster CA
    // and the namespace, at the path every client library reads.
    let dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    assert_eq!(sh(&format!("cat {dir}/namespace")), "default");
    let ca = std::fs::read_to_string(cluster.dir.path().join("certs").join("ca.crt"))
        .expect("the cluster CA");
    assert_eq!(sh(&format!("cat {dir}/ca.crt")), ca);
    let token = sh(&format!("cat {dir}/token"));
    let payload = token.split('.').nth(1).expect("a JWT");
    use base64::Engine as _;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("JSON claims");
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], pod.as_str());
    let life = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert_eq!(life, 3607);

    // Volumes that may hold secrets are kept on tmpfs, never on disk.
    let container = cluster
        .containers()
        .into_iter()
        .find(|c| c.starts_with("k8s_jenkins_"))
        .and_then(|c| c.split_whitespace().next().map(str::to_string))
        .expect("the jenkins container");
    let inspect = std::process::Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Destination}}={{.Source}} {{end}}",
        ])
        .arg(&container)
        .output()
        .expect("docker inspect");
    let mounts = String::from_utf8_lossy(&inspect.stdout).into_owned();
    for path in ["/etc/secrets", dir] {
        let source = mounts
            .split_whitespace()
            .find_map(|m| m.strip_prefix(&format!("{path}=")))
            .unwrap_or_else(|| panic!("{path} is mounted: {mounts}"));
        assert!(source.starts_with("/dev/shm/"), "{path} from {source}");
    }
}
