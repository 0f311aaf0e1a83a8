//! `rkube bench`: brings up a cluster of its own on a fresh etcd data directory and measures
//! it against the physical floor in the same run — raw etcd for the API workloads, Docker
//! driven directly for Pod start-up — then prints one table of absolute figures, ratios and
//! goals, and plots the latency distributions.
//!
//! The load generator is in this binary and speaks HTTP/2 over TLS with the admin
//! certificate (`load.rs`), on loopback only; every workload is bounded in count and time.
//! `--quick` runs every workload at a small size: a smoke run that keeps the bench working,
//! not a measurement.

pub mod api;
pub mod load;
pub mod measure;
pub mod pods;
pub mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tokio_util::task::TaskTracker;

use crate::cluster::up::{self, UpOptions};
use measure::{cpu_time, pss_bytes, rss_bytes};
use report::{Report, Row};

/// The image every bench Pod runs: a static busybox imported into Docker by the bench itself.
pub const IMAGE: &str = "rkube-bench/busybox:1";
/// The components the memory goals name: the controller-manager is measured but not counted.
const MEMORY_GOAL: [&str; 3] = ["apiserver", "scheduler", "kubelet"];

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Load(#[from] load::LoadError),
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("decoding a response: {0}")]
    Json(#[from] serde_json::Error),
    #[error("Docker: {0}")]
    Runtime(#[from] crate::kubelet::runtime::RuntimeError),
    #[error(transparent)]
    Up(#[from] up::UpError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Wrong(String),
}

/// How much each workload does.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Creates at each concurrency: `(clients, count)`.
    pub creates: [(usize, usize); 3],
    pub gets: usize,
    pub lists: usize,
    pub watchers: usize,
    pub watch_rate: u32,
    pub watch_secs: f64,
    pub nodes: usize,
    pub pending: usize,
    pub starts: usize,
    pub burst: usize,
    pub churn_bursts: usize,
    pub churn_pods: usize,
    /// How long the idle figures are taken over. The full run's window is the kubelet's
    /// longest resync, so every running Pod's periodic sync falls in it.
    pub idle_secs: f64,
    /// How long memory is given to come back after the bursts: the watch cache's history
    /// keeps changes for [`crate::storage::cacher::HISTORY_FRESH`], then the allocator gives
    /// the pages back.
    pub settle_secs: f64,
}

impl Sizes {
    pub fn full() -> Self {
        Self {
            creates: [(1, 1000), (16, 3000), (64, 5999)],
            gets: 2000,
            lists: 20,
            watchers: 1000,
            watch_rate: 500,
            watch_secs: 5.0,
            nodes: 1000,
            pending: 10_000,
            starts: 50,
            burst: 100,
            churn_bursts: 3,
            churn_pods: 3000,
            idle_secs: crate::kubelet::RESYNC_LONGEST.as_secs_f64(),
            settle_secs: 150.0,
        }
    }

    pub fn quick() -> Self {
        Self {
            creates: [(1, 50), (16, 100), (64, 149)],
            gets: 100,
            lists: 3,
            watchers: 20,
            watch_rate: 100,
            watch_secs: 1.0,
            nodes: 20,
            pending: 200,
            starts: 3,
            burst: 5,
            churn_bursts: 1,
            churn_pods: 100,
            idle_secs: 1.0,
            settle_secs: 2.0,
        }
    }

    /// The Pods the create workload leaves for the reads (its own sample included).
    pub fn list_pods(&self) -> usize {
        1 + self.creates.iter().map(|(_, n)| n).sum::<usize>()
    }
}

/// The cluster's own processes, by the word their command line carries.
#[derive(Debug, Clone)]
pub struct Components {
    processes: Vec<up::ProcessRecord>,
}

impl Components {
    fn from_state(state: &up::State) -> Self {
        Self {
            processes: state
                .processes
                .iter()
                .filter(|p| p.marker != "etcd")
                .cloned()
                .collect(),
        }
    }

    pub fn pid(&self, marker: &str) -> Option<u32> {
        self.processes
            .iter()
            .find(|p| p.marker == marker)
            .map(|p| p.pid)
    }

    /// Fails if a component is no longer running: what was measured without it means
    /// nothing. Its log is copied to `out` first, since the cluster's files are deleted.
    fn check_running(&self, during: &str, out: &Path) -> Result<(), BenchError> {
        let gone: Vec<&up::ProcessRecord> = self
            .processes
            .iter()
            .filter(|p| !up::alive(p.pid, &p.marker))
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        let _ = std::fs::create_dir_all(out);
        let named: Vec<String> = gone
            .iter()
            .map(|p| {
                let kept = out.join(format!("{}.log", p.marker));
                match std::fs::copy(&p.log, &kept) {
                    Ok(_) => format!("the {} (its log: {})", p.name, kept.display()),
                    Err(e) => format!("the {} (its log {}: {e})", p.name, p.log.display()),
                }
            })
            .collect();
        Err(BenchError::Wrong(format!(
            "{} exited during the {during} workload: figures measured without it mean nothing",
            named.join(" and ")
        )))
    }

    /// Each component's resident memory.
    pub fn rss(&self) -> BTreeMap<String, u64> {
        self.processes
            .iter()
            .map(|p| (p.marker.clone(), rss_bytes(p.pid)))
            .collect()
    }

    /// What the goal's components (API server, scheduler, kubelet) take together, and a
    /// row's text. Together is their PSS summed: the one binary's pages, which each process's
    /// RSS counts again, counted once. The text gives each component's RSS as well, and the
    /// figure with the controller-manager, which the goal leaves out.
    pub fn memory(&self) -> (u64, String) {
        let pss = |goal_only: bool| -> u64 {
            self.processes
                .iter()
                .filter(|p| !goal_only || MEMORY_GOAL.contains(&p.marker.as_str()))
                .map(|p| pss_bytes(p.pid))
                .sum()
        };
        let together = pss(true);
        let each: Vec<String> = self
            .rss()
            .iter()
            .map(|(n, b)| format!("{n} {:.1} MB", *b as f64 / 1e6))
            .collect();
        let text = format!(
            "{:.1} MB: {} together, shared pages counted once ({:.1} MB with the \
             controller-manager); RSS each: {}",
            together as f64 / 1e6,
            MEMORY_GOAL.join(" + "),
            pss(false) as f64 / 1e6,
            each.join(", ")
        );
        (together, text)
    }

    /// Each component's CPU time so far.
    pub fn cpu(&self) -> BTreeMap<String, Duration> {
        self.processes
            .iter()
            .map(|p| (p.marker.clone(), cpu_time(p.pid)))
            .collect()
    }
}

/// The bench's workloads, by the name `--only` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// `rkube up` to Ready, one node and three nodes.
    Up,
    /// Creates, GETs, LISTs and the API server's memory against what it caches.
    Api,
    /// Watch fan-out.
    Watch,
    /// Pod start-up on the real node, one at a time and in a burst.
    Node,
    /// Scheduling onto Node objects, the control plane to Running, memory after bursts.
    ControlPlane,
}

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub quick: bool,
    /// Where the table (`bench.md`) and the plot (`bench.png`) are written.
    pub out: PathBuf,
    /// The workloads to run; empty for all of them.
    pub only: Vec<Workload>,
}

impl BenchOptions {
    fn runs(&self, workload: Workload) -> bool {
        self.only.is_empty() || self.only.contains(&workload)
    }
}

/// A cluster the bench brought up, brought down and deleted when dropped.
struct OwnCluster {
    options: UpOptions,
    dir: PathBuf,
}

impl OwnCluster {
    fn new(dir: &Path, name: &str, config: Option<PathBuf>) -> Result<Self, BenchError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|source| BenchError::Io {
                what: "cannot find a free port".into(),
                source,
            })?
            .port();
        let dir = dir.join(name);
        Ok(Self {
            options: UpOptions {
                config,
                name: Some(name.to_string()),
                state_dir: dir.join("state"),
                certs_dir: dir.join("certs"),
                kubeconfig: dir.join("kubeconfig"),
                port,
                bind_address: "127.0.0.1".into(),
            },
            dir,
        })
    }

    async fn up(&self) -> Result<(up::State, Duration), BenchError> {
        let t = Instant::now();
        let state = up::up(&self.options).await?;
        Ok((state, t.elapsed()))
    }

    async fn down(self) {
        if let Err(e) = up::down(&self.options, true).await {
            eprintln!("warning: {e}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A KV client that takes a range answer of any size (gRPC's default limit is 4 MiB, less
/// than 10,000 Pods).
fn whole_ranges(etcd: &etcd_client::Client) -> etcd_client::KvClient {
    etcd.kv_client()
        .max_decoding_message_size(i32::MAX as usize)
}

fn ensure_image() -> Result<(), BenchError> {
    let present = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    let io = |what: &str| {
        let what = what.to_string();
        move |source| BenchError::Io { what, source }
    };
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        return Err(BenchError::Wrong(
            "the bench's image is made from a static busybox: install Debian's busybox-static (scripts/lib.sh does)".into(),
        ));
    }
    let dir = std::env::temp_dir().join(format!("rkube-bench-image-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("bin")).map_err(io("cannot make the image's tree"))?;
    std::fs::create_dir_all(dir.join("tmp")).map_err(io("cannot make the image's tree"))?;
    std::fs::copy(busybox, dir.join("bin/busybox")).map_err(io("cannot copy busybox"))?;
    for applet in ["sh", "sleep"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet))
            .map_err(io("cannot link an applet"))?;
    }
    let tar = dir.join("image.tar");
    let made = Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .arg("-cf")
        .arg(&tar)
        .args(["bin", "tmp"])
        .status()
        .map_err(io("cannot run tar"))?
        .success()
        && Command::new("docker")
            .args(["import", "-c", "ENV PATH=/bin"])
            .arg(&tar)
            .arg(IMAGE)
            .output()
            .map_err(io("cannot run docker import"))?
            .status
            .success();
    let _ = std::fs::remove_dir_all(&dir);
    if made {
        Ok(())
    } else {
        Err(BenchError::Wrong(format!(
            "cannot import {IMAGE} into Docker"
        )))
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0.0, |kib| kib as f64 / (1024.0 * 1024.0));
    let build = if cfg!(debug_assertions) {
        "debug build"
    } else {
        "release build"
    };
    format!(
        "{} on {cores} cores of {cpu}, {memory:.0} GiB, {build}, {}",
        env!("CARGO_PKG_NAME"),
        jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC")
    )
}

const THREE_NODES: &str = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n- role: worker\n- role: worker\n";

/// Runs every workload and writes the report; fails if a workload could not run (a goal
/// missed is reported, not an error).
pub async fn run(options: &BenchOptions) -> Result<Report, BenchError> {
    let sizes = if options.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    ensure_image()?;
    let scratch = std::env::temp_dir().join(format!("rkube-bench-{}", std::process::id()));
    let io = |what: String| move |source| BenchError::Io { what, source };
    std::fs::create_dir_all(&scratch)
        .map_err(io(format!("cannot create {}", scratch.display())))?;
    let config = scratch.join("three-nodes.yaml");
    std::fs::write(&config, THREE_NODES)
        .map_err(io(format!("cannot write {}", config.display())))?;
    let mut report = Report::default();
    let id = std::process::id();

    // `rkube up` to Ready: three nodes first (then down), then the one-node cluster the
    // other workloads run on.
    let three_up = if options.runs(Workload::Up) {
        let three = OwnCluster::new(&scratch, &format!("bench3n{id}"), Some(config))?;
        let three_up = three.up().await;
        three.down().await;
        Some(three_up?.1)
    } else {
        None
    };
    let cluster = OwnCluster::new(&scratch, &format!("bench{id}"), None)?;
    let result = run_on(&cluster, options, three_up, &sizes, &mut report).await;
    cluster.down().await;
    let _ = std::fs::remove_dir_all(&scratch);
    result?;

    std::fs::create_dir_all(&options.out)
        .map_err(io(format!("cannot create {}", options.out.display())))?;
    let table = report.markdown(&machine());
    let md = options.out.join("bench.md");
    std::fs::write(&md, &table).map_err(io(format!("cannot write {}", md.display())))?;
    let png = options.out.join("bench.png");
    report.plot(&png).map_err(BenchError::Wrong)?;
    println!("\n{table}");
    println!(
        "Wrote {} and {}; {} goal(s) missed.",
        md.display(),
        png.display(),
        report.missed()
    );
    Ok(report)
}

async fn run_on(
    cluster: &OwnCluster,
    options: &BenchOptions,
    three_up: Option<Duration>,
    sizes: &Sizes,
    report: &mut Report,
) -> Result<(), BenchError> {
    let (state, one_up) = cluster.up().await?;
    if let Some(three_up) = three_up {
        report.push(
            Row::figures(
                "`rkube up` to Ready, one node / three nodes",
                format!(
                    "{:.2} s / {:.2} s",
                    one_up.as_secs_f64(),
                    three_up.as_secs_f64()
                ),
                "kind: 12–17 s".into(),
                None,
            )
            .goal(
                "≤ 0.4 s / ≤ 0.8 s".into(),
                one_up <= Duration::from_millis(400) && three_up <= Duration::from_millis(800),
            ),
        );
    }
    let components = Components::from_state(&state);
    let tasks = TaskTracker::new();
    let api = load::Api::connect(&state.server, &cluster.options.certs_dir, 4, &tasks).await?;
    let etcd = etcd_client::Client::connect([state.etcd_url.as_str()], None).await?;
    let idle = components.rss();
    let (total, text) = components.memory();
    report.push(
        Row::figures("idle, no Pods: memory", text, String::new(), None)
            .goal("≤ 40 MB together".into(), total <= 40_000_000),
    );

    if options.runs(Workload::Api) {
        println!("Creating, reading and listing Pods ...");
        api::creates(&api, &etcd, sizes, report).await?;
        api::reads(&api, &etcd, sizes, report).await?;
        pods::cache_ratio(&etcd, &components, report).await?;
        pods::delete_all(&api, api::NAMESPACE).await?;
        components.check_running("api", &options.out)?;
    }
    if options.runs(Workload::Watch) {
        println!("Watching ...");
        let apiserver = components.pid("apiserver").unwrap_or(0);
        api::watch_fan_out(&api, &etcd, apiserver, sizes, &tasks, report).await?;
        components.check_running("watch", &options.out)?;
    }
    if options.runs(Workload::Node) {
        println!("Starting Pods on the node ...");
        pods::on_the_node(&api, &state.cluster, &components, sizes, report).await?;
        components.check_running("node", &options.out)?;
    }
    if options.runs(Workload::ControlPlane) {
        println!("Scheduling onto Node objects ...");
        pods::control_plane(&api, &etcd, &components, &idle, sizes, report).await?;
        components.check_running("control-plane", &options.out)?;
    }
    tasks.close();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, pid: u32, log: PathBuf) -> up::ProcessRecord {
        up::ProcessRecord {
            name: name.into(),
            pid,
            marker: name.into(),
            log,
            ..up::ProcessRecord::default()
        }
    }

    #[test]
    fn a_component_gone_mid_run_fails_the_bench_and_its_log_is_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        /// Stopped even when an assertion fails.
        struct Child(std::process::Child);
        impl Drop for Child {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let sleeping = Child(Command::new("sleep").arg("30").spawn().expect("sleep runs"));
        let mut exited = Command::new("sleep").arg("0").spawn().expect("sleep runs");
        exited.wait().expect("it exits");
        let log = dir.path().join("state.log");
        std::fs::write(&log, "leaderelection lost\n").expect("log written");
        let out = dir.path().join("out");

        let running = Components {
            processes: vec![record("sleep", sleeping.0.id(), log.clone())],
        };
        assert!(running.check_running("api", &out).is_ok());

        let components = Components {
            processes: vec![
                record("sleep", sleeping.0.id(), log.clone()),
                record("sleep", exited.id(), log),
            ],
        };
        let error = components
            .check_running("control-plane", &out)
            .expect_err("a component is gone")
            .to_string();
        let kept = out.join("sleep.log");
        assert_eq!(
            error,
            format!(
                "the sleep (its log: {}) exited during the control-plane workload: figures measured without it mean nothing",
                kept.display()
            )
        );
        assert_eq!(
            std::fs::read_to_string(&kept).expect("kept"),
            "leaderelection lost\n"
        );
    }
}
