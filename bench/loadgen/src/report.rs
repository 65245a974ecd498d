//! `report`: medians, paired ratios and CPU per unit from the raw JSON lines
//! `bench/run` collected; a markdown table on stdout and the full JSON.
//!
//! Raw lines are `{"fig", "side", "rep", "result": {...}}` (a measurement;
//! `result` is `{"failed": "..."}` when the command failed) or
//! `{"meta": {...}}`. A measurement with `errors > 0` is not used for
//! medians: the figure shows FAIL with the count.

use serde_json::{json, Map, Value};

use crate::args::Args;
use crate::stats::{combine, fmt, med, paired};

struct Raw {
    lines: Vec<Value>,
}

impl Raw {
    fn results(&self, fig: &str, side: &str) -> impl Iterator<Item = &Value> {
        let (fig, side) = (fig.to_string(), side.to_string());
        self.lines
            .iter()
            .filter(move |l| l["fig"] == fig.as_str() && l["side"] == side.as_str())
    }

    /// (rep, value) of measurements without errors.
    fn vals(&self, fig: &str, side: &str, key: &str) -> Vec<(i64, f64)> {
        self.results(fig, side)
            .filter(|l| {
                l["result"].get("failed").is_none() && l["result"]["errors"].as_f64() == Some(0.0)
            })
            .filter_map(|l| Some((l["rep"].as_i64()?, l["result"][key].as_f64()?)))
            .filter(|(_, v)| v.is_finite())
            .collect()
    }

    /// Error count and the first message for a figure side.
    fn errors(&self, fig: &str, side: &str) -> (u64, Option<String>) {
        let mut n = 0;
        let mut first = None;
        for l in self.results(fig, side) {
            if let Some(f) = l["result"].get("failed") {
                n += 1;
                first.get_or_insert(f.as_str().unwrap_or("failed").to_string());
            } else {
                let e = l["result"]["errors"].as_u64().unwrap_or(1);
                if e > 0 {
                    n += e;
                    first.get_or_insert(
                        l["result"]["error"]
                            .as_str()
                            .unwrap_or("errors")
                            .to_string(),
                    );
                }
            }
        }
        (n, first)
    }
}

struct Row {
    id: &'static str,
    title: String,
    unit: &'static str,
    berth: Vec<(i64, f64)>,
    dist: Vec<(i64, f64)>,
    limit: Vec<(i64, f64)>,
    limit_name: &'static str,
    cpu_unit: &'static str,
    cpu: [Option<f64>; 3],
    errors: Vec<(String, u64, Option<String>)>,
}

impl Row {
    fn to_json(&self) -> Value {
        let reps =
            |v: &[(i64, f64)]| json!(v.iter().map(|x| json!([x.0, x.1])).collect::<Vec<_>>());
        let mut errs = Map::new();
        for (side, n, first) in &self.errors {
            errs.insert(side.clone(), json!({"count": n, "first": first}));
        }
        json!({
            "id": self.id, "figure": self.title, "unit": self.unit,
            "berth": {"median": med(&self.berth), "reps": reps(&self.berth)},
            "distribution": {"median": med(&self.dist), "reps": reps(&self.dist)},
            "limit": {"median": med(&self.limit), "reps": reps(&self.limit), "is": self.limit_name},
            "berth_over_dist": paired(&self.berth, &self.dist),
            "berth_over_limit": paired(&self.berth, &self.limit),
            "dist_over_limit": paired(&self.dist, &self.limit),
            "cpu_unit": self.cpu_unit,
            "cpu": {"berth": self.cpu[0], "distribution": self.cpu[1], "limit": self.cpu[2]},
            "errors": errs,
        })
    }

    fn markdown(&self) -> String {
        let failed: Vec<String> = self
            .errors
            .iter()
            .filter(|e| e.1 > 0)
            .map(|(s, n, f)| format!("FAIL {s}: {n} errors ({})", f.as_deref().unwrap_or("")))
            .collect();
        let status = if failed.is_empty() {
            "ok".to_string()
        } else {
            failed.join("; ").replace('|', "/")
        };
        let cpu = if self.cpu_unit.is_empty() {
            "-".to_string()
        } else {
            format!(
                "{} / {} / {} {}",
                fmt(self.cpu[0]),
                fmt(self.cpu[1]),
                fmt(self.cpu[2]),
                self.cpu_unit
            )
        };
        format!(
            "| {} | {} {} | {} | {} | {} | {} | {} | {} | {} |",
            self.title,
            fmt(med(&self.berth)),
            self.unit,
            fmt(med(&self.dist)),
            if self.limit.is_empty() {
                "-".to_string()
            } else {
                format!("{} ({})", fmt(med(&self.limit)), self.limit_name)
            },
            fmt(paired(&self.berth, &self.dist)),
            fmt(paired(&self.berth, &self.limit)),
            fmt(paired(&self.dist, &self.limit)),
            cpu,
            status
        )
    }
}

pub fn report(a: &Args) -> Result<Value, String> {
    let raw_path = a.str("raw")?;
    let out_path = a.str("out")?;
    let text = std::fs::read_to_string(raw_path).map_err(|e| format!("{raw_path}: {e}"))?;
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{raw_path}: {e}: {l}")))
        .collect::<Result<_, _>>()?;
    let raw = Raw { lines };
    let mut meta = Map::new();
    for l in &raw.lines {
        if let Some(m) = l["meta"].as_object() {
            meta.extend(m.clone());
        }
    }
    let size = meta
        .get("blob_mib")
        .and_then(Value::as_u64)
        .map(|m| {
            if m % 1024 == 0 {
                format!("{} GiB", m / 1024)
            } else {
                format!("{m} MiB")
            }
        })
        .unwrap_or_default();
    let storm = format!(
        "{}x{}",
        meta.get("storm_clients").unwrap_or(&json!("?")),
        meta.get("storm_images").unwrap_or(&json!("?"))
    );
    let conns = meta.get("conns").cloned().unwrap_or(json!(64));

    let errs = |fig: &str, sides: &[&str]| -> Vec<(String, u64, Option<String>)> {
        sides
            .iter()
            .map(|s| {
                let (n, f) = raw.errors(fig, s);
                (s.to_string(), n, f)
            })
            .collect()
    };
    let cpu = |fig: &str, side: &str, key: &str| med(&raw.vals(fig, side, key));
    let mut rows = Vec::new();

    let dd = raw.vals("limit_disk", "dd", "mbps");
    let sha = raw.vals("limit_sha", "sha256", "mbps");
    let disk_limit = combine(&[dd.clone(), sha.clone()], true, 1.0);
    for (id, title) in [
        ("push_mono", format!("blob push, monolithic {size}")),
        (
            "push_chunked",
            format!("blob push, chunked 16 MiB PATCHes, {size}"),
        ),
    ] {
        let mut e = errs(id, &["berth", "dist"]);
        e.extend(errs("limit_disk", &["dd"]));
        rows.push(Row {
            id,
            title,
            unit: "MB/s",
            berth: raw.vals(id, "berth", "mbps"),
            dist: raw.vals(id, "dist", "mbps"),
            limit: disk_limit.clone(),
            limit_name: "min(dd conv=fsync, sha256)",
            cpu_unit: "CPU-s/GiB",
            cpu: [
                cpu(id, "berth", "cpu_s_per_gib"),
                cpu(id, "dist", "cpu_s_per_gib"),
                cpu("limit_sha", "sha256", "cpu_s_per_gib"),
            ],
            errors: e,
        });
    }
    let nginx_pull = combine(
        &[
            raw.vals("pull_warm", "nginx_sendfile", "mbps"),
            raw.vals("pull_warm", "nginx_copy", "mbps"),
        ],
        false,
        1.0,
    );
    rows.push(Row {
        id: "pull_warm",
        title: format!("blob pull, warm page cache, {size}"),
        unit: "MB/s",
        berth: raw.vals("pull_warm", "berth", "mbps"),
        dist: raw.vals("pull_warm", "dist", "mbps"),
        limit: nginx_pull,
        limit_name: "nginx, best of sendfile on/off",
        cpu_unit: "CPU-s/GiB",
        cpu: [
            cpu("pull_warm", "berth", "cpu_s_per_gib"),
            cpu("pull_warm", "dist", "cpu_s_per_gib"),
            cpu("pull_warm", "nginx_copy", "cpu_s_per_gib"),
        ],
        errors: errs(
            "pull_warm",
            &["berth", "dist", "nginx_sendfile", "nginx_copy"],
        ),
    });
    for (id, title, tool) in [
        ("get_manifest", "manifest GET by tag", "wrk"),
        ("head_manifest", "manifest HEAD by digest", "loadgen"),
    ] {
        let title = format!("{title}, {conns} conns ({tool})");
        let p99 = |side| raw.vals(id, side, "p99_ms");
        rows.push(Row {
            id,
            title: title.clone(),
            unit: "req/s",
            berth: raw.vals(id, "berth", "rps"),
            dist: raw.vals(id, "dist", "rps"),
            limit: raw.vals(id, "nginx", "rps"),
            limit_name: "nginx, same bytes",
            cpu_unit: "µs/req",
            cpu: [
                cpu(id, "berth", "cpu_us_per_req"),
                cpu(id, "dist", "cpu_us_per_req"),
                cpu(id, "nginx", "cpu_us_per_req"),
            ],
            errors: errs(id, &["berth", "dist", "nginx"]),
        });
        rows.push(Row {
            id: if id == "get_manifest" {
                "get_manifest_p99"
            } else {
                "head_manifest_p99"
            },
            title: "  p99 latency of the above".into(),
            unit: "ms",
            berth: p99("berth"),
            dist: p99("dist"),
            limit: p99("nginx"),
            limit_name: "nginx",
            cpu_unit: "",
            cpu: [None; 3],
            errors: vec![],
        });
    }
    let mut e = errs("storm", &["berth", "dist"]);
    e.extend(errs("limit_fsync", &["fsync"]));
    rows.push(Row {
        id: "storm",
        title: format!("push storm, {storm} small images"),
        unit: "images/s",
        berth: raw.vals("storm", "berth", "images_per_s"),
        dist: raw.vals("storm", "dist", "images_per_s"),
        limit: combine(&[raw.vals("limit_fsync", "fsync", "ops_per_s")], true, 0.25),
        limit_name: "16-thread fsync rate / 4",
        cpu_unit: "CPU-ms/image",
        cpu: [
            cpu("storm", "berth", "cpu_ms_per_image"),
            cpu("storm", "dist", "cpu_ms_per_image"),
            None,
        ],
        errors: e,
    });
    rows.push(Row {
        id: "storm_layout",
        title: "  the same storm against the layout's own file work".into(),
        unit: "images/s",
        berth: raw.vals("storm", "berth", "images_per_s"),
        dist: raw.vals("storm", "dist", "images_per_s"),
        limit: raw.vals("limit_layout", "layout", "images_per_s"),
        limit_name: "16 threads writing each image's dirs and files, 4 fsyncs",
        cpu_unit: "",
        cpu: [None; 3],
        errors: errs("limit_layout", &["layout"]),
    });
    rows.push(Row {
        id: "storm_p99",
        title: "  p99 per image of the above".into(),
        unit: "ms",
        berth: raw.vals("storm", "berth", "p99_ms"),
        dist: raw.vals("storm", "dist", "p99_ms"),
        limit: vec![],
        limit_name: "",
        cpu_unit: "",
        cpu: [None; 3],
        errors: vec![],
    });
    let entries = |fig: &str, side: &str| {
        med(&raw.vals(fig, side, "entries"))
            .map(|x| format!("{x:.0}"))
            .unwrap_or("?".into())
    };
    let pages = |fig: &str, side: &str| {
        med(&raw.vals(fig, side, "pages"))
            .map(|x| format!("{x:.0}"))
            .unwrap_or("?".into())
    };
    rows.push(Row {
        id: "catalog",
        title: format!(
            "`_catalog` full listing, default page size (berth {} repos in {} pages, dist {} in {})",
            entries("catalog", "berth"),
            pages("catalog", "berth"),
            entries("catalog", "dist"),
            pages("catalog", "dist")
        ),
        unit: "ms",
        berth: raw.vals("catalog", "berth", "p50_ms"),
        dist: raw.vals("catalog", "dist", "p50_ms"),
        limit: vec![],
        limit_name: "",
        cpu_unit: "",
        cpu: [None; 3],
        errors: errs("catalog", &["berth", "dist"]),
    });
    rows.push(Row {
        id: "tags",
        title: format!(
            "tags list `n=100` first page, p50 of 20 (entries returned: berth {}, dist {})",
            entries("tags", "berth"),
            entries("tags", "dist")
        ),
        unit: "ms",
        berth: raw.vals("tags", "berth", "p50_ms"),
        dist: raw.vals("tags", "dist", "p50_ms"),
        limit: vec![],
        limit_name: "",
        cpu_unit: "",
        cpu: [None; 3],
        errors: errs("tags", &["berth", "dist"]),
    });
    for (id, title) in [
        (
            "populate_repos",
            "repo creation: mounts + manifest PUT, 16 conns (setup)",
        ),
        (
            "populate_tags",
            "tag creation: manifest PUT by tag, 16 conns (setup)",
        ),
    ] {
        rows.push(Row {
            id,
            title: title.into(),
            unit: "/s",
            berth: raw.vals(id, "berth", "per_s"),
            dist: raw.vals(id, "dist", "per_s"),
            limit: vec![],
            limit_name: "",
            cpu_unit: "",
            cpu: [None; 3],
            errors: errs(id, &["berth", "dist"]),
        });
    }
    for (id, title, key) in [
        ("rss_idle", "RSS idle, 1 s after start", "vmrss_mib"),
        (
            "rss_peak",
            "RSS peak under manifest GET/HEAD load",
            "vmhwm_mib",
        ),
        ("rss_after", "RSS after the run", "vmrss_mib"),
    ] {
        rows.push(Row {
            id,
            title: title.into(),
            unit: "MiB",
            berth: raw.vals(id, "berth", key),
            dist: raw.vals(id, "dist", key),
            limit: vec![],
            limit_name: "",
            cpu_unit: "",
            cpu: [None; 3],
            errors: errs(id, &["berth", "dist"]),
        });
    }

    let mut md = String::new();
    md.push_str("| figure | berth | distribution | limit | berth ÷ dist | berth ÷ limit | dist ÷ limit | CPU per unit: berth / dist / limit | status |\n");
    md.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
    for r in &rows {
        md.push_str(&r.markdown());
        md.push('\n');
    }
    let lim = |fig: &str, side: &str, key: &str| med(&raw.vals(fig, side, key));
    md.push_str(&format!(
        "\nLimits: dd conv=fsync {} MB/s, sha256 (sha2) {} MB/s at {} CPU-s/GiB, 16-thread fsync {} ops/s, 16-thread layout {} images/s.\n",
        fmt(lim("limit_disk", "dd", "mbps")),
        fmt(lim("limit_sha", "sha256", "mbps")),
        fmt(lim("limit_sha", "sha256", "cpu_s_per_gib")),
        fmt(lim("limit_fsync", "fsync", "ops_per_s")),
        fmt(lim("limit_layout", "layout", "images_per_s")),
    ));
    md.push_str("Ratios are medians over reps of same-rep pairs; for ms rows lower is better. Rates are noisy on a shared machine: judge ratios and CPU per unit.\n");

    let total_errors: u64 = rows.iter().flat_map(|r| r.errors.iter().map(|e| e.1)).sum();
    let out = json!({
        "meta": meta,
        "figures": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        "failed_figures": rows.iter().filter(|r| r.errors.iter().any(|e| e.1 > 0)).map(|r| r.id).collect::<Vec<_>>(),
        "total_errors": total_errors,
        "table_markdown": md,
        "raw": raw.lines,
    });
    let text = serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?;
    std::fs::write(out_path, text + "\n").map_err(|e| format!("{out_path}: {e}"))?;
    print!("{md}");
    Ok(json!({"out": out_path, "total_errors": total_errors}))
}
