//! End-to-end benchmarks of a real rkube cluster against the physical floor, in one run:
//! API writes against raw etcd puts of the same bytes, lists against a raw etcd range read,
//! Pod start against raw Docker create+start of the same containers.
//!
//! Run with `cargo bench --bench cluster` (needs etcd, Docker and kubectl, as the tests do).
//! Prints one line per measurement with the ratio to its floor.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{PostParams, WatchEvent, WatchParams};
use kube::Api;
use rkube::kubelet::runtime::{ContainerSpec, Runtime as _, SandboxSpec};
use serde_json::json;

const IMAGE: &str = "rkube-test/busybox:2";

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i.min(samples.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(what: &str, ours: &mut [Duration], floor: &mut [Duration]) {
    let (o50, o99) = (percentile(ours, 0.5), percentile(ours, 0.99));
    let (f50, f99) = (percentile(floor, 0.5), percentile(floor, 0.99));
    println!(
        "{what:<44} p50 {:>8.2} ms (floor {:>7.2} ms, x{:>5.1})   p99 {:>8.2} ms (floor {:>7.2} ms, x{:>5.1})",
        ms(o50),
        ms(f50),
        ms(o50) / ms(f50).max(0.001),
        ms(o99),
        ms(f99),
        ms(o99) / ms(f99).max(0.001)
    );
}

struct Cluster {
    dir: tempfile::TempDir,
    name: String,
}

impl Cluster {
    fn args(&self) -> Vec<String> {
        let d = self.dir.path();
        vec![
            "--name".into(),
            self.name.clone(),
            "--state-dir".into(),
            d.join("state").display().to_string(),
            "--certs-dir".into(),
            d.join("certs").display().to_string(),
            "--kubeconfig".into(),
            d.join("kubeconfig").display().to_string(),
        ]
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .args(["down", "--purge"])
            .args(self.args())
            .output();
    }
}

fn etcd_url(state: &Path) -> String {
    let text = std::fs::read_to_string(state.join("state.json")).expect("state.json");
    let state: serde_json::Value = serde_json::from_str(&text).expect("state");
    state["etcd_url"].as_str().expect("etcd url").to_string()
}

fn ensure_image() {
    let present = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("bin")).expect("bin");
    std::fs::create_dir_all(dir.path().join("tmp")).expect("tmp");
    std::fs::copy("/bin/busybox", dir.path().join("bin/busybox")).expect("busybox-static");
    for a in ["sh", "sleep"] {
        std::os::unix::fs::symlink("busybox", dir.path().join("bin").join(a)).expect("link");
    }
    let tar = dir.path().join("i.tar");
    assert!(Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .arg("-cf")
        .arg(&tar)
        .args(["bin", "tmp"])
        .status()
        .expect("tar")
        .success());
    assert!(Command::new("docker")
        .args(["import", "-c", "ENV PATH=/bin"])
        .arg(&tar)
        .arg(IMAGE)
        .output()
        .expect("import")
        .status
        .success());
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": IMAGE, "command": ["sleep", "3600"]}]},
    }))
    .expect("pod")
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    ensure_image();
    let cluster = Cluster {
        dir: tempfile::tempdir().expect("temp dir"),
        name: format!("bench{}", std::process::id()),
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_rkube"))
        .args([
            "up",
            "--port",
            &port.to_string(),
            "--bind-address",
            "127.0.0.1",
        ])
        .args(cluster.args())
        .output()
        .expect("rkube up");
    let up = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{:<44} {:>8.2} ms (one node, to Ready)", "rkube up", ms(up));

    let client = rkube::client::from_kubeconfig(&cluster.kubeconfig())
        .await
        .expect("client");
    let etcd = etcd_client::Client::connect([etcd_url(&cluster.dir.path().join("state"))], None)
        .await
        .expect("etcd");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // Writes: creating Pods through the API vs putting the same bytes into etcd.
    let n = 300;
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    let unscheduled = |name: &str| {
        let mut p = pod(name);
        p.spec.as_mut().expect("spec").scheduler_name = Some("nobody".into());
        p
    };
    for i in 0..n {
        let p = unscheduled(&format!("w{i}"));
        let t = Instant::now();
        let created = pods
            .create(&PostParams::default(), &p)
            .await
            .expect("create");
        ours.push(t.elapsed());
        let bytes = serde_json::to_vec(&created).expect("bytes");
        let mut kv = etcd.clone();
        let t = Instant::now();
        kv.put(format!("/bench/raw/{i}"), bytes, None)
            .await
            .expect("put");
        floor.push(t.elapsed());
    }
    report("create Pod (API) vs etcd put", &mut ours, &mut floor);

    // Lists: `kubectl get pods` over 1,000 Pods vs one etcd range read of them.
    for i in n..1000 {
        pods.create(&PostParams::default(), &unscheduled(&format!("w{i}")))
            .await
            .expect("create");
    }
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        let t = Instant::now();
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .arg("--cache-dir")
            .arg(cluster.dir.path().join("cache"))
            .args(["get", "pods"])
            .output()
            .expect("kubectl");
        ours.push(t.elapsed());
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1001);
        let mut kv = etcd.clone();
        let t = Instant::now();
        let got = kv
            .get(
                "/registry/pods/default/",
                Some(etcd_client::GetOptions::new().with_prefix()),
            )
            .await
            .expect("range");
        floor.push(t.elapsed());
        assert_eq!(got.kvs().len(), 1000);
    }
    report(
        "kubectl get pods (1,000) vs etcd range",
        &mut ours,
        &mut floor,
    );
    let t = Instant::now();
    let _ = Command::new("kubectl")
        .args(["version", "--client"])
        .output();
    println!(
        "{:<44} {:>8.2} ms (kubectl's own start-up, included above)",
        "kubectl version --client",
        ms(t.elapsed())
    );
    pods.delete_collection(&Default::default(), &Default::default())
        .await
        .expect("clean up");

    // Pod start: created → Running (seen through a watch) vs Docker creating and starting the
    // same sandbox and container directly.
    let docker = rkube::kubelet::docker::DockerRuntime::connect()
        .await
        .expect("docker");
    let network = rkube::kubelet::network_name(&cluster.name);
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    let rounds = 15;
    for i in 0..rounds {
        let name = format!("s{i}");
        let list = pods.list(&Default::default()).await.expect("list");
        let rv = list.metadata.resource_version.unwrap_or_default();
        let mut stream = pods
            .watch(
                &WatchParams::default().fields(&format!("metadata.name={name}")),
                &rv,
            )
            .await
            .expect("watch")
            .boxed();
        let t = Instant::now();
        pods.create(&PostParams::default(), &pod(&name))
            .await
            .expect("create");
        loop {
            match stream.next().await {
                Some(Ok(WatchEvent::Modified(p)))
                    if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") =>
                {
                    break
                }
                Some(Ok(_)) => {}
                other => panic!("watch ended: {other:?}"),
            }
        }
        ours.push(t.elapsed());

        let labels: std::collections::BTreeMap<String, String> = [(
            "io.rkube.cluster".to_string(),
            format!("{}-floor", cluster.name),
        )]
        .into_iter()
        .collect();
        let t = Instant::now();
        let sandbox = docker
            .create_sandbox(&SandboxSpec {
                name: format!("floor-{}-{i}", cluster.name),
                hostname: name.clone(),
                labels: labels.clone(),
                network: network.clone(),
                exposed_ports: vec![],
            })
            .await
            .expect("sandbox");
        let id = docker
            .create_container(&ContainerSpec {
                name: format!("floor-{}-{i}-c", cluster.name),
                image: IMAGE.into(),
                command: Some(vec!["sleep".into(), "3600".into()]),
                labels,
                sandbox_id: sandbox.clone(),
                ..ContainerSpec::default()
            })
            .await
            .expect("container");
        docker.start(&id).await.expect("start");
        floor.push(t.elapsed());
        let _ = docker.remove(&id).await;
        let _ = docker.remove(&sandbox).await;
    }
    report(
        "Pod to Running (watch) vs docker create+start",
        &mut ours,
        &mut floor,
    );
    println!(
        "(extra over the floor, p50: {:.0} ms)",
        ms(percentile(&mut ours, 0.5)) - ms(percentile(&mut floor, 0.5))
    );
}
