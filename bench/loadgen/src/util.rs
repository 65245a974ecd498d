//! Shared helpers: process CPU from /proc, machine busy share, test data,
//! digests, percentiles.

use sha2::{Digest as _, Sha256};
use std::sync::OnceLock;
use std::time::Instant;

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux in practice).
fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// utime + stime of a process (all its threads), in seconds.
pub fn proc_cpu_s(pid: &str) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the command name, which ends at the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| format!("/proc/{pid}/stat: unexpected format"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state); utime is field 14, stime field 15.
    let ticks = |i: usize| -> Result<f64, String> {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: no field {}", i + 3))
    };
    Ok((ticks(11)? + ticks(12)?) / clk_tck())
}

/// Sums the CPU of several processes.
pub fn cpu_of(pids: &[u32]) -> Result<f64, String> {
    pids.iter().map(|p| proc_cpu_s(&p.to_string())).sum()
}

/// Machine-wide (busy, total) jiffies from /proc/stat.
fn machine_jiffies() -> (u64, u64) {
    let Ok(s) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let Some(line) = s.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    // idle + iowait
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// A timed window: wall clock, server CPU, machine busy share.
pub struct Window {
    start: Instant,
    pids: Vec<u32>,
    cpu0: f64,
    mach0: (u64, u64),
}

pub struct WindowEnd {
    pub secs: f64,
    /// CPU seconds of the measured server processes (0 when no --pid).
    pub server_cpu_s: f64,
    /// Share of the whole machine's CPU that was busy, 0..1.
    pub machine_busy: f64,
}

impl Window {
    pub fn start(pids: &[u32]) -> Result<Self, String> {
        let cpu0 = cpu_of(pids)?;
        Ok(Window {
            mach0: machine_jiffies(),
            cpu0,
            pids: pids.to_vec(),
            start: Instant::now(),
        })
    }

    pub fn end(&self) -> Result<WindowEnd, String> {
        let secs = self.start.elapsed().as_secs_f64();
        let cpu = cpu_of(&self.pids)? - self.cpu0;
        let m = machine_jiffies();
        let busy = (m.0.saturating_sub(self.mach0.0)) as f64;
        let total = (m.1.saturating_sub(self.mach0.1)) as f64;
        Ok(WindowEnd {
            secs,
            server_cpu_s: cpu,
            machine_busy: if total > 0.0 { busy / total } else { 0.0 },
        })
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), a few GB/s; `seed`
/// makes different content.
pub fn fill_random(buf: &mut [u8], seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        c.copy_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    for b in chunks.into_remainder() {
        x ^= x << 13;
        *b = x as u8;
    }
}

pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    fill_random(&mut v, seed);
    v
}

pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

/// `sha256:<hex>` of the data, hashed in 1 MiB updates.
pub fn digest(data: &[u8]) -> String {
    let mut h = Sha256::new();
    for c in data.chunks(1 << 20) {
        h.update(c);
    }
    format!("sha256:{}", hex(&h.finalize()))
}

/// A seed that differs between invocations (time-based nonce).
pub fn nonce() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        ^ (std::process::id() as u64) << 40
}

/// Nearest-rank percentile of sorted microsecond latencies, in ms.
pub fn pct_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted_us.len()) - 1;
    sorted_us[i] as f64 / 1000.0
}

pub fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

pub const MIB: f64 = 1024.0 * 1024.0;
pub const GIB: f64 = 1024.0 * MIB;
/// MB/s as dd and the issue use it (10^6 bytes).
pub fn mbps(bytes: f64, secs: f64) -> f64 {
    bytes / secs / 1e6
}
