//! A Garage cluster of several nodes owned by one test (failure tests:
//! nodes killed and restarted mid-push). Re-exported by `s3.rs`.

use std::process::Command;
use std::time::Duration;

use super::{garage_toml, random_hex, S3Server, BUCKET};
use crate::procs::{daemon_command, find_tool, run, wait_until, Proc};

/// A Garage cluster of several `garage server` processes on 127.0.0.1, each
/// with its own config, metadata and data directories and rpc/S3 ports,
/// `replication_factor = 3` and the default consistency mode (quorum 2 of 3
/// for reads and writes). Unlike the shared single node, a cluster belongs
/// to one test: nodes are [`Proc`]s (own process group, pdeathsig) stopped
/// on drop, and the directory goes with the cluster.
pub struct GarageCluster {
    // Field order is drop order: nodes stop before their directory goes.
    nodes: Vec<GarageNode>,
    pub access_key: String,
    pub secret_key: String,
    /// Seconds from the first spawn to a healthy cluster with the bucket.
    pub startup_secs: f64,
    dir: tempfile::TempDir,
}

struct GarageNode {
    config: std::path::PathBuf,
    api: u16,
    /// `<full node id>@127.0.0.1:<rpc port>`.
    addr: String,
    proc: Option<Proc>,
    starts: u32,
}

impl GarageCluster {
    /// Starts `n` nodes, connects them, assigns and applies a layout (zone
    /// `dc1`, 1G each), waits for `garage status`/`garage health` to show
    /// every node up, then creates a key and [`BUCKET`] allowed to it.
    pub fn start(n: usize) -> GarageCluster {
        let started = std::time::Instant::now();
        let dir = crate::procs::tempdir("berth-gcluster-");
        let secret = random_hex(32);
        let mut nodes = Vec::new();
        let ports = crate::procs::free_ports(2 * n);
        for i in 0..n {
            let d = dir.path().join(format!("node{i}"));
            std::fs::create_dir(&d).expect("mkdir node dir");
            let (rpc, api) = (ports[2 * i], ports[2 * i + 1]);
            let config = d.join("garage.toml");
            std::fs::write(&config, garage_toml(&d, 3, rpc, api, &secret))
                .expect("write garage.toml");
            nodes.push(GarageNode {
                config,
                api,
                addr: String::new(),
                proc: None,
                starts: 0,
            });
        }
        let mut cluster = GarageCluster {
            nodes,
            access_key: String::new(),
            secret_key: String::new(),
            startup_secs: 0.0,
            dir,
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        for i in 0..n {
            let mut addr = String::new();
            wait_until("garage node id", Duration::from_secs(30), || {
                cluster.node_proc(i).assert_running();
                let out = crate::procs::output(cluster.garage(i).args(["node", "id", "-q"]));
                addr = String::from_utf8_lossy(&out.stdout).trim().to_string();
                out.status.success() && addr.contains('@')
            });
            cluster.nodes[i].addr = addr;
        }
        for i in 1..n {
            let addr = cluster.nodes[i].addr.clone();
            // A node answers `node id` before its RPC port listens (seen
            // under load): retry the connect until it does.
            wait_until("garage node connect", Duration::from_secs(30), || {
                crate::procs::output(cluster.garage(0).args(["node", "connect", &addr]))
                    .status
                    .success()
            });
        }
        for i in 0..n {
            let id = cluster.nodes[i].addr.split('@').next().unwrap().to_string();
            run(cluster
                .garage(0)
                .args(["layout", "assign", "-z", "dc1", "-c", "1G", &id]));
        }
        run(cluster
            .garage(0)
            .args(["layout", "apply", "--version", "1"]));
        cluster.wait_healthy();
        let key = run(cluster.garage(0).args(["key", "create", "berth"]));
        let field = |name: &str| {
            key.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("no {name} in `garage key create` output:\n{key}"))
        };
        cluster.access_key = field("Key ID:");
        cluster.secret_key = field("Secret key:");
        run(cluster.garage(0).args(["bucket", "create", BUCKET]));
        run(cluster.garage(0).args([
            "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", "berth",
        ]));
        // Every node's S3 endpoint knows the key and the bucket.
        for i in 0..n {
            let s3 = cluster.s3(i);
            wait_until("the bucket on every node", Duration::from_secs(30), || {
                s3.signed("GET", &format!("/{BUCKET}?list-type=2&max-keys=1"))
                    .is_ok_and(|(status, _)| status == 200)
            });
        }
        cluster.startup_secs = started.elapsed().as_secs_f64();
        cluster
    }

    /// A `garage` admin command through node `i`'s config.
    pub fn garage(&self, i: usize) -> Command {
        let mut c = Command::new(find_tool("garage").expect("garage"));
        c.arg("-c").arg(&self.nodes[i].config);
        c
    }

    fn node_proc(&mut self, i: usize) -> &mut Proc {
        self.nodes[i].proc.as_mut().expect("node is running")
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.starts += 1;
        let mut cmd = daemon_command(find_tool("garage").expect("garage"));
        cmd.arg("-c")
            .arg(&node.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn");
        let log = self
            .dir
            .path()
            .join(format!("node{i}/garage-{}.log", node.starts));
        node.proc = Some(Proc::spawn(&format!("garage node {i}"), cmd, &log));
    }

    /// The S3 endpoint of node `i`, with the cluster's key.
    pub fn s3(&self, i: usize) -> S3Server {
        S3Server {
            kind: "garage",
            endpoint: format!("http://127.0.0.1:{}", self.nodes[i].api),
            region: "garage",
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            startup_secs: self.startup_secs,
        }
    }

    /// `garage status` and `garage health` as seen from node `from`.
    pub fn status(&self, from: usize) -> String {
        let status = crate::procs::output(self.garage(from).arg("status"));
        let health = crate::procs::output(self.garage(from).arg("health"));
        format!(
            "{}{}",
            String::from_utf8_lossy(&status.stdout),
            String::from_utf8_lossy(&health.stdout)
        )
    }

    /// Waits until every node is up and every partition fully healthy:
    /// `garage status` lists all nodes as healthy and none failed, and
    /// `garage health` says HEALTHY.
    pub fn wait_healthy(&mut self) {
        let n = self.nodes.len();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            for i in 0..n {
                if self.nodes[i].proc.is_some() {
                    self.node_proc(i).assert_running();
                }
            }
            let last = self.status(0);
            let healthy_nodes = last
                .split("==== HEALTHY NODES ====")
                .nth(1)
                .map(|s| s.split("====").next().unwrap_or(""))
                .map(|s| s.lines().filter(|l| l.contains("127.0.0.1:")).count());
            if healthy_nodes == Some(n)
                && !last.contains("FAILED NODES")
                && last.lines().any(|l| {
                    l.strip_prefix("Cluster health:")
                        .is_some_and(|v| v.trim() == "HEALTHY")
                })
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "garage cluster not healthy after 60s:\n{last}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills node `i` outright with SIGKILL alone (a crash: garage's
    /// SIGTERM handler never runs) and waits for it to be gone.
    pub fn kill(&mut self, i: usize) {
        let mut proc = self.nodes[i].proc.take().expect("node is running");
        proc.kill_hard();
    }

    /// Starts node `i` again on its directories; it rejoins by itself
    /// (peers are remembered in its metadata directory).
    pub fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].proc.is_none(), "node {i} is running");
        self.spawn(i);
    }
}
