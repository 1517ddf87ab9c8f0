//! Percentiles and the process's peak resident memory.

use serde::Serialize;

/// The `p`th percentile (0 < p <= 100) by the nearest-rank method: the smallest sample with at
/// least p% of the samples at or below it. `None` without samples.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Summary of a set of durations in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    pub fn of(samples: &[f64]) -> Option<Summary> {
        let n = samples.len();
        Some(Summary {
            n,
            p50: percentile(samples, 50.0)?,
            p90: percentile(samples, 90.0)?,
            p95: percentile(samples, 95.0)?,
            p99: percentile(samples, 99.0)?,
            min: samples.iter().copied().fold(f64::INFINITY, f64::min),
            max: samples.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            mean: samples.iter().sum::<f64>() / n as f64,
        })
    }
}

/// A `kB` field of `/proc/<pid>/status` (`VmHWM`, `VmRSS`, ...), in bytes.
pub fn status_field_bytes(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let mut parts = rest.split_whitespace();
        let value: u64 = parts.next()?.parse().ok()?;
        match parts.next() {
            Some(unit) if unit.eq_ignore_ascii_case("kb") => Some(value * 1024),
            Some(_) => None,
            None => Some(value),
        }
    })
}

/// Peak resident set size (`VmHWM`) of a running process, in bytes.
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field_bytes(&status, "VmHWM")
}

/// Clock ticks per second of `/proc/<pid>/stat`'s times (`USER_HZ`, 100 on Linux).
pub const USER_HZ: f64 = 100.0;

/// The CPU time (user + system, every thread's, those that ended included) a process has
/// used so far, in milliseconds, from `/proc/<pid>/stat` (10 ms resolution).
pub fn cpu_ms(pid: u32) -> Option<f64> {
    parse_cpu_ms(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `utime` + `stime` (fields 14 and 15) of a `/proc/<pid>/stat` line, in milliseconds. The
/// command name (field 2) may hold spaces and parentheses: fields are counted after its last `)`.
pub fn parse_cpu_ms(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some((ticks(14)? + ticks(15)?) as f64 * 1000.0 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_from_proc_stat() {
        let stat = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 1290 0 0 0 37 5 0 0 20 0 9 0 1234 56789 3400 18446744073709551615";
        assert_eq!(parse_cpu_ms(stat), Some(420.0));
        assert_eq!(parse_cpu_ms("garbage"), None);
        #[cfg(target_os = "linux")]
        assert!(cpu_ms(std::process::id()).is_some());
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&samples, 50.0), Some(100.0));
        assert_eq!(percentile(&samples, 99.0), Some(198.0));
        assert_eq!(percentile(&samples, 100.0), Some(200.0));
        assert_eq!(percentile(&samples, 0.0), Some(1.0));
        // Order does not matter.
        let mut reversed = samples.clone();
        reversed.reverse();
        assert_eq!(percentile(&reversed, 99.0), Some(198.0));
    }

    #[test]
    fn percentiles_of_small_and_empty_sets() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[3.0, 1.0], 50.0), Some(1.0));
        assert_eq!(percentile(&[3.0, 1.0], 51.0), Some(3.0));
        assert_eq!(percentile(&[1.0], 101.0), None);
    }

    #[test]
    fn summary() {
        let s = Summary::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.n, s.p50, s.p99, s.min, s.max, s.mean), (4, 2.0, 4.0, 1.0, 4.0, 2.5));
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn vm_hwm_from_proc_status() {
        let status = "Name:\torganizations\nVmPeak:\t  123456 kB\nVmHWM:\t    9876 kB\nVmRSS:\t    9000 kB\nThreads:\t3\n";
        assert_eq!(status_field_bytes(status, "VmHWM"), Some(9876 * 1024));
        assert_eq!(status_field_bytes(status, "VmRSS"), Some(9000 * 1024));
        assert_eq!(status_field_bytes(status, "Threads"), Some(3));
        assert_eq!(status_field_bytes(status, "VmSwap"), None);
        assert_eq!(status_field_bytes("VmHWMx:\t1 kB\n", "VmHWM"), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn vm_hwm_of_this_process() {
        let bytes = peak_rss_bytes(std::process::id()).expect("Linux /proc");
        assert!(bytes > 0);
    }
}
