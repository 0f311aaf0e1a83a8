//! `kubectl top` against the built-in resource metrics API (no metrics-server to install):
//! a busy Pod shows its core, a Pod holding memory shows it, `--containers`, `-A`, `-l`, and
//! who may not read the metrics.

use std::time::{Duration, Instant};

use crate::up::{UpCluster, TEST_IMAGE};

/// `kubectl top` output as rows of columns, header first.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn millicores(cell: &str) -> u64 {
    cell.trim_end_matches('m').parse().unwrap_or(0)
}

fn mebibytes(cell: &str) -> u64 {
    cell.trim_end_matches("Mi").parse().unwrap_or(0)
}

#[tokio::test]
async fn top_shows_what_pods_and_nodes_use() {
    let cluster = UpCluster::start(None);
    cluster.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: busy, labels: {{load: cpu}}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: spin, image: {TEST_IMAGE}, imagePullPolicy: Never, command: [sh, -c, 'while :; do :; done']}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: hog, labels: {{load: memory}}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: fill, image: {TEST_IMAGE}, imagePullPolicy: Never, command: [sh, -c, 'head -c 50000000 /dev/zero > /dev/shm/fill; sleep 3600']}}\n  - {{name: idle, image: {TEST_IMAGE}, imagePullPolicy: Never, command: [sleep, '3600']}}\n"
    ));
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/busy",
        "pod/hog",
        "--timeout=60s",
    ]);

    // The memory is written a moment after the container starts.
    let deadline = Instant::now() + Duration::from_secs(60);
    let pods = loop {
        let pods = rows(&cluster.kubectl_ok(&["top", "pod"]));
        let hog = pods
            .iter()
            .find(|r| r[0] == "hog")
            .map(|r| mebibytes(&r[2]));
        if hog.is_some_and(|m| m >= 40) || Instant::now() > deadline {
            break pods;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(pods[0], ["NAME", "CPU(cores)", "MEMORY(bytes)"]);
    let busy = pods.iter().find(|r| r[0] == "busy").expect("busy listed");
    // A core where the machine has one to spare; under a loaded CI machine, a good part of one.
    assert!(millicores(&busy[1]) >= 100, "{pods:?}");
    let hog = pods.iter().find(|r| r[0] == "hog").expect("hog listed");
    assert!(mebibytes(&hog[2]) >= 40, "{pods:?}");

    let containers = rows(&cluster.kubectl_ok(&["top", "pod", "hog", "--containers"]));
    assert_eq!(
        containers[0],
        ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    );
    let names: Vec<&str> = containers[1..].iter().map(|r| r[1].as_str()).collect();
    assert_eq!(names, ["fill", "idle"]);

    let selected = rows(&cluster.kubectl_ok(&["top", "pod", "-l", "load=cpu"]));
    assert_eq!(selected.len(), 2, "{selected:?}");
    assert_eq!(selected[1][0], "busy");
    let everywhere = rows(&cluster.kubectl_ok(&["top", "pod", "-A"]));
    assert_eq!(everywhere[0][0], "NAMESPACE");
    assert!(everywhere.iter().any(|r| r[1] == "busy"));

    let nodes = rows(&cluster.kubectl_ok(&["top", "node"]));
    assert_eq!(
        nodes[0],
        ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    );
    assert!(millicores(&nodes[1][1]) >= 100, "{nodes:?}");

    let err = cluster.kubectl_err(&["top", "pod", "ghost"]);
    assert!(
        err.contains("podmetrics.metrics.k8s.io \"ghost\" not found"),
        "{err}"
    );
    let alice = cluster.kubeconfig_as("alice", &[]);
    let out = cluster.kubectl_with(&alice, &["top", "node"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "User \"alice\" cannot list resource \"nodes\" in API group \"metrics.k8s.io\""
        ),
        "{err}"
    );
}
