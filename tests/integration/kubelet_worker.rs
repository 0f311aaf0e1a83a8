//! The kubelet's pod worker on real Docker: spec changes replace containers, failed starts
//! crash-loop.

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::Api;

use crate::up::{UpCluster, TEST_IMAGE};

/// A second tag of the test image (its "img:2"), untagged again when the test ends.
struct SecondTag(String);

impl SecondTag {
    fn new(tag: &str) -> SecondTag {
        let name = format!("rkube-test/busybox:{tag}");
        let out = Command::new("docker")
            .args(["tag", TEST_IMAGE, &name])
            .output()
            .expect("docker tag");
        assert!(out.status.success(), "docker tag: {out:?}");
        SecondTag(name)
    }
}

impl Drop for SecondTag {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", &self.0]).output();
    }
}

fn status_of(p: &Pod, container: &str) -> Option<ContainerStatus> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|s| s.name == container)
        .cloned()
}

/// Polls the Pod until `check` holds; panics with the last Pod seen past the deadline.
async fn wait_for(
    cluster: &UpCluster,
    name: &str,
    what: &str,
    check: impl Fn(&Pod) -> bool,
) -> Pod {
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let pod = pods.get(name).await.ok();
        if let Some(pod) = pod.as_ref().filter(|p| check(p)) {
            return pod.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name}: {what} not seen within 120s; pod is {pod:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn running_id(p: &Pod, container: &str) -> Option<String> {
    let s = status_of(p, container)?;
    s.state.as_ref()?.running.as_ref()?;
    s.container_id.clone()
}

#[tokio::test]
async fn set_image_replaces_the_running_container() {
    let cluster = UpCluster::start(None);
    let second = SecondTag::new(&format!("set-image-{}", cluster.name));
    let spec = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: swap\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: c\n    image: {TEST_IMAGE}\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep 3600 & wait\"]\n"
    );
    cluster.apply(&spec);
    let first = wait_for(&cluster, "swap", "Running", |p| {
        running_id(p, "c").is_some()
    })
    .await;
    let old_id = running_id(&first, "c").unwrap_or_default();

    cluster.kubectl_ok(&["set", "image", "pod/swap", &format!("c={}", second.0)]);
    let pod = wait_for(&cluster, "swap", "a new container running", |p| {
        running_id(p, "c").is_some_and(|id| id != old_id)
    })
    .await;
    let status = status_of(&pod, "c").unwrap_or_default();
    assert_eq!(status.restart_count, 1, "{status:#?}");
    assert_eq!(status.image, second.0);
    // The old container is stopped; exactly one of the Pod's app containers runs.
    let running: Vec<String> = cluster
        .containers()
        .into_iter()
        .filter(|c| c.starts_with("k8s_c_swap_") && c.ends_with(" running"))
        .collect();
    assert_eq!(running.len(), 1, "{:?}", cluster.containers());
    assert!(running[0].contains("_1 "), "{running:?}");
    let described = cluster.kubectl_ok(&["describe", "pod", "swap"]);
    assert!(
        described.contains("Container c definition changed, will be restarted"),
        "{described}"
    );
    cluster.kubectl_ok(&["delete", "pod", "swap"]);
}

#[tokio::test]
async fn a_missing_executable_crash_loops_with_rising_restarts() {
    let cluster = UpCluster::start(None);
    let spec = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: mongo\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: db\n    image: {TEST_IMAGE}\n    command: [\"mongod\"]\n"
    );
    cluster.apply(&spec);
    let pod = wait_for(&cluster, "mongo", "CrashLoopBackOff with restarts", |p| {
        status_of(p, "db").is_some_and(|s| {
            s.restart_count > 0
                && s.state
                    .as_ref()
                    .and_then(|st| st.waiting.as_ref())
                    .and_then(|w| w.reason.as_deref())
                    == Some("CrashLoopBackOff")
        })
    })
    .await;
    let status = status_of(&pod, "db").unwrap_or_default();
    let last = status
        .last_state
        .and_then(|s| s.terminated)
        .unwrap_or_default();
    assert!(
        last.message.as_deref().unwrap_or("").contains("mongod"),
        "{last:#?}"
    );
    let listed = cluster.kubectl_ok(&["get", "pod", "mongo"]);
    assert!(listed.contains("CrashLoopBackOff"), "{listed}");
    cluster.kubectl_ok(&["delete", "pod", "mongo"]);
}
