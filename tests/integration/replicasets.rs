//! ReplicaSets with the real kubectl on a real cluster (`rkube up`): the book's `rs` chapter
//! with the test image — create, a deleted Pod replaced, `kubectl scale`, `kubectl get all`.

use std::time::Duration;

use crate::up::{UpCluster, TEST_IMAGE};

const DEADLINE: Duration = Duration::from_secs(120);

/// The book's `rs/go-demo-2.yml`, one container, with the local test image.
fn go_demo_2() -> String {
    format!(
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: go-demo-2\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      type: backend\n      service: go-demo-2\n  template:\n    metadata:\n      labels:\n        type: backend\n        service: go-demo-2\n        db: mongo\n        language: go\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: db\n        image: {TEST_IMAGE}\n        imagePullPolicy: Never\n        command: [\"sleep\", \"3600\"]\n"
    )
}

/// Polls `check` until it holds, failing with `what` after [`DEADLINE`].
fn eventually(what: &str, check: impl FnMut() -> bool) {
    crate::up::poll(what, DEADLINE, check);
}

fn pod_names(cluster: &UpCluster) -> Vec<String> {
    let out = cluster.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "service=go-demo-2",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}{\" \"}{end}",
    ]);
    out.split_whitespace().map(str::to_string).collect()
}

fn live_pods(cluster: &UpCluster) -> usize {
    let out = cluster.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "service=go-demo-2",
        "-o",
        "jsonpath={range .items[*]}{.metadata.deletionTimestamp}{\"|\"}{end}",
    ]);
    out.split('|')
        .filter(|s| s.is_empty())
        .count()
        .saturating_sub(1)
}

#[test]
fn a_replicaset_keeps_its_pods_and_scales_with_kubectl() {
    let cluster = UpCluster::start(None);
    cluster.apply(&go_demo_2());
    eventually("two pods", || live_pods(&cluster) == 2);
    let names = pod_names(&cluster);
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("go-demo-2-") && n.len() == "go-demo-2-".len() + 5),
        "{names:?}"
    );
    let owner = cluster.kubectl_ok(&[
        "get", "pod", &names[0], "-o",
        "jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}",
    ]);
    assert_eq!(owner, "ReplicaSet/go-demo-2/true");

    cluster.kubectl_ok(&["delete", "pod", &names[0], "--wait=false"]);
    eventually("the deleted pod replaced", || {
        let now = pod_names(&cluster);
        live_pods(&cluster) == 2 && now.iter().any(|n| !names.contains(n))
    });

    cluster.kubectl_ok(&["scale", "rs/go-demo-2", "--replicas=4"]);
    eventually("four pods", || live_pods(&cluster) == 4);
    eventually("status counts four", || {
        cluster.kubectl_ok(&[
            "get",
            "rs",
            "go-demo-2",
            "-o",
            "jsonpath={.status.replicas}",
        ]) == "4"
    });
    cluster.kubectl_ok(&["scale", "rs/go-demo-2", "--replicas=1"]);
    eventually("one pod", || live_pods(&cluster) == 1);

    let all = cluster.kubectl_ok(&["get", "all"]);
    assert!(all.contains("replicaset.apps/go-demo-2"), "{all}");
    let rs = cluster.kubectl_ok(&["get", "rs"]);
    assert!(rs.starts_with("NAME"), "{rs}");
    assert!(
        rs.contains("DESIRED") && rs.contains("CURRENT") && rs.contains("READY"),
        "{rs}"
    );
    let events = cluster.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=SuccessfulCreate",
    ]);
    assert!(events.contains("Created pod: go-demo-2-"), "{events}");
}
