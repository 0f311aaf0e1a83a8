//! Jobs with the real kubectl on a real cluster (`rkube up`) and the test image: Pods run to
//! completion (`kubectl wait --for=condition=complete`), `kubectl get jobs` columns, `kubectl
//! create job`, a Job that fails on its backoff limit or its deadline, a suspended Job resumed,
//! a finished Job deleted once its time to live is over, and invalid specs refused in
//! upstream's words.

use std::time::Duration;

use crate::up::{UpCluster, TEST_IMAGE};

const DEADLINE: Duration = Duration::from_secs(120);

fn job(name: &str, spec: &str, command: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n{spec}  template:\n    spec:\n      restartPolicy: Never\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: main\n        image: {TEST_IMAGE}\n        imagePullPolicy: Never\n        command: [\"sh\", \"-c\", \"{command}\"]\n"
    )
}

/// Polls `check` until it holds, failing with `what` after [`DEADLINE`].
fn eventually(what: &str, check: impl FnMut() -> bool) {
    crate::up::poll(what, DEADLINE, check);
}

fn jsonpath(cluster: &UpCluster, what: &str, path: &str) -> String {
    cluster.kubectl_ok(&["get", what, "-o", &format!("jsonpath={path}")])
}

/// The `type=reason` of each condition whose status is True.
fn conditions(cluster: &UpCluster, job: &str) -> String {
    jsonpath(
        cluster,
        &format!("job/{job}"),
        "{range .status.conditions[?(@.status==\"True\")]}{.type}={.reason} {end}",
    )
}

fn events(cluster: &UpCluster, job: &str) -> String {
    cluster.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.kind=Job,involvedObject.name={job}"),
        "-o",
        "jsonpath={range .items[*]}{.reason}:{.source.component}:{.message}|{end}",
    ])
}

#[test]
fn a_job_runs_its_completions_and_kubectl_shows_and_creates_jobs() {
    let cluster = UpCluster::start(None);
    cluster.apply(&job(
        "pi",
        "  completions: 3\n  parallelism: 2\n",
        "sleep 1",
    ));
    let waited = cluster.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/pi",
        "--timeout=60s",
    ]);
    assert!(
        waited.status.success(),
        "kubectl wait: {}",
        String::from_utf8_lossy(&waited.stderr)
    );
    assert_eq!(
        jsonpath(
            &cluster,
            "job/pi",
            "{.status.succeeded}/{.status.active}/{.status.failed}"
        ),
        "3//"
    );
    assert!(!jsonpath(&cluster, "job/pi", "{.status.completionTime}").is_empty());
    assert!(!jsonpath(&cluster, "job/pi", "{.status.startTime}").is_empty());
    let conds = conditions(&cluster, "pi");
    assert!(
        conds.contains("SuccessCriteriaMet=CompletionsReached")
            && conds.contains("Complete=CompletionsReached"),
        "{conds}"
    );
    // Three Pods named `pi-<5>`, owned by the Job and labelled with its name and uid.
    let uid = jsonpath(&cluster, "job/pi", "{.metadata.uid}");
    let pods = cluster.kubectl_ok(&[
        "get", "pods", "-l", &format!("batch.kubernetes.io/controller-uid={uid}"), "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].controller}/{.metadata.ownerReferences[0].blockOwnerDeletion} {.metadata.labels.job-name} {.status.phase}\n{end}",
    ]);
    let lines: Vec<&str> = pods.lines().collect();
    assert_eq!(lines.len(), 3, "{pods}");
    for line in &lines {
        let fields: Vec<&str> = line.split(' ').collect();
        assert!(
            fields[0].starts_with("pi-") && fields[0].len() == "pi-".len() + 5,
            "{line}"
        );
        assert_eq!(&fields[1..], ["Job/true/true", "pi", "Succeeded"], "{line}");
    }
    let selector = jsonpath(
        &cluster,
        "job/pi",
        "{.spec.selector.matchLabels.batch\\.kubernetes\\.io/controller-uid}",
    );
    assert_eq!(selector, uid);

    let table = cluster.kubectl_ok(&["get", "jobs"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
        "{table}"
    );
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("pi "))
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(&row[..3], ["pi", "Complete", "3/3"], "{table}");
    let wide = cluster.kubectl_ok(&["get", "jobs", "-o", "wide"]);
    assert!(
        wide.lines().next().unwrap_or("").contains("CONTAINERS")
            && wide.contains(TEST_IMAGE)
            && wide.contains(&format!("batch.kubernetes.io/controller-uid={uid}")),
        "{wide}"
    );
    let all = cluster.kubectl_ok(&["get", "all"]);
    assert!(all.contains("job.batch/pi"), "{all}");
    let ev = events(&cluster, "pi");
    assert!(
        ev.contains("SuccessfulCreate:job-controller:Created pod: pi-")
            && ev.contains("Completed:job-controller:Job completed"),
        "{ev}"
    );

    let described = cluster.kubectl_ok(&["describe", "job", "pi"]);
    assert!(
        described.contains("3 Succeeded")
            && described.contains("job-controller  Created pod: pi-")
            && described.contains("job-controller  Job completed"),
        "{described}"
    );
    let successful = cluster.kubectl_ok(&[
        "get",
        "jobs",
        "--field-selector",
        "status.successful=3",
        "-o",
        "name",
    ]);
    assert_eq!(successful.trim(), "job.batch/pi");

    // `kubectl create job` makes a one-Pod Job of the image, restartPolicy Never.
    cluster.kubectl_ok(&[
        "create",
        "job",
        "once",
        &format!("--image={TEST_IMAGE}"),
        "--",
        "true",
    ]);
    let waited = cluster.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/once",
        "--timeout=60s",
    ]);
    assert!(
        waited.status.success(),
        "kubectl wait: {}",
        String::from_utf8_lossy(&waited.stderr)
    );
    assert_eq!(
        jsonpath(
            &cluster,
            "job/once",
            "{.spec.completions}/{.spec.parallelism}/{.spec.backoffLimit}/{.spec.completionMode}/{.spec.suspend}/{.metadata.labels.job-name}"
        ),
        "1/1/6/NonIndexed/false/once"
    );

    // A Job is immutable where upstream's is.
    let err = cluster.kubectl_err(&["patch", "job", "pi", "-p", "{\"spec\":{\"completions\":5}}"]);
    assert!(
        err.contains(
            "The Job \"pi\" is invalid: spec.completions: Invalid value: 5: field is immutable"
        ),
        "{err}"
    );

    // A finished Job with ttlSecondsAfterFinished 0 is deleted, and its Pods collected.
    cluster.apply(&job("brief", "  ttlSecondsAfterFinished: 0\n", "true"));
    // The Job's Pod takes seconds to run: the Job is still there to be read.
    let uid_brief = jsonpath(&cluster, "job/brief", "{.metadata.uid}");
    eventually("the finished job deleted", || {
        let out = cluster.kubectl(&["get", "job/brief"]);
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound")
    });
    eventually("its pods collected", || {
        cluster
            .kubectl_ok(&[
                "get",
                "pods",
                "-l",
                &format!("batch.kubernetes.io/controller-uid={uid_brief}"),
                "-o",
                "name",
            ])
            .trim()
            .is_empty()
    });
    // A delete that names no propagation policy orphans a batch/v1 Job's Pods, as upstream.
    cluster.kubectl_ok(&[
        "delete",
        "--raw",
        "/apis/batch/v1/namespaces/default/jobs/once",
    ]);
    eventually("the job gone and its pod orphaned", || {
        let gone = !cluster.kubectl(&["get", "job/once"]).status.success();
        let owners = cluster.kubectl_ok(&[
            "get",
            "pods",
            "-l",
            "job-name=once",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.metadata.ownerReferences}{\"\\n\"}{end}",
        ]);
        // The garbage collector leaves an empty list where upstream's patch leaves none.
        let owners = owners.trim_end();
        gone && owners.lines().count() == 1 && (owners.ends_with('=') || owners.ends_with("=[]"))
    });
    cluster.kubectl_ok(&["delete", "pods", "-l", "job-name=once"]);
    cluster.kubectl_ok(&["delete", "job", "pi"]);
}

#[test]
fn a_job_fails_on_its_backoff_limit_or_deadline_and_invalid_jobs_are_refused() {
    let cluster = UpCluster::start(None);
    cluster.apply(&job("fails", "  backoffLimit: 1\n", "exit 1"));
    cluster.apply(&job("slow", "  activeDeadlineSeconds: 3\n", "sleep 3600"));
    let waited = cluster.kubectl(&[
        "wait",
        "--for=condition=failed",
        "job/fails",
        "--timeout=90s",
    ]);
    assert!(
        waited.status.success(),
        "kubectl wait: {}",
        String::from_utf8_lossy(&waited.stderr)
    );
    let conds = conditions(&cluster, "fails");
    assert!(
        conds.contains("FailureTarget=BackoffLimitExceeded")
            && conds.contains("Failed=BackoffLimitExceeded"),
        "{conds}"
    );
    assert_eq!(jsonpath(&cluster, "job/fails", "{.status.failed}"), "2");
    let ev = events(&cluster, "fails");
    assert!(
        ev.contains(
            "BackoffLimitExceeded:job-controller:Job has reached the specified backoff limit"
        ),
        "{ev}"
    );
    let table = cluster.kubectl_ok(&["get", "job", "fails"]);
    assert!(
        table
            .lines()
            .nth(1)
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()[..3]
            == ["fails", "Failed", "0/1"],
        "{table}"
    );

    let waited = cluster.kubectl(&[
        "wait",
        "--for=condition=failed",
        "job/slow",
        "--timeout=60s",
    ]);
    assert!(
        waited.status.success(),
        "kubectl wait: {}",
        String::from_utf8_lossy(&waited.stderr)
    );
    let conds = conditions(&cluster, "slow");
    assert!(conds.contains("Failed=DeadlineExceeded"), "{conds}");
    let message = jsonpath(
        &cluster,
        "job/slow",
        "{.status.conditions[?(@.type==\"Failed\")].message}",
    );
    assert_eq!(message, "Job was active longer than specified deadline");
    let uid = jsonpath(&cluster, "job/slow", "{.metadata.uid}");
    let running = cluster.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        &format!("controller-uid={uid}"),
        "--field-selector",
        "status.phase=Running",
        "-o",
        "name",
    ]);
    assert!(running.trim().is_empty(), "{running}");

    // A suspended Job starts no Pod until it is resumed.
    cluster.apply(&job("paused", "  suspend: true\n", "true"));
    eventually("the job suspended", || {
        conditions(&cluster, "paused").contains("Suspended=JobSuspended")
    });
    let table = cluster.kubectl_ok(&["get", "job", "paused"]);
    assert!(table.contains(" Suspended "), "{table}");
    let uid = jsonpath(&cluster, "job/paused", "{.metadata.uid}");
    let selector = format!("controller-uid={uid}");
    assert!(cluster
        .kubectl_ok(&["get", "pods", "-l", &selector, "-o", "name"])
        .trim()
        .is_empty());
    assert!(jsonpath(&cluster, "job/paused", "{.status.startTime}").is_empty());
    cluster.kubectl_ok(&[
        "patch",
        "job",
        "paused",
        "-p",
        "{\"spec\":{\"suspend\":false}}",
    ]);
    let waited = cluster.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/paused",
        "--timeout=60s",
    ]);
    assert!(
        waited.status.success(),
        "kubectl wait: {}",
        String::from_utf8_lossy(&waited.stderr)
    );
    let resumed = jsonpath(
        &cluster,
        "job/paused",
        "{.status.conditions[?(@.type==\"Suspended\")].status}/{.status.conditions[?(@.type==\"Suspended\")].reason}",
    );
    assert_eq!(resumed, "False/JobResumed");
    let ev = events(&cluster, "paused");
    assert!(
        ev.contains("Suspended:job-controller:Job suspended")
            && ev.contains("Resumed:job-controller:Job resumed"),
        "{ev}"
    );

    // Invalid Jobs get upstream's 422 text.
    let path = cluster.dir.path().join("always.yaml");
    std::fs::write(
        &path,
        job("always", "", "true").replace("restartPolicy: Never", "restartPolicy: Always"),
    )
    .expect("manifest");
    let err = cluster.kubectl_err(&["create", "-f", &path.display().to_string()]);
    assert!(
        err.contains("The Job \"always\" is invalid: spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""),
        "{err}"
    );
    let path = cluster.dir.path().join("negative.yaml");
    std::fs::write(
        &path,
        job(
            "negative",
            "  parallelism: -1\n  backoffLimit: -2\n",
            "true",
        ),
    )
    .expect("manifest");
    let err = cluster.kubectl_err(&["create", "-f", &path.display().to_string()]);
    assert!(
        err.contains("spec.parallelism: Invalid value: -1: must be greater than or equal to 0")
            && err.contains(
                "spec.backoffLimit: Invalid value: -2: must be greater than or equal to 0"
            ),
        "{err}"
    );
    cluster.kubectl_ok(&["delete", "job", "fails", "slow", "paused"]);
}
