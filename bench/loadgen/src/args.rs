//! `--key value` arguments; a key may repeat (`--pid 1 --pid 2`).

use std::collections::HashMap;
use std::str::FromStr;

pub struct Args {
    map: HashMap<String, Vec<String>>,
}

impl Args {
    pub fn parse(argv: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        let mut argv = argv.peekable();
        while let Some(a) = argv.next() {
            let key = a
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --key, got {a}"))?
                .to_string();
            let value = argv
                .next()
                .ok_or_else(|| format!("--{key} needs a value"))?;
            map.entry(key).or_default().push(value);
        }
        Ok(Args { map })
    }

    pub fn opt(&self, key: &str) -> Option<&str> {
        self.map.get(key).and_then(|v| v.last()).map(String::as_str)
    }

    pub fn str(&self, key: &str) -> Result<&str, String> {
        self.opt(key).ok_or_else(|| format!("--{key} is required"))
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.map.get(key).cloned().unwrap_or_default()
    }

    pub fn num<T: FromStr>(&self, key: &str, default: Option<T>) -> Result<T, String> {
        match self.opt(key) {
            Some(v) => v.parse().map_err(|_| format!("--{key}: bad number {v}")),
            None => default.ok_or_else(|| format!("--{key} is required")),
        }
    }

    /// `--pid` values: the server processes whose CPU time is measured.
    pub fn pids(&self) -> Result<Vec<u32>, String> {
        self.all("pid")
            .iter()
            .map(|p| p.parse().map_err(|_| format!("--pid: bad pid {p}")))
            .collect()
    }
}
