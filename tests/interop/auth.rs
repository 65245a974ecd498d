//! docker login against berth with htpasswd and with berth's own token
//! server; skopeo with credentials; Apache `htpasswd` files.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::clients::http;
use crate::procs::{
    daemon_command, free_port, output, require_tools, run, run_fails, tempdir, wait_until,
    write_tar, Dockerd, Entry, Proc,
};

/// A berth serving `config_tail` (YAML appended after storage and http).
struct AuthServer {
    port: u16,
    _proc: Proc,
}

impl AuthServer {
    fn start(dir: &Path, config_tail: &str) -> AuthServer {
        let port = free_port();
        let cfg = dir.join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n{config_tail}",
                dir.join("storage").display()
            ),
        )
        .unwrap();
        let mut cmd = daemon_command(env!("CARGO_BIN_EXE_berth"));
        cmd.arg("serve").arg("--config").arg(&cfg);
        let mut proc = Proc::spawn("berth (auth)", cmd, &dir.join("berth.log"));
        let url = format!("http://127.0.0.1:{port}/v2/");
        wait_until("berth to answer /v2/", Duration::from_secs(30), || {
            proc.assert_running();
            http("GET", &url).is_ok_and(|r| r.status == 401)
        });
        AuthServer { port, _proc: proc }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn import_image(dk: &Dockerd, dir: &Path, image: &str) {
    let rootfs = dir.join("rootfs.tar");
    write_tar(
        &rootfs,
        &[
            Entry::Random("data.bin", 512 * 1024),
            Entry::Bytes("hello", b"auth\n"),
        ],
    );
    dk.run(&["import", rootfs.to_str().unwrap(), image]);
}

#[test]
fn docker_login_with_htpasswd() {
    if !require_tools(&["docker", "dockerd", "htpasswd", "skopeo"]) {
        return;
    }
    let tmp = tempdir("berth-auth-");
    let users = tmp.path().join("htpasswd");
    // A file made by Apache's htpasswd, as the registry:2 docs do.
    let apache = run(Command::new("htpasswd").args(["-Bbn", "testuser", "testpassword"]));
    std::fs::write(&users, apache).unwrap();
    let srv = AuthServer::start(
        tmp.path(),
        &format!(
            "auth:\n  htpasswd:\n    realm: Registry Realm\n    path: {}\n",
            users.display()
        ),
    );
    let dk = Dockerd::start();
    let image = format!("{}/private/app:v1", srv.host());
    import_image(&dk, tmp.path(), &image);

    // Without login, push is refused.
    let out = output(dk.docker().args(["push", &image]));
    assert!(!out.status.success(), "anonymous push must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no basic auth credentials") || err.contains("unauthorized"),
        "{err}"
    );

    assert!(
        !dk.login(&srv.host(), "testuser", "wrong"),
        "wrong password must fail"
    );
    assert!(dk.login(&srv.host(), "testuser", "testpassword"));
    let (digest, _) = dk.push(&image);
    dk.run(&["rmi", "-f", &image]);
    let out = dk.run(&["pull", &image]);
    assert!(out.contains(&digest), "{out}");

    // A user added with `berth htpasswd` works without a restart.
    crate::procs::htpasswd_add(&users, "newbie", "fresh-pass");
    std::thread::sleep(Duration::from_millis(1500));
    dk.run(&["logout", &srv.host()]);
    assert!(
        dk.login(&srv.host(), "newbie", "fresh-pass"),
        "new user without restart"
    );
    dk.run(&["pull", &image]);

    // skopeo with credentials, and refused without.
    let src = format!("docker://{image}");
    run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        "testuser:testpassword",
        &src,
    ]));
    run_fails(Command::new("skopeo").args(["inspect", "--tls-verify=false", "--no-creds", &src]));
}

#[test]
fn docker_login_with_builtin_token_server() {
    if !require_tools(&["docker", "dockerd"]) {
        return;
    }
    let tmp = tempdir("berth-token-");
    let users = tmp.path().join("htpasswd");
    crate::procs::htpasswd_add(&users, "alice", "alice-pass");
    crate::procs::htpasswd_add(&users, "bob", "bob-pass");
    let srv = AuthServer::start(
        tmp.path(),
        &format!(
            "auth:\n  token:\n    builtin: true\n    htpasswd: {users}\n    signingkey: {key}\n\
             access:\n  users:\n    alice:\n      - repositories: [\"alice/**\"]\n        actions: [\"*\"]\n\
             \x20   bob:\n      - repositories: [\"bob/**\"]\n        actions: [pull, push]\n",
            users = users.display(),
            key = tmp.path().join("token.key").display()
        ),
    );
    let r = http("GET", &format!("http://{}/v2/", srv.host())).unwrap();
    let challenge = r.header("www-authenticate").unwrap_or_default().to_string();
    assert!(
        challenge.starts_with("Bearer realm=\"http://"),
        "{challenge}"
    );

    let dk = Dockerd::start();
    assert!(!dk.login(&srv.host(), "alice", "nope"));
    assert!(dk.login(&srv.host(), "alice", "alice-pass"));
    let mine = format!("{}/alice/app:v1", srv.host());
    import_image(&dk, tmp.path(), &mine);
    let (digest, _) = dk.push(&mine);
    dk.run(&["rmi", "-f", &mine]);
    assert!(dk.run(&["pull", &mine]).contains(&digest));

    // alice's token never covers bob's namespace.
    let theirs = format!("{}/bob/app:v1", srv.host());
    dk.run(&["tag", &mine, &theirs]);
    let out = output(dk.docker().args(["push", &theirs]));
    assert!(!out.status.success(), "alice must not push to bob/");
    // bob may.
    dk.run(&["logout", &srv.host()]);
    assert!(dk.login(&srv.host(), "bob", "bob-pass"));
    dk.push(&theirs);
    // and bob cannot read alice's.
    dk.run(&["rmi", "-f", &mine]);
    let out = output(dk.docker().args(["pull", &mine]));
    assert!(!out.status.success(), "bob must not pull alice/");
}
