//! `kubectl logs` with the stock kubectl: following a running container until it ends, every
//! option, several Pods and containers at once, upstream's errors.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::up::{peak_rss_kib, UpCluster, TEST_IMAGE};

fn pod(cluster: &UpCluster, name: &str, labels: &str, containers: &[(&str, &str)]) {
    let mut manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  restartPolicy: Never\n  containers:\n"
    );
    for (container, script) in containers {
        manifest.push_str(&format!(
            "  - name: {container}\n    image: {TEST_IMAGE}\n    imagePullPolicy: Never\n    command: [sh, -c, {script:?}]\n"
        ));
    }
    cluster.apply(&manifest);
}

fn phase(cluster: &UpCluster, name: &str) -> String {
    cluster.kubectl_ok(&["get", "pod", name, "-o", "jsonpath={.status.phase}"])
}

fn kubectl(cluster: &UpCluster) -> Command {
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig").arg(&cluster.kubeconfig);
    cmd
}

/// `logs -f` shows each line as the container writes it, and returns when the container ends.
#[tokio::test]
async fn follow_streams_lines_as_written_and_ends_with_the_container() {
    let cluster = UpCluster::start(None);
    pod(
        &cluster,
        "ticker",
        "app: tick",
        &[(
            "main",
            "i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo tick $i; sleep 0.1; done",
        )],
    );
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/ticker",
        "--timeout=60s",
    ]);
    let mut follower = kubectl(&cluster)
        .args(["logs", "-f", "ticker"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let mut lines = BufReader::new(follower.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("text");
    assert_eq!(first, "tick 1");
    // The first line came while the container was still writing.
    assert_eq!(phase(&cluster, "ticker"), "Running");
    let rest: Vec<String> = lines.map(|l| l.expect("text")).collect();
    assert_eq!(rest.len(), 29, "{rest:?}");
    assert_eq!(rest.last().map(String::as_str), Some("tick 30"));
    let status = follower.wait().expect("kubectl ends");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while phase(&cluster, "ticker") != "Succeeded" {
        assert!(Instant::now() < deadline, "the Pod did not end");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn every_option_and_error_reads_as_upstream() {
    let cluster = UpCluster::start(None);
    pod(
        &cluster,
        "two",
        "app: multi",
        &[
            (
                "first",
                "for i in 1 2 3; do echo first $i; done; sleep 3600",
            ),
            ("second", "echo second 1; echo second 2; sleep 3600"),
        ],
    );
    pod(
        &cluster,
        "one",
        "app: multi",
        &[("only", "echo only 1; sleep 3600")],
    );
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/two",
        "pod/one",
        "--timeout=60s",
    ]);
    // Wait until both containers of `two` have written.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cluster
        .kubectl_ok(&["logs", "two", "-c", "second"])
        .contains("second 2")
    {
        assert!(Instant::now() < deadline, "no log");
        std::thread::sleep(Duration::from_millis(100));
    }

    assert_eq!(
        cluster.kubectl_ok(&["logs", "two", "-c", "first", "--tail=1"]),
        "first 3\n"
    );
    assert_eq!(
        cluster.kubectl_ok(&["logs", "two", "-c", "first", "--limit-bytes=9"]),
        "first 1\nf"
    );
    assert_eq!(
        cluster.kubectl_ok(&["logs", "two", "-c", "first", "--since=1h"]),
        "first 1\nfirst 2\nfirst 3\n"
    );
    assert_eq!(
        cluster.kubectl_ok(&[
            "logs",
            "two",
            "-c",
            "first",
            "--since-time=2000-01-01T00:00:00Z"
        ]),
        "first 1\nfirst 2\nfirst 3\n"
    );
    let stamped = cluster.kubectl_ok(&["logs", "two", "-c", "second", "--timestamps"]);
    for line in stamped.lines() {
        let (time, text) = line.split_once(' ').expect("time first");
        time.parse::<jiff::Timestamp>().expect("RFC 3339");
        assert!(text.starts_with("second "), "{line}");
    }
    // kubectl reads the containers one after another, in an order of its own choosing (it keeps
    // the requests in a map), so each container's lines come whole but either may come first.
    let all = cluster.kubectl_ok(&["logs", "two", "--all-containers"]);
    let (first, second) = ("first 1\nfirst 2\nfirst 3\n", "second 1\nsecond 2\n");
    assert!(
        all == format!("{first}{second}") || all == format!("{second}{first}"),
        "{all}"
    );
    let mut prefixed: Vec<String> = cluster
        .kubectl_ok(&["logs", "-l", "app=multi", "--all-containers", "--prefix"])
        .lines()
        .map(str::to_string)
        .collect();
    prefixed.sort();
    assert_eq!(
        prefixed,
        [
            "[pod/one/only] only 1",
            "[pod/two/first] first 1",
            "[pod/two/first] first 2",
            "[pod/two/first] first 3",
            "[pod/two/second] second 1",
            "[pod/two/second] second 2",
        ]
    );

    // kubectl picks the first container itself (the API server would name the choices).
    let out = cluster.kubectl(&["logs", "two"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "first 1\nfirst 2\nfirst 3\n"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Defaulted container \"first\" out of: first, second"),
        "{err}"
    );
    let err = cluster.kubectl_err(&["logs", "two", "-c", "third"]);
    assert!(
        err.contains("container third is not valid for pod two"),
        "{err}"
    );
    let err = cluster.kubectl_err(&["logs", "one", "--previous"]);
    assert!(
        err.contains("previous terminated container \"only\" in pod \"one\" not found"),
        "{err}"
    );
    cluster.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: absent}\nspec:\n  containers:\n  - {name: c, image: rkube-test/absent:1, imagePullPolicy: Never}\n",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let err = loop {
        let err = cluster.kubectl_err(&["logs", "absent"]);
        if err.contains("ErrImageNeverPull") || Instant::now() > deadline {
            break err;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        err.contains("container \"c\" in pod \"absent\" is waiting to start: ErrImageNeverPull"),
        "{err}"
    );
}

/// 100 MiB of log go through `kubectl logs` while the API server and the kubelet stay within a
/// few MiB of their resident memory before. The node keeps 200 MiB of log per container
/// (`containerLogMaxSize` through kind's `kubeadmConfigPatches`), so nothing rotates away.
#[tokio::test]
async fn a_100_mib_log_streams_through_without_being_held() {
    const SIZE: u64 = 100 * 1024 * 1024;
    let cluster = UpCluster::start(Some("tests/configs/big-logs.yaml"));
    pod(
        &cluster,
        "chatty",
        "app: chatty",
        &[(
            "main",
            "echo ready; while [ ! -f /tmp/go ]; do sleep 0.05; done; yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklm | head -c 104857600",
        )],
    );
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/chatty",
        "--timeout=60s",
    ]);
    let node = cluster.kubectl_ok(&["get", "pod", "chatty", "-o", "jsonpath={.spec.nodeName}"]);
    let pids = [
        cluster.pid("apiserver"),
        cluster.pid(&format!("kubelet {node}")),
    ];
    let mut child = kubectl(&cluster)
        .args(["logs", "-f", "chatty"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    out.read_line(&mut first).expect("the first line");
    assert_eq!(first, "ready\n");
    let mut received = 0u64;
    let rss = peak_rss_kib(&pids, || {
        cluster.kubectl_ok(&["exec", "chatty", "--", "touch", "/tmp/go"]);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => received += n as u64,
            }
        }
        assert!(child.wait().expect("kubectl ends").success());
    });
    assert_eq!(received, SIZE);
    for ((before, peak), who) in rss.iter().zip(["apiserver", "kubelet"]) {
        println!("{who}: {before} KiB before, {peak} KiB at peak while streaming 100 MiB");
        assert!(
            *peak < before + 16 * 1024,
            "{who} grew from {before} KiB to {peak} KiB"
        );
    }
}
