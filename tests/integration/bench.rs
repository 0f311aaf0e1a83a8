//! `rkube bench --quick`: every workload runs end to end against its own cluster and its
//! floor, the table names each one, the plot is written, and nothing is left behind. A smoke
//! run that keeps the bench working; its figures are not checked (speed is what the full run
//! reports, not what a test asserts).

use std::process::Command;

#[test]
fn the_quick_bench_runs_every_workload_and_cleans_up() {
    let out = tempfile::tempdir().expect("temp dir");
    let run = Command::new(env!("CARGO_BIN_EXE_rkube"))
        .args(["bench", "--quick", "--out"])
        .arg(out.path())
        .current_dir(out.path())
        .output()
        .expect("rkube bench runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let table = std::fs::read_to_string(out.path().join("bench.md")).expect("bench.md");
    // Each workload's row, by what starts its name and what it contains (the sizes in the
    // names are the quick run's, not this test's to know).
    for (starts, contains) in [
        ("`rkube up` to Ready", ""),
        ("idle, no Pods: memory", ""),
        ("Pod create, 1 client(s)", ""),
        ("Pod create, 16 client(s)", ""),
        ("Pod create, 64 client(s)", ""),
        ("GET one Pod", ""),
        ("LIST ", " Pods |"),
        ("LIST by spec.nodeName", ""),
        ("LIST by label", ""),
        ("API server memory vs the", ""),
        ("watch: ", "writes/s, write → event"),
        ("watch: deliveries/s", ""),
        ("watch: API server memory per idle watcher", ""),
        ("Pod start-up, one at a time", ""),
        ("burst: ", "Pods on one node"),
        ("idle with ", "Pods running: memory"),
        ("idle with ", "Pods running: CPU"),
        ("scheduling: ", "pending Pods bound"),
        ("control plane: ", "Pods to Running"),
        ("memory after ", "bursts of"),
    ] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(&format!("| {starts}")) && l.contains(contains)),
            "no row that starts {starts:?} and contains {contains:?} in\n{table}"
        );
    }
    let png = std::fs::read(out.path().join("bench.png")).expect("bench.png");
    assert_eq!(&png[1..4], b"PNG");
    // Its clusters are gone: no process, container or network of theirs is left.
    let marker = "rkube-bench-";
    let ps = Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .expect("ps");
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(
        !ps.lines()
            .any(|l| l.contains(marker) && !l.contains("ps -eo")),
        "{ps}"
    );
    let containers = Command::new("docker")
        .args(["ps", "-aq", "--filter", "label=io.rkube.cluster"])
        .output()
        .expect("docker ps");
    let ids = String::from_utf8_lossy(&containers.stdout).to_string();
    let mine = ids.lines().filter(|id| {
        let inspect = Command::new("docker")
            .args([
                "inspect",
                "-f",
                "{{index .Config.Labels \"io.rkube.cluster\"}}",
                id,
            ])
            .output()
            .expect("docker inspect");
        String::from_utf8_lossy(&inspect.stdout).starts_with("bench")
    });
    assert_eq!(mine.count(), 0, "bench containers left behind");
}
