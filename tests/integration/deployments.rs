//! Deployments with the real kubectl on a real cluster (`rkube up`): `rollout status`,
//! `set image`, `rollout history`/`undo`/`pause`/`resume`/`restart`, `scale`, `get all`; a
//! rolling update of ten replicas and a Recreate watched Pod by Pod against their strategy;
//! a rollout that exceeds its progress deadline; a rollout whose controller manager is killed
//! midway, finished by a second one.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;

use crate::up::{UpCluster, TEST_IMAGE};

const DEADLINE: Duration = Duration::from_secs(180);
/// A second name for the test image, one per test, so a Deployment's template can change
/// image; the tag is removed when this is dropped.
struct SecondImage(String);

impl SecondImage {
    fn tag(test: &str) -> SecondImage {
        crate::up::ensure_test_image();
        let image = format!("rkube-test/busybox:deploy-{test}");
        let ok = Command::new("docker")
            .args(["tag", TEST_IMAGE, &image])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "docker tag {TEST_IMAGE} {image}");
        SecondImage(image)
    }
}

impl Drop for SecondImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["image", "rm", "--no-prune", &self.0])
            .output();
    }
}

fn deployment(name: &str, replicas: u32, extra_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n{extra_spec}  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: main\n        image: {TEST_IMAGE}\n        imagePullPolicy: Never\n        command: [\"sleep\", \"3600\"]\n"
    )
}

/// Polls `check` until it holds, failing with `what` after [`DEADLINE`].
fn eventually(what: &str, check: impl FnMut() -> bool) {
    crate::up::poll(what, DEADLINE, check);
}

fn rollout_status(cluster: &UpCluster, name: &str) {
    let out = cluster.kubectl_ok(&[
        "rollout",
        "status",
        &format!("deploy/{name}"),
        "--timeout=180s",
    ]);
    assert!(
        out.contains(&format!("deployment \"{name}\" successfully rolled out")),
        "{out}"
    );
}

/// The Deployment's ReplicaSets as `name revision replicas` lines, by name.
fn replica_sets(cluster: &UpCluster, app: &str) -> Vec<(String, String, String)> {
    let out = cluster.kubectl_ok(&[
        "get", "rs", "-l", &format!("app={app}"), "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.metadata.annotations.deployment\\.kubernetes\\.io/revision} {.spec.replicas}{\"\\n\"}{end}",
    ]);
    let mut sets: Vec<_> = out
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((
                f.next()?.to_string(),
                f.next()?.to_string(),
                f.next()?.to_string(),
            ))
        })
        .collect();
    sets.sort();
    sets
}

/// The images of the live Pods of `app`.
fn pod_images(cluster: &UpCluster, app: &str) -> Vec<String> {
    let out = cluster.kubectl_ok(&[
        "get", "pods", "-l", &format!("app={app}"), "-o",
        "jsonpath={range .items[*]}{.metadata.deletionTimestamp}|{.spec.containers[0].image}{\"\\n\"}{end}",
    ]);
    out.lines()
        .filter_map(|l| l.strip_prefix('|'))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_deployment_rolls_out_updates_undoes_pauses_restarts_and_scales_with_kubectl() {
    let image = SecondImage::tag("web");
    let second = image.0.as_str();
    let cluster = UpCluster::start(None);
    cluster.apply(&deployment("web", 3, ""));
    rollout_status(&cluster, "web");

    // One ReplicaSet named after the template's hash, owned by the Deployment, revision 1.
    let sets = replica_sets(&cluster, "web");
    assert_eq!(sets.len(), 1, "{sets:?}");
    let (first, revision, replicas) = sets[0].clone();
    assert_eq!((revision.as_str(), replicas.as_str()), ("1", "3"));
    let hash = first
        .strip_prefix("web-")
        .expect("named web-<hash>")
        .to_string();
    let owner = cluster.kubectl_ok(&[
        "get", "rs", &first, "-o",
        "jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller} {.spec.selector.matchLabels.pod-template-hash}",
    ]);
    assert_eq!(owner, format!("Deployment/web/true {hash}"));
    let pods = cluster.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        &format!("pod-template-hash={hash}"),
        "-o",
        "name",
    ]);
    assert_eq!(pods.lines().count(), 3, "{pods}");
    let table = cluster.kubectl_ok(&["get", "deploy", "-o", "wide"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ],
        "{table}"
    );
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(&row[..4], ["web", "3/3", "3", "3"], "{table}");
    assert_eq!(&row[5..], ["main", TEST_IMAGE, "app=web"], "{table}");

    // A new image is a new ReplicaSet, revision 2; the old one is scaled to 0 and kept.
    cluster.kubectl_ok(&["set", "image", "deploy/web", &format!("main={second}")]);
    rollout_status(&cluster, "web");
    eventually("only new pods", || {
        pod_images(&cluster, "web") == [second; 3]
    });
    let sets = replica_sets(&cluster, "web");
    assert_eq!(sets.len(), 2, "{sets:?}");
    let old = sets.iter().find(|s| s.0 == first).expect("first kept");
    assert_eq!((old.1.as_str(), old.2.as_str()), ("1", "0"));
    let history = cluster.kubectl_ok(&["rollout", "history", "deploy/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    let annotation = cluster.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
    ]);
    assert_eq!(annotation, "2");

    // Undo goes back to the first template, which becomes revision 3.
    let out = cluster.kubectl_ok(&["rollout", "undo", "deploy/web"]);
    assert!(out.contains("deployment.apps/web rolled back"), "{out}");
    rollout_status(&cluster, "web");
    eventually("the first image back", || {
        pod_images(&cluster, "web") == [TEST_IMAGE; 3]
    });
    let sets = replica_sets(&cluster, "web");
    let back = sets.iter().find(|s| s.0 == first).expect("first reused");
    assert_eq!((back.1.as_str(), back.2.as_str()), ("3", "3"), "{sets:?}");
    let history = cluster.kubectl_ok(&["rollout", "history", "deploy/web"]);
    assert!(
        history.contains("\n2 ") && history.contains("\n3 "),
        "{history}"
    );

    // Paused: a template change is recorded but not rolled out until resumed.
    cluster.kubectl_ok(&["rollout", "pause", "deploy/web"]);
    let err = cluster.kubectl_err(&["rollout", "pause", "deploy/web"]);
    assert!(err.contains("already paused"), "{err}");
    cluster.kubectl_ok(&["set", "image", "deploy/web", &format!("main={second}")]);
    eventually("the paused condition", || {
        cluster.kubectl_ok(&[
            "get", "deploy", "web", "-o",
            "jsonpath={.status.observedGeneration}={.metadata.generation} {.status.conditions[?(@.type==\"Progressing\")].reason}",
        ])
        .split_once(' ')
        .is_some_and(|(gens, reason)| {
            gens.split_once('=').is_some_and(|(a, b)| a == b) && reason == "DeploymentPaused"
        })
    });
    assert_eq!(replica_sets(&cluster, "web").len(), 2);
    assert_eq!(pod_images(&cluster, "web"), [TEST_IMAGE; 3]);
    cluster.kubectl_ok(&["rollout", "resume", "deploy/web"]);
    rollout_status(&cluster, "web");
    eventually("resumed rollout done", || {
        pod_images(&cluster, "web") == [second; 3]
    });

    // Restart: a new template annotation, so a new ReplicaSet and new Pods.
    let before = cluster.kubectl_ok(&["get", "pods", "-l", "app=web", "-o", "name"]);
    cluster.kubectl_ok(&["rollout", "restart", "deploy/web"]);
    rollout_status(&cluster, "web");
    let restarted = cluster.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}",
    ]);
    assert!(!restarted.is_empty());
    eventually("every pod replaced", || {
        let now = cluster.kubectl_ok(&["get", "pods", "-l", "app=web", "-o", "name"]);
        pod_images(&cluster, "web").len() == 3 && now.lines().all(|p| !before.contains(p))
    });
    assert_eq!(replica_sets(&cluster, "web").len(), 3);

    // Scale through the scale subresource.
    cluster.kubectl_ok(&["scale", "deploy/web", "--replicas=5"]);
    rollout_status(&cluster, "web");
    eventually("five pods", || pod_images(&cluster, "web").len() == 5);
    let ready = cluster.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.status.readyReplicas}/{.status.availableReplicas}/{.status.updatedReplicas}",
    ]);
    assert_eq!(ready, "5/5/5");
    let conditions = cluster.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={range .status.conditions[*]}{.type}={.status}/{.reason} {end}",
    ]);
    assert!(
        conditions.contains("Available=True/MinimumReplicasAvailable"),
        "{conditions}"
    );
    assert!(
        conditions.contains("Progressing=True/NewReplicaSetAvailable"),
        "{conditions}"
    );

    let all = cluster.kubectl_ok(&["get", "all"]);
    assert!(all.contains("deployment.apps/web"), "{all}");
    assert!(all.contains("replicaset.apps/web-"), "{all}");
    let events = cluster.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=ScalingReplicaSet",
    ]);
    assert!(events.contains("Scaled up replica set web-"), "{events}");
    let described = cluster.kubectl_ok(&["describe", "deploy", "web"]);
    assert!(
        described.contains(
            "Replicas:               5 desired | 5 updated | 5 total | 5 available | 0 unavailable"
        ),
        "{described}"
    );
    assert!(described.contains("NewReplicaSet:   web-"), "{described}");
    assert!(
        described.contains("deployment-controller  Scaled up replica set web-"),
        "{described}"
    );

    // The garbage collector takes the ReplicaSets and their Pods with the Deployment.
    cluster.kubectl_ok(&["delete", "deploy/web"]);
    eventually("the replicasets collected", || {
        replica_sets(&cluster, "web").is_empty()
    });
}

/// What the watch saw of the Pods of a rollout.
#[derive(Debug, Default)]
pub struct Extremes {
    /// The fewest Pods ready and not terminating.
    pub fewest_ready: Option<usize>,
    /// The most Pods neither terminating nor finished.
    pub most_live: usize,
    /// The most pod templates (`pod-template-hash`) among Pods not finished, terminating
    /// ones included.
    pub most_templates: usize,
    pub pods_seen: usize,
}

impl Extremes {
    /// That the rollout never had more than `most` Pods (replicas + maxSurge) nor fewer than
    /// `fewest` ready (replicas - maxUnavailable).
    fn assert_within(&self, most: usize, fewest: usize) {
        assert!(self.most_live <= most, "more than {most} Pods: {self:?}");
        assert!(
            self.fewest_ready.is_some_and(|f| f >= fewest),
            "fewer than {fewest} Pods ready: {self:?}"
        );
    }
}

/// One Pod as the watch last saw it.
struct Seen {
    live: bool,
    ready: bool,
    finished: bool,
    hash: String,
}

fn seen(pod: &Pod) -> Seen {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let finished = matches!(phase, Some("Succeeded" | "Failed"));
    let live = pod.metadata.deletion_timestamp.is_none() && !finished;
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let hash = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"))
        .cloned()
        .unwrap_or_default();
    Seen {
        live,
        ready: live && ready,
        finished,
        hash,
    }
}

/// Watches the Pods labelled `app` and records, after each event, how many are ready, how
/// many exist and how many templates they come from, until `stop` fires.
pub async fn watch_extremes(
    client: kube::Client,
    app: String,
    stop: tokio_util::sync::CancellationToken,
) -> Extremes {
    let pods: kube::Api<Pod> = kube::Api::namespaced(client, "default");
    let config = watcher::Config::default().labels(&format!("app={app}"));
    let mut stream = watcher::watcher(pods, config).boxed();
    let mut pods: HashMap<String, Seen> = HashMap::new();
    let mut extremes = Extremes::default();
    let mut names = std::collections::HashSet::new();
    let mut synced = false;
    loop {
        let event = tokio::select! {
            e = stream.next() => e,
            () = stop.cancelled() => break,
        };
        let Some(Ok(event)) = event else { continue };
        let name = |p: &Pod| p.metadata.name.clone().unwrap_or_default();
        match event {
            watcher::Event::Init => pods.clear(),
            watcher::Event::InitApply(p) | watcher::Event::Apply(p) => {
                names.insert(name(&p));
                pods.insert(name(&p), seen(&p));
            }
            watcher::Event::InitDone => synced = true,
            watcher::Event::Delete(p) => {
                pods.remove(&name(&p));
            }
        }
        if synced {
            let ready = pods.values().filter(|p| p.ready).count();
            let live = pods.values().filter(|p| p.live).count();
            let templates: std::collections::HashSet<&str> = pods
                .values()
                .filter(|p| !p.finished)
                .map(|p| p.hash.as_str())
                .collect();
            extremes.fewest_ready = Some(extremes.fewest_ready.map_or(ready, |f| f.min(ready)));
            extremes.most_live = extremes.most_live.max(live);
            extremes.most_templates = extremes.most_templates.max(templates.len());
        }
    }
    extremes.pods_seen = names.len();
    extremes
}

#[tokio::test(flavor = "multi_thread")]
async fn rollouts_keep_to_their_strategy_and_deadline() {
    let image = SecondImage::tag("roll");
    let second = image.0.as_str();
    let cluster = UpCluster::start(None);
    // 25% of 10: at most 3 Pods above 10 (rounded up), at most 2 unavailable (rounded down).
    cluster.apply(&deployment(
        "roll",
        10,
        "  minReadySeconds: 1\n  strategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxSurge: 25%\n      maxUnavailable: 25%\n",
    ));
    rollout_status(&cluster, "roll");
    let stop = tokio_util::sync::CancellationToken::new();
    let watch = tokio::spawn(watch_extremes(
        cluster.client().await,
        "roll".into(),
        stop.clone(),
    ));
    cluster.kubectl_ok(&["set", "image", "deploy/roll", &format!("main={second}")]);
    rollout_status(&cluster, "roll");
    eventually("only new pods", || {
        pod_images(&cluster, "roll") == [second; 10]
    });
    stop.cancel();
    let extremes = watch.await.expect("the watch");
    assert!(extremes.pods_seen >= 20, "{extremes:?}");
    extremes.assert_within(13, 8);
    cluster.kubectl_ok(&["delete", "deploy/roll"]);

    // Recreate: the new template's Pods start only once every old Pod is gone.
    cluster.apply(&deployment(
        "recreate",
        3,
        "  strategy:\n    type: Recreate\n",
    ));
    rollout_status(&cluster, "recreate");
    let stop = tokio_util::sync::CancellationToken::new();
    let watch = tokio::spawn(watch_extremes(
        cluster.client().await,
        "recreate".into(),
        stop.clone(),
    ));
    cluster.kubectl_ok(&["set", "image", "deploy/recreate", &format!("main={second}")]);
    rollout_status(&cluster, "recreate");
    eventually("only new pods", || {
        pod_images(&cluster, "recreate") == [second; 3]
    });
    stop.cancel();
    let extremes = watch.await.expect("the watch");
    assert!(extremes.pods_seen >= 6, "{extremes:?}");
    assert_eq!(
        extremes.most_templates, 1,
        "old and new pods together: {extremes:?}"
    );
    cluster.kubectl_ok(&["delete", "deploy/recreate"]);

    // A rollout that cannot progress (its image is absent and never pulled) exceeds its
    // deadline, and `rollout status` says so.
    let stuck = deployment("stuck", 1, "  progressDeadlineSeconds: 3\n")
        .replace(TEST_IMAGE, "rkube-test/absent:1");
    cluster.apply(&stuck);
    let out = cluster.kubectl(&["rollout", "status", "deploy/stuck", "--timeout=120s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("deployment \"stuck\" exceeded its progress deadline"),
        "{err}"
    );
    let progressing = cluster.kubectl_ok(&[
        "get", "deploy", "stuck", "-o",
        "jsonpath={.status.conditions[?(@.type==\"Progressing\")].status}/{.status.conditions[?(@.type==\"Progressing\")].reason}",
    ]);
    assert_eq!(progressing, "False/ProgressDeadlineExceeded");
    cluster.kubectl_ok(&["delete", "deploy/stuck"]);
}

/// The book's `deploy/go-demo-2-db.yml` (its `mongo:3.3` replaced by the local test image,
/// which sleeps instead of serving).
fn go_demo_2_db() -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: go-demo-2-db\nspec:\n  selector:\n    matchLabels:\n      type: db\n      service: go-demo-2\n  template:\n    metadata:\n      labels:\n        type: db\n        service: go-demo-2\n        vendor: MongoLabs\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: db\n        image: {TEST_IMAGE}\n        imagePullPolicy: Never\n        command: [\"sleep\", \"3600\"]\n        ports:\n        - containerPort: 28017\n"
    )
}

/// The book's Deployment chapter, step by step: `create --record`, `get -f`, `set image
/// --record`, `rollout status`, `rollout history` with each change's cause, `rollout undo`.
#[test]
fn the_books_deployment_steps_record_their_causes_and_undo() {
    let image = SecondImage::tag("book");
    let second = image.0.as_str();
    let cluster = UpCluster::start(None);
    let manifest = cluster.state_dir().join("go-demo-2-db.yml");
    std::fs::write(&manifest, go_demo_2_db()).expect("manifest written");
    let path = manifest.to_str().expect("UTF-8 path");
    let out = cluster.kubectl_ok(&["create", "-f", path, "--record"]);
    assert_eq!(out.trim(), "deployment.apps/go-demo-2-db created");
    let out = cluster.kubectl_ok(&["get", "-f", path]);
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "{out}"
    );
    rollout_status(&cluster, "go-demo-2-db");

    cluster.kubectl_ok(&[
        "set",
        "image",
        "deployment",
        "go-demo-2-db",
        &format!("db={second}"),
        "--record",
    ]);
    rollout_status(&cluster, "go-demo-2-db");
    let history = cluster.kubectl_ok(&["rollout", "history", "deployment", "go-demo-2-db"]);
    let rows: Vec<Vec<&str>> = history
        .lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{history}");
    assert_eq!(rows[0][0], "1", "{history}");
    // Each cause is the command line that made the change (kubectl's own flags included).
    let cause = |row: &[&str]| row[1..].join(" ");
    assert!(
        cause(&rows[0]).starts_with("kubectl create ")
            && cause(&rows[0]).contains(&format!("--filename={path}"))
            && cause(&rows[0]).ends_with("--record=true"),
        "{history}"
    );
    assert_eq!(rows[1][0], "2", "{history}");
    assert!(
        cause(&rows[1]).starts_with(&format!(
            "kubectl set image deployment go-demo-2-db db={second} "
        )),
        "{history}"
    );

    cluster.kubectl_ok(&["rollout", "undo", "deployment", "go-demo-2-db"]);
    rollout_status(&cluster, "go-demo-2-db");
    let image_now = cluster.kubectl_ok(&[
        "get",
        "deploy",
        "go-demo-2-db",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image_now, TEST_IMAGE);
    // The undone revision 1 comes back as revision 3, with its cause.
    let history = cluster.kubectl_ok(&["rollout", "history", "deployment", "go-demo-2-db"]);
    let revisions: Vec<&str> = history
        .lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["2", "3"], "{history}");
    assert!(history.contains("kubectl create "), "{history}");
}

/// A controller manager started by the test beside `rkube up`'s, with the same command line;
/// killed when dropped.
struct Standby(std::process::Child);

impl Standby {
    fn start(cluster: &UpCluster) -> Standby {
        let state = std::fs::read_to_string(cluster.state_dir().join("state.json")).expect("state");
        let state: serde_json::Value = serde_json::from_str(&state).expect("state JSON");
        let record = state["processes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == "controller-manager")
            .expect("a controller manager in the state");
        let args: Vec<String> = serde_json::from_value(record["args"].clone()).expect("args");
        let log = std::fs::File::create(cluster.dir.path().join("standby.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .args(&args)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("a second controller manager starts");
        Standby(child)
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `holderIdentity` of the controller manager's Lease.
fn leader(cluster: &UpCluster) -> String {
    cluster.kubectl_ok(&[
        "get",
        "lease",
        "-n",
        "kube-system",
        "kube-controller-manager",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])
}

/// Two controller managers run; the leader is killed in the middle of a rolling update of ten
/// replicas and restarted by `rkube up`. The standby takes over and finishes the rollout,
/// which keeps to its strategy throughout (so no Pod was created twice) and ends with ten new
/// Pods from one new ReplicaSet (so none was lost or duplicated).
#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_outlives_its_controller_manager() {
    const CONFIG: &str = "tests/configs/quick-leader-election.yaml";
    let image = SecondImage::tag("failover");
    let second = image.0.as_str();
    let cluster = UpCluster::start(Some(CONFIG));
    // Three seconds of readiness per batch keep the rollout going for a while.
    cluster.apply(&deployment(
        "steady",
        10,
        "  minReadySeconds: 3\n  strategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxSurge: 25%\n      maxUnavailable: 25%\n",
    ));
    rollout_status(&cluster, "steady");
    let first = leader(&cluster);
    assert!(!first.is_empty(), "no controller manager leads");
    let _standby = Standby::start(&cluster);

    let stop = tokio_util::sync::CancellationToken::new();
    let watch = tokio::spawn(watch_extremes(
        cluster.client().await,
        "steady".into(),
        stop.clone(),
    ));
    cluster.kubectl_ok(&["set", "image", "deploy/steady", &format!("main={second}")]);
    eventually("the rollout under way", || {
        pod_images(&cluster, "steady").iter().any(|i| i == second)
    });
    assert_ne!(
        pod_images(&cluster, "steady"),
        [second; 10],
        "the rollout finished before the leader could be killed"
    );
    assert_eq!(
        leader(&cluster),
        first,
        "the standby took over a live leader"
    );
    let pid = cluster.pid("controller-manager");
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());

    eventually("the standby leading", || {
        let now = leader(&cluster);
        !now.is_empty() && now != first
    });
    // `rkube up` restarts what died: the killed controller manager comes back as a standby.
    let state = std::fs::read_to_string(cluster.state_dir().join("state.json")).expect("state");
    let server: serde_json::Value = serde_json::from_str(&state).expect("state JSON");
    let port: u16 = server["server"]
        .as_str()
        .and_then(|s| s.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("the server's port in the state");
    let out = cluster.up(Some(CONFIG), port, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("Restarting controller-manager"), "{stdout}");
    assert_ne!(cluster.pid("controller-manager"), pid);

    rollout_status(&cluster, "steady");
    eventually("only new pods", || {
        pod_images(&cluster, "steady") == [second; 10]
    });
    stop.cancel();
    let extremes = watch.await.expect("the watch");
    extremes.assert_within(13, 8);
    let sets = replica_sets(&cluster, "steady");
    let replicas: Vec<&str> = sets.iter().map(|(_, _, r)| r.as_str()).collect();
    assert_eq!(sets.len(), 2, "{sets:?}");
    assert!(
        replicas.contains(&"10") && replicas.contains(&"0"),
        "{sets:?}"
    );
    eventually("the old Pods gone, ten left", || {
        let pods = cluster.kubectl_ok(&["get", "pods", "-l", "app=steady", "--no-headers"]);
        pods.lines().count() == 10
    });
}
