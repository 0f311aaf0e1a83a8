//! The Pod workloads: scheduling and the whole control plane on Node objects with a fake
//! kubelet, Pod start-up and bursts on the real node against Docker, and what the components
//! hold idle and after bursts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::api::{ensure_namespace, first_resource_version, json_body};
use super::load::{Api, LoadError, WatchLines};
use super::measure::{concurrently, rss_bytes, Latencies, Run};
use super::report::{Report, Row};
use super::{BenchError, Components, Sizes, IMAGE};
use crate::kubelet::runtime::{ContainerSpec, Runtime as _, SandboxSpec};

const SCHED_NAMESPACE: &str = "bench-sched";
const START_NAMESPACE: &str = "bench-start";
const FAKE_NODE_PREFIX: &str = "bench-node-";

fn merge_patch(value: &Value) -> Option<(&'static str, Bytes)> {
    Some((
        "application/merge-patch+json",
        Bytes::from(value.to_string()),
    ))
}

fn pod(name: &str, requests: bool) -> Value {
    let mut container = json!({"name": "c", "image": IMAGE, "command": ["sleep", "3600"]});
    if requests {
        container["resources"] = json!({"requests": {"cpu": "10m", "memory": "16Mi"}});
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [container]},
    })
}

/// Marks every real node unschedulable (or schedulable again), so that the workloads on Node
/// objects never start a container.
async fn cordon(api: &Api, nodes: &[String], on: bool) -> Result<(), BenchError> {
    for node in nodes {
        api.call(
            Method::PATCH,
            &format!("/api/v1/nodes/{node}"),
            merge_patch(&json!({"spec": {"unschedulable": on}})),
        )
        .await?;
    }
    Ok(())
}

pub async fn node_names(api: &Api) -> Result<Vec<String>, BenchError> {
    let list: Value = serde_json::from_slice(&api.call(Method::GET, "/api/v1/nodes", None).await?)?;
    Ok(list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
        .collect())
}

/// Deletes every Pod of `namespace` at once and waits until the list is empty.
pub async fn delete_all(api: &Api, namespace: &str) -> Result<(), BenchError> {
    let path = format!("/api/v1/namespaces/{namespace}/pods");
    let deadline = Instant::now() + Duration::from_secs(300);
    // A collection too large to delete within the server's request timeout is answered 504
    // with part of it deleted: the next call deletes the rest.
    loop {
        let deleted = api
            .call(
                Method::DELETE,
                &format!("{path}?gracePeriodSeconds=0"),
                None,
            )
            .await;
        match deleted {
            Err(LoadError::Status { status, .. })
                if status == http::StatusCode::GATEWAY_TIMEOUT && Instant::now() < deadline => {}
            other => {
                other?;
                break;
            }
        }
    }
    loop {
        let list: Value = serde_json::from_slice(&api.call(Method::GET, &path, None).await?)?;
        if list["items"].as_array().is_none_or(Vec::is_empty) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(BenchError::Wrong(format!(
                "the Pods of {namespace} were not all gone 5 minutes after their deletion"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the fake kubelet saw of each Pod: when it was first seen bound and seen Running.
#[derive(Default)]
struct Progress {
    bound: HashMap<String, Instant>,
    running: HashMap<String, Instant>,
}

/// A kubelet for every fake node at once: it writes `Running` and `Ready` into the status of
/// each Pod bound to one, and nothing else. It records what it saw until `stop`.
async fn fake_kubelet(
    api: Api,
    from_rv: u64,
    want: usize,
    stop: CancellationToken,
) -> Result<Progress, BenchError> {
    let response = api
        .send(
            Method::GET,
            &format!("/api/v1/namespaces/{SCHED_NAMESPACE}/pods?watch=1&resourceVersion={from_rv}"),
            None,
        )
        .await?;
    let mut lines = WatchLines::new(response);
    let mut progress = Progress::default();
    let writers = Arc::new(Semaphore::new(64));
    let mut writes = tokio::task::JoinSet::new();
    while progress.running.len() < want {
        let line = tokio::select! {
            _ = stop.cancelled() => break,
            line = lines.next() => line?,
        };
        let Some((line, now)) = line else {
            return Err(BenchError::Wrong("the fake kubelet's watch ended".into()));
        };
        let event: Value = serde_json::from_slice(&line)?;
        let object = &event["object"];
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let node = object["spec"]["nodeName"].as_str().unwrap_or("");
        if !node.starts_with(FAKE_NODE_PREFIX) || event["type"] == "DELETED" {
            continue;
        }
        if object["status"]["phase"] == "Running" {
            progress.running.entry(name).or_insert(now);
            continue;
        }
        if progress.bound.contains_key(&name) {
            continue;
        }
        progress.bound.insert(name.clone(), now);
        // The watch is read on while writes wait for a permit: a watcher that stops reading
        // is ended with 410 once its buffer fills, as upstream ends it.
        let writers = writers.clone();
        let api = api.clone();
        writes.spawn(async move {
            let _permit = writers.acquire_owned().await.expect("never closed");
            let status = json!({"status": {
                "phase": "Running", "podIP": "10.250.0.1",
                "conditions": [{"type": "Ready", "status": "True"}],
            }});
            api.call(
                Method::PATCH,
                &format!("/api/v1/namespaces/{SCHED_NAMESPACE}/pods/{name}/status"),
                merge_patch(&status),
            )
            .await
            .map(drop)
        });
        while let Some(done) = writes.try_join_next() {
            done.map_err(|e| BenchError::Wrong(e.to_string()))??;
        }
    }
    Ok(progress)
}

/// How often the fake nodes' Leases are renewed (the kubelet's default: a quarter of 40 s).
const FAKE_LEASE_RENEW: Duration = Duration::from_secs(10);

/// The fake node's Lease, held as a kubelet holds its own, renewed now.
fn fake_lease(name: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "namespace": "kube-node-lease"},
        "spec": {
            "holderIdentity": name, "leaseDurationSeconds": 40,
            "renewTime": crate::meta::object::now_micro_rfc3339(),
        },
    })
}

/// Keeps `count` fake nodes alive as their kubelets would, by renewing each one's Lease every
/// [`FAKE_LEASE_RENEW`] until `stop`: without it the node lifecycle controller rightly taints
/// them unreachable 40 s after they appear, and a slow run would measure that instead.
async fn renew_fake_leases(
    api: Api,
    count: usize,
    stop: CancellationToken,
) -> Result<(), BenchError> {
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(FAKE_LEASE_RENEW) => {}
        }
        concurrently(count, 16, |i| {
            let api = &api;
            async move {
                let name = format!("{FAKE_NODE_PREFIX}{i}");
                let renew =
                    json!({"spec": {"renewTime": crate::meta::object::now_micro_rfc3339()}});
                // Best effort, as a kubelet's: a node not created yet has no Lease to renew.
                let _ = api
                    .call(
                        Method::PATCH,
                        &format!(
                            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
                        ),
                        merge_patch(&renew),
                    )
                    .await;
                Ok::<(), BenchError>(())
            }
        })
        .await?;
    }
}

/// Registers `count` Nodes as kubelets do: one POST, with capacity and a Ready condition, and
/// their Leases.
async fn create_fake_nodes(api: &Api, count: usize) -> Result<(), BenchError> {
    concurrently(count, 64, |i| async move {
        let name = format!("{FAKE_NODE_PREFIX}{i}");
        api.call(
            Method::POST,
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
            json_body(&fake_lease(&name)),
        )
        .await
        .map(drop)
    })
    .await?;
    concurrently(count, 64, |i| async move {
        let name = format!("{FAKE_NODE_PREFIX}{i}");
        let capacity = json!({"cpu": "32", "memory": "256Gi", "pods": "110"});
        api.call(
            Method::POST,
            "/api/v1/nodes",
            json_body(&json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {
                    "name": name, "labels": {"kubernetes.io/hostname": name, "bench": "fake"},
                },
                "status": {
                    "capacity": capacity, "allocatable": capacity,
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "fake node of rkube bench"}],
                },
            })),
        )
        .await
        .map(drop)
    })
    .await?;
    Ok(())
}

/// Creates `count` Pods (with the real nodes cordoned) and lets the fake kubelet run them;
/// returns when each was first seen bound and Running, timed from `t0`.
async fn schedule_batch(
    api: &Api,
    count: usize,
    prefix: &str,
    nodes_appear: Option<usize>,
) -> Result<(Duration, Duration), BenchError> {
    let path = format!("/api/v1/namespaces/{SCHED_NAMESPACE}/pods");
    let list = api
        .call(Method::GET, &format!("{path}?limit=1"), None)
        .await?;
    let rv = first_resource_version(&list).unwrap_or(0);
    let stop = CancellationToken::new();
    let kubelet = tokio::spawn(fake_kubelet(api.clone(), rv, count, stop.clone()));
    let mut t0 = Instant::now();
    concurrently(count, 64, |i| {
        let body = json_body(&pod(&format!("{prefix}{i}"), true));
        let path = &path;
        async move { api.call(Method::POST, path, body).await.map(drop) }
    })
    .await?;
    if let Some(nodes) = nodes_appear {
        // Every Pod is pending with nowhere to go; now the nodes appear at once.
        t0 = Instant::now();
        create_fake_nodes(api, nodes).await?;
    }
    let progress = tokio::time::timeout(Duration::from_secs(600), kubelet)
        .await
        .map_err(|_| {
            stop.cancel();
            BenchError::Wrong(format!(
                "{count} Pods were not all Running within 10 minutes"
            ))
        })?
        .map_err(|e| BenchError::Wrong(e.to_string()))??;
    let last = |m: &HashMap<String, Instant>| {
        m.values()
            .map(|t| t.saturating_duration_since(t0))
            .max()
            .unwrap_or_default()
    };
    Ok((last(&progress.bound), last(&progress.running)))
}

/// Scheduling and the whole control plane on Node objects, then bursts created, scheduled
/// and deleted, with each component's memory against `idle` once those Nodes are gone too.
pub async fn control_plane(
    api: &Api,
    etcd: &etcd_client::Client,
    components: &Components,
    idle: &BTreeMap<String, u64>,
    sizes: &Sizes,
    report: &mut Report,
) -> Result<(), BenchError> {
    let real = node_names(api).await?;
    cordon(api, &real, true).await?;
    ensure_namespace(api, SCHED_NAMESPACE).await?;
    let heartbeats = CancellationToken::new();
    let renewing = tokio::spawn(renew_fake_leases(
        api.clone(),
        sizes.nodes,
        heartbeats.clone(),
    ));
    let measured = control_plane_runs(api, etcd, sizes, report).await;
    heartbeats.cancel();
    let renewed = renewing
        .await
        .map_err(|e| BenchError::Wrong(e.to_string()))?;
    measured?;
    renewed?;
    for i in 0..sizes.nodes {
        let name = format!("{FAKE_NODE_PREFIX}{i}");
        api.call(Method::DELETE, &format!("/api/v1/nodes/{name}"), None)
            .await?;
        api.call(
            Method::DELETE,
            &format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"),
            None,
        )
        .await?;
    }
    cordon(api, &real, false).await?;
    memory_after_bursts(components, idle, sizes, report).await;
    Ok(())
}

/// The measured part of [`control_plane`], while the fake nodes' Leases are kept renewed.
async fn control_plane_runs(
    api: &Api,
    etcd: &etcd_client::Client,
    sizes: &Sizes,
    report: &mut Report,
) -> Result<(), BenchError> {
    let pods = sizes.pending;
    let (bound, running) = schedule_batch(api, pods, "s", Some(sizes.nodes)).await?;

    // The floor: the etcd writes a Pod needs (create and bind; then its status), 64 at a time.
    let sample = Bytes::from(serde_json::to_vec(&pod("s0", true))?);
    let floor_writes = |per_pod: usize| {
        concurrently(pods * per_pod, 64, |i| {
            let mut etcd = etcd.clone();
            let bytes = sample.clone();
            async move {
                etcd.put(format!("/bench-floor/sched/{i}"), bytes, None)
                    .await
                    .map(drop)
            }
        })
    };
    let two = floor_writes(2).await?;
    let mut kv = etcd.clone();
    kv.delete(
        "/bench-floor/",
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await?;
    let three = floor_writes(3).await?;
    kv.delete(
        "/bench-floor/",
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await?;
    let rate = pods as f64 / bound.as_secs_f64().max(1e-9);
    let floor_rate = pods as f64 / two.wall.as_secs_f64().max(1e-9);
    report.push(
        Row::figures(
            &format!(
                "scheduling: {} Nodes appear, {pods} pending Pods bound",
                sizes.nodes
            ),
            format!("{rate:.0} Pods/s (all in {:.2} s)", bound.as_secs_f64()),
            format!("{floor_rate:.0} Pods/s (2 etcd writes each)"),
            Some(rate / floor_rate.max(1e-9)),
        )
        .goal("≥ 1,500 Pods/s".into(), rate >= 1500.0),
    );
    let limit = Duration::from_secs(10).mul_f64(pods as f64 / 10_000.0);
    report.push(
        Row::figures(
            &format!("control plane: {pods} Pods to Running (fake kubelet)"),
            format!("all Running in {:.2} s", running.as_secs_f64()),
            format!("{:.2} s (3 etcd writes each)", three.wall.as_secs_f64()),
            Some(running.as_secs_f64() / three.wall.as_secs_f64().max(1e-9)),
        )
        .goal(format!("≤ {:.1} s", limit.as_secs_f64()), running <= limit),
    );
    delete_all(api, SCHED_NAMESPACE).await?;

    // Bursts created, scheduled, run and deleted (what each component holds afterwards is
    // measured once the Nodes are gone too).
    for burst in 0..sizes.churn_bursts {
        schedule_batch(api, sizes.churn_pods, &format!("b{burst}-"), None).await?;
        delete_all(api, SCHED_NAMESPACE).await?;
    }
    Ok(())
}

/// Each component's memory against `idle` once the bursts' Pods and Nodes are gone, sampled
/// every second until every one is back within 10 MB or `sizes.settle_secs` have passed.
async fn memory_after_bursts(
    components: &Components,
    idle: &BTreeMap<String, u64>,
    sizes: &Sizes,
    report: &mut Report,
) {
    const BACK: i64 = 10_000_000;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(sizes.settle_secs);
    let (worst, cells) = loop {
        let mut worst = 0i64;
        let mut cells = Vec::new();
        for (name, bytes) in &components.rss() {
            let grew = *bytes as i64 - idle.get(name).copied().unwrap_or(0) as i64;
            worst = worst.max(grew);
            cells.push(format!("{name} {:+.1} MB", grew as f64 / 1e6));
        }
        if worst <= BACK || Instant::now() >= deadline {
            break (worst, cells);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    report.push(
        Row::figures(
            &format!(
                "memory after {} bursts of {} Pods (vs idle)",
                sizes.churn_bursts, sizes.churn_pods
            ),
            format!(
                "{} ({:.0} s after the last delete)",
                cells.join(", "),
                start.elapsed().as_secs_f64()
            ),
            String::new(),
            None,
        )
        .goal("each within 10 MB of idle".into(), worst <= BACK),
    );
}

/// Watches one Pod from `rv` until it is Running; returns when it was first seen bound.
async fn until_running(api: &Api, name: &str, rv: u64) -> Result<Option<Instant>, BenchError> {
    let response = api
        .send(
            Method::GET,
            &format!(
                "/api/v1/namespaces/{START_NAMESPACE}/pods?watch=1&resourceVersion={rv}&fieldSelector=metadata.name%3D{name}"
            ),
            None,
        )
        .await?;
    let mut lines = WatchLines::new(response);
    let mut bound = None;
    while let Some((line, _)) = lines.next().await? {
        let event: Value = serde_json::from_slice(&line)?;
        let object = &event["object"];
        if bound.is_none() && object["spec"]["nodeName"].as_str().is_some() {
            bound = Some(Instant::now());
        }
        if object["status"]["phase"] == "Running" {
            return Ok(bound);
        }
    }
    Err(BenchError::Wrong(format!(
        "the watch of Pod {name} ended before it ran"
    )))
}

async fn start_pod(api: &Api, name: &str) -> Result<(Instant, Option<Instant>), BenchError> {
    let t = Instant::now();
    let created = api
        .call(
            Method::POST,
            &format!("/api/v1/namespaces/{START_NAMESPACE}/pods"),
            json_body(&pod(name, false)),
        )
        .await?;
    let rv = first_resource_version(&created).unwrap_or(0);
    let bound = until_running(api, name, rv).await?;
    Ok((t, bound))
}

/// Docker creating and starting the same sandbox and container directly.
async fn docker_floor(
    docker: &crate::kubelet::docker::DockerRuntime,
    cluster: &str,
    i: usize,
) -> Result<(), BenchError> {
    let labels: BTreeMap<String, String> =
        [("io.rkube.cluster".to_string(), format!("{cluster}-floor"))].into();
    let sandbox = docker
        .create_sandbox(&SandboxSpec {
            name: format!("floor-{cluster}-{i}"),
            hostname: format!("floor-{i}"),
            labels: labels.clone(),
            network: crate::kubelet::network_name(cluster),
            ..SandboxSpec::default()
        })
        .await?;
    let id = docker
        .create_container(&ContainerSpec {
            name: format!("floor-{cluster}-{i}-c"),
            image: IMAGE.into(),
            command: Some(vec!["sleep".into(), "3600".into()]),
            labels,
            sandbox_id: sandbox.clone(),
            ..ContainerSpec::default()
        })
        .await?;
    docker.start(&id).await?;
    Ok(())
}

async fn remove_floor(docker: &crate::kubelet::docker::DockerRuntime, cluster: &str) {
    let label = [("io.rkube.cluster".to_string(), format!("{cluster}-floor"))];
    if let Ok(containers) = docker.list(&label).await {
        futures::future::join_all(containers.iter().map(|c| docker.remove(&c.id))).await;
    }
}

/// Pod start-up one at a time and a burst on the real node, each against Docker; then the
/// components' memory and CPU with the burst's Pods running. Returns the idle RSS.
pub async fn on_the_node(
    api: &Api,
    cluster: &str,
    components: &Components,
    sizes: &Sizes,
    report: &mut Report,
) -> Result<(), BenchError> {
    ensure_namespace(api, START_NAMESPACE).await?;
    let docker = crate::kubelet::docker::DockerRuntime::connect().await?;
    let mut ours = Vec::new();
    let mut to_bound = Vec::new();
    let mut floor = Vec::new();
    for i in 0..sizes.starts {
        let (t, bound) = start_pod(api, &format!("one-{i}")).await?;
        ours.push(t.elapsed());
        if let Some(b) = bound {
            to_bound.push(b.saturating_duration_since(t));
        }
        let t = Instant::now();
        docker_floor(&docker, cluster, i).await?;
        floor.push(t.elapsed());
        remove_floor(&docker, cluster).await;
    }
    delete_all(api, START_NAMESPACE).await?;
    let ours = Run {
        latencies: Latencies::new(ours),
        wall: Duration::ZERO,
    };
    let floor = Run {
        latencies: Latencies::new(floor),
        wall: Duration::ZERO,
    };
    let (o50, f50) = (ours.latencies.p50(), floor.latencies.p50());
    let (o99, f99) = (ours.latencies.p99(), floor.latencies.p99());
    let met = o50.as_secs_f64() <= 1.05 * f50.as_secs_f64()
        && o99.as_secs_f64() <= 1.3 * f99.as_secs_f64();
    report.push(
        Row::latencies(
            &format!("Pod start-up, one at a time ×{}", sizes.starts),
            &ours,
            &floor,
            None,
        )
        .goal(
            format!(
                "p50 ≤ 1.05 × floor, p99 ≤ 1.3 × floor (×{:.2}, ×{:.2}); created → bound p50 {:.1} ms",
                o50.as_secs_f64() / f50.as_secs_f64().max(1e-9),
                o99.as_secs_f64() / f99.as_secs_f64().max(1e-9),
                super::report::ms(Latencies::new(to_bound).p50())
            ),
            met,
        ),
    );
    report.series("Pod start-up", &ours.latencies);
    report.series("docker create+start", &floor.latencies);

    // A burst on the one node, against Docker at the same parallelism.
    let t = Instant::now();
    concurrently(sizes.burst, sizes.burst, |i| async move {
        start_pod(api, &format!("burst-{i}")).await.map(drop)
    })
    .await?;
    let ours = t.elapsed();
    let t = Instant::now();
    let docker_ref = &docker;
    concurrently(sizes.burst, sizes.burst, |i| async move {
        docker_floor(docker_ref, cluster, 1000 + i).await
    })
    .await?;
    let floor = t.elapsed();
    remove_floor(&docker, cluster).await;
    let (ours_rate, floor_rate) = (
        sizes.burst as f64 / ours.as_secs_f64(),
        sizes.burst as f64 / floor.as_secs_f64(),
    );
    let ratio = ours_rate / floor_rate;
    report.push(
        Row::figures(
            &format!("burst: {} Pods on one node", sizes.burst),
            format!(
                "{ours_rate:.1} Pods/s (all Running in {:.2} s)",
                ours.as_secs_f64()
            ),
            format!("{floor_rate:.1}/s ({:.2} s)", floor.as_secs_f64()),
            Some(ratio),
        )
        .goal("≥ 0.8 × floor throughput".into(), ratio >= 0.8),
    );

    // Idle with the burst's Pods running.
    let before = components.cpu();
    let window = Duration::from_secs_f64(sizes.idle_secs);
    tokio::time::sleep(window).await;
    let after = components.cpu();
    let used: Duration = after
        .values()
        .sum::<Duration>()
        .saturating_sub(before.values().sum());
    let share = used.as_secs_f64() / window.as_secs_f64();
    // Each component's part, so the row says where the idle time goes.
    let each: Vec<String> = after
        .iter()
        .map(|(name, cpu)| {
            let spent = cpu.saturating_sub(before.get(name).copied().unwrap_or_default());
            let part = spent.as_secs_f64() / window.as_secs_f64();
            format!("{name} {:.2} %", part * 100.0)
        })
        .collect();
    let (total, text) = components.memory();
    report.push(
        Row::figures(
            &format!("idle with {} Pods running: memory", sizes.burst),
            text,
            String::new(),
            None,
        )
        .goal("≤ 40 MB together".into(), total <= 40_000_000),
    );
    report.push(
        Row::figures(
            &format!("idle with {} Pods running: CPU", sizes.burst),
            format!(
                "{:.2} % of a core over {:.0} s ({})",
                share * 100.0,
                window.as_secs_f64(),
                each.join(", ")
            ),
            String::new(),
            None,
        )
        .goal("≤ 1 % of a core".into(), share <= 0.01),
    );
    delete_all(api, START_NAMESPACE).await?;
    Ok(())
}

/// The API server's memory against the bytes of the objects it caches.
pub async fn cache_ratio(
    etcd: &etcd_client::Client,
    components: &Components,
    report: &mut Report,
) -> Result<(), BenchError> {
    let mut kv = super::whole_ranges(etcd);
    let all = kv
        .get(
            "/registry/",
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await?;
    let bytes: usize = all.kvs().iter().map(|kv| kv.value().len()).sum();
    let rss = components
        .pid("apiserver")
        .map(rss_bytes)
        .unwrap_or_default();
    let ratio = rss as f64 / bytes.max(1) as f64;
    report.push(
        Row::figures(
            &format!(
                "API server memory vs the {} objects it caches",
                all.kvs().len()
            ),
            format!("{:.1} MB", rss as f64 / 1e6),
            format!("{:.1} MB of objects", bytes as f64 / 1e6),
            Some(ratio),
        )
        .goal("≤ 2 × the objects".into(), ratio <= 2.0),
    );
    Ok(())
}
