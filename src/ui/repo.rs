//! A repository's page (`/ui/r/<name>`): its tags with digest, media type,
//! size (summed over layers), platforms (indexes) and push time, sortable,
//! in pages; a copy button for the pull line; delete buttons. Also routes
//! the other `/ui/r/...` pages (`/-/m/<reference>`, `/-/delete`).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures::{stream, StreamExt};
use serde_json::Value;

use super::html::{self, esc, url_enc};
use super::paging::Pager;
use super::route::{parse_target, rest_of, Target};
use super::view::View;
use crate::http::HttpState;
use crate::oci::manifest as mt;
use crate::oci::name::{Reference, RepoName, Tag};
use crate::registry::RegistryError;

/// Tags per page.
pub const PER_PAGE: usize = 50;
/// Beyond this many tags, sorting by push time (a stat per tag) falls back
/// to sorting by name.
const MAX_SORT_STATS: usize = 5000;

/// `GET /ui/r/...`: the repository, manifest or delete-confirmation page.
pub(super) async fn get_dispatch(State(st): State<Arc<HttpState>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let v = match View::new(&st, &parts).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let target = rest_of(parts.uri.path(), &st.prefix).and_then(|r| parse_target(&r));
    let name = match &target {
        Some(Target::Repo(n) | Target::Manifest(n, _) | Target::Delete(n)) => n.clone(),
        None => return v.message(StatusCode::NOT_FOUND, "Not found", "There is no such page."),
    };
    if !v.can_pull(name.as_str()) {
        return hidden(&v);
    }
    match target {
        Some(Target::Manifest(n, r)) => super::manifest::page(&v, &n, &r).await,
        Some(Target::Delete(n)) => super::delete::confirm_page(&v, &n, None),
        _ => page(&v, &name).await,
    }
}

/// The answer for a repository the caller may not see: the same as for one
/// that does not exist, so names do not leak.
pub(super) fn hidden(v: &View<'_>) -> Response {
    let text = if v.user().is_none() && v.can_login() {
        "No such repository, or you must log in to see it."
    } else {
        "No such repository."
    };
    v.message(StatusCode::NOT_FOUND, "Not found", text)
}

/// True for the notes a delete redirects with (`tag T`, `manifest D`), so
/// a crafted link cannot make the page say anything else.
fn deleted_note_ok(m: &str) -> bool {
    match m.split_once(' ') {
        Some(("tag", t)) => t.parse::<Tag>().is_ok(),
        Some(("manifest", d)) => d.parse::<crate::oci::digest::Digest>().is_ok(),
        _ => false,
    }
}

/// One tag's row data.
struct TagRow {
    tag: Tag,
    pushed: Option<SystemTime>,
    info: Option<Summary>,
}

/// What a manifest's bytes tell at a glance.
pub(super) struct Summary {
    pub digest: String,
    pub media_type: String,
    /// Sum of layer sizes (images).
    pub size: Option<u64>,
    /// `os/arch[/variant]` of an index's children (attestations left out).
    pub platforms: Vec<String>,
    pub artifact_type: Option<String>,
}

/// Reads a manifest's JSON for the summary columns.
pub(super) fn summarize(digest: String, media_type: String, body: &[u8]) -> Summary {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let layers = json.get("layers").and_then(Value::as_array);
    let size = layers.map(|l| l.iter().filter_map(|d| d.get("size")?.as_u64()).sum());
    let platforms = json
        .get("manifests")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|d| platform(d.get("platform")?))
                .collect()
        })
        .unwrap_or_default();
    let artifact_type = json
        .get("artifactType")
        .and_then(Value::as_str)
        .map(str::to_string);
    Summary {
        digest,
        media_type,
        size,
        platforms,
        artifact_type,
    }
}

/// `os/arch[/variant]`, `None` for `unknown/unknown` (build attestations).
pub(super) fn platform(p: &Value) -> Option<String> {
    let os = p.get("os")?.as_str()?;
    let arch = p.get("architecture")?.as_str()?;
    if os == "unknown" && arch == "unknown" {
        return None;
    }
    Some(match p.get("variant").and_then(Value::as_str) {
        Some(var) => format!("{os}/{arch}/{var}"),
        None => format!("{os}/{arch}"),
    })
}

/// A short name for a manifest media type.
pub(super) fn kind_label(media_type: &str) -> &str {
    match media_type {
        mt::OCI_MANIFEST => "OCI image",
        mt::OCI_INDEX => "OCI index",
        mt::DOCKER_MANIFEST => "Docker image",
        mt::DOCKER_MANIFEST_LIST => "Docker manifest list",
        other => other,
    }
}

/// The pull line for `name` at `suffix` (`:tag` or `@digest`), with the
/// host the browser used.
pub(super) fn pull_line(v: &View<'_>, name: &RepoName, suffix: &str) -> String {
    match &v.host {
        Some(h) => format!("docker pull {h}/{name}{suffix}"),
        None => format!("docker pull {name}{suffix}"),
    }
}

/// The pull line with its copy button (shown by the script).
pub(super) fn pull_html(line: &str) -> String {
    format!(
        "<span class=\"pull\"><code>{l}</code><button type=\"button\" class=\"copy\" \
         data-copy=\"{l}\" hidden aria-label=\"Copy the pull command\">Copy</button></span>",
        l = esc(line)
    )
}

async fn page(v: &View<'_>, name: &RepoName) -> Response {
    let reg = &v.st.registry;
    let mut tags = match reg.tag_names(name).await {
        Ok(t) => t,
        Err(RegistryError::NameUnknown) => return hidden(v),
        Err(e) => {
            tracing::error!(repository = %name, error = %e, "web UI: cannot list tags");
            return v.message(
                StatusCode::INTERNAL_SERVER_ERROR,
                name.as_str(),
                "The tags cannot be listed right now (storage error; see the log).",
            );
        }
    };
    let mut sort = v.query("sort").unwrap_or("name").to_string();
    let mut notes = String::new();
    if let Some(msg) = v.query("deleted").filter(|m| deleted_note_ok(m)) {
        notes.push_str(&html::notice("info", &format!("Deleted {msg}.")));
    }
    let by_pushed = sort == "pushed" || sort == "-pushed";
    if by_pushed && tags.len() > MAX_SORT_STATS {
        notes.push_str(&html::notice(
            "info",
            &format!(
                "Sorting {} tags by push time is not offered; sorted by name.",
                tags.len()
            ),
        ));
        sort = "name".into();
    }
    let pager = Pager::new(v.query("page"), PER_PAGE, tags.len());
    let mut rows: Vec<TagRow> = if sort.ends_with("pushed") {
        let times = reg.tags_pushed(name, &tags).await.unwrap_or_default();
        let mut all: Vec<TagRow> = tags
            .drain(..)
            .enumerate()
            .map(|(i, tag)| TagRow {
                tag,
                pushed: times.get(i).copied().flatten(),
                info: None,
            })
            .collect();
        all.sort_by(|a, b| {
            let o = a
                .pushed
                .cmp(&b.pushed)
                .then_with(|| a.tag.as_str().cmp(b.tag.as_str()));
            if sort.starts_with('-') {
                o.reverse()
            } else {
                o
            }
        });
        all.drain(pager.range()).collect()
    } else {
        if sort == "-name" {
            tags.reverse();
        }
        let shown: Vec<Tag> = tags.drain(pager.range()).collect();
        let times = reg.tags_pushed(name, &shown).await.unwrap_or_default();
        shown
            .into_iter()
            .enumerate()
            .map(|(i, tag)| TagRow {
                tag,
                pushed: times.get(i).copied().flatten(),
                info: None,
            })
            .collect()
    };
    let tags: Vec<Tag> = rows.iter().map(|r| r.tag.clone()).collect();
    let infos: Vec<Option<Summary>> = stream::iter(tags)
        .map(|tag| {
            let (reg, name) = (reg.clone(), name.clone());
            async move {
                let m = reg.get_manifest(&name, &Reference::Tag(tag)).await.ok()?;
                Some(summarize(m.digest.to_string(), m.media_type, &m.body))
            }
        })
        .buffered(8)
        .collect()
        .await;
    for (row, info) in rows.iter_mut().zip(infos) {
        row.info = info;
    }
    let body = notes + &render(v, name, &rows, &pager, &sort);
    v.page(StatusCode::OK, name.as_str(), &body)
}

fn render(v: &View<'_>, name: &RepoName, rows: &[TagRow], pager: &Pager, sort: &str) -> String {
    let base = v.base();
    let repo_url = format!("{base}/r/{}", url_enc(name.as_str(), true));
    let can_delete = v.can_delete(name.as_str());
    let sort_link = |key: &str, label: &str| {
        let (next, mark) = match sort {
            s if s == key => (format!("-{key}"), " ▲"),
            s if s.strip_prefix('-') == Some(key) => (key.to_string(), " ▼"),
            _ => (key.to_string(), ""),
        };
        format!(
            "<a href=\"{}?sort={next}\">{label}{mark}</a>",
            esc(&repo_url)
        )
    };
    let mut out = format!(
        "<p class=\"muted\">{}</p><div class=\"table-wrap\"><table id=\"tags\"><thead><tr>\
         <th>{}</th><th>Digest</th><th class=\"opt\">Type</th><th class=\"num\">Size</th>\
         <th class=\"opt\">Platforms</th><th class=\"opt\">{}</th><th>Pull</th>{}</tr></thead><tbody>",
        html::count(pager.total, "tag"),
        sort_link("name", "Tag"),
        sort_link("pushed", "Pushed"),
        if can_delete { "<th><span class=\"offscreen\">Actions</span></th>" } else { "" }
    );
    for r in rows {
        let tag = r.tag.as_str();
        let (digest, kind, size, platforms) = match &r.info {
            Some(i) => (
                format!(
                    "<a class=\"mono nowrap\" href=\"{}/-/m/{}\" title=\"{}\">{}</a>",
                    esc(&repo_url),
                    esc(&i.digest),
                    esc(&i.digest),
                    esc(html::short_digest(&i.digest))
                ),
                format!(
                    "<span title=\"{}\">{}</span>",
                    esc(&i.media_type),
                    esc(i
                        .artifact_type
                        .as_deref()
                        .unwrap_or(kind_label(&i.media_type)))
                ),
                i.size.map_or_else(|| "—".into(), html::size),
                esc(&i.platforms.join(", ")),
            ),
            None => (
                "<span class=\"muted\">unreadable</span>".into(),
                String::new(),
                "—".into(),
                String::new(),
            ),
        };
        let pushed = r.pushed.map_or_else(|| "—".to_string(), html::time);
        let delete = if can_delete {
            format!(
                "<td>{}</td>",
                super::delete::form(
                    v,
                    name,
                    tag,
                    &format!("Delete tag {name}:{tag}? The manifest stays.")
                )
            )
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "<tr><td><a href=\"{}/-/m/{}\">{}</a></td><td>{digest}</td><td class=\"opt\">{kind}</td>\
             <td class=\"num\">{size}</td><td class=\"opt\">{platforms}</td><td class=\"opt\">{}</td>\
             <td>{}</td>{delete}</tr>",
            esc(&repo_url),
            esc(&url_enc(tag, false)),
            esc(tag),
            esc(&pushed),
            pull_html(&pull_line(v, name, &format!(":{tag}")))
        );
    }
    out.push_str("</tbody></table></div>");
    out.push_str(&pager.nav(|n| format!("{repo_url}?sort={}&page={n}", url_enc(sort, false))));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn summaries_of_images_and_indexes() {
        let img = br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"size":7},"layers":[{"size":100},{"size":23}]}"#;
        let s = summarize("d".into(), mt::OCI_MANIFEST.into(), img);
        assert_eq!((s.size, s.platforms.len()), (Some(123), 0));
        let idx = br#"{"manifests":[
            {"platform":{"os":"linux","architecture":"amd64"}},
            {"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
            {"platform":{"os":"unknown","architecture":"unknown"}}]}"#;
        let s = summarize("d".into(), mt::OCI_INDEX.into(), idx);
        assert_eq!(s.platforms, vec!["linux/amd64", "linux/arm64/v8"]);
        assert_eq!(s.size, None);
        assert_eq!(kind_label(mt::DOCKER_MANIFEST_LIST), "Docker manifest list");
        assert!(deleted_note_ok("tag v1.0"));
        assert!(deleted_note_ok(&format!(
            "manifest sha256:{}",
            "a".repeat(64)
        )));
        for bad in [
            "tag",
            "tag a b",
            "your account. Call 555",
            "manifest x",
            "tag <b>",
        ] {
            assert!(!deleted_note_ok(bad), "{bad}");
        }
    }
}
