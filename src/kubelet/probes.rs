//! Liveness, readiness and startup probes: exec, httpGet and tcpSocket, with upstream's
//! timing (`initialDelaySeconds`, `periodSeconds`, `timeoutSeconds`) and thresholds.
//!
//! One task per probe per container instance, as the kubelet's prober workers; results land
//! in a shared table and wake the pod worker when they change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::runtime::Runtime;
use crate::client::{EventRecorder, ObjectRef};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Liveness,
    Readiness,
    Startup,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
            Kind::Startup => "Startup",
        }
    }
}

/// The probe results of one container instance.
#[derive(Debug, Clone, Default)]
pub struct ContainerProbes {
    pub container_id: String,
    pub ready: bool,
    pub started: bool,
    /// Why the container must be restarted (liveness or startup failed), if it must.
    pub kill: Option<String>,
}

pub type ProbeTable = Arc<Mutex<HashMap<String, ContainerProbes>>>;

/// Everything a probe task needs.
#[derive(Clone)]
pub struct ProbeContext {
    pub runtime: Arc<dyn Runtime>,
    pub recorder: Arc<EventRecorder>,
    pub object: ObjectRef,
    pub table: ProbeTable,
    pub poke: mpsc::Sender<()>,
}

fn secs(v: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(v.unwrap_or(default).max(0) as u64)
}

/// Runs one probe attempt; Err carries upstream's failure text.
pub async fn probe_once(
    probe: &Probe,
    runtime: &dyn Runtime,
    container_id: &str,
    pod_ip: &str,
    ports: &[(String, i32)],
) -> Result<(), String> {
    let timeout = secs(probe.timeout_seconds, 1).max(Duration::from_secs(1));
    let port_of = |p: &IntOrString| -> Result<i32, String> {
        match p {
            IntOrString::Int(n) => Ok(*n),
            IntOrString::String(name) => ports
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| *p)
                .ok_or_else(|| format!("unable to find port {name:?}")),
        }
    };
    if let Some(exec) = &probe.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        let result = runtime
            .exec(container_id, &cmd, timeout)
            .await
            .map_err(|e| e.to_string())?;
        if result.exit_code == 0 {
            return Ok(());
        }
        let out = String::from_utf8_lossy(&result.output).trim().to_string();
        return Err(if out.is_empty() {
            format!("command {cmd:?} exited with {}", result.exit_code)
        } else {
            out
        });
    }
    if let Some(http) = &probe.http_get {
        let port = port_of(&http.port)?;
        let host = http
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| pod_ip.to_string());
        let path = http
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        let url = format!("http://{host}:{port}{path}");
        let attempt = async {
            let mut stream = tokio::net::TcpStream::connect((host.as_str(), port as u16))
                .await
                .map_err(|e| {
                    format!(
                        "Get {url:?}: dial tcp {host}:{port}: connect: {}",
                        io_text(&e)
                    )
                })?;
            let mut request = format!(
                "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.32\r\nAccept: */*\r\nConnection: close\r\n"
            );
            for header in http.http_headers.clone().unwrap_or_default() {
                request.push_str(&format!("{}: {}\r\n", header.name, header.value));
            }
            request.push_str("\r\n");
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(|e| format!("Get {url:?}: {e}"))?;
            let mut head = vec![0u8; 256];
            let n = stream
                .read(&mut head)
                .await
                .map_err(|e| format!("Get {url:?}: {e}"))?;
            let line = String::from_utf8_lossy(&head[..n]).to_string();
            let code: u16 = line
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("Get {url:?}: malformed HTTP response"))?;
            if (200..400).contains(&code) {
                Ok(())
            } else {
                Err(format!("HTTP probe failed with statuscode: {code}"))
            }
        };
        return tokio::time::timeout(timeout, attempt).await.unwrap_or_else(|_| {
            Err(format!("Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"))
        });
    }
    if let Some(tcp) = &probe.tcp_socket {
        let port = port_of(&tcp.port)?;
        let host = tcp
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| pod_ip.to_string());
        let connect = tokio::net::TcpStream::connect((host.as_str(), port as u16));
        return match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("dial tcp {host}:{port}: connect: {}", io_text(&e))),
            Err(_) => Err(format!("dial tcp {host}:{port}: i/o timeout")),
        };
    }
    Err("probe has no handler".into())
}

fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        _ => e.to_string(),
    }
}

/// Starts the probes of one container instance; they stop when `stop` is cancelled.
pub fn start(
    ctx: &ProbeContext,
    container: &Container,
    container_id: &str,
    pod_ip: &str,
    tracker: &tokio_util::task::TaskTracker,
    stop: CancellationToken,
) {
    {
        let mut table = ctx.table.lock().unwrap_or_else(|p| p.into_inner());
        table.insert(
            container.name.clone(),
            ContainerProbes {
                container_id: container_id.to_string(),
                ready: container.readiness_probe.is_none() && container.startup_probe.is_none(),
                started: container.startup_probe.is_none(),
                kill: None,
            },
        );
    }
    let ports: Vec<(String, i32)> = container
        .ports
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.name.map(|n| (n, p.container_port)))
        .collect();
    let probes = [
        (Kind::Startup, container.startup_probe.clone()),
        (Kind::Liveness, container.liveness_probe.clone()),
        (Kind::Readiness, container.readiness_probe.clone()),
    ];
    for (kind, probe) in probes {
        let Some(probe) = probe else { continue };
        let ctx = ctx.clone();
        let name = container.name.clone();
        let id = container_id.to_string();
        let ip = pod_ip.to_string();
        let ports = ports.clone();
        let stop = stop.clone();
        let readiness = container.readiness_probe.is_some();
        tracker.spawn(async move {
            tokio::select! {
                () = run(ctx, kind, probe, Target { name, id, ip, ports, readiness }) => {}
                () = stop.cancelled() => {}
            }
        });
    }
}

/// The container a probe task watches.
struct Target {
    name: String,
    id: String,
    ip: String,
    ports: Vec<(String, i32)>,
    /// Whether the container also has a readiness probe.
    readiness: bool,
}

async fn run(ctx: ProbeContext, kind: Kind, probe: Probe, target: Target) {
    let Target {
        name,
        id,
        ip,
        ports,
        readiness,
    } = target;
    let period = secs(probe.period_seconds, 10).max(Duration::from_secs(1));
    let failure_threshold = probe.failure_threshold.unwrap_or(3).max(1);
    let success_threshold = probe.success_threshold.unwrap_or(1).max(1);
    tokio::time::sleep(secs(probe.initial_delay_seconds, 0)).await;
    let (mut failures, mut successes) = (0, 0);
    let object = ctx
        .object
        .clone()
        .with_field_path(&format!("spec.containers{{{name}}}"));
    loop {
        let gated = kind != Kind::Startup && {
            let table = ctx.table.lock().unwrap_or_else(|p| p.into_inner());
            !table.get(&name).is_some_and(|c| c.started)
        };
        if !gated {
            let outcome = probe_once(&probe, ctx.runtime.as_ref(), &id, &ip, &ports).await;
            match &outcome {
                Ok(()) => {
                    successes += 1;
                    failures = 0;
                }
                Err(why) => {
                    failures += 1;
                    successes = 0;
                    let message = format!("{} probe failed: {why}", kind.word());
                    ctx.recorder
                        .record(&object, "Warning", "Unhealthy", &message);
                }
            }
            let changed = {
                let mut table = ctx.table.lock().unwrap_or_else(|p| p.into_inner());
                let Some(state) = table.get_mut(&name).filter(|s| s.container_id == id) else {
                    return;
                };
                let before = (state.ready, state.started, state.kill.clone());
                match kind {
                    Kind::Readiness if successes >= success_threshold => state.ready = true,
                    Kind::Readiness if failures >= failure_threshold => state.ready = false,
                    Kind::Startup if successes >= 1 => {
                        state.started = true;
                        // Without a readiness probe, a started container is ready.
                        state.ready |= !readiness;
                    }
                    Kind::Startup if failures >= failure_threshold => {
                        state.kill = Some(format!(
                            "Container {name} failed startup probe, will be restarted"
                        ));
                    }
                    Kind::Liveness if failures >= failure_threshold => {
                        state.kill = Some(format!(
                            "Container {name} failed liveness probe, will be restarted"
                        ));
                    }
                    _ => {}
                }
                before != (state.ready, state.started, state.kill.clone())
            };
            if changed {
                let _ = ctx.poke.try_send(());
            }
            if kind == Kind::Startup && successes >= 1 {
                return;
            }
        }
        tokio::time::sleep(period).await;
    }
}
