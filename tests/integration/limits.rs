//! What a slow, idle, unauthenticated or heavy client can hold: timeouts, in-flight limits,
//! the watch cache's memory, and the 410 a watcher gets when history it needs is gone.

use std::time::{Duration, Instant};

use http_body_util::BodyExt as _;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::harness::TestCluster;
use crate::raw::{client_config, read_events, Identity, Raw};

const PODS: &str = "/api/v1/namespaces/default/pods";
const EVENTS: &str = "/api/v1/namespaces/default/events";
const WAIT: Duration = Duration::from_secs(120);

fn identity(cluster: &TestCluster, name: &str) -> Raw {
    let certs = cluster.certs();
    let config = client_config(
        &certs.join("ca.crt"),
        Identity::Files {
            cert: &certs.join(format!("{name}.crt")),
            key: &certs.join(format!("{name}.key")),
        },
        &[&rustls::version::TLS13, &rustls::version::TLS12],
    );
    Raw::new(&cluster.server, config)
}

fn anonymous(cluster: &TestCluster) -> Raw {
    let config = client_config(
        &cluster.certs().join("ca.crt"),
        Identity::None,
        &[&rustls::version::TLS13],
    );
    Raw::new(&cluster.server, config)
}

fn pod(name: &str, env: Value) -> Vec<u8> {
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}});
    if !env.is_null() {
        pod["spec"]["containers"][0]["env"] = env;
    }
    serde_json::to_vec(&pod).expect("JSON")
}

/// Reads from `stream` until the server closes it (or `within` passes): what arrived, and
/// whether the end was a close.
async fn read_until_closed<R: tokio::io::AsyncRead + Unpin>(
    stream: &mut R,
    within: Duration,
) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into(), false),
        }
    }
}

/// The JSON body of a raw HTTP/1.1 answer.
fn body_of(response: &str) -> Value {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body.trim()).unwrap_or(Value::Null)
}

/// Sends the head of a request announcing a body of `length` bytes, then trickles the body one
/// byte every `every` until the connection breaks; returns the reading half.
async fn trickle(
    raw: &Raw,
    method: &str,
    path: &str,
    length: usize,
    every: Duration,
) -> (
    tokio::io::ReadHalf<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    tokio::task::JoinHandle<()>,
) {
    let tls = raw.connect().await.expect("TLS handshake");
    let (reader, mut writer) = tokio::io::split(tls);
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    );
    writer.write_all(head.as_bytes()).await.expect("head");
    let task = tokio::spawn(async move {
        for _ in 0..length {
            if writer.write_all(b" ").await.is_err() || writer.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
    });
    (reader, task)
}

#[tokio::test]
async fn an_unauthenticated_connection_is_closed_after_its_401() {
    let cluster = TestCluster::builder().start().await;
    let mut tls = anonymous(&cluster).connect().await.expect("TLS handshake");
    tls.write_all(b"GET /api/v1/pods HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .expect("request");
    // The idle timeout is 90 s: a close well before it comes from the 401.
    let (answer, closed) = read_until_closed(&mut tls, Duration::from_secs(60)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert_eq!(body_of(&answer)["reason"], "Unauthorized", "{answer}");
    assert!(closed, "the connection was kept open after the 401");
}

#[tokio::test]
async fn handshakes_and_idle_connections_time_out() {
    let cluster = TestCluster::builder()
        .apiserver_args(&["--tls-handshake-timeout=2s", "--idle-connection-timeout=3s"])
        .start()
        .await;
    let admin = identity(&cluster, "admin");

    // A TCP connection that never starts TLS.
    let started = Instant::now();
    let mut tcp = tokio::net::TcpStream::connect(&admin.address)
        .await
        .expect("connect");
    let (_, closed) = read_until_closed(&mut tcp, WAIT).await;
    assert!(closed, "a silent connection stayed open");
    assert!(started.elapsed() >= Duration::from_millis(1500));

    // An HTTP/1.1 keep-alive connection after its answer.
    let tls = admin.connect().await.expect("TLS handshake");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .expect("HTTP handshake");
    let conn = tokio::spawn(conn);
    let req = hyper::Request::get("/version")
        .header("host", "localhost")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let resp = sender.send_request(req).await.expect("answer");
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.expect("body");
    let answered = Instant::now();
    tokio::time::timeout(WAIT, conn)
        .await
        .expect("the idle HTTP/1.1 connection was closed")
        .expect("connection task")
        .expect("clean close");
    assert!(answered.elapsed() >= Duration::from_secs(2));

    // An HTTP/2 connection with no stream open.
    let tls = admin.connect().await.expect("TLS handshake");
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .expect("HTTP/2 handshake");
    let conn = tokio::spawn(conn);
    let req = hyper::Request::get(format!("{}/version", cluster.server))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let resp = sender.send_request(req).await.expect("answer");
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.expect("body");
    let answered = Instant::now();
    let _ = tokio::time::timeout(WAIT, conn)
        .await
        .expect("the idle HTTP/2 connection was closed");
    assert!(answered.elapsed() >= Duration::from_secs(2));
}

#[tokio::test]
async fn a_request_past_the_request_timeout_gets_504_and_a_trickled_body_is_cut() {
    let cluster = TestCluster::builder()
        .apiserver_args(&["--request-timeout=3s"])
        .start()
        .await;
    let admin = identity(&cluster, "admin");
    let started = Instant::now();
    let (mut reader, writer) =
        trickle(&admin, "POST", PODS, 10_000, Duration::from_millis(200)).await;
    let (answer, closed) = read_until_closed(&mut reader, WAIT).await;
    writer.abort();
    let elapsed = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 504"), "{answer}");
    let status = body_of(&answer);
    assert_eq!(status["kind"], "Status", "{answer}");
    assert_eq!(status["code"], 504);
    assert_eq!(status["reason"], "Timeout");
    assert_eq!(
        status["message"],
        "Timeout: request did not complete within 3s"
    );
    assert!(closed, "the trickling connection was kept");
    assert!(elapsed >= Duration::from_millis(2500), "{elapsed:?}");
    // Nothing was created, and the server still answers others.
    let (code, _) = admin.json("GET", PODS, "", vec![]).await;
    assert_eq!(code, 200);
    // A watch outlives the request timeout.
    let resp = admin
        .send(
            "GET",
            &format!("{PODS}?watch=1&timeoutSeconds=8"),
            "",
            vec![],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let watch_started = Instant::now();
    let (code, _) = admin
        .json("POST", PODS, "application/json", pod("late", Value::Null))
        .await;
    assert_eq!(code, 201);
    let events = read_events(resp, 2, WAIT).await;
    assert_eq!(
        events.len(),
        1,
        "one event, then the watch ends: {events:?}"
    );
    assert_eq!(events[0]["type"], "ADDED");
    assert!(watch_started.elapsed() >= Duration::from_secs(5));
}

#[tokio::test]
async fn an_http2_request_past_the_timeout_ends_alone_and_its_connections_watch_goes_on() {
    let cluster = TestCluster::builder()
        .apiserver_args(&["--request-timeout=2s"])
        .start()
        .await;
    let admin = identity(&cluster, "admin");
    let tls = admin.connect().await.expect("TLS handshake");
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .expect("HTTP/2 handshake");
    let conn = tokio::spawn(conn);
    let url = |path: &str| format!("{}{path}", cluster.server);
    let watch = hyper::Request::get(url(&format!("{PODS}?watch=1&timeoutSeconds=30")))
        .body(http_body_util::Either::Left(http_body_util::Empty::<
            bytes::Bytes,
        >::new()))
        .expect("request");
    let watch = sender.send_request(watch).await.expect("watch answered");
    assert_eq!(watch.status(), 200);

    // A body that never finishes on a second stream of the same connection.
    let (trickle, body) = tokio::sync::mpsc::channel::<
        Result<hyper::body::Frame<bytes::Bytes>, std::convert::Infallible>,
    >(1);
    trickle
        .send(Ok(hyper::body::Frame::data(bytes::Bytes::from_static(
            b"{",
        ))))
        .await
        .expect("first byte");
    let slow = hyper::Request::post(url(PODS))
        .header("content-type", "application/json")
        .body(http_body_util::Either::Right(
            http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(body)),
        ))
        .expect("request");
    let slow = sender
        .send_request(slow)
        .await
        .expect("slow request answered");
    assert_eq!(slow.status(), 504);
    drop(trickle);

    // The connection and its watch are still there.
    let (code, _) = admin
        .json("POST", PODS, "application/json", pod("after", Value::Null))
        .await;
    assert_eq!(code, 201);
    let events = read_events(watch, 1, WAIT).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "after");
    let version = hyper::Request::get(url("/version"))
        .body(http_body_util::Either::Left(http_body_util::Empty::new()))
        .expect("request");
    let version = sender
        .send_request(version)
        .await
        .expect("same connection answers");
    assert_eq!(version.status(), 200);
    assert!(!conn.is_finished());
    conn.abort();
}

#[tokio::test]
async fn inflight_limits_refuse_the_excess_but_not_the_admin_or_watches() {
    let cluster = TestCluster::builder()
        .apiserver_args(&[
            "--max-requests-inflight=2",
            "--max-mutating-requests-inflight=2",
        ])
        .start()
        .await;
    let admin = identity(&cluster, "admin");
    let scheduler = identity(&cluster, "scheduler");
    let watch_before = scheduler
        .send("GET", &format!("{PODS}?watch=1"), "", vec![])
        .await;
    assert_eq!(watch_before.status(), 200);

    // Two writes that never finish sending their bodies fill the mutating pool. One that
    // arrives while the cluster's own controller manager holds a slot is answered 429 at once
    // and holds nothing: it is replaced until two are held (no answer within a second).
    let mut flood = Vec::new();
    let deadline = Instant::now() + WAIT;
    while flood.len() < 2 {
        let (mut reader, writer) = trickle(
            &scheduler,
            "POST",
            EVENTS,
            100_000,
            Duration::from_millis(500),
        )
        .await;
        let mut answer = [0u8; 64];
        match tokio::time::timeout(Duration::from_secs(1), reader.read(&mut answer)).await {
            Err(_) => flood.push((reader, writer)),
            Ok(read) => {
                let got = read.map_or_else(
                    |e| e.to_string(),
                    |n| String::from_utf8_lossy(&answer[..n]).into_owned(),
                );
                assert!(
                    got.starts_with("HTTP/1.1 429"),
                    "a trickled write was answered: {got}"
                );
                writer.abort();
                assert!(
                    Instant::now() < deadline,
                    "no slot was ever free for the flood"
                );
            }
        }
    }
    let event = serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Test", "message": "m"}))
    .expect("JSON");
    let deadline = Instant::now() + WAIT;
    let refused = loop {
        let resp = scheduler
            .send("POST", EVENTS, "application/json", event.clone())
            .await;
        if resp.status() == 429 {
            break resp;
        }
        assert!(Instant::now() < deadline, "no 429 while the pool is full");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let bytes = refused
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let status: Value = serde_json::from_slice(&bytes).expect("a Status");
    assert_eq!(status["reason"], "TooManyRequests");
    assert_eq!(
        status["message"],
        "Too many requests, please try again later."
    );
    assert_eq!(status["details"]["retryAfterSeconds"], 1);

    // Reads have their own pool, which the full mutating pool leaves open (a read may still
    // meet the server's own controllers' reads in its two slots, and be told to retry); a new
    // watch is not counted at all.
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, body) = scheduler.json("GET", PODS, "", vec![]).await;
        if code == 200 {
            break;
        }
        assert_eq!(code, 429, "{body}");
        assert!(Instant::now() < deadline, "reads were refused all along");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let watch_during = scheduler
        .send("GET", &format!("{PODS}?watch=1"), "", vec![])
        .await;
    assert_eq!(watch_during.status(), 200);
    // The admin still writes, and both watches see it.
    let (code, created) = admin
        .json(
            "POST",
            PODS,
            "application/json",
            pod("admin-pod", Value::Null),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    for watch in [watch_before, watch_during] {
        let events = read_events(watch, 1, WAIT).await;
        assert_eq!(events.len(), 1, "the watch saw nothing");
        assert_eq!(events[0]["type"], "ADDED");
        assert_eq!(events[0]["object"]["metadata"]["name"], "admin-pod");
    }
    // Once the flood is gone, the slots are free again.
    for (_, writer) in &flood {
        writer.abort();
    }
    drop(flood);
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, body) = scheduler
            .json("POST", EVENTS, "application/json", event.clone())
            .await;
        if code == 201 {
            break;
        }
        assert_eq!(code, 429, "{body}");
        assert!(Instant::now() < deadline, "the slots were never freed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn rv_of(value: &Value) -> i64 {
    value["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("a resourceVersion")
}

#[tokio::test]
async fn a_watch_from_evicted_history_gets_410_naming_requested_then_oldest() {
    let cluster = TestCluster::builder()
        .apiserver_args(&["--watch-cache-history-mib=1"])
        .start()
        .await;
    let admin = identity(&cluster, "admin");
    let (code, created) = admin
        .json("POST", PODS, "application/json", pod("p", Value::Null))
        .await;
    assert_eq!(code, 201, "{created}");
    let first = rv_of(&created);
    // Ten 200 KiB annotations: two MiB of history, twice the bound.
    let mut last = first;
    for step in 0..10 {
        let patch = json!({"metadata": {"annotations": {"big": format!("{step}{}", "x".repeat(200 * 1024))}}});
        let (code, patched) = admin
            .json(
                "PATCH",
                &format!("{PODS}/p"),
                "application/merge-patch+json",
                serde_json::to_vec(&patch).expect("JSON"),
            )
            .await;
        assert_eq!(code, 200, "{patched}");
        last = rv_of(&patched);
    }
    let watch_from = |rv: i64| {
        let admin = &admin;
        async move {
            let resp = admin
                .send(
                    "GET",
                    &format!("{PODS}?watch=1&resourceVersion={rv}"),
                    "",
                    vec![],
                )
                .await;
            assert_eq!(resp.status(), 200);
            read_events(resp, 1, Duration::from_secs(10)).await
        }
    };
    // The history reaches back to some revision after `first`, which the 410 names.
    let deadline = Instant::now() + WAIT;
    let events = loop {
        let events = watch_from(first).await;
        if events.first().is_some_and(|e| e["type"] == "ERROR") {
            break events;
        }
        assert!(
            Instant::now() < deadline,
            "the cache never dropped history: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let status = &events[0]["object"];
    assert_eq!(status["code"], 410);
    assert_eq!(status["reason"], "Expired");
    let message = status["message"].as_str().unwrap_or("").to_string();
    let oldest: i64 = message
        .strip_prefix(&format!("too old resource version: {first} ("))
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected message {message:?}"));
    assert!(
        first < oldest && oldest < last,
        "{first} < {oldest} < {last}"
    );
    // The bracketed number is exactly where a watch can still start.
    let events = watch_from(oldest).await;
    assert_eq!(
        events.first().map(|e| e["type"].clone()),
        Some(json!("MODIFIED"))
    );
    let events = watch_from(oldest - 1).await;
    assert_eq!(
        events[0]["object"]["message"],
        format!("too old resource version: {} ({oldest})", oldest - 1)
    );
}

/// The resident memory of a process, from `/proc/<pid>/status`.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kib / 1024
}

#[tokio::test]
async fn memory_is_bounded_under_large_updates_and_returned_when_they_go() {
    let cluster = TestCluster::builder().start().await;
    let admin = identity(&cluster, "admin");
    let pid = cluster.apiserver_pid();
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "big"}});
    let (code, _) = admin
        .json(
            "POST",
            "/api/v1/namespaces",
            "application/json",
            serde_json::to_vec(&ns).expect("JSON"),
        )
        .await;
    assert_eq!(code, 201);
    let baseline = rss_mib(pid);
    let big_pods = "/api/v1/namespaces/big/pods";
    let env = json!([{"name": "BIG", "value": "x".repeat(1 << 20)}]);
    let (code, created) = admin
        .json("POST", big_pods, "application/json", pod("p", env))
        .await;
    assert_eq!(code, 201, "{created}");
    let mut peak = 0;
    for step in 0..200 {
        let patch = json!({"metadata": {"labels": {"step": step.to_string()}}});
        let (code, _) = admin
            .json(
                "PATCH",
                &format!("{big_pods}/p"),
                "application/merge-patch+json",
                serde_json::to_vec(&patch).expect("JSON"),
            )
            .await;
        assert_eq!(code, 200);
        peak = peak.max(rss_mib(pid));
    }
    let after_updates = rss_mib(pid);
    eprintln!("API server RSS: baseline {baseline} MiB, peak {peak} MiB, after 200 updates {after_updates} MiB");
    // 200 MiB went through; the history keeps at most 64 MiB of it.
    assert!(
        after_updates < baseline + 160,
        "RSS grew from {baseline} to {after_updates} MiB"
    );
    let (code, _) = admin
        .json("DELETE", "/api/v1/namespaces/big", "", vec![])
        .await;
    assert_eq!(code, 200);
    let deadline = Instant::now() + WAIT;
    loop {
        let now = rss_mib(pid);
        // The cached Pod and the answers' buffers go back to the system; what the watch
        // history still holds (at most 64 MiB) stays until newer events push it out.
        if now + 10 <= after_updates {
            eprintln!("API server RSS after the namespace went: {now} MiB");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "RSS stayed at {now} MiB (baseline {baseline}, after updates {after_updates})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
