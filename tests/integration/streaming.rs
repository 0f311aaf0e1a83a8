//! Inside running Pods with the stock kubectl: `exec` (output, stdin, exit codes, errors, a
//! real terminal and its resizes), `attach`, `run -it --rm`, `cp`, many sessions at once, and
//! who may do it.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::up::{UpCluster, TEST_IMAGE};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A Pod running `command` in one container `main`, Ready before this returns.
fn running_pod(cluster: &UpCluster, name: &str, extra: &str, command: &str) {
    cluster.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {TEST_IMAGE}\n    imagePullPolicy: Never\n    command: {command}\n{extra}"
    ));
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        &format!("pod/{name}"),
        "--timeout=60s",
    ]);
}

/// kubectl with `stdin` written to it.
fn kubectl_stdin(cluster: &UpCluster, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let mut input = child.stdin.take().expect("piped stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("kubectl finishes");
    writer.join().expect("stdin writer");
    out
}

#[tokio::test]
async fn exec_runs_commands_with_stdin_exit_codes_and_upstream_errors() {
    let cluster = UpCluster::start(None);
    running_pod(&cluster, "box", "", "[sleep, '3600']");

    let ps = cluster.kubectl_ok(&["exec", "box", "--", "ps"]);
    assert!(ps.contains("sleep 3600"), "{ps}");
    let named = cluster.kubectl_ok(&["exec", "box", "-c", "main", "--", "echo", "a b"]);
    assert_eq!(named, "a b\n");

    let piped = kubectl_stdin(&cluster, &["exec", "-i", "box", "--", "cat"], b"hi\n");
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert_eq!(stdout(&piped), "hi\n");

    let split = cluster.kubectl(&["exec", "box", "--", "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!(stdout(&split), "out\n");
    assert_eq!(stderr(&split), "err\n");

    let failed = cluster.kubectl(&["exec", "box", "--", "sh", "-c", "exit 3"]);
    assert_eq!(failed.status.code(), Some(3), "{}", stderr(&failed));
    assert!(
        stderr(&failed).contains("command terminated with exit code 3"),
        "{}",
        stderr(&failed)
    );

    let missing = cluster.kubectl(&["exec", "box", "--", "no-such-command"]);
    assert_eq!(missing.status.code(), Some(1));
    let err = stderr(&missing);
    assert!(
        err.contains("error executing command in container")
            && err.contains("exec: \"no-such-command\": executable file not found in $PATH"),
        "{err}"
    );

    // kubectl's SPDY fallback (what it uses against servers without WebSocket support).
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args([
            "exec",
            "-i",
            "box",
            "--",
            "sh",
            "-c",
            "cat; echo err >&2; exit 6",
        ])
        .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"over spdy\n")
        .expect("stdin written");
    let spdy = child.wait_with_output().expect("kubectl ends");
    assert_eq!(stdout(&spdy), "over spdy\n");
    assert!(stderr(&spdy).starts_with("err\n"), "{}", stderr(&spdy));
    assert_eq!(spdy.status.code(), Some(6));

    let wrong = cluster.kubectl(&["exec", "box", "-c", "nope", "--", "ls"]);
    assert!(
        stderr(&wrong).contains("container nope is not valid for pod box"),
        "{}",
        stderr(&wrong)
    );
    let absent = cluster.kubectl(&["exec", "ghost", "--", "ls"]);
    assert!(
        stderr(&absent).contains("pods \"ghost\" not found"),
        "{}",
        stderr(&absent)
    );
}

/// An isolated tmux server, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(width: u16, height: u16, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("rkube-{}", uuid::Uuid::new_v4().simple()),
        };
        let status = Command::new("tmux")
            .args(["-L", &tmux.socket, "new-session", "-d", "-s", "t", "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string())
            .arg(command)
            .status()
            .expect("tmux runs");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn send(&self, keys: &str) {
        self.run(&["send-keys", "-t", "t", keys, "Enter"]);
    }

    /// Waits until the screen shows `text`; the screen otherwise.
    fn wait_for(&self, text: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.run(&["capture-pane", "-p", "-t", "t"]);
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{text:?} not on the screen within {timeout:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn wait_for_file(path: &Path, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{path:?} not written within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `kubectl exec -it` driven through a real terminal: the shell sees a TTY of the terminal's
/// size, sees it change when the window is resized, and its exit code comes back.
#[tokio::test]
async fn interactive_exec_sees_its_terminal_and_resizes() {
    let cluster = UpCluster::start(None);
    running_pod(&cluster, "shell", "", "[sleep, '3600']");
    let exit_file = cluster.dir.path().join("exit-code");
    let command = format!(
        "kubectl --kubeconfig {} exec -it shell -- sh; echo $? > {}",
        cluster.kubeconfig.display(),
        exit_file.display()
    );
    let tmux = Tmux::start(100, 30, &command);
    tmux.wait_for("/ #", Duration::from_secs(30));
    tmux.send("tty; echo size=$(stty size)");
    tmux.wait_for("size=30 100", Duration::from_secs(10));
    let screen = tmux.wait_for("/dev/pts/", Duration::from_secs(10));
    assert!(screen.contains("/dev/pts/"), "{screen}");
    tmux.run(&["resize-window", "-t", "t", "-x", "120", "-y", "40"]);
    tmux.send("echo size=$(stty size)");
    tmux.wait_for("size=40 120", Duration::from_secs(10));
    tmux.send("exit 7");
    assert_eq!(wait_for_file(&exit_file, Duration::from_secs(20)), "7\n");
}

/// `kubectl attach -it` to a container started with `stdin` and `tty`, and
/// `kubectl run -it --rm`, which attaches (or shows the log of a Pod already done), exits 0 and
/// deletes the Pod.
#[tokio::test]
async fn attach_and_run_it_rm_work_as_upstream() {
    let cluster = UpCluster::start(None);
    running_pod(
        &cluster,
        "console",
        "    stdin: true\n    tty: true\n",
        "[sh]",
    );
    let exit_file = cluster.dir.path().join("attach-exit");
    let command = format!(
        "kubectl --kubeconfig {} attach -it console; echo $? > {}; sleep 60",
        cluster.kubeconfig.display(),
        exit_file.display()
    );
    let tmux = Tmux::start(90, 20, &command);
    tmux.wait_for("If you don't see a command prompt", Duration::from_secs(30));
    tmux.send("echo attached-$((6*7))");
    tmux.wait_for("attached-42", Duration::from_secs(10));
    tmux.send("exit");
    assert_eq!(wait_for_file(&exit_file, Duration::from_secs(20)), "0\n");
    let screen = tmux.wait_for("Session ended", Duration::from_secs(5));
    assert!(
        screen.contains("kubectl attach console -c main -i -t"),
        "{screen}"
    );

    let run = kubectl_stdin(
        &cluster,
        &[
            "run",
            "-i",
            "--rm",
            &format!("--image={TEST_IMAGE}"),
            "--image-pull-policy=Never",
            "--restart=Never",
            "once",
            "--",
            "sh",
            "-c",
            "echo ok",
        ],
        b"",
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(stdout(&run).contains("ok"), "{}", stdout(&run));
    assert!(
        stdout(&run).contains("pod \"once\" deleted"),
        "{}",
        stdout(&run)
    );
    let gone = cluster.kubectl(&["get", "pod", "once"]);
    assert!(stderr(&gone).contains("NotFound"), "{}", stderr(&gone));

    // With a terminal, as users type it.
    let exit_file = cluster.dir.path().join("run-exit");
    let command = format!(
        "kubectl --kubeconfig {} run -it --rm --image={TEST_IMAGE} --image-pull-policy=Never --restart=Never t -- sh -c 'echo ok'; echo $? > {}",
        cluster.kubeconfig.display(),
        exit_file.display()
    );
    let tmux = Tmux::start(90, 20, &format!("{command}; sleep 60"));
    assert_eq!(wait_for_file(&exit_file, Duration::from_secs(60)), "0\n");
    let screen = tmux.wait_for("pod \"t\" deleted", Duration::from_secs(5));
    assert!(screen.contains("ok"), "{screen}");
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum runs");
    stdout(&out)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `kubectl cp` both ways: a directory with modes and a 20 MiB file into the Pod, and files
/// back out, byte for byte.
#[tokio::test]
async fn cp_round_trips_files_and_modes() {
    use std::os::unix::fs::PermissionsExt as _;
    let cluster = UpCluster::start(None);
    running_pod(&cluster, "files", "", "[sleep, '3600']");
    let local = cluster.dir.path().join("dir");
    std::fs::create_dir_all(local.join("sub")).expect("dir");
    std::fs::write(local.join("script.sh"), "#!/bin/sh\necho hi\n").expect("file");
    std::fs::set_permissions(
        local.join("script.sh"),
        std::fs::Permissions::from_mode(0o751),
    )
    .expect("chmod");
    std::fs::write(local.join("sub/secret"), "s3cr3t\n").expect("file");
    std::fs::set_permissions(
        local.join("sub/secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    // 20 MiB that is not all one byte.
    let big: Vec<u8> = (0..20 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(local.join("big.bin"), &big).expect("file");

    let local_arg = local.display().to_string();
    cluster.kubectl_ok(&["cp", &local_arg, "files:/tmp/dir"]);
    let stat = cluster.kubectl_ok(&[
        "exec",
        "files",
        "--",
        "stat",
        "-c",
        "%n %a %s",
        "/tmp/dir/script.sh",
        "/tmp/dir/sub/secret",
        "/tmp/dir/big.bin",
    ]);
    assert_eq!(
        stat,
        format!(
            "/tmp/dir/script.sh 751 18\n/tmp/dir/sub/secret 600 7\n/tmp/dir/big.bin 644 {}\n",
            big.len()
        )
    );
    let inside = cluster.kubectl_ok(&["exec", "files", "--", "sha256sum", "/tmp/dir/big.bin"]);
    assert!(
        inside.starts_with(&sha256(&local.join("big.bin"))),
        "{inside}"
    );

    let back = cluster.dir.path().join("back.bin");
    cluster.kubectl_ok(&["cp", "files:/tmp/dir/big.bin", &back.display().to_string()]);
    assert_eq!(sha256(&back), sha256(&local.join("big.bin")));
    let hostname = cluster.dir.path().join("x");
    cluster.kubectl_ok(&["cp", "files:/etc/hostname", &hostname.display().to_string()]);
    assert_eq!(
        std::fs::read_to_string(&hostname).expect("copied"),
        "files\n"
    );
}

/// Twenty sessions at once each get their own output and exit code.
#[tokio::test]
async fn twenty_exec_sessions_run_at_once() {
    let cluster = UpCluster::start(None);
    running_pod(&cluster, "busy", "", "[sleep, '3600']");
    let children: Vec<_> = (0..20)
        .map(|i| {
            Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&cluster.kubeconfig)
                .args(["exec", "busy", "--", "sh", "-c"])
                .arg(format!("sleep 1; echo session-{i}; exit {}", i % 4))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("kubectl runs")
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("kubectl finishes");
        assert_eq!(stdout(&out), format!("session-{i}\n"), "{}", stderr(&out));
        assert_eq!(out.status.code(), Some((i % 4) as i32));
    }
}

/// Only who may `create pods/exec` (and attach, port-forward) gets in: a user without the grant
/// and a kubelet's identity get upstream's 403; the kubelet's port refuses anyone without a
/// certificate from the cluster CA.
#[tokio::test]
async fn streaming_is_refused_to_who_may_not() {
    let cluster = UpCluster::start(None);
    running_pod(&cluster, "guarded", "", "[sleep, '3600']");
    let node = cluster.kubectl_ok(&["get", "pod", "guarded", "-o", "jsonpath={.spec.nodeName}"]);

    // Without RBAC, a user with no grant cannot even read the Pod (as upstream without a
    // binding); the scheduler's identity can read Pods but not exec into them.
    let alice = cluster.kubeconfig_as("alice", &[]);
    let out = cluster.kubectl_with(&alice, &["exec", "guarded", "--", "ls"]);
    assert!(
        stderr(&out).contains("User \"alice\" cannot get resource \"pods\""),
        "{}",
        stderr(&out)
    );
    let scheduler = cluster.kubeconfig_as("system:kube-scheduler", &[]);
    let out = cluster.kubectl_with(&scheduler, &["exec", "guarded", "--", "ls"]);
    assert!(
        stderr(&out).contains(
            "pods \"guarded\" is forbidden: User \"system:kube-scheduler\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"default\""
        ),
        "{}",
        stderr(&out)
    );
    let out = cluster.kubectl_with(&scheduler, &["attach", "guarded"]);
    assert!(
        stderr(&out).contains("cannot create resource \"pods/attach\""),
        "{}",
        stderr(&out)
    );
    let out = cluster.kubectl_with(&scheduler, &["port-forward", "guarded", "18089:80"]);
    assert!(
        stderr(&out).contains("cannot create resource \"pods/portforward\""),
        "{}",
        stderr(&out)
    );

    let kubelet = cluster.kubeconfig_as(&format!("system:node:{node}"), &["system:nodes"]);
    let out = cluster.kubectl_with(&kubelet, &["exec", "guarded", "--", "ls"]);
    assert!(
        stderr(&out).contains(&format!(
            "User \"system:node:{node}\" cannot create resource \"pods/exec\""
        )),
        "{}",
        stderr(&out)
    );

    // Straight to the kubelet, without a client certificate.
    let port = cluster.kubectl_ok(&[
        "get",
        "node",
        &node,
        "-o",
        "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}",
    ]);
    let out = Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .arg(format!(
            "https://127.0.0.1:{port}/exec/default/guarded/main?command=ls&stdout=1"
        ))
        .output()
        .expect("curl runs");
    assert_eq!(stdout(&out), "401");
}

/// `kubectl debug -it POD --target` adds an ephemeral container that shares the target's
/// process namespace and is attached to; `debug node/N -it` runs in the node's namespaces with
/// its root file system at `/host`; `debug --copy-to` makes a runnable copy.
#[tokio::test]
async fn debug_adds_ephemeral_containers_and_reaches_the_node() {
    let cluster = UpCluster::start(None);
    running_pod(&cluster, "app", "", "[sleep, '3601']");
    let image = format!("--image={TEST_IMAGE}");
    let command = format!(
        "kubectl --kubeconfig {} debug -it app {image} --image-pull-policy=Never --target=main --container=dbg -- sh; sleep 60",
        cluster.kubeconfig.display(),
    );
    let tmux = Tmux::start(100, 30, &command);
    tmux.wait_for("If you don't see a command prompt", Duration::from_secs(30));
    // Only the target's own process counts: whether the pipeline's grep is in ps's snapshot
    // depends on when the shell has started it.
    tmux.send("echo pids:; ps -o args | grep -c '^sleep 3601'; echo end");
    let screen = tmux.wait_for("\nend\n", Duration::from_secs(10));
    assert!(screen.contains("pids:\n1\nend"), "{screen}");
    drop(tmux);
    let status = cluster.kubectl_ok(&[
        "get",
        "pod",
        "app",
        "-o",
        "jsonpath={.status.ephemeralContainerStatuses[0].name} {.status.ephemeralContainerStatuses[0].state.running.startedAt}",
    ]);
    let (name, started) = status.split_once(' ').expect("name and start");
    assert_eq!(name, "dbg");
    assert!(!started.is_empty(), "{status}");

    let node = cluster.kubectl_ok(&["get", "pod", "app", "-o", "jsonpath={.spec.nodeName}"]);
    let host_name = Command::new("hostname").output().expect("hostname runs");
    let host_name = stdout(&host_name).trim().to_string();
    let marker = cluster.dir.path().join("on-the-host");
    std::fs::write(&marker, "seen\n").expect("marker");
    let command = format!(
        "kubectl --kubeconfig {} debug node/{node} -it {image} --image-pull-policy=Never; sleep 60",
        cluster.kubeconfig.display(),
    );
    let tmux = Tmux::start(100, 30, &command);
    tmux.wait_for("If you don't see a command prompt", Duration::from_secs(30));
    tmux.send(&format!(
        "echo host=$(hostname) file=$(cat /host{})",
        marker.display()
    ));
    tmux.wait_for(
        &format!("host={host_name} file=seen"),
        Duration::from_secs(10),
    );
    drop(tmux);

    cluster.kubectl_ok(&[
        "debug",
        "app",
        "--copy-to=app-copy",
        &image,
        "--image-pull-policy=Never",
        "--container=extra",
        "--",
        "sleep",
        "3600",
    ]);
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/app-copy",
        "--timeout=60s",
    ]);
    let copy = cluster.kubectl_ok(&["exec", "app-copy", "-c", "extra", "--", "echo", "copy-runs"]);
    assert_eq!(copy, "copy-runs\n");
}

/// The client libraries' exec: kube-rs (output, stdin, the exit status) and the Python client
/// (`stream` with preloaded output, stdin, and the return code).
#[tokio::test]
async fn client_libraries_exec_as_against_upstream() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::AttachParams;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let cluster = UpCluster::start(None);
    running_pod(&cluster, "lib", "", "[sleep, '3600']");
    let pods: kube::Api<Pod> = kube::Api::default_namespaced(cluster.client().await);

    let params = AttachParams::default().stderr(true);
    let mut session = pods
        .exec(
            "lib",
            ["sh", "-c", "echo out; echo err >&2; exit 3"],
            &params,
        )
        .await
        .expect("kube-rs exec");
    let mut out = String::new();
    let mut err = String::new();
    let mut stdout = session.stdout().expect("stdout");
    let mut stderr_stream = session.stderr().expect("stderr");
    let status = session.take_status().expect("status");
    stdout.read_to_string(&mut out).await.expect("stdout");
    stderr_stream
        .read_to_string(&mut err)
        .await
        .expect("stderr");
    let status = status.await.expect("a status");
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
    assert_eq!(
        status.reason.as_deref(),
        Some("NonZeroExitCode"),
        "{status:?}"
    );
    let code = status
        .details
        .and_then(|d| d.causes)
        .and_then(|c| {
            c.into_iter()
                .find(|c| c.reason.as_deref() == Some("ExitCode"))
        })
        .and_then(|c| c.message);
    assert_eq!(code.as_deref(), Some("3"));
    session.join().await.expect("session ends");

    let params = AttachParams::default().stdin(true).stderr(false);
    let mut session = pods
        .exec("lib", ["cat"], &params)
        .await
        .expect("kube-rs exec with stdin");
    let mut stdin = session.stdin().expect("stdin");
    let mut stdout = session.stdout().expect("stdout");
    stdin.write_all(b"through kube-rs\n").await.expect("write");
    let mut line = vec![0u8; 16];
    stdout.read_exact(&mut line).await.expect("echoed");
    assert_eq!(line, b"through kube-rs\n");
    drop(stdin);
    session.abort();

    let script = r#"
from kubernetes import client, config
from kubernetes.stream import stream
config.load_kube_config()
v1 = client.CoreV1Api()
out = stream(v1.connect_get_namespaced_pod_exec, "lib", "default",
             command=["sh", "-c", "echo from-python"], stderr=True, stdin=False,
             stdout=True, tty=False)
assert out == "from-python\n", repr(out)
resp = stream(v1.connect_get_namespaced_pod_exec, "lib", "default", command=["cat"],
              stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
resp.write_stdin("typed\n")
seen = ""
while "typed" not in seen and resp.is_open():
    resp.update(timeout=5)
    seen += resp.read_stdout()
assert seen == "typed\n", repr(seen)
resp.close()
resp = stream(v1.connect_get_namespaced_pod_exec, "lib", "default",
              command=["sh", "-c", "exit 5"], stderr=True, stdin=False, stdout=True,
              tty=False, _preload_content=False)
resp.run_forever(timeout=30)
assert resp.returncode == 5, resp.returncode
print("python exec: ok")
"#;
    let out = crate::clients::python_with(&cluster.kubeconfig, &["-c", script]).await;
    assert!(out.contains("python exec: ok"), "{out}");
}

/// Established TCP connections to `port` on this machine (from /proc/net/tcp and tcp6).
fn connections_to(port: u16) -> usize {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter(|line| {
                    let cols: Vec<&str> = line.split_whitespace().collect();
                    let remote_port = cols
                        .get(2)
                        .and_then(|a| a.rsplit(':').next())
                        .and_then(|p| u16::from_str_radix(p, 16).ok());
                    remote_port == Some(port) && cols.get(3) == Some(&"01")
                })
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .count()
}

/// Clients that go away (kubectl killed mid-session) leave no connection behind on either hop:
/// the API server's connections to the kubelet close with them.
#[tokio::test]
async fn sessions_end_on_both_hops_when_the_client_goes_away() {
    let cluster = UpCluster::start(None);
    running_pod(&cluster, "held", "", "[sleep, '3600']");
    let node = cluster.kubectl_ok(&["get", "pod", "held", "-o", "jsonpath={.spec.nodeName}"]);
    let port: u16 = cluster
        .kubectl_ok(&[
            "get",
            "node",
            &node,
            "-o",
            "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}",
        ])
        .parse()
        .expect("a kubelet port");
    let idle = connections_to(port);
    let mut clients: Vec<std::process::Child> = (0..5)
        .map(|_| {
            Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&cluster.kubeconfig)
                .args(["exec", "-i", "held", "--", "cat"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("kubectl runs")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while connections_to(port) < idle + 5 {
        assert!(
            Instant::now() < deadline,
            "the sessions did not reach the kubelet"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for client in &mut clients {
        client.kill().expect("kill");
        client.wait().expect("reaped");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while connections_to(port) > idle {
        assert!(
            Instant::now() < deadline,
            "{} connections to the kubelet remain",
            connections_to(port) - idle
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
