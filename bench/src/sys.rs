//! What the kernel knows: the open-file limit, and CPU time and memory from /proc.
//!
//! The CPU figures are what let a reader judge a result. On a small machine chat-bench and the
//! server share the cores; if chat-bench burns a whole core, the numbers describe chat-bench
//! as much as the server. So every measured window is bracketed by two [`CpuSample`]s: this
//! process and the server from `/proc/PID/stat` (utime + stime), the whole machine from
//! `/proc/stat`, all as percent of one core (two busy cores read 200).

use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{bail, Result};

/// Nanoseconds since the run's epoch (the first call). Monotonic, so latencies computed from
/// markers never go negative when the wall clock is adjusted.
pub fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Soft and hard RLIMIT_NOFILE after trying to raise the soft limit to the hard one.
#[derive(Debug, Clone, Copy)]
pub struct Nofile {
    pub soft: u64,
    pub hard: u64,
}

pub fn raise_nofile() -> Nofile {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return Nofile {
                soft: 1024,
                hard: 1024,
            };
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                r.rlim_cur = r.rlim_max;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    Nofile {
        soft: r.rlim_cur as u64,
        hard: r.rlim_max as u64,
    }
}

/// Descriptors kept free for the runtime, stdio and /proc reads.
pub const FD_RESERVE: u64 = 32;

/// Refuses a client count that cannot fit in the open-file limit.
pub fn check_fit(n: usize, lim: Nofile) -> Result<()> {
    let need = n as u64 + FD_RESERVE;
    if need > lim.soft {
        bail!(
            "{n} clients need {need} open files, but the limit is {} (hard limit {}); \
             raise it with `ulimit -n {need}` (as root if past the hard limit) or use a smaller -n",
            lim.soft,
            lim.hard
        );
    }
    Ok(())
}

/// The clients that fit in the limit.
pub fn max_clients(lim: Nofile) -> usize {
    lim.soft.saturating_sub(FD_RESERVE) as usize
}

/// utime + stime in clock ticks from the text of `/proc/PID/stat`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    // After ')': field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
    let utime: u64 = f.nth(11)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_per_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// CPU seconds used so far by `pid` ("self" for this process), all threads.
pub fn proc_cpu_s(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(parse_stat_ticks(&stat)? as f64 / ticks_per_s())
}

/// Resident memory and thread count of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProcMem {
    pub rss_kib: u64,
    /// The highest RSS the process has had (VmHWM; the RSS itself where the kernel has none).
    pub peak_rss_kib: u64,
    pub threads: u64,
}

/// VmRSS, VmHWM and Threads from the text of `/proc/PID/status`.
pub fn parse_status(text: &str) -> Option<ProcMem> {
    let (mut rss, mut peak, mut threads) = (None, None, None);
    for line in text.lines() {
        let mut it = line.split_whitespace();
        match it.next() {
            Some("VmRSS:") => rss = it.next().and_then(|v| v.parse().ok()),
            Some("VmHWM:") => peak = it.next().and_then(|v| v.parse().ok()),
            Some("Threads:") => threads = it.next().and_then(|v| v.parse().ok()),
            _ => {}
        }
    }
    let rss_kib = rss?;
    Some(ProcMem {
        rss_kib,
        peak_rss_kib: peak.unwrap_or(rss_kib).max(rss_kib),
        threads: threads?,
    })
}

pub fn proc_mem(pid: &str) -> Option<ProcMem> {
    parse_status(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// (busy, total, cpus): jiffies of all CPUs from the `cpu` line of `/proc/stat`, and the
/// number of `cpuN` lines.
pub fn parse_box_stat(text: &str) -> Option<(u64, u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal; guest time is already inside user.
    if v.len() < 4 {
        return None;
    }
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    let cpus = text
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count();
    Some((total - idle, total, cpus.max(1) as u64))
}

/// CPU counters at one instant.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    at: Instant,
    own_s: Option<f64>,
    server_s: Option<f64>,
    machine: Option<(u64, u64, u64)>,
}

/// CPU over a window, in percent of one core.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct CpuUse {
    pub bench_pct: f64,
    pub server_pct: Option<f64>,
    pub box_pct: Option<f64>,
    /// chat-bench used at least 90 % of the cores its runtime may use.
    pub bench_bound: bool,
}

impl CpuSample {
    pub fn take(server_pid: Option<u32>) -> Self {
        CpuSample {
            at: Instant::now(),
            own_s: proc_cpu_s("self"),
            server_s: server_pid.and_then(|p| proc_cpu_s(&p.to_string())),
            machine: std::fs::read_to_string("/proc/stat")
                .ok()
                .as_deref()
                .and_then(parse_box_stat),
        }
    }

    /// Use between `self` and `later`; `threads` is the bench's runtime thread count.
    pub fn until(&self, later: &CpuSample, threads: usize) -> CpuUse {
        let wall = later.at.duration_since(self.at).as_secs_f64();
        if wall <= 0.0 {
            return CpuUse::default();
        }
        let pct = |a: Option<f64>, b: Option<f64>| Some(100.0 * (b? - a?) / wall);
        let bench_pct = pct(self.own_s, later.own_s).unwrap_or(0.0);
        let box_pct = match (self.machine, later.machine) {
            (Some((b0, t0, _)), Some((b1, t1, cpus))) if t1 > t0 => {
                Some(100.0 * cpus as f64 * (b1 - b0) as f64 / (t1 - t0) as f64)
            }
            _ => None,
        };
        CpuUse {
            bench_pct,
            server_pct: pct(self.server_s, later.server_s),
            box_pct,
            bench_bound: bench_pct >= 90.0 * threads.max(1) as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_name() {
        let s = "4242 (chat server) (x)) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                 1234 567 0 0 20 0 9 0 100 1000000 300 18446744073709551615";
        assert_eq!(parse_stat_ticks(s), Some(1234 + 567));
        assert_eq!(parse_stat_ticks("garbage"), None);
        assert_eq!(parse_stat_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn status_fields() {
        let s = "Name:\tchat-server\nVmHWM:\t  9000 kB\nVmRSS:\t  8192 kB\nThreads:\t1003\n";
        assert_eq!(
            parse_status(s),
            Some(ProcMem {
                rss_kib: 8192,
                peak_rss_kib: 9000,
                threads: 1003
            })
        );
        assert_eq!(
            parse_status("Name:\tx\nThreads:\t1\n"),
            None,
            "no VmRSS (a zombie)"
        );
    }

    #[test]
    fn box_stat_busy_and_total() {
        let s = "cpu  100 5 50 800 20 1 2 3 0 0\ncpu0 50 2 25 400 10 0 1 1 0 0\nintr 1 2\n";
        // total = 100+5+50+800+20+1+2+3 = 981, idle = 800 + 20.
        assert_eq!(parse_box_stat(s), Some((161, 981, 1)));
        assert_eq!(parse_box_stat("cpu0 1 2 3 4\n"), None);
    }

    #[test]
    fn own_proc_entries_are_readable() {
        assert!(proc_cpu_s("self").is_some());
        let m = proc_mem("self").expect("own /proc/self/status");
        assert!(m.rss_kib > 0 && m.threads >= 1);
        let s = CpuSample::take(Some(std::process::id()));
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let u = s.until(&CpuSample::take(Some(std::process::id())), 1);
        // 50 ms of spinning: a few clock ticks of CPU, of this process and of the machine.
        assert!(u.bench_pct > 0.0, "{u:?}");
        assert!(u.server_pct.is_some() && u.box_pct.is_some(), "{u:?}");
    }

    #[test]
    fn fd_fit() {
        let lim = Nofile {
            soft: 1024,
            hard: 4096,
        };
        assert!(check_fit(1024 - FD_RESERVE as usize, lim).is_ok());
        let e = check_fit(1000, lim).unwrap_err().to_string();
        assert!(e.contains("ulimit -n 1032"), "{e}");
        assert_eq!(max_clients(lim), 992);
    }
}
