//! A small async client for the registry API that tells an acknowledged
//! write from one whose answer never came.

use std::time::Duration;

use reqwest::{Client, Method, StatusCode};

use super::support::digest_of;

/// What became of a request.
#[derive(Debug)]
pub enum Sent {
    /// An answer came: status, headers, body.
    Answer(StatusCode, reqwest::header::HeaderMap, bytes::Bytes),
    /// No answer (connection refused, reset, closed mid-way): the server
    /// died or never heard it. The write may or may not have happened.
    Lost(String),
}

impl Sent {
    /// The status, if an answer came.
    pub fn status(&self) -> Option<u16> {
        match self {
            Sent::Answer(s, ..) => Some(s.as_u16()),
            Sent::Lost(_) => None,
        }
    }

    /// A response header, if an answer came with it.
    pub fn header(&self, name: &str) -> Option<String> {
        match self {
            Sent::Answer(_, h, _) => h
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            Sent::Lost(_) => None,
        }
    }

    /// The size an upload holds, from the `Range: 0-<end>` of an answer
    /// (`0-0` is read as empty, as registry:2 sends for an empty upload).
    pub fn upload_size(&self) -> Option<u64> {
        let range = self.header("range")?;
        let end: u64 = range.strip_prefix("0-")?.parse().ok()?;
        Some(if end == 0 { 0 } else { end + 1 })
    }

    /// The answer's body as text (for messages).
    pub fn text(&self) -> String {
        match self {
            Sent::Answer(s, _, b) => format!("{s} {}", String::from_utf8_lossy(b)),
            Sent::Lost(e) => format!("no answer: {e}"),
        }
    }
}

/// An async client for one registry base URL.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: Client,
}

impl Api {
    /// A client of `base` (`http://127.0.0.1:PORT`), 60 s per request.
    pub fn new(base: String) -> Api {
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        Api { base, client }
    }

    /// One request; `path` may be absolute (a `Location`) or start with `/`.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Sent {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut req = self
            .client
            .request(Method::from_bytes(method.as_bytes()).expect("method"), &url);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(b) = body {
            req = req.header("Content-Length", b.len().to_string()).body(b);
        } else if matches!(method, "PUT" | "POST" | "PATCH") {
            req = req.header("Content-Length", "0");
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Sent::Lost(format!("{e:?}")),
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        match resp.bytes().await {
            Ok(b) => Sent::Answer(status, headers, b),
            Err(e) => Sent::Lost(format!("body: {e:?}")),
        }
    }

    /// GET `path`: (status, body); panics when no answer comes.
    pub async fn get(&self, path: &str) -> (u16, bytes::Bytes) {
        match self.send("GET", path, &[], None).await {
            Sent::Answer(s, _, b) => (s.as_u16(), b),
            Sent::Lost(e) => panic!("GET {path}: {e}"),
        }
    }

    /// A monolithic push (`POST ?digest=` with the body).
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> Sent {
        let digest = digest_of(data);
        self.send(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
            &[("Content-Type", "application/octet-stream".into())],
            Some(data.to_vec()),
        )
        .await
    }

    /// Opens an upload session: its `Location`, or what came instead.
    pub async fn open_upload(&self, repo: &str) -> Result<String, Sent> {
        match self
            .send("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], None)
            .await
        {
            sent @ Sent::Answer(..) if sent.status() == Some(202) => {
                match sent.header("location") {
                    Some(loc) => Ok(loc),
                    None => Err(sent),
                }
            }
            other => Err(other),
        }
    }

    /// PATCH `chunk` at `start` into the session at `loc`.
    pub async fn patch(&self, loc: &str, start: u64, chunk: &[u8]) -> Sent {
        let end = start + chunk.len() as u64 - 1;
        self.send(
            "PATCH",
            loc,
            &[
                ("Content-Type", "application/octet-stream".into()),
                ("Content-Range", format!("{start}-{end}")),
            ],
            Some(chunk.to_vec()),
        )
        .await
    }

    /// The final PUT of a session with `digest` and an optional last chunk.
    pub async fn finish(&self, loc: &str, digest: &str, last: Option<Vec<u8>>) -> Sent {
        let sep = if loc.contains('?') { '&' } else { '?' };
        self.send(
            "PUT",
            &format!("{loc}{sep}digest={digest}"),
            &[("Content-Type", "application/octet-stream".into())],
            last,
        )
        .await
    }

    /// PUT a manifest under `reference` (tag or digest).
    pub async fn put_manifest(&self, repo: &str, reference: &str, body: &[u8]) -> Sent {
        self.send(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[(
                "Content-Type",
                "application/vnd.oci.image.manifest.v1+json".into(),
            )],
            Some(body.to_vec()),
        )
        .await
    }

    /// GET a blob and check its bytes hash to `digest`: `Some(len)` when it
    /// is served intact, `None` on 404, panics on anything else.
    pub async fn blob_intact(&self, repo: &str, digest: &str) -> Option<usize> {
        let (status, body) = self.get(&format!("/v2/{repo}/blobs/{digest}")).await;
        match status {
            200 => {
                assert_eq!(
                    digest_of(&body),
                    digest,
                    "blob {digest} in {repo} served with other bytes ({} bytes)",
                    body.len()
                );
                Some(body.len())
            }
            404 => None,
            s => panic!(
                "GET blob {digest} in {repo}: {s} {}",
                String::from_utf8_lossy(&body)
            ),
        }
    }
}
