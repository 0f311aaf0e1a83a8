//! CronJobs with the real kubectl on a real cluster (`rkube up`) and the test image: `kubectl
//! create cronjob`, the `get cj` and `get all` tables, a `*/1` schedule starting a Job named
//! `<cronjob>-<minutes>` that completes and sets `lastSuccessfulTime`, `kubectl create job
//! --from=cronjob/`, `describe`, suspending by patch, deleting with the Jobs going by the
//! garbage collector, and invalid CronJobs refused in upstream's words. The controller's
//! decisions over time (Forbid, Replace, missed times, deadlines, history limits) are unit
//! tests with a fake clock in `src/controller/cronjob.rs`.

use std::time::Duration;

use crate::up::{UpCluster, TEST_IMAGE};

/// One run of a `*/1` schedule: up to a minute to the next one, then the Pod's run.
const SCHEDULED_RUN: Duration = Duration::from_secs(150);
const DEADLINE: Duration = Duration::from_secs(60);

fn jsonpath(cluster: &UpCluster, what: &str, path: &str) -> String {
    cluster.kubectl_ok(&["get", what, "-o", &format!("jsonpath={path}")])
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[test]
fn a_cronjob_runs_its_jobs_on_schedule_and_kubectl_manages_it() {
    let cluster = UpCluster::start(None);

    // Refused in upstream's words (kubectl's `create cronjob` prefixes its own).
    let err = cluster.kubectl_err(&["create", "cronjob", "bad", "--image=x", "--schedule=bad"]);
    assert!(
        err.contains(
            "error: failed to create cronjob: CronJob.batch \"bad\" is invalid: spec.schedule: Invalid value: \"bad\": expected exactly 5 fields, found 1: [bad]"
        ),
        "{err}"
    );
    let long = "a".repeat(53);
    let err = cluster.kubectl_err(&["create", "cronjob", &long, "--image=x", "--schedule=@daily"]);
    assert!(
        err.contains(&format!(
            "metadata.name: Invalid value: \"{long}\": must be no more than 52 characters"
        )),
        "{err}"
    );

    cluster.kubectl_ok(&[
        "create",
        "cronjob",
        "hello",
        &format!("--image={TEST_IMAGE}"),
        "--schedule=*/1 * * * *",
        "--",
        "sh",
        "-c",
        "echo hello",
    ]);
    assert_eq!(
        jsonpath(
            &cluster,
            "cronjob/hello",
            "{.spec.concurrencyPolicy}/{.spec.suspend}/{.spec.successfulJobsHistoryLimit}/{.spec.failedJobsHistoryLimit}/{.spec.jobTemplate.spec.template.spec.restartPolicy}"
        ),
        "Allow/false/3/1/OnFailure"
    );

    let table = cluster.kubectl_ok(&["get", "cj"]);
    let mut lines = table.lines();
    assert_eq!(
        words(lines.next().unwrap_or("")),
        ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"],
        "{table}"
    );
    let row = words(lines.next().unwrap_or(""));
    assert_eq!(
        &row[..row.len().min(10)],
        ["hello", "*/1", "*", "*", "*", "*", "<none>", "False", "0", "<none>"],
        "{table}"
    );
    let wide = cluster.kubectl_ok(&["get", "cronjobs", "-o", "wide"]);
    assert!(
        words(wide.lines().next().unwrap_or("")).ends_with(&["CONTAINERS", "IMAGES", "SELECTOR"])
            && words(wide.lines().nth(1).unwrap_or("")).ends_with(&["hello", TEST_IMAGE, "<none>"]),
        "{wide}"
    );
    let all = cluster.kubectl_ok(&["get", "all"]);
    assert!(all.contains("cronjob.batch/hello"), "{all}");
    let explained = cluster.kubectl_ok(&["explain", "cronjob.spec.timeZone"]);
    assert!(
        explained.contains("IANA") || explained.contains("time zone"),
        "{explained}"
    );

    // Server-side apply of a suspended CronJob in a zone: the zone is its TIMEZONE.
    let path = cluster.dir.path().join("nightly.yaml");
    std::fs::write(
        &path,
        format!("apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\nspec:\n  schedule: \"0 3 * * *\"\n  timeZone: Europe/Paris\n  suspend: true\n  concurrencyPolicy: Forbid\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n          - name: main\n            image: {TEST_IMAGE}\n"),
    )
    .expect("manifest");
    cluster.kubectl_ok(&["apply", "--server-side", "-f", &path.display().to_string()]);
    let row = cluster.kubectl_ok(&["get", "cj", "nightly", "--no-headers"]);
    assert_eq!(
        &words(&row)[..9],
        [
            "nightly",
            "0",
            "3",
            "*",
            "*",
            "*",
            "Europe/Paris",
            "True",
            "0"
        ],
        "{row}"
    );

    // A Job made by hand from the CronJob's template: kubectl owns it to the CronJob.
    cluster.kubectl_ok(&["create", "job", "manual", "--from=cronjob/hello"]);
    assert_eq!(
        jsonpath(
            &cluster,
            "job/manual",
            "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.annotations.cronjob\\.kubernetes\\.io/instantiate}"
        ),
        "CronJob/hello/manual"
    );

    // The schedule's Job: named by its minute, owned by the CronJob, run to completion.
    let scheduled = cluster.kubectl_until(
        &[
            "get",
            "jobs",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.metadata.annotations.batch\\.kubernetes\\.io/cronjob-scheduled-timestamp} {.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].controller}/{.metadata.ownerReferences[0].blockOwnerDeletion}\n{end}",
        ],
        SCHEDULED_RUN,
        |out| out.lines().any(|l| l.starts_with("hello-")),
    );
    let line = scheduled
        .lines()
        .find(|l| l.starts_with("hello-"))
        .unwrap_or("");
    let fields = words(line);
    let at: jiff::Timestamp = fields[1].parse().expect("an RFC 3339 scheduled time");
    assert_eq!(at.as_second() % 60, 0, "{line}");
    assert_eq!(
        fields[0],
        format!("hello-{}", at.as_second() / 60),
        "{line}"
    );
    assert!(fields[1].ends_with('Z'), "UTC without a timeZone: {line}");
    assert_eq!(fields[2], "CronJob/true/true", "{line}");
    let job = fields[0].to_string();
    let waited = cluster.kubectl(&[
        "wait",
        "--for=condition=complete",
        &format!("job/{job}"),
        "--timeout=60s",
    ]);
    assert!(
        waited.status.success(),
        "kubectl wait: {}",
        String::from_utf8_lossy(&waited.stderr)
    );
    let status = cluster.kubectl_until(
        &[
            "get",
            "cronjob/hello",
            "-o",
            "jsonpath={.status.lastScheduleTime} {.status.lastSuccessfulTime}",
        ],
        DEADLINE,
        |out| words(out).len() == 2,
    );
    let times = words(&status);
    let last_schedule: jiff::Timestamp = times[0].parse().expect("lastScheduleTime");
    assert!(last_schedule >= at, "{status}");
    let events = cluster.kubectl_until(
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=CronJob,involvedObject.name=hello",
            "-o",
            "jsonpath={range .items[*]}{.reason}:{.source.component}:{.message}|{end}",
        ],
        DEADLINE,
        |out| out.contains("SawCompletedJob"),
    );
    assert!(
        events.contains(&format!(
            "SuccessfulCreate:cronjob-controller:Created job {job}|"
        )) && events.contains(&format!(
            "SawCompletedJob:cronjob-controller:Saw completed job: {job}, condition: Complete"
        )) && events.contains(
            // As upstream: a Job made by hand is not one the controller started.
            "UnexpectedJob:cronjob-controller:Saw a job that the controller did not create or forgot: manual|"
        ),
        "{events}"
    );
    let table = cluster.kubectl_ok(&["get", "cj", "hello", "--no-headers"]);
    assert_ne!(words(&table)[9], "<none>", "LAST SCHEDULE: {table}");
    let described = cluster.kubectl_ok(&["describe", "cronjob", "hello"]);
    assert!(
        described.contains("*/1 * * * *")
            && described
                .lines()
                .any(|l| words(l) == ["Concurrency", "Policy:", "Allow"])
            && described.contains("Last Schedule Time:")
            && described.contains(&format!("Created job {job}")),
        "{described}"
    );

    // Suspended by a patch; deleted, its Jobs go with it.
    cluster.kubectl_ok(&[
        "patch",
        "cronjob",
        "hello",
        "-p",
        "{\"spec\":{\"suspend\":true}}",
    ]);
    let table = cluster.kubectl_ok(&["get", "cj", "hello", "--no-headers"]);
    assert_eq!(words(&table)[7], "True", "SUSPEND: {table}");
    cluster.kubectl_ok(&["delete", "cronjob", "hello", "nightly"]);
    cluster.kubectl_until(&["get", "jobs", "-o", "name"], DEADLINE, |out| {
        out.trim().is_empty()
    });
}
