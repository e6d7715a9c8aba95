//! The server's CPU and RSS, sampled once a second from `/proc/<pid>/stat` and
//! `/proc/<pid>/status` when `--server-pid` names a process on this machine.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

/// Clock ticks per second of `/proc/<pid>/stat` times: USER_HZ, 100 on every Linux architecture
/// kapi-load runs on.
const USER_HZ: f64 = 100.0;
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcSample {
    pub t_s: f64,
    /// CPU used since the previous sample, in cores (1.0 = one core busy).
    pub cpu_cores: f64,
    pub rss_bytes: u64,
}

/// Total user+system CPU seconds of `pid`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// The summed CPU seconds of several processes (a server and its etcd), if all are running.
pub fn cpu_seconds_of(pids: &[u32]) -> Option<f64> {
    pids.iter().map(|p| cpu_seconds(*p)).sum()
}

/// The summed RSS of several processes, if all are running.
pub fn rss_bytes_of(pids: &[u32]) -> Option<u64> {
    pids.iter().map(|p| rss_bytes(*p)).sum()
}

/// CPU seconds of each of this process's threads, by thread id: the busiest one shows a client
/// that saturated one core while the process as a whole looked idle.
pub fn own_thread_cpu_seconds() -> Vec<(u32, f64)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let tid: u32 = e.file_name().to_str()?.parse().ok()?;
        Some((
            tid,
            stat_cpu_seconds(&format!("/proc/self/task/{tid}/stat"))?,
        ))
    })
    .collect()
}

fn stat_cpu_seconds(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may contain spaces: fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub struct Sampler {
    task: JoinHandle<Vec<ProcSample>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Sampler {
    /// Samples `pid` once a second until `deadline` or `finish`.
    pub fn start(pid: u32, deadline: Instant) -> Sampler {
        Sampler::start_many(vec![pid], deadline)
    }

    /// Samples the sum of several processes (a server and its etcd) until one of them exits.
    pub fn start_many(pids: Vec<u32>, deadline: Instant) -> Sampler {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let mut samples = Vec::new();
            let mut last = (Instant::now(), cpu_seconds_of(&pids).unwrap_or(0.0));
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            tick.tick().await;
            while Instant::now() < deadline {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut stopped => break,
                }
                let (Some(cpu), Some(rss)) = (cpu_seconds_of(&pids), rss_bytes_of(&pids)) else {
                    break;
                };
                let now = Instant::now();
                let dt = now.duration_since(last.0).as_secs_f64().max(1e-3);
                samples.push(ProcSample {
                    t_s: start.elapsed().as_secs_f64(),
                    cpu_cores: (cpu - last.1) / dt,
                    rss_bytes: rss,
                });
                last = (now, cpu);
            }
            samples
        });
        Sampler { task, stop }
    }

    /// Stops sampling (the run may end before its deadline) and returns the samples.
    pub async fn finish(self) -> Vec<ProcSample> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_has_cpu_and_rss() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).is_some());
        assert!(rss_bytes(pid).unwrap_or(0) > 0);
        assert!(!own_thread_cpu_seconds().is_empty());
    }
}
