//! The API workloads, each against raw etcd in the same run: creates at several
//! concurrencies, GET, LIST (whole, by field and by label), and watch fan-out.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use etcd_client::{GetOptions, WatchOptions};
use http::Method;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::load::{Api, WatchLines};
use super::measure::{concurrently, rss_bytes, Latencies, Run};
use super::report::{ms, Report, Row};
use super::{BenchError, Sizes, IMAGE};

pub const NAMESPACE: &str = "bench";
const WATCH_NAMESPACE: &str = "bench-watch";
const FLOOR_PREFIX: &str = "/bench-floor/";
/// Pods of the LIST workload are spread over this many (absent) nodes and carry the label
/// `sel=yes` one time in this many, so each selector matches 1 % of the namespace.
const SPREAD: usize = 100;

pub fn json_body(value: &Value) -> Option<(&'static str, Bytes)> {
    Some((
        "application/json",
        Bytes::from(serde_json::to_vec(value).expect("a JSON value always serializes")),
    ))
}

/// A Pod of the LIST workload: bound to an absent node, so nothing schedules or runs it.
fn listed_pod(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("p{i:05}"), "labels": {
            "app": "bench", "sel": if i % SPREAD == 0 { "yes" } else { "no" }}},
        "spec": {
            "nodeName": format!("absent-{}", i % SPREAD),
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": IMAGE, "command": ["sleep", "3600"]}],
        },
    })
}

/// The `resourceVersion` of the first object in `text` (a watch event or an object: the
/// object's own metadata comes before anything else that carries one).
pub fn first_resource_version(text: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"resourceVersion\":\"";
    let at = text.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = text[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&text[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

pub async fn ensure_namespace(api: &Api, name: &str) -> Result<(), BenchError> {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    match api
        .call(Method::POST, "/api/v1/namespaces", json_body(&ns))
        .await
    {
        Ok(_) => Ok(()),
        Err(super::load::LoadError::Status { status, .. }) if status == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn delete_floor(etcd: &mut etcd_client::Client) -> Result<(), BenchError> {
    etcd.delete(
        FLOOR_PREFIX,
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await?;
    Ok(())
}

/// Creates at 1, 16 and 64 concurrent clients against etcd puts of the same bytes at the same
/// concurrency; leaves `sizes.list_pods` Pods in [`NAMESPACE`] for the reads.
pub async fn creates(
    api: &Api,
    etcd: &etcd_client::Client,
    sizes: &Sizes,
    report: &mut Report,
) -> Result<(), BenchError> {
    ensure_namespace(api, NAMESPACE).await?;
    let path = format!("/api/v1/namespaces/{NAMESPACE}/pods");
    let sample = api
        .call(Method::POST, &path, json_body(&listed_pod(0)))
        .await?;
    let mut next = 1;
    for (level, count) in sizes.creates {
        let first = next;
        next += count;
        let ours = concurrently(count, level, |i| {
            let body = json_body(&listed_pod(first + i));
            let path = &path;
            async move { api.call(Method::POST, path, body).await.map(drop) }
        })
        .await?;
        let floor = concurrently(count, level, |i| {
            let mut etcd = etcd.clone();
            let bytes = sample.clone();
            async move {
                etcd.put(format!("{FLOOR_PREFIX}create/{level}/{i}"), bytes, None)
                    .await
                    .map(drop)
            }
        })
        .await?;
        let mut etcd = etcd.clone();
        delete_floor(&mut etcd).await?;
        report_creates(report, level, &ours, &floor);
    }
    Ok(())
}

fn report_creates(report: &mut Report, level: usize, ours: &Run, floor: &Run) {
    let ratio = ours.throughput() / floor.throughput().max(1e-9);
    let mut goal = format!("≥ 0.6 × floor throughput (×{ratio:.2})");
    let mut met = ratio >= 0.6;
    if level == 1 {
        let limit = floor.latencies.p50() + Duration::from_micros(300);
        goal.push_str(&format!("; p50 ≤ floor + 0.3 ms ({:.2} ms)", ms(limit)));
        met &= ours.latencies.p50() <= limit;
    }
    report.push(
        Row::latencies(
            &format!("Pod create, {level} client(s)"),
            ours,
            floor,
            Some(ratio),
        )
        .goal(goal, met),
    );
    report.series(&format!("create ×{level}"), &ours.latencies);
    report.series(&format!("etcd put ×{level}"), &floor.latencies);
}

/// Whether a LIST answered `size` bytes, as many as the checked `first` answer: nothing is
/// written while the LISTs run, so any other length is a wrong answer.
fn same_length(size: usize, first: &Bytes) -> Result<(), BenchError> {
    if size == first.len() {
        Ok(())
    } else {
        Err(BenchError::Wrong(format!(
            "a LIST answered {size} bytes where the first answered {}",
            first.len()
        )))
    }
}

/// GET one Pod, LIST the namespace, LIST by `spec.nodeName` and by label.
pub async fn reads(
    api: &Api,
    etcd: &etcd_client::Client,
    sizes: &Sizes,
    report: &mut Report,
) -> Result<(), BenchError> {
    let key = format!("/registry/pods/{NAMESPACE}/p00000");
    let path = format!("/api/v1/namespaces/{NAMESPACE}/pods/p00000");
    let ours = concurrently(sizes.gets, 1, |_| async {
        api.call(Method::GET, &path, None).await.map(drop)
    })
    .await?;
    let floor = concurrently(sizes.gets, 1, |_| {
        let mut etcd = etcd.clone();
        let key = key.clone();
        async move {
            let got = etcd.get(key, None).await?;
            for kv in got.kvs() {
                let _: Value = serde_json::from_slice(kv.value()).unwrap_or_default();
            }
            Ok::<(), etcd_client::Error>(())
        }
    })
    .await?;
    let p99 = ours.latencies.p99();
    report.push(Row::latencies("GET one Pod", &ours, &floor, None).goal(
        format!("p99 ≤ 1 ms ({:.2} ms)", ms(p99)),
        p99 <= Duration::from_millis(1),
    ));
    report.series("GET", &ours.latencies);

    let total = sizes.list_pods();
    let list = format!("/api/v1/namespaces/{NAMESPACE}/pods");
    let check = |bytes: &Bytes, want: usize| -> Result<(), BenchError> {
        let body: Value = serde_json::from_slice(bytes)?;
        let got = body["items"].as_array().map_or(0, Vec::len);
        if got == want {
            Ok(())
        } else {
            Err(BenchError::Wrong(format!(
                "a LIST returned {got} Pods where {want} were expected"
            )))
        }
    };
    // A LIST's latency ends with its last byte: the client's decoding, and its copying of the
    // answer into one buffer, are its own (the floor's decoding stands for the server's, which
    // must decode what etcd stores). The first answer is checked item by item, untimed; every
    // timed one must be as long.
    let first = api.call(Method::GET, &list, None).await?;
    check(&first, total)?;
    let ours = concurrently(sizes.lists, 1, |_| async {
        let size = api.call_size(Method::GET, &list).await?;
        same_length(size, &first)
    })
    .await?;
    let prefix = format!("/registry/pods/{NAMESPACE}/");
    let floor = concurrently(sizes.lists, 1, |_| {
        let mut kv = super::whole_ranges(etcd);
        let prefix = prefix.clone();
        async move {
            let got = kv
                .get(prefix, Some(GetOptions::new().with_prefix()))
                .await?;
            let decoded: Vec<Value> = got
                .kvs()
                .iter()
                .filter_map(|kv| serde_json::from_slice(kv.value()).ok())
                .collect();
            if decoded.len() == total {
                Ok(())
            } else {
                Err(BenchError::Wrong(format!(
                    "etcd holds {} Pods where {total} were created",
                    decoded.len()
                )))
            }
        }
    })
    .await?;
    let list_p99 = ours.latencies.p99();
    let limit = Duration::from_millis(100) * (total as u32).div_ceil(10_000);
    report.push(
        Row::latencies(&format!("LIST {total} Pods"), &ours, &floor, None)
            .goal(format!("p99 ≤ {:.0} ms", ms(limit)), list_p99 <= limit),
    );
    report.series(&format!("LIST {total}"), &ours.latencies);
    report.series(&format!("etcd range {total}"), &floor.latencies);

    let want = total.div_ceil(SPREAD);
    for (what, query) in [
        (
            "LIST by spec.nodeName",
            "fieldSelector=spec.nodeName%3Dabsent-0",
        ),
        ("LIST by label", "labelSelector=sel%3Dyes"),
    ] {
        let path = format!("{list}?{query}");
        let selected = concurrently(sizes.lists, 1, |_| async {
            let bytes = api.call(Method::GET, &path, None).await?;
            check(&bytes, want)
        })
        .await?;
        // What the result alone costs: as many single GETs as it has Pods.
        let get = report
            .p50_of("GET one Pod")
            .unwrap_or(Duration::from_millis(1));
        let result_cost = get * want as u32;
        let p50 = selected.latencies.p50();
        report.push(
            Row::latencies(
                &format!("{what} ({want} of {total})"),
                &selected,
                &ours,
                None,
            )
            .floor_label("the whole LIST")
            .goal(
                format!(
                    "costs its result, not the namespace: p50 ≤ {:.2} ms ({want} GETs)",
                    ms(result_cost)
                ),
                p50 <= result_cost,
            ),
        );
    }
    Ok(())
}

/// When each watcher saw each resourceVersion.
type Seen = Vec<(u64, Instant)>;

/// Whether a watcher has seen the last write (once the writer has said which it was).
fn caught_up(seen: &Seen, last: &mut tokio::sync::watch::Receiver<u64>) -> bool {
    let last = *last.borrow_and_update();
    last != 0 && seen.last().is_some_and(|(rv, _)| *rv >= last)
}

/// Reads one watch response until it has seen the last write (or `stop`), noting each
/// event's resourceVersion.
async fn follow(
    response: http::Response<hyper::body::Incoming>,
    stop: CancellationToken,
    mut last: tokio::sync::watch::Receiver<u64>,
) -> Seen {
    let mut seen = Seen::new();
    let mut lines = WatchLines::new(response);
    while !caught_up(&seen, &mut last) {
        let line = tokio::select! {
            _ = stop.cancelled() => break,
            _ = last.changed() => continue,
            line = lines.next() => line,
        };
        let Ok(Some((line, at))) = line else { break };
        if let Some(rv) = first_resource_version(&line) {
            seen.push((rv, at));
        }
    }
    seen
}

/// Latencies from each write's start to each watcher's receipt of it, and deliveries/s.
fn deliveries(
    written: &HashMap<u64, Instant>,
    seen: Vec<Seen>,
    expected: usize,
) -> (Latencies, f64, usize) {
    let watchers = seen.len();
    let mut samples = Vec::with_capacity(watchers * written.len());
    let mut first: Option<Instant> = None;
    let mut end: Option<Instant> = None;
    let mut complete = 0;
    for one in seen {
        let got = one
            .iter()
            .filter(|(rv, _)| written.contains_key(rv))
            .count();
        // A watcher that fell too far behind was ended by the server (410) and missed the
        // rest: it counts as incomplete, its deliveries until then still count.
        if got == expected {
            complete += 1;
        }
        for (rv, at) in one {
            if let Some(start) = written.get(&rv) {
                samples.push(at.saturating_duration_since(*start));
                first = Some(first.map_or(*start, |f| f.min(*start)));
                end = Some(end.map_or(at, |e| e.max(at)));
            }
        }
    }
    let span = match (first, end) {
        (Some(f), Some(e)) => e.saturating_duration_since(f),
        _ => Duration::ZERO,
    };
    let count = samples.len();
    (
        Latencies::new(samples),
        count as f64 / span.as_secs_f64().max(1e-9),
        complete,
    )
}

/// `watchers` watches of one namespace while a writer changes a Pod `rate` times a second,
/// against as many raw etcd watches of a prefix written at the same rate.
pub async fn watch_fan_out(
    api: &Api,
    etcd: &etcd_client::Client,
    apiserver_pid: u32,
    sizes: &Sizes,
    tasks: &TaskTracker,
    report: &mut Report,
) -> Result<(), BenchError> {
    ensure_namespace(api, WATCH_NAMESPACE).await?;
    let pods = format!("/api/v1/namespaces/{WATCH_NAMESPACE}/pods");
    let created = api
        .call(
            Method::POST,
            &pods,
            json_body(&json!({"metadata": {"name": "w"}, "spec": {
                "nodeName": "absent-0", "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "c", "image": IMAGE}]}})),
        )
        .await?;
    let start_rv = first_resource_version(&created).unwrap_or(0);
    let writes = (sizes.watch_rate as f64 * sizes.watch_secs).round() as usize;

    // rkube: every watcher on its own stream, a hundred streams to a connection.
    let before = rss_bytes(apiserver_pid);
    let stop = CancellationToken::new();
    let (last_tx, last_rx) = tokio::sync::watch::channel(0u64);
    let mut watchers = tokio::task::JoinSet::new();
    for chunk in 0..sizes.watchers.div_ceil(100) {
        let conn = api.reconnect(1, tasks).await?;
        for _ in (chunk * 100)..((chunk + 1) * 100).min(sizes.watchers) {
            let response = conn
                .send(
                    Method::GET,
                    &format!("{pods}?watch=1&resourceVersion={start_rv}"),
                    None,
                )
                .await?;
            if !response.status().is_success() {
                return Err(BenchError::Wrong(format!(
                    "a watch was answered {}",
                    response.status()
                )));
            }
            watchers.spawn(follow(response, stop.clone(), last_rx.clone()));
        }
    }
    // Every watch is open and idle once the server has answered its head.
    let idle = rss_bytes(apiserver_pid).saturating_sub(before);
    let per_watcher = idle / sizes.watchers.max(1) as u64;

    // Each write is a new Pod: concurrent writes never contend for one object.
    let mut written = HashMap::with_capacity(writes);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / sizes.watch_rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut in_flight = tokio::task::JoinSet::new();
    for i in 0..writes {
        ticker.tick().await;
        let api = api.clone();
        let pods = pods.clone();
        in_flight.spawn(async move {
            let pod = json!({"metadata": {"name": format!("w{i}")}, "spec": {
                "nodeName": "absent-0", "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "c", "image": IMAGE}]}});
            let t = Instant::now();
            let reply = api.call(Method::POST, &pods, json_body(&pod)).await?;
            Ok::<_, BenchError>((first_resource_version(&reply), t))
        });
    }
    let mut last = 0;
    while let Some(done) = in_flight.join_next().await {
        let (rv, t) = done.map_err(|e| BenchError::Wrong(e.to_string()))??;
        let rv =
            rv.ok_or_else(|| BenchError::Wrong("a PATCH reply has no resourceVersion".into()))?;
        last = last.max(rv);
        written.insert(rv, t);
    }
    let _ = last_tx.send(last);
    let deadline = tokio::time::sleep(Duration::from_secs(60));
    tokio::pin!(deadline);
    let mut seen = Vec::new();
    loop {
        tokio::select! {
            _ = &mut deadline => { stop.cancel(); }
            next = watchers.join_next() => match next {
                Some(Ok(s)) => seen.push(s),
                Some(Err(e)) => return Err(BenchError::Wrong(e.to_string())),
                None => break,
            },
        }
    }
    let watchers = seen.len();
    let (ours, ours_rate, ours_complete) = deliveries(&written, seen, writes);

    // The floor: raw etcd watches of a prefix, the same number, the same write rate.
    let floor_key = format!("{FLOOR_PREFIX}watch/w");
    let mut streams = Vec::with_capacity(sizes.watchers);
    for _ in 0..sizes.watchers {
        let mut client = etcd.clone();
        let stream = client
            .watch(FLOOR_PREFIX, Some(WatchOptions::new().with_prefix()))
            .await?;
        streams.push(stream);
    }
    let (floor_last_tx, floor_last_rx) = tokio::sync::watch::channel(0u64);
    let mut floor_watchers = tokio::task::JoinSet::new();
    for mut stream in streams {
        let mut last = floor_last_rx.clone();
        floor_watchers.spawn(async move {
            let mut seen = Seen::new();
            while !caught_up(&seen, &mut last) {
                let message = tokio::select! {
                    _ = last.changed() => continue,
                    message = stream.message() => message,
                };
                let Ok(Some(message)) = message else { break };
                let now = Instant::now();
                for event in message.events() {
                    if let Some(kv) = event.kv() {
                        seen.push((kv.mod_revision() as u64, now));
                    }
                }
            }
            seen
        });
    }
    let mut floor_written = HashMap::with_capacity(writes);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / sizes.watch_rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut in_flight = tokio::task::JoinSet::new();
    for _ in 0..writes {
        ticker.tick().await;
        let mut etcd = etcd.clone();
        let key = floor_key.clone();
        let bytes = created.clone();
        in_flight.spawn(async move {
            let t = Instant::now();
            let put = etcd.put(key, bytes, None).await?;
            Ok::<_, BenchError>((put.header().map_or(0, |h| h.revision()), t))
        });
    }
    let mut floor_last = 0;
    while let Some(done) = in_flight.join_next().await {
        let (rev, t) = done.map_err(|e| BenchError::Wrong(e.to_string()))??;
        floor_last = floor_last.max(rev);
        floor_written.insert(rev as u64, t);
    }
    let _ = floor_last_tx.send(floor_last as u64);
    let mut floor_seen = Vec::new();
    let collect = async {
        while let Some(s) = floor_watchers.join_next().await {
            floor_seen.push(s.map_err(|e| BenchError::Wrong(e.to_string()))?);
        }
        Ok::<_, BenchError>(())
    };
    tokio::time::timeout(Duration::from_secs(60), collect)
        .await
        .map_err(|_| {
            BenchError::Wrong("raw etcd watchers did not see every write within 60 s".into())
        })??;
    let mut etcd = etcd.clone();
    delete_floor(&mut etcd).await?;
    let floor_watchers = floor_seen.len();
    let (floor, floor_rate, floor_complete) = deliveries(&floor_written, floor_seen, writes);

    let p99 = ours.p99();
    let run = |latencies: Latencies| Run {
        latencies,
        wall: Duration::ZERO,
    };
    let (ours_run, floor_run) = (run(ours), run(floor));
    report.push(
        Row::latencies(
            &format!(
                "watch: {} watchers, {} writes/s, write → event",
                sizes.watchers, sizes.watch_rate
            ),
            &ours_run,
            &floor_run,
            None,
        )
        .goal(
            format!("p99 ≤ 5 ms ({:.2} ms)", ms(p99)),
            p99 <= Duration::from_millis(5),
        ),
    );
    report.push(
        Row::figures(
            "watch: deliveries/s",
            format!("{ours_rate:.0}/s ({ours_complete} of {watchers} watchers saw every event)"),
            format!("{floor_rate:.0}/s ({floor_complete} of {floor_watchers})"),
            Some(ours_rate / floor_rate.max(1e-9)),
        )
        .goal(
            format!(
                "≥ {}/s (every watcher keeps up with the writer)",
                sizes.watchers * sizes.watch_rate as usize
            ),
            ours_complete == watchers
                && ours_rate >= 0.9 * (sizes.watchers * sizes.watch_rate as usize) as f64,
        ),
    );
    report.push(
        Row::figures(
            "watch: API server memory per idle watcher",
            format!("{:.1} KB", per_watcher as f64 / 1000.0),
            String::new(),
            None,
        )
        .goal("≤ 20 KB".into(), per_watcher <= 20_000),
    );
    report.series("watch event", &ours_run.latencies);
    report.series("etcd watch event", &floor_run.latencies);
    super::pods::delete_all(api, WATCH_NAMESPACE).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_resource_version_is_the_objects_own() {
        let event = br#"{"type":"MODIFIED","object":{"metadata":{"name":"w","resourceVersion":"1234","managedFields":[{"resourceVersion":"9"}]}}}"#;
        assert_eq!(first_resource_version(event), Some(1234));
        assert_eq!(first_resource_version(b"{}"), None);
    }
}
