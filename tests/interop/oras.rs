//! oras through a real client: oras-py (PyPI `oras`; the Go `oras` CLI is
//! not installable here) pushes an artifact and a second one whose
//! `subject` is the first, and pulls it back; berth must answer the push
//! with `OCI-Subject` and list the referrer in the referrers API.

use std::process::Command;

use crate::clients::get_json;
use crate::procs::{in_ci, output, Server};
use crate::{setup_with, RegistryOpts};

/// True when python3 can import oras-py; otherwise fails under CI (and
/// scripts/test.sh) and skips elsewhere, as `require_tools` does.
fn require_oras_py() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import oras.client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !in_ci(),
            "required tool missing: python3 with oras-py (pip install oras==0.2.43; scripts/install-test-deps.sh)"
        );
        eprintln!("SKIPPED: python3 with oras-py missing (pip install oras==0.2.43)");
    }
    ok
}

#[test]
fn oras_py_pushes_a_referrer_and_the_referrers_api_lists_it() {
    if !require_oras_py() {
        return;
    }
    let Some(s) = setup_with(
        Server::Berth,
        &["python3"],
        RegistryOpts {
            delete_enabled: false,
        },
    ) else {
        return;
    };
    let work = s.tmp.path().join("oras");
    std::fs::create_dir_all(&work).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/oras/push_referrer.py"
    );
    let out = output(
        Command::new("python3")
            .arg(script)
            .arg(s.reg.host())
            .arg("oras/art")
            .arg(&work),
    );
    assert!(
        out.status.success(),
        "oras-py: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let subject = got["subject"].as_str().unwrap();
    let referrer = got["referrer"].as_str().unwrap();
    assert_eq!(got["oci_subject_header"].as_str(), Some(subject), "{got}");
    assert_eq!(
        got["pulled"],
        serde_json::json!(["a signature of the artifact\n"])
    );

    let index = get_json(&s.reg.url(&format!("/v2/oras/art/referrers/{subject}")));
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let listed: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![referrer], "{index}");
}
