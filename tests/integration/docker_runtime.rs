//! `DockerRuntime` against the real Docker engine: sandboxes, shared namespaces, limits, stop,
//! list, events, exec, logs and pulls.
//!
//! Nothing is pulled (there may be no registry): each test imports its own busybox image from
//! the host's static `/bin/busybox` (Debian's busybox-static) and its own pause image. Every
//! container, network and image a test makes is named with a per-test prefix and labelled with
//! it, and a guard removes them all, with the temp dirs, when the test ends, also on failure.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rkube::kubelet::docker::{DockerRuntime, CPU_PERIOD_US};
use rkube::kubelet::pause::{TarWriter, PAUSE_DIGEST_LABEL};
use rkube::kubelet::runtime::{
    ContainerSpec, ContainerState, LogOptions, Mount, RunState, Runtime, RuntimeError,
    RuntimeEvent, SandboxSpec,
};

/// Reads `events` until container `id` has had every one of `actions`, within `within`;
/// returns every event read, the other containers' included, in order.
async fn until_actions(
    events: &mut futures::stream::BoxStream<'static, RuntimeEvent>,
    id: &str,
    actions: &[&str],
    within: Duration,
) -> Vec<RuntimeEvent> {
    let deadline = tokio::time::Instant::now() + within;
    let mut read: Vec<RuntimeEvent> = Vec::new();
    let had =
        |read: &[RuntimeEvent], action: &str| read.iter().any(|e| e.id == id && e.action == action);
    while !actions.iter().all(|a| had(&read, a)) {
        let seen: Vec<&str> = read
            .iter()
            .filter(|e| e.id == id)
            .map(|e| e.action.as_str())
            .collect();
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .unwrap_or_else(|_| panic!("no {actions:?} for {id} in time; saw {seen:?}"))
            .expect("the stream does not end");
        read.push(event);
    }
    read
}

/// The label every object of a test carries, valued with the test's prefix.
const TEST_LABEL: &str = "io.rkube.test";

fn s(text: &str) -> String {
    text.to_string()
}

fn sh(script: &str) -> Option<Vec<String>> {
    Some(vec![s("/bin/sh"), s("-c"), s(script)])
}

/// Removes everything named or labelled with the prefix when dropped.
struct Cleanup {
    prefix: String,
    network: String,
    images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let prefix = self.prefix.clone();
        let network = self.network.clone();
        let images = self.images.clone();
        // Drop may run inside the test's runtime (even while unwinding), where blocking on
        // another future is not allowed: clean up from a thread with a runtime of its own.
        let worker = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime");
            runtime.block_on(cleanup(&prefix, &network, &images));
        });
        if worker.join().is_err() {
            eprintln!("cleanup of {} panicked", self.prefix);
        }
    }
}

async fn cleanup(prefix: &str, network: &str, images: &[String]) {
    let rt = match DockerRuntime::connect().await {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cleanup of {prefix}: {e}");
            return;
        }
    };
    let mut ids = BTreeSet::new();
    match rt.list(&[(s(TEST_LABEL), s(prefix))]).await {
        Ok(found) => ids.extend(found.into_iter().map(|c| c.id)),
        Err(e) => eprintln!("cleanup of {prefix}: {e}"),
    }
    // Also anything that got the prefix as its name but no label.
    let filters = std::collections::HashMap::from([(s("name"), vec![s(prefix)])]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    if let Ok(found) = rt.docker().list_containers(Some(options)).await {
        ids.extend(found.into_iter().filter_map(|c| c.id));
    }
    for id in ids {
        if let Err(e) = rt.remove(&id).await {
            eprintln!("cleanup of {prefix}: {e}");
        }
    }
    if let Err(e) = rt.remove_network(network).await {
        eprintln!("cleanup of {prefix}: {e}");
    }
    for image in images {
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
            .force(true)
            .build();
        match rt.docker().remove_image(image, Some(options), None).await {
            Ok(_)
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => eprintln!("cleanup of {prefix}: removing {image}: {e}"),
        }
    }
}

/// One test's runtime, images, network and scratch directory.
struct Fixture {
    rt: DockerRuntime,
    prefix: String,
    network: String,
    busybox: String,
    pause: String,
    dir: tempfile::TempDir,
    // Declared last so it runs after nothing else needs the objects.
    _cleanup: Cleanup,
}

impl Fixture {
    async fn new(test: &str) -> Fixture {
        let prefix = format!("rkt-{test}-{}", std::process::id());
        let network = format!("{prefix}-net");
        let busybox = format!("{prefix}-busybox:1");
        let pause = format!("{prefix}-pause:1");
        // The guard exists before anything is created, so a failure below still cleans up.
        let cleanup = Cleanup {
            prefix: prefix.clone(),
            network: network.clone(),
            images: vec![busybox.clone(), pause.clone()],
        };
        let rt = DockerRuntime::connect()
            .await
            .expect("these tests need a running Docker engine")
            .with_pause_image(pause.clone());
        rt.import_image(
            &busybox,
            busybox_tar(),
            vec![s(r#"CMD ["/bin/sh"]"#), s("ENV PATH=/bin")],
        )
        .await
        .expect("import busybox");
        rt.ensure_network(&network).await.expect("network");
        Fixture {
            rt,
            prefix,
            network,
            busybox,
            pause,
            dir: tempfile::tempdir().expect("temp dir"),
            _cleanup: cleanup,
        }
    }

    fn labels(&self, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([(s(TEST_LABEL), self.prefix.clone())]);
        labels.extend(extra.iter().map(|(k, v)| (s(k), s(v))));
        labels
    }

    fn name(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    async fn sandbox(&self, short: &str) -> String {
        self.rt
            .create_sandbox(&SandboxSpec {
                name: self.name(short),
                hostname: s(short),
                labels: self.labels(&[("role", "sandbox")]),
                network: self.network.clone(),
                exposed_ports: vec![(8080, s("tcp"))],
                ..SandboxSpec::default()
            })
            .await
            .expect("create sandbox")
    }

    fn spec(&self, short: &str, sandbox: &str, script: &str) -> ContainerSpec {
        ContainerSpec {
            name: self.name(short),
            image: self.busybox.clone(),
            command: sh(script),
            labels: self.labels(&[("role", short)]),
            sandbox_id: s(sandbox),
            ..Default::default()
        }
    }

    async fn run(&self, spec: &ContainerSpec) -> String {
        let id = self.rt.create_container(spec).await.expect("create");
        self.rt.start(&id).await.expect("start");
        id
    }

    async fn wait_exited(&self, id: &str, within: Duration) -> ContainerState {
        let deadline = Instant::now() + within;
        loop {
            let state = self.rt.inspect(id).await.expect("inspect");
            if state.state == RunState::Exited {
                return state;
            }
            assert!(Instant::now() < deadline, "{id} still running: {state:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn exec(&self, id: &str, script: &str) -> (i64, String) {
        let cmd = sh(script).expect("a command");
        let result = self
            .rt
            .exec(id, &cmd, Duration::from_secs(20))
            .await
            .expect("exec");
        (
            result.exit_code,
            String::from_utf8_lossy(&result.output).into_owned(),
        )
    }
}

/// A root filesystem with the host's static busybox and a symlink per applet.
fn busybox_tar() -> Vec<u8> {
    let binary = std::fs::read("/bin/busybox")
        .expect("/bin/busybox is needed to build the test image (Debian: busybox-static)");
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    let mut tar = TarWriter::new();
    tar.add_dir("bin", 0o755).expect("dir");
    tar.add_dir("etc", 0o755).expect("dir");
    tar.add_dir("tmp", 0o1777).expect("dir");
    tar.add_file("bin/busybox", 0o755, &binary).expect("file");
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if applet != "busybox" {
            tar.add_symlink(&format!("bin/{applet}"), "busybox")
                .expect("symlink");
        }
    }
    tar.finish()
}

#[tokio::test]
async fn pause_image_is_built_once_and_reused() {
    let fx = Fixture::new("pause").await;
    assert!(fx
        .rt
        .version()
        .await
        .expect("version")
        .starts_with("docker://"));
    assert_eq!(fx.rt.image(&fx.pause).await.expect("image"), None);
    let reference = fx.rt.ensure_pause_image().await.expect("build");
    assert_eq!(reference, fx.pause);
    let first = fx.rt.image(&fx.pause).await.expect("image").expect("built");
    let again = fx.rt.ensure_pause_image().await.expect("reuse");
    assert_eq!(again, fx.pause);
    let second = fx.rt.image(&fx.pause).await.expect("image").expect("kept");
    assert_eq!(first.id, second.id, "the second call must not rebuild");

    // An image under that name without this binary's fingerprint (an older development
    // build, say) is replaced, and the unused old one removed.
    let stale = fx
        .rt
        .import_image(&fx.pause, busybox_tar(), vec![s(r#"CMD ["/bin/sh"]"#)])
        .await
        .expect("import a stale image under the pause name");
    assert_ne!(stale.id, second.id);
    fx.rt.ensure_pause_image().await.expect("rebuild");
    let rebuilt = fx
        .rt
        .image(&fx.pause)
        .await
        .expect("image")
        .expect("rebuilt");
    assert_ne!(rebuilt.id, stale.id);
    assert_eq!(fx.rt.image(&stale.id).await.expect("image"), None);

    let inspected = fx
        .rt
        .docker()
        .inspect_image(&fx.pause)
        .await
        .expect("inspect");
    let config = inspected.config.expect("config");
    assert_eq!(config.cmd, Some(vec![s("/pause")]));
    assert!(config
        .labels
        .unwrap_or_default()
        .contains_key(PAUSE_DIGEST_LABEL));

    // The sandbox runs it, with the settings dockershim gives sandboxes.
    let sandbox = fx.sandbox("sb").await;
    let state = fx.rt.inspect(&sandbox).await.expect("inspect");
    assert_eq!(state.state, RunState::Running);
    assert_eq!(state.image, fx.pause);
    let host = fx
        .rt
        .docker()
        .inspect_container(&sandbox, None)
        .await
        .expect("inspect")
        .host_config
        .expect("host config");
    assert_eq!(host.ipc_mode.as_deref(), Some("shareable"));
    assert_eq!(host.init, Some(true));
    assert_eq!(host.network_mode.as_deref(), Some(fx.network.as_str()));

    // pause goes down on SIGTERM at once instead of waiting for the SIGKILL.
    let started = Instant::now();
    fx.rt
        .stop(&sandbox, Duration::from_secs(20))
        .await
        .expect("stop");
    let took = started.elapsed();
    let state = fx.rt.inspect(&sandbox).await.expect("inspect");
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    assert_eq!(state.exit_code, 143, "{state:?}");
}

#[tokio::test]
async fn sandbox_gets_an_ip_and_shares_its_namespaces() {
    let fx = Fixture::new("sandbox").await;
    fx.rt.ensure_network(&fx.network).await.expect("idempotent");
    let sandbox = fx.sandbox("sb").await;
    let state = fx.rt.inspect(&sandbox).await.expect("inspect");
    let ip = state.ip.clone().expect("an IP on the cluster network");
    let network = fx
        .rt
        .docker()
        .inspect_network(&fx.network, None)
        .await
        .expect("network");
    let endpoint = network
        .containers
        .unwrap_or_default()
        .remove(&sandbox)
        .expect("the sandbox is attached to the network");
    assert_eq!(
        endpoint.ipv4_address.unwrap_or_default().split('/').next(),
        Some(ip.as_str())
    );
    assert!(state.labels.get(TEST_LABEL) == Some(&fx.prefix));

    let app = fx.run(&fx.spec("app", &sandbox, "exec sleep 3600")).await;
    let (_, hostname) = fx.exec(&app, "hostname").await;
    assert_eq!(
        hostname.trim(),
        "sb",
        "containers see the sandbox's hostname"
    );
    assert_eq!(fx.rt.inspect(&app).await.expect("inspect").ip, None);
    // The app's network and IPC namespaces are the sandbox's: compare with what the host sees
    // for the sandbox's PID 1.
    let sandbox_pid = fx
        .rt
        .docker()
        .inspect_container(&sandbox, None)
        .await
        .expect("inspect")
        .state
        .and_then(|s| s.pid)
        .expect("sandbox pid");
    for ns in ["net", "ipc"] {
        let (_, mine) = fx.exec(&app, &format!("readlink /proc/self/ns/{ns}")).await;
        let sandbox_ns = std::fs::read_link(format!("/proc/{sandbox_pid}/ns/{ns}"))
            .expect("read the sandbox's namespace");
        assert_eq!(mine.trim(), sandbox_ns.to_string_lossy(), "{ns} namespace");
    }

    // The network cannot go while the sandbox uses it; it can afterwards, twice.
    let busy = fx.rt.remove_network(&fx.network).await;
    assert!(matches!(busy, Err(RuntimeError::Conflict(_))), "{busy:?}");
    fx.rt.remove(&app).await.expect("remove app");
    fx.rt.remove(&sandbox).await.expect("remove sandbox");
    fx.rt
        .remove_network(&fx.network)
        .await
        .expect("remove network");
    fx.rt
        .remove_network(&fx.network)
        .await
        .expect("missing is fine");
}

#[tokio::test]
async fn containers_reach_each_other_on_localhost_and_share_mounts() {
    let fx = Fixture::new("localhost").await;
    let www = fx.dir.path().join("www");
    let shared = fx.dir.path().join("shared");
    std::fs::create_dir_all(&www).expect("mkdir");
    std::fs::create_dir_all(&shared).expect("mkdir");
    std::fs::write(www.join("index.html"), "hello from the pod\n").expect("write");
    let mount = |host: &std::path::Path, path: &str, read_only: bool| Mount {
        host_path: host.to_string_lossy().into_owned(),
        container_path: s(path),
        read_only,
    };

    let sandbox = fx.sandbox("sb").await;
    let web = fx
        .run(&ContainerSpec {
            mounts: vec![mount(&www, "/www", true), mount(&shared, "/shared", false)],
            ..fx.spec("web", &sandbox, "exec httpd -f -p 8080 -h /www")
        })
        .await;
    let client = fx
        .run(&ContainerSpec {
            mounts: vec![mount(&shared, "/shared", false)],
            tmpfs: vec![s("/scratch")],
            ..fx.spec("client", &sandbox, "exec sleep 3600")
        })
        .await;

    // httpd needs a moment to listen.
    let deadline = Instant::now() + Duration::from_secs(20);
    let page = loop {
        let (code, out) = fx.exec(&client, "wget -qO- http://localhost:8080/").await;
        if code == 0 {
            break out;
        }
        assert!(Instant::now() < deadline, "wget kept failing: {out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(page, "hello from the pod\n");

    let (code, _) = fx.exec(&web, "echo written-by-web > /shared/note").await;
    assert_eq!(code, 0);
    let (_, note) = fx.exec(&client, "cat /shared/note").await;
    assert_eq!(note, "written-by-web\n");
    assert_eq!(
        std::fs::read_to_string(shared.join("note")).expect("visible on the host"),
        "written-by-web\n"
    );
    let (code, _) = fx.exec(&web, "touch /www/nope").await;
    assert_ne!(code, 0, "a read-only mount must refuse writes");
    let (_, mounts) = fx.exec(&client, "grep ' /scratch ' /proc/mounts").await;
    assert!(mounts.starts_with("tmpfs /scratch tmpfs"), "{mounts}");

    let (_, ipc_web) = fx.exec(&web, "readlink /proc/self/ns/ipc").await;
    let (_, ipc_client) = fx.exec(&client, "readlink /proc/self/ns/ipc").await;
    assert_eq!(ipc_web, ipc_client, "one IPC namespace per pod");
}

#[tokio::test]
async fn limits_and_security_settings_reach_the_engine_and_oom_is_reported() {
    let fx = Fixture::new("limits").await;
    let sandbox = fx.sandbox("sb").await;
    let configured = fx
        .rt
        .create_container(&ContainerSpec {
            env: vec![(s("GREETING"), s("hi there"))],
            working_dir: Some(s("/tmp")),
            memory_limit: Some(64 << 20),
            cpu_limit_milli: Some(500),
            cpu_shares: Some(512),
            user: Some(s("1000:1000")),
            privileged: false,
            cap_add: vec![s("NET_ADMIN")],
            cap_drop: vec![s("MKNOD")],
            tty: true,
            stdin: true,
            stdin_once: true,
            args: Some(vec![s("ignored-arg")]),
            ..fx.spec("configured", &sandbox, "echo")
        })
        .await
        .expect("create");
    let inspected = fx
        .rt
        .docker()
        .inspect_container(&configured, None)
        .await
        .expect("inspect");
    let host = inspected.host_config.expect("host config");
    assert_eq!(host.memory, Some(64 << 20));
    assert_eq!(host.memory_swap, Some(64 << 20), "no swap under a limit");
    assert_eq!(host.cpu_quota, Some(50_000));
    assert_eq!(host.cpu_period, Some(CPU_PERIOD_US));
    assert_eq!(host.cpu_shares, Some(512));
    assert_eq!(host.cap_add, Some(vec![s("NET_ADMIN")]));
    assert_eq!(host.cap_drop, Some(vec![s("MKNOD")]));
    assert_eq!(host.network_mode, Some(format!("container:{sandbox}")));
    assert_eq!(host.ipc_mode, Some(format!("container:{sandbox}")));
    let config = inspected.config.expect("config");
    assert_eq!(config.user.as_deref(), Some("1000:1000"));
    assert_eq!(config.working_dir.as_deref(), Some("/tmp"));
    assert!(config
        .env
        .unwrap_or_default()
        .contains(&s("GREETING=hi there")));
    assert_eq!(config.entrypoint, sh("echo"));
    assert_eq!(config.cmd, Some(vec![s("ignored-arg")]));
    assert_eq!(
        (config.tty, config.open_stdin, config.stdin_once),
        (Some(true), Some(true), Some(true))
    );

    let privileged = fx
        .rt
        .create_container(&ContainerSpec {
            privileged: true,
            ..fx.spec("privileged", &sandbox, "true")
        })
        .await
        .expect("create");
    let host = fx
        .rt
        .docker()
        .inspect_container(&privileged, None)
        .await
        .expect("inspect")
        .host_config
        .expect("host config");
    assert_eq!(host.privileged, Some(true));

    // 200 MiB into a shell variable under a 20 MiB limit: the kernel kills it. The engine
    // may record the kill after the exit, so the state is read once both events are out.
    let mut events = fx.rt.events((s(TEST_LABEL), fx.prefix.clone()));
    let hog = fx
        .run(&ContainerSpec {
            memory_limit: Some(20 << 20),
            ..fx.spec(
                "hog",
                &sandbox,
                r#"x=$(head -c 200m /dev/zero | tr "\0" a); echo survived"#,
            )
        })
        .await;
    until_actions(&mut events, &hog, &["oom", "die"], Duration::from_secs(60)).await;
    let state = fx.rt.inspect(&hog).await.expect("inspect");
    assert!(state.oom_killed, "{state:?}");
    assert_eq!(state.exit_code, 137);
}

#[tokio::test]
async fn exit_codes_and_logs_come_through() {
    let fx = Fixture::new("exit").await;
    let sandbox = fx.sandbox("sb").await;
    let before = jiff::Timestamp::now();
    let job = fx
        .run(&fx.spec(
            "job",
            &sandbox,
            // The engine copies stdout and stderr separately, so lines written in the same
            // instant to both may swap places; the pauses keep the order testable.
            "echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three; exit 7",
        ))
        .await;
    let state = fx.wait_exited(&job, Duration::from_secs(30)).await;
    assert_eq!(state.exit_code, 7);
    assert!(!state.oom_killed);
    assert_eq!(state.name, fx.name("job"));
    assert_eq!(state.image, fx.busybox);
    assert!(state.image_id.starts_with("sha256:"), "{state:?}");
    let (created, started, finished) = (
        state.created_at.expect("created"),
        state.started_at.expect("started"),
        state.finished_at.expect("finished"),
    );
    assert!(created <= started && started <= finished, "{state:?}");
    assert!(created >= before - jiff::SignedDuration::from_secs(5));

    let all = fx
        .rt
        .logs(&job, &LogOptions::default())
        .await
        .expect("logs");
    assert_eq!(String::from_utf8_lossy(&all), "one\ntwo\nthree\n");
    let tail = fx
        .rt
        .logs(
            &job,
            &LogOptions {
                tail: Some(1),
                ..Default::default()
            },
        )
        .await
        .expect("logs");
    assert_eq!(tail, b"three\n");
    let stamped = fx
        .rt
        .logs(
            &job,
            &LogOptions {
                timestamps: true,
                ..Default::default()
            },
        )
        .await
        .expect("logs");
    let stamped = String::from_utf8_lossy(&stamped).into_owned();
    for line in stamped.lines() {
        let (time, _) = line.split_once(' ').expect("a timestamp first");
        time.parse::<jiff::Timestamp>().expect("RFC 3339");
    }
    let later = fx
        .rt
        .logs(
            &job,
            &LogOptions {
                since: Some(jiff::Timestamp::now() + jiff::SignedDuration::from_secs(5)),
                ..Default::default()
            },
        )
        .await
        .expect("logs");
    assert!(later.is_empty());

    let exec_in_exited = fx.rt.exec(&job, &[s("true")], Duration::from_secs(5)).await;
    assert!(
        matches!(exec_in_exited, Err(RuntimeError::Conflict(_))),
        "{exec_in_exited:?}"
    );
}

#[tokio::test]
async fn stop_honours_the_grace_period() {
    let fx = Fixture::new("stop").await;
    let sandbox = fx.sandbox("sb").await;
    let polite = fx
        .run(&fx.spec(
            "polite",
            &sandbox,
            "trap 'exit 0' TERM; while true; do sleep 0.1; done",
        ))
        .await;
    let stubborn = fx
        .run(&fx.spec("stubborn", &sandbox, "trap '' TERM; sleep 1000"))
        .await;
    // Let the shells install their traps.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    fx.rt
        .stop(&polite, Duration::from_secs(20))
        .await
        .expect("stop");
    let polite_took = started.elapsed();
    assert!(polite_took < Duration::from_secs(10), "{polite_took:?}");
    assert_eq!(fx.rt.inspect(&polite).await.expect("inspect").exit_code, 0);

    let started = Instant::now();
    fx.rt
        .stop(&stubborn, Duration::from_secs(2))
        .await
        .expect("stop");
    let stubborn_took = started.elapsed();
    assert!(
        stubborn_took >= Duration::from_secs(2) && stubborn_took < Duration::from_secs(15),
        "{stubborn_took:?}"
    );
    let state = fx.rt.inspect(&stubborn).await.expect("inspect");
    assert_eq!((state.state, state.exit_code), (RunState::Exited, 137));

    // Stopping a stopped container is fine; a missing one is NotFound.
    fx.rt
        .stop(&polite, Duration::from_secs(1))
        .await
        .expect("again");
    let missing = fx
        .rt
        .stop(&fx.name("missing"), Duration::from_secs(1))
        .await;
    assert!(
        matches!(missing, Err(RuntimeError::NotFound(_))),
        "{missing:?}"
    );
}

#[tokio::test]
async fn list_by_label_finds_exactly_the_tests_containers() {
    let fx = Fixture::new("list").await;
    let sandbox = fx.sandbox("sb").await;
    let a = fx.run(&fx.spec("a", &sandbox, "exec sleep 3600")).await;
    let b = fx
        .rt
        .create_container(&fx.spec("b", &sandbox, "exit 0"))
        .await
        .expect("create");

    let mine = fx
        .rt
        .list(&[(s(TEST_LABEL), fx.prefix.clone())])
        .await
        .expect("list");
    let ids: BTreeSet<&str> = mine.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        BTreeSet::from([sandbox.as_str(), a.as_str(), b.as_str()])
    );
    let b_state = mine.iter().find(|c| c.id == b).expect("b listed");
    assert_eq!(b_state.state, RunState::Created);
    let sandbox_state = mine.iter().find(|c| c.id == sandbox).expect("listed");
    assert!(sandbox_state.ip.is_some());

    let only_a = fx
        .rt
        .list(&[(s(TEST_LABEL), fx.prefix.clone()), (s("role"), s("a"))])
        .await
        .expect("list");
    assert_eq!(only_a.len(), 1);
    assert_eq!(only_a[0].id, a);
    assert_eq!(only_a[0].state, RunState::Running);

    let nobody = fx
        .rt
        .list(&[(s(TEST_LABEL), format!("{}-nobody", fx.prefix))])
        .await
        .expect("list");
    assert!(nobody.is_empty());

    // Names are unique; missing containers are NotFound, removing them is fine.
    let taken = fx
        .rt
        .create_container(&fx.spec("a", &sandbox, "true"))
        .await;
    assert!(matches!(taken, Err(RuntimeError::Conflict(_))), "{taken:?}");
    let missing = fx.rt.inspect(&fx.name("missing")).await;
    assert!(
        matches!(missing, Err(RuntimeError::NotFound(_))),
        "{missing:?}"
    );
    fx.rt
        .remove(&fx.name("missing"))
        .await
        .expect("missing is fine");
    fx.rt.remove(&a).await.expect("remove running");
    assert!(fx.rt.inspect(&a).await.is_err());
}

#[tokio::test]
async fn events_arrive_for_start_and_die() {
    let fx = Fixture::new("events").await;
    let mut events = fx.rt.events((s(TEST_LABEL), fx.prefix.clone()));
    let sandbox = fx.sandbox("sb").await;
    let job = fx.run(&fx.spec("job", &sandbox, "sleep 1; exit 3")).await;

    let mut seen: Vec<String> = Vec::new();
    for event in until_actions(
        &mut events,
        &job,
        &["start", "die"],
        Duration::from_secs(30),
    )
    .await
    {
        assert_eq!(event.labels.get(TEST_LABEL), Some(&fx.prefix));
        assert!(event.time.is_some());
        if event.id != job {
            continue;
        }
        if event.action == "die" {
            assert_eq!(event.labels.get("exitCode").map(String::as_str), Some("3"));
        }
        seen.push(event.action);
    }
    let start = seen.iter().position(|a| a == "start");
    let die = seen.iter().position(|a| a == "die");
    assert!(start < die, "{seen:?}");
    assert!(seen.contains(&s("create")), "{seen:?}");
}

#[tokio::test]
async fn pulling_a_missing_image_fails_fast_and_clearly() {
    let fx = Fixture::new("pull").await;
    let rt = fx
        .rt
        .clone()
        .with_pull_progress_deadline(Duration::from_secs(15));
    let reference = format!("{}-nosuch/image:1", fx.prefix);
    let started = Instant::now();
    let err = rt
        .pull(&reference, None)
        .await
        .expect_err("nothing can be pulled");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "pull took {took:?}");
    assert!(
        matches!(err, RuntimeError::Pull(_) | RuntimeError::ImageNotFound(_)),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(&reference), "{text}");
    assert!(
        text.len() > reference.len() + 20,
        "the engine's reason is kept: {text}"
    );
    assert_eq!(rt.image(&reference).await.expect("image"), None);

    let sandbox = fx.sandbox("sb").await;
    let missing = rt
        .create_container(&ContainerSpec {
            image: reference.clone(),
            ..fx.spec("c", &sandbox, "true")
        })
        .await;
    assert!(
        matches!(missing, Err(RuntimeError::ImageNotFound(_))),
        "{missing:?}"
    );
}

#[tokio::test]
async fn exec_reports_exit_codes_and_times_out() {
    let fx = Fixture::new("exec").await;
    let sandbox = fx.sandbox("sb").await;
    let app = fx.run(&fx.spec("app", &sandbox, "exec sleep 3600")).await;
    let (code, out) = fx.exec(&app, "echo out; echo err >&2; exit 4").await;
    assert_eq!(code, 4);
    assert!(out.contains("out\n") && out.contains("err\n"), "{out}");

    let started = Instant::now();
    let slow = fx
        .rt
        .exec(&app, &[s("sleep"), s("30")], Duration::from_secs(1))
        .await;
    assert!(matches!(slow, Err(RuntimeError::Timeout(_))), "{slow:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A Unix-socket proxy to the engine whose open connections the test can cut, to break the
/// event stream the way a daemon restart or a dropped socket would.
struct CuttableProxy {
    path: std::path::PathBuf,
    cut: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl CuttableProxy {
    fn start(dir: &std::path::Path) -> CuttableProxy {
        let engine = std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|h| h.strip_prefix("unix://").map(str::to_string))
            .unwrap_or_else(|| s("/var/run/docker.sock"));
        let path = dir.join("docker-proxy.sock");
        let listener = tokio::net::UnixListener::bind(&path).expect("bind the proxy socket");
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let cuts = cut.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let engine = engine.clone();
                let mut cut = cuts.subscribe();
                cut.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut upstream) = tokio::net::UnixStream::connect(&engine).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        CuttableProxy { path, cut, task }
    }

    /// Drops every connection open now; later ones go through.
    fn cut(&self) {
        self.cut.send_modify(|generation| *generation += 1);
    }

    async fn runtime(&self) -> DockerRuntime {
        let docker = bollard::Docker::connect_with_unix(
            &self.path.to_string_lossy(),
            120,
            bollard::API_DEFAULT_VERSION,
        )
        .expect("connect through the proxy")
        .negotiate_version()
        .await
        .expect("negotiate through the proxy");
        DockerRuntime::from_docker(docker)
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn next_event(
    events: &mut futures::stream::BoxStream<'static, rkube::kubelet::runtime::RuntimeEvent>,
) -> rkube::kubelet::runtime::RuntimeEvent {
    tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .expect("an event in time")
        .expect("the stream does not end")
}

#[tokio::test]
async fn events_survive_a_broken_connection() {
    let fx = Fixture::new("reconnect").await;
    let proxy = CuttableProxy::start(fx.dir.path());
    let watcher = proxy.runtime().await;
    let mut events = watcher.events((s(TEST_LABEL), fx.prefix.clone()));
    let sandbox = fx.sandbox("sb").await;
    let job = fx.run(&fx.spec("job", &sandbox, "sleep 2; exit 5")).await;

    loop {
        let event = next_event(&mut events).await;
        if event.id == job && event.action == "start" {
            break;
        }
    }
    // Break the stream; the die comes while it reconnects (or is replayed afterwards), and
    // the start already delivered is not delivered twice.
    proxy.cut();
    loop {
        let event = next_event(&mut events).await;
        if event.id != job {
            continue;
        }
        assert_ne!(event.action, "start", "replayed events must not repeat");
        if event.action == "die" {
            assert_eq!(event.labels.get("exitCode").map(String::as_str), Some("5"));
            break;
        }
    }
}

#[tokio::test]
async fn a_pull_without_progress_is_cancelled() {
    let fx = Fixture::new("stall").await;
    // A "registry" on the loopback interface that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            held.push(conn);
        }
    });
    let rt = fx
        .rt
        .clone()
        .with_pull_progress_deadline(Duration::from_secs(3));
    let reference = format!("127.0.0.1:{port}/{}/stall:1", fx.prefix);
    let started = Instant::now();
    let err = rt
        .pull(&reference, None)
        .await
        .expect_err("the registry never answers");
    let took = started.elapsed();
    holder.abort();
    assert!(took < Duration::from_secs(10), "pull took {took:?}");
    assert!(matches!(err, RuntimeError::Pull(_)), "{err:?}");
    assert!(err.to_string().contains("no progress"), "{err}");
}

#[tokio::test]
async fn concurrent_ensure_network_makes_one_network() {
    let fx = Fixture::new("netrace").await;
    // Two runtimes (two kubelets, say) do not share a lock.
    let other = DockerRuntime::connect().await.expect("connect");
    let name = format!("{}-net", fx.prefix);
    fx.rt.remove_network(&name).await.expect("start without it");
    let (a, b) = tokio::join!(fx.rt.ensure_network(&name), other.ensure_network(&name));
    a.expect("first");
    b.expect("second");
    let filters = std::collections::HashMap::from([(s("name"), vec![name.clone()])]);
    let options = bollard::query_parameters::ListNetworksOptionsBuilder::default()
        .filters(&filters)
        .build();
    let same_name = fx
        .rt
        .docker()
        .list_networks(Some(options))
        .await
        .expect("list")
        .into_iter()
        .filter(|n| n.name.as_deref() == Some(name.as_str()))
        .count();
    assert_eq!(same_name, 1);
    assert_eq!(name, fx.network);
}
