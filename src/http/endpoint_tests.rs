//! Table tests of the endpoint parser and the access table.

use super::*;

const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const U: &str = "d0a3e4b5-1c2d-4e5f-8a9b-0c1d2e3f4a5b";

fn name(s: &str) -> RepoName {
    s.parse().expect("name")
}

fn ok(method: Method, path: &str) -> Endpoint {
    Endpoint::parse(&method, path).unwrap_or_else(|e| panic!("{method} {path}: {:?}", e.body()))
}

fn code(method: Method, path: &str) -> (&'static str, u16) {
    let e = Endpoint::parse(&method, path).expect_err(path);
    (e.code.describe().0, e.http_status().as_u16())
}

#[test]
fn parses_every_endpoint() {
    let d: Digest = D.parse().expect("digest");
    let u: UploadId = U.parse().expect("id");
    let table = vec![
        (Method::GET, "".to_string(), Endpoint::Base),
        (Method::HEAD, "".to_string(), Endpoint::Base),
        (Method::GET, "_catalog".into(), Endpoint::Catalog),
        (
            Method::GET,
            "a/b/c/d/e/f/g/h/tags/list".into(),
            Endpoint::TagsList {
                name: name("a/b/c/d/e/f/g/h"),
            },
        ),
        (
            Method::GET,
            "lib/x/manifests/latest".into(),
            Endpoint::GetManifest {
                name: name("lib/x"),
                reference: "latest".parse().expect("r"),
                head: false,
            },
        ),
        (
            Method::HEAD,
            format!("x/manifests/{D}"),
            Endpoint::GetManifest {
                name: name("x"),
                reference: D.parse().expect("r"),
                head: true,
            },
        ),
        (
            Method::PUT,
            "x/manifests/v1".into(),
            Endpoint::PutManifest {
                name: name("x"),
                reference: "v1".parse().expect("r"),
            },
        ),
        (
            Method::DELETE,
            "x/manifests/v1".into(),
            Endpoint::DeleteManifest {
                name: name("x"),
                reference: "v1".parse().expect("r"),
            },
        ),
        (
            Method::GET,
            format!("x/blobs/{D}"),
            Endpoint::GetBlob {
                name: name("x"),
                digest: d.clone(),
                head: false,
            },
        ),
        (
            Method::HEAD,
            format!("x/blobs/{D}"),
            Endpoint::GetBlob {
                name: name("x"),
                digest: d.clone(),
                head: true,
            },
        ),
        (
            Method::DELETE,
            format!("x/blobs/{D}"),
            Endpoint::DeleteBlob {
                name: name("x"),
                digest: d.clone(),
            },
        ),
        (
            Method::POST,
            "x/blobs/uploads/".into(),
            Endpoint::StartUpload { name: name("x") },
        ),
        (
            Method::POST,
            "x/blobs/uploads".into(),
            Endpoint::StartUpload { name: name("x") },
        ),
        (
            Method::GET,
            format!("x/blobs/uploads/{U}"),
            Endpoint::GetUpload {
                name: name("x"),
                id: u.clone(),
            },
        ),
        (
            Method::PATCH,
            format!("x/blobs/uploads/{U}"),
            Endpoint::PatchUpload {
                name: name("x"),
                id: u.clone(),
            },
        ),
        (
            Method::PUT,
            format!("x/blobs/uploads/{U}"),
            Endpoint::PutUpload {
                name: name("x"),
                id: u.clone(),
            },
        ),
        (
            Method::DELETE,
            format!("x/blobs/uploads/{U}"),
            Endpoint::DeleteUpload {
                name: name("x"),
                id: u.clone(),
            },
        ),
        (
            Method::GET,
            format!("x/referrers/{D}"),
            Endpoint::Referrers {
                name: name("x"),
                digest: d.clone(),
            },
        ),
        // Names may contain the route words as components.
        (
            Method::GET,
            "blobs/manifests/tags/list".into(),
            Endpoint::TagsList {
                name: name("blobs/manifests"),
            },
        ),
        (
            Method::POST,
            "a/blobs/blobs/uploads/".into(),
            Endpoint::StartUpload {
                name: name("a/blobs"),
            },
        ),
        (
            Method::GET,
            "manifests/manifests/manifests".into(),
            Endpoint::GetManifest {
                name: name("manifests"),
                reference: "manifests".parse().expect("r"),
                head: false,
            },
        ),
    ];
    for (method, path, want) in table {
        assert_eq!(ok(method.clone(), &path), want, "{method} {path}");
    }
}

#[test]
fn rejects_bad_input_with_spec_errors() {
    let table = vec![
        (
            Method::GET,
            "Upper/manifests/latest".to_string(),
            ("NAME_INVALID", 400),
        ),
        (
            Method::GET,
            "a/../b/manifests/latest".into(),
            ("NAME_INVALID", 400),
        ),
        (
            Method::GET,
            "a%2fb/manifests/latest".into(),
            ("NAME_INVALID", 400),
        ),
        (Method::GET, "a//b/tags/list".into(), ("NAME_INVALID", 400)),
        (
            Method::GET,
            "x/manifests/bad:tag:x".into(),
            ("MANIFEST_UNKNOWN", 404),
        ),
        (
            Method::PUT,
            "x/manifests/bad:tag:x".into(),
            ("DIGEST_INVALID", 400),
        ),
        (
            Method::GET,
            "x/manifests/.bad".into(),
            ("MANIFEST_UNKNOWN", 404),
        ),
        (
            Method::HEAD,
            "x/manifests/.bad".into(),
            ("MANIFEST_UNKNOWN", 404),
        ),
        (
            Method::DELETE,
            "x/manifests/.bad".into(),
            ("MANIFEST_UNKNOWN", 404),
        ),
        (Method::PUT, "x/manifests/.bad".into(), ("TAG_INVALID", 400)),
        (
            Method::POST,
            "x/manifests/.bad".into(),
            ("UNSUPPORTED", 405),
        ),
        (
            Method::GET,
            "x/blobs/sha256:abc".into(),
            ("DIGEST_INVALID", 400),
        ),
        (
            Method::GET,
            format!("x/blobs/md5:{}", "a".repeat(32)),
            ("DIGEST_INVALID", 400),
        ),
        (
            Method::GET,
            "x/blobs/uploads/not-a-uuid".into(),
            ("BLOB_UPLOAD_UNKNOWN", 404),
        ),
        (
            Method::GET,
            "x/referrers/latest".into(),
            ("DIGEST_INVALID", 400),
        ),
        (
            Method::POST,
            "x/manifests/latest".into(),
            ("UNSUPPORTED", 405),
        ),
        (Method::PUT, format!("x/blobs/{D}"), ("UNSUPPORTED", 405)),
        (Method::GET, "x/blobs/uploads/".into(), ("UNSUPPORTED", 405)),
        (Method::DELETE, "_catalog".into(), ("UNSUPPORTED", 405)),
        (Method::POST, "".into(), ("UNSUPPORTED", 405)),
        (Method::GET, "x/unknown/thing".into(), ("UNSUPPORTED", 404)),
        (Method::GET, "x".into(), ("UNSUPPORTED", 404)),
        (Method::GET, "manifests/latest".into(), ("UNSUPPORTED", 404)),
    ];
    for (method, path, want) in table {
        assert_eq!(code(method.clone(), &path), want, "{method} {path}");
    }
}

#[test]
fn access_table_covers_every_endpoint() {
    let d: Digest = D.parse().expect("digest");
    let u: UploadId = U.parse().expect("id");
    let r: Reference = "v1".parse().expect("r");
    let x = name("x");
    let table = vec![
        (Endpoint::Base, None),
        (Endpoint::Catalog, None),
        (Endpoint::TagsList { name: x.clone() }, Some(Action::Pull)),
        (
            Endpoint::GetManifest {
                name: x.clone(),
                reference: r.clone(),
                head: false,
            },
            Some(Action::Pull),
        ),
        (
            Endpoint::PutManifest {
                name: x.clone(),
                reference: r.clone(),
            },
            Some(Action::Push),
        ),
        (
            Endpoint::DeleteManifest {
                name: x.clone(),
                reference: r.clone(),
            },
            Some(Action::Delete),
        ),
        (
            Endpoint::GetBlob {
                name: x.clone(),
                digest: d.clone(),
                head: true,
            },
            Some(Action::Pull),
        ),
        (
            Endpoint::DeleteBlob {
                name: x.clone(),
                digest: d.clone(),
            },
            Some(Action::Delete),
        ),
        (
            Endpoint::StartUpload { name: x.clone() },
            Some(Action::Push),
        ),
        (
            Endpoint::GetUpload {
                name: x.clone(),
                id: u.clone(),
            },
            Some(Action::Push),
        ),
        (
            Endpoint::PatchUpload {
                name: x.clone(),
                id: u.clone(),
            },
            Some(Action::Push),
        ),
        (
            Endpoint::PutUpload {
                name: x.clone(),
                id: u.clone(),
            },
            Some(Action::Push),
        ),
        (
            Endpoint::DeleteUpload {
                name: x.clone(),
                id: u.clone(),
            },
            Some(Action::Push),
        ),
        (
            Endpoint::Referrers {
                name: x.clone(),
                digest: d.clone(),
            },
            Some(Action::Pull),
        ),
    ];
    for (ep, want) in table {
        assert_eq!(ep.required_access().map(|(_, a)| a), want, "{ep:?}");
        assert_eq!(
            ep.is_write(),
            matches!(want, Some(Action::Push | Action::Delete)),
            "{ep:?}"
        );
    }
}
