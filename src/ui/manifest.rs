//! A manifest's page (`/ui/r/<name>/-/m/<reference>`): for an image, the
//! config summary (created, platform, entrypoint, labels, history) and
//! layers; for an index, its platforms with links to each child; the
//! annotations; the subject; and its referrers grouped by artifact type.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::html::{self, esc, url_enc};
use super::repo::{hidden, kind_label, platform, pull_html, pull_line};
use super::view::View;
use crate::oci::digest::Digest;
use crate::oci::name::{Reference, RepoName};
use crate::registry::RegistryError;

/// Largest image config read for the summary.
const MAX_CONFIG: u64 = 1024 * 1024;
/// History entries shown.
const MAX_HISTORY: usize = 200;

pub(super) async fn page(v: &View<'_>, name: &RepoName, reference: &Reference) -> Response {
    let reg = &v.st.registry;
    let m = match reg.get_manifest(name, reference).await {
        Ok(m) => m,
        Err(RegistryError::ManifestUnknown | RegistryError::NameUnknown) => {
            return if reg.repository_exists(name).await.unwrap_or(false) {
                v.message(
                    StatusCode::NOT_FOUND,
                    "Not found",
                    "No such tag or manifest in this repository.",
                )
            } else {
                hidden(v)
            };
        }
        Err(e) => {
            tracing::error!(repository = %name, error = %e, "web UI: cannot read a manifest");
            return v.message(
                StatusCode::INTERNAL_SERVER_ERROR,
                name.as_str(),
                "The manifest cannot be read right now (storage error; see the log).",
            );
        }
    };
    let json: Value = serde_json::from_slice(&m.body).unwrap_or(Value::Null);
    let digest = m.digest.to_string();
    let repo_url = format!("{}/r/{}", v.base(), url_enc(name.as_str(), true));
    let title = match reference {
        Reference::Tag(t) => format!("{name}:{t}"),
        Reference::Digest(d) => format!("{name}@{}", html::short_digest(&d.to_string())),
    };
    let mut facts = vec![
        (
            "Repository",
            format!("<a href=\"{}\">{}</a>", esc(&repo_url), esc(name.as_str())),
        ),
        (
            "Digest",
            format!("<code id=\"digest\">{}</code>", esc(&digest)),
        ),
        (
            "Media type",
            format!(
                "{} <span class=\"muted\">({})</span>",
                esc(kind_label(&m.media_type)),
                esc(&m.media_type)
            ),
        ),
        ("Manifest size", html::size(m.body.len() as u64)),
    ];
    if let Some(a) = json.get("artifactType").and_then(Value::as_str) {
        facts.push(("Artifact type", format!("<code>{}</code>", esc(a))));
    }
    if let Some(s) = json.pointer("/subject/digest").and_then(Value::as_str) {
        facts.push(("Subject", manifest_link(&repo_url, s)));
    }
    let by_digest = pull_line(v, name, &format!("@{digest}"));
    facts.push(("Pull", pull_html(&by_digest)));
    let mut body = html::facts(&facts);
    if v.can_delete(name.as_str()) {
        let text = format!("Delete manifest {digest} and every tag pointing at it from {name}?");
        let _ = write!(
            body,
            "<p>{}</p>",
            super::delete::form(v, name, &digest, &text)
        );
    }
    if let Some(children) = json.get("manifests").and_then(Value::as_array) {
        body.push_str(&index_section(&repo_url, children));
    } else {
        body.push_str(&image_section(v, name, &json).await);
    }
    body.push_str(&annotations(json.get("annotations")));
    body.push_str(&referrers_section(v, name, &m.digest, &repo_url).await);
    v.page(StatusCode::OK, &title, &body)
}

fn manifest_link(repo_url: &str, digest: &str) -> String {
    format!(
        "<a class=\"mono\" href=\"{}/-/m/{}\">{}</a>",
        esc(repo_url),
        esc(&url_enc(digest, false)),
        esc(digest)
    )
}

fn index_section(repo_url: &str, children: &[Value]) -> String {
    let mut out = String::from(
        "<h2>Platforms</h2><div class=\"table-wrap\"><table id=\"platforms\"><thead><tr><th>Platform</th>\
         <th>Manifest</th><th class=\"opt\">Media type</th><th class=\"num\">Size</th></tr></thead><tbody>",
    );
    for c in children {
        let d = c.get("digest").and_then(Value::as_str).unwrap_or("");
        let plat = c.get("platform").map_or_else(
            || {
                c.get("artifactType")
                    .and_then(Value::as_str)
                    .unwrap_or("—")
                    .to_string()
            },
            |p| platform(p).unwrap_or_else(|| "attestation (unknown/unknown)".into()),
        );
        let mt = c.get("mediaType").and_then(Value::as_str).unwrap_or("");
        let size = c
            .get("size")
            .and_then(Value::as_u64)
            .map_or_else(|| "—".into(), html::size);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"opt\">{}</td><td class=\"num\">{size}</td></tr>",
            esc(&plat),
            manifest_link(repo_url, d),
            esc(kind_label(mt))
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

async fn image_section(v: &View<'_>, name: &RepoName, json: &Value) -> String {
    let mut out = String::new();
    if let Some(cfg) = json.get("config") {
        out.push_str(&config_summary(v, name, cfg).await);
    }
    let Some(layers) = json.get("layers").and_then(Value::as_array) else {
        return out;
    };
    let total: u64 = layers.iter().filter_map(|l| l.get("size")?.as_u64()).sum();
    let _ = write!(
        out,
        "<h2>Layers</h2><p class=\"muted\">{}, {} in all</p><div class=\"table-wrap\">\
         <table id=\"layers\"><thead><tr><th>#</th><th>Digest</th><th class=\"opt\">Media type</th>\
         <th class=\"num\">Size</th></tr></thead><tbody>",
        html::count(layers.len(), "layer"),
        html::size(total)
    );
    for (i, l) in layers.iter().enumerate() {
        let d = l.get("digest").and_then(Value::as_str).unwrap_or("");
        let _ = write!(
            out,
            "<tr><td class=\"num\">{}</td><td><code title=\"{}\">{}</code></td><td class=\"opt\">{}</td>\
             <td class=\"num\">{}</td></tr>",
            i + 1,
            esc(d),
            esc(html::short_digest(d)),
            esc(l.get("mediaType").and_then(Value::as_str).unwrap_or("")),
            l.get("size").and_then(Value::as_u64).map_or_else(|| "—".into(), html::size)
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

/// The image config's summary, when it is a small JSON blob in the repository.
async fn config_summary(v: &View<'_>, name: &RepoName, cfg: &Value) -> String {
    let media = cfg.get("mediaType").and_then(Value::as_str).unwrap_or("");
    let Some(digest) = cfg
        .get("digest")
        .and_then(Value::as_str)
        .and_then(|d| d.parse::<Digest>().ok())
    else {
        return String::new();
    };
    let blob = match v
        .st
        .registry
        .read_small_blob(name, &digest, MAX_CONFIG)
        .await
    {
        Ok(Some(b)) => b,
        _ => return String::new(),
    };
    let Ok(c) = serde_json::from_slice::<Value>(&blob) else {
        return format!(
            "<h2>Config</h2><p class=\"muted\">{} (not JSON)</p>",
            esc(media)
        );
    };
    let s = |p: &str| c.pointer(p).and_then(Value::as_str);
    let list = |p: &str| {
        c.pointer(p).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
    };
    let mut rows: Vec<(&str, String)> = Vec::new();
    if let Some(t) = s("/created") {
        rows.push(("Created", esc(&html::config_time(t))));
    }
    if let (Some(os), Some(arch)) = (s("/os"), s("/architecture")) {
        let var = s("/variant").map(|x| format!("/{x}")).unwrap_or_default();
        rows.push(("Platform", esc(&format!("{os}/{arch}{var}"))));
    }
    for (label, p) in [
        ("Entrypoint", "/config/Entrypoint"),
        ("Command", "/config/Cmd"),
    ] {
        if let Some(e) = list(p).filter(|e| !e.is_empty()) {
            rows.push((label, format!("<code>{}</code>", esc(&e))));
        }
    }
    if let Some(w) = s("/config/WorkingDir").filter(|w| !w.is_empty()) {
        rows.push(("Working directory", format!("<code>{}</code>", esc(w))));
    }
    if let Some(u) = s("/config/User").filter(|u| !u.is_empty()) {
        rows.push(("User", esc(u)));
    }
    let mut out = String::from("<h2>Config</h2>");
    if rows.is_empty() {
        let _ = write!(out, "<p class=\"muted\">{}</p>", esc(media));
    } else {
        out.push_str(&html::facts(&rows));
    }
    if let Some(labels) = c.pointer("/config/Labels").and_then(Value::as_object) {
        if !labels.is_empty() {
            let map: BTreeMap<&str, &str> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
                .collect();
            out.push_str("<h2>Labels</h2>");
            out.push_str(&kv_table("labels", &map));
        }
    }
    if let Some(h) = c
        .get("history")
        .and_then(Value::as_array)
        .filter(|h| !h.is_empty())
    {
        out.push_str(
            "<h2>History</h2><div class=\"table-wrap\"><table id=\"history\"><thead><tr><th class=\"opt\">Created</th>\
             <th>Created by</th><th class=\"opt\">Layer</th></tr></thead><tbody>",
        );
        for e in h.iter().take(MAX_HISTORY) {
            let by = e.get("created_by").and_then(Value::as_str).unwrap_or("");
            let when = e
                .get("created")
                .and_then(Value::as_str)
                .map(html::config_time)
                .unwrap_or_default();
            let empty = e
                .get("empty_layer")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let _ = write!(
                out,
                "<tr><td class=\"opt\">{}</td><td><code>{}</code></td><td class=\"opt\">{}</td></tr>",
                esc(&when),
                esc(by),
                if empty { "no" } else { "yes" }
            );
        }
        out.push_str("</tbody></table></div>");
    }
    out
}

fn kv_table(id: &str, map: &BTreeMap<&str, &str>) -> String {
    let mut out = format!(
        "<div class=\"table-wrap\"><table id=\"{id}\"><thead><tr><th>Key</th><th>Value</th></tr></thead><tbody>"
    );
    for (k, val) in map {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td></tr>",
            esc(k),
            esc(val)
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

fn annotations(a: Option<&Value>) -> String {
    let Some(obj) = a.and_then(Value::as_object).filter(|o| !o.is_empty()) else {
        return String::new();
    };
    let map: BTreeMap<&str, &str> = obj
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
        .collect();
    format!("<h2>Annotations</h2>{}", kv_table("annotations", &map))
}

async fn referrers_section(
    v: &View<'_>,
    name: &RepoName,
    digest: &Digest,
    repo_url: &str,
) -> String {
    let list = match v.st.registry.referrers(name, digest, None).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(repository = %name, error = %e, "web UI: cannot list referrers");
            return html::notice("error", "The referrers cannot be listed right now.");
        }
    };
    let mut out = String::from("<h2>Referrers</h2>");
    if list.is_empty() {
        out.push_str("<p class=\"muted\" id=\"no-referrers\">No signatures, SBOMs or attestations refer to this manifest.</p>");
        return out;
    }
    let mut groups: BTreeMap<String, Vec<&crate::oci::manifest::Descriptor>> = BTreeMap::new();
    for d in &list {
        let kind = d
            .artifact_type
            .clone()
            .unwrap_or_else(|| "(no artifact type)".into());
        groups.entry(kind).or_default().push(d);
    }
    out.push_str("<div class=\"table-wrap\"><table id=\"referrers\"><thead><tr><th>Artifact type</th>\
                  <th>Manifest</th><th class=\"num\">Size</th><th class=\"opt\">Created</th></tr></thead><tbody>");
    for (kind, ds) in &groups {
        for d in ds {
            let created = d
                .annotations
                .as_ref()
                .and_then(|a| a.get("org.opencontainers.image.created"))
                .map(|t| html::config_time(t))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td class=\"opt\">{}</td></tr>",
                esc(kind),
                manifest_link(repo_url, &d.digest.to_string()),
                html::size(d.size),
                esc(&created)
            );
        }
    }
    out.push_str("</tbody></table></div>");
    out
}
