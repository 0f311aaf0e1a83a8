//! What the workloads measure with: latency samples and their percentiles, requests run at a
//! fixed concurrency, and a process's resident memory and CPU time read from `/proc`.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt as _;

/// Latency samples of one workload on one side (rkube or its floor).
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    sorted: Vec<Duration>,
}

impl Latencies {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        Self { sorted: samples }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The sample at quantile `q` (nearest rank); zero when there are none.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((self.sorted.len() as f64) * q).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    pub fn p50(&self) -> Duration {
        self.quantile(0.5)
    }

    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }

    pub fn max(&self) -> Duration {
        self.sorted.last().copied().unwrap_or_default()
    }

    pub fn sorted(&self) -> &[Duration] {
        &self.sorted
    }
}

/// A run of many requests: each one's latency and the wall time of the whole run.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub latencies: Latencies,
    pub wall: Duration,
}

impl Run {
    /// Completed operations per second.
    pub fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Runs `op(0..count)` with at most `concurrency` in flight and times each one. The first
/// error ends the run.
pub async fn concurrently<F, Fut, E>(count: usize, concurrency: usize, op: F) -> Result<Run, E>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let started = Instant::now();
    let mut results = futures::stream::iter(0..count)
        .map(|i| {
            let fut = op(i);
            async move {
                let t = Instant::now();
                fut.await.map(|()| t.elapsed())
            }
        })
        .buffer_unordered(concurrency.max(1));
    let mut samples = Vec::with_capacity(count);
    while let Some(result) = results.next().await {
        samples.push(result?);
    }
    Ok(Run {
        latencies: Latencies::new(samples),
        wall: started.elapsed(),
    })
}

/// Resident memory of `pid` in bytes (`VmRSS`), or 0 if it cannot be read.
pub fn rss_bytes(pid: u32) -> u64 {
    proc_kib(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// Proportional memory of `pid` in bytes (`Pss`): its resident pages, each page it shares
/// with other processes (the binary's code, mapped by every component) divided among them;
/// 0 if it cannot be read.
pub fn pss_bytes(pid: u32) -> u64 {
    proc_kib(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}

/// A `<field> <n> kB` line of a `/proc` file, in bytes.
fn proc_kib(path: &str, field: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// CPU time `pid` has used so far (user + system).
pub fn cpu_time(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after `) state`.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // USER_HZ is 100 on every Linux architecture's user-space ABI.
    Duration::from_millis(ticks * 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let l = Latencies::new((1..=100).rev().map(ms).collect());
        assert_eq!(l.p50(), ms(50));
        assert_eq!(l.p99(), ms(99));
        assert_eq!(l.max(), ms(100));
        assert_eq!(l.quantile(0.0), ms(1));
        assert_eq!(Latencies::default().p99(), Duration::ZERO);
    }

    #[tokio::test]
    async fn concurrently_runs_every_operation_and_stops_at_an_error() {
        let run = concurrently(20, 4, |_| async { Ok::<(), ()>(()) })
            .await
            .expect("no errors");
        assert_eq!(run.latencies.len(), 20);
        let failed = concurrently(20, 4, |i| async move {
            if i == 7 {
                Err(i)
            } else {
                Ok(())
            }
        })
        .await;
        assert_eq!(failed.err(), Some(7));
    }

    #[test]
    fn this_process_has_memory_and_cpu_time() {
        let me = std::process::id();
        assert!(rss_bytes(me) > 1 << 20);
        let spin = Instant::now();
        while spin.elapsed() < ms(30) {}
        assert!(cpu_time(me) >= ms(20));
        assert_eq!(rss_bytes(u32::MAX), 0);
    }
}
