//! Client-side helpers: a tiny blocking HTTP client over reqwest, and writers
//! for image formats the real clients read (OCI image layouts for skopeo,
//! `docker save` archives for `docker load`), built from random content so
//! no network is needed.

#![allow(dead_code)]

use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::procs::{sha256, write_tar, Entry, TarWriter};

// ---------------------------------------------------------------- http

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// One blocking request (no redirects followed); Err on connection errors.
pub fn http(method: &str, url: &str) -> Result<Resp, reqwest::Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("http method");
        let r = client
            .request(method, url)
            // What docker sends for manifests, so tags resolve the same way.
            .header(
                "Accept",
                "application/vnd.docker.distribution.manifest.v2+json, \
                 application/vnd.docker.distribution.manifest.list.v2+json, \
                 application/vnd.oci.image.manifest.v1+json, \
                 application/vnd.oci.image.index.v1+json, */*",
            )
            .send()
            .await?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await?.to_vec();
        Ok(Resp {
            status,
            headers,
            body,
        })
    })
}

/// GET that must answer 200 with JSON.
pub fn get_json(url: &str) -> Value {
    let r = http("GET", url).unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(
        r.status,
        200,
        "GET {url}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

/// Sorted tags from `GET /v2/NAME/tags/list`.
pub fn tags(base: &str, name: &str) -> Vec<String> {
    let v = get_json(&format!("{base}/v2/{name}/tags/list"));
    assert_eq!(v["name"], name, "tags/list name field");
    let mut t: Vec<String> = v["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("tag string").to_string())
                .collect()
        })
        .unwrap_or_default();
    t.sort();
    t
}

/// Repositories from `GET /v2/_catalog`.
pub fn catalog(base: &str) -> Vec<String> {
    let v = get_json(&format!("{base}/v2/_catalog"));
    v["repositories"]
        .as_array()
        .expect("repositories array")
        .iter()
        .map(|s| s.as_str().expect("repo string").to_string())
        .collect()
}

// ---------------------------------------------------------------- OCI layout

/// A content descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct Desc {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Desc {
    fn to_json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// An OCI image layout directory being written (`oci:DIR:TAG` for skopeo).
pub struct OciLayout {
    pub dir: PathBuf,
    refs: Vec<Value>,
}

impl OciLayout {
    pub fn create(dir: &Path) -> OciLayout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir blobs");
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("write oci-layout");
        OciLayout {
            dir: dir.to_path_buf(),
            refs: Vec::new(),
        }
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }

    fn put(&self, media_type: &str, data: &[u8]) -> Desc {
        let digest = sha256(data);
        std::fs::write(self.blob_path(&digest), data).expect("write blob");
        Desc {
            media_type: media_type.into(),
            digest,
            size: data.len() as u64,
        }
    }

    /// Writes a single-platform image whose layers hold `layers` (one entry
    /// list per layer, uncompressed tar). Returns the manifest descriptor.
    pub fn image(&self, arch: &str, layers: &[Vec<Entry>]) -> Desc {
        let mut layer_descs = Vec::new();
        let mut diff_ids = Vec::new();
        for entries in layers {
            let tmp = self.dir.join("layer.tmp");
            let (digest, size) = write_tar(&tmp, entries);
            std::fs::rename(&tmp, self.blob_path(&digest)).expect("move layer");
            diff_ids.push(digest.clone());
            layer_descs.push(Desc {
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
                digest,
                size,
            });
        }
        let config = json!({
            "architecture": arch,
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = self.put(
            "application/vnd.oci.image.config.v1+json",
            &serde_json::to_vec(&config).expect("config json"),
        );
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.to_json(),
            "layers": layer_descs.iter().map(Desc::to_json).collect::<Vec<_>>(),
        });
        self.put(
            OCI_MANIFEST,
            &serde_json::to_vec(&manifest).expect("manifest json"),
        )
    }

    /// Writes an image index over `(manifest, architecture)` pairs.
    pub fn index(&self, manifests: &[(Desc, &str)]) -> Desc {
        let entries: Vec<Value> = manifests
            .iter()
            .map(|(d, arch)| {
                let mut v = d.to_json();
                v["platform"] = json!({"architecture": arch, "os": "linux"});
                v
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
        self.put(OCI_INDEX, &serde_json::to_vec(&index).expect("index json"))
    }

    /// Names `desc` as `tag` in the layout's index.json (written at once).
    pub fn tag(&mut self, desc: &Desc, tag: &str) {
        let mut v = desc.to_json();
        v["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        self.refs.push(v);
        let index = json!({"schemaVersion": 2, "manifests": self.refs});
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).expect("index.json"),
        )
        .expect("write index.json");
    }
}

/// Reads `index.json` of an OCI layout written by a client and returns the
/// descriptor tagged `tag`.
pub fn oci_layout_ref(dir: &Path, tag: &str) -> Desc {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("read index.json"))
            .expect("index.json is JSON");
    let m = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no ref {tag} in {index}"));
    Desc {
        media_type: m["mediaType"].as_str().unwrap_or_default().to_string(),
        digest: m["digest"].as_str().expect("digest").to_string(),
        size: m["size"].as_u64().expect("size"),
    }
}

/// Reads a blob of an OCI layout as JSON.
pub fn oci_layout_json(dir: &Path, digest: &str) -> Value {
    let p = dir
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    serde_json::from_slice(&std::fs::read(&p).expect("read blob")).expect("blob is JSON")
}

// ---------------------------------------------------------------- docker save

/// A `docker save`-format archive written for `docker load`.
pub struct DockerArchive {
    /// The image ID docker will report (`sha256:` + hash of the config).
    pub image_id: String,
    /// Layer diff IDs, bottom first (`RootFS.Layers` in `docker inspect`).
    pub diff_ids: Vec<String>,
}

/// Writes a docker-archive tarball at `path` holding one image tagged
/// `repo_tag`, with one layer per entry list.
pub fn write_docker_archive(path: &Path, repo_tag: &str, layers: &[Vec<Entry>]) -> DockerArchive {
    let stage = path.with_extension("stage");
    std::fs::create_dir_all(&stage).expect("mkdir stage");
    let mut diff_ids = Vec::new();
    let mut members: Vec<(String, PathBuf)> = Vec::new();
    for (i, entries) in layers.iter().enumerate() {
        let p = stage.join(format!("layer{i}.tar"));
        diff_ids.push(write_tar(&p, entries).0);
        members.push((format!("layer{i}.tar"), p));
    }
    let history: Vec<Value> = (0..layers.len())
        .map(|i| json!({"created": "2020-09-13T12:26:40Z", "created_by": format!("berth test layer {i}")}))
        .collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2020-09-13T12:26:40Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }))
    .expect("config json");
    let image_id = sha256(&config);
    let config_name = format!("{}.json", image_id.trim_start_matches("sha256:"));
    let manifest = serde_json::to_vec(&json!([{
        "Config": config_name,
        "RepoTags": [repo_tag],
        "Layers": members.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
    }]))
    .expect("manifest json");

    let out = io::BufWriter::new(File::create(path).expect("create archive"));
    let mut tar = TarWriter::new(out);
    tar.append(&config_name, config.len() as u64, config.as_slice())
        .expect("tar config");
    for (name, p) in &members {
        let len = std::fs::metadata(p).expect("layer size").len();
        tar.append(
            name,
            len,
            BufReader::new(File::open(p).expect("open layer")),
        )
        .expect("tar layer");
    }
    tar.append("manifest.json", manifest.len() as u64, manifest.as_slice())
        .expect("tar manifest");
    tar.finish()
        .expect("finish archive")
        .into_inner()
        .expect("flush archive");
    std::fs::remove_dir_all(&stage).expect("remove stage");
    DockerArchive { image_id, diff_ids }
}
