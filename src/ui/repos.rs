//! The repository list (`/ui/`): the caller's repositories, a substring
//! search (as `docker search` matches), pages of [`PER_PAGE`], and the tag
//! count and last push of the repositories on the page only.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures::{stream, StreamExt};

use super::html::{self, esc, url_enc};
use super::paging::Pager;
use super::view::View;
use crate::http::HttpState;
use crate::oci::name::RepoName;

/// Repositories per page.
pub const PER_PAGE: usize = 50;
/// Tags stat-ed per repository for its last push time.
const MAX_TAG_STATS: usize = 64;
/// Repositories summarized at once.
const SUMMARY_CONCURRENCY: usize = 8;

/// `GET /ui/?q=&page=`.
pub(super) async fn list(State(st): State<Arc<HttpState>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let v = match View::new(&st, &parts).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let q = v.query("q").unwrap_or("").trim().to_string();
    let term = q.to_lowercase();
    let skip = Pager::skip_for(v.query("page"), PER_PAGE);
    let found = st
        .registry
        .search_repositories(&term, skip, PER_PAGE, |n| v.can_list(n))
        .await;
    let (total, names) = match found {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "web UI: cannot list repositories");
            return v.message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Repositories",
                "The repositories cannot be listed right now (storage error; see the log).",
            );
        }
    };
    let pager = Pager::new(v.query("page"), PER_PAGE, total);
    // A page past the end: show the last one.
    let names = if names.is_empty() && total > 0 && skip >= total {
        match st
            .registry
            .search_repositories(&term, pager.range().start, PER_PAGE, |n| v.can_list(n))
            .await
        {
            Ok((_, n)) => n,
            Err(_) => names,
        }
    } else {
        names
    };
    let rows = summaries(&v, &names).await;
    let base = v.base();
    let mut body = format!(
        "<form class=\"search\" method=\"get\" action=\"{b}/\" role=\"search\">\
         <label for=\"q\" class=\"offscreen\">Search repositories</label>\
         <input type=\"search\" id=\"q\" name=\"q\" value=\"{q}\" placeholder=\"Search repositories\">\
         <button type=\"submit\">Search</button></form>",
        b = esc(&base),
        q = esc(&q)
    );
    if names.is_empty() {
        let none = if q.is_empty() {
            match v.user() {
                None if v.can_login() => {
                    "No repositories to show. Log in to see the ones you may pull.".to_string()
                }
                _ => "No repositories to show.".to_string(),
            }
        } else {
            format!("No repository name contains “{q}”.")
        };
        body.push_str(&html::notice("info", &none));
    } else {
        body.push_str(
            "<div class=\"table-wrap\"><table id=\"repositories\"><thead><tr><th>Repository</th>\
             <th class=\"num\">Tags</th><th class=\"opt\">Last push</th></tr></thead><tbody>",
        );
        body.push_str(&rows);
        body.push_str("</tbody></table></div>");
    }
    body.push_str(&pager.nav(|n| format!("{base}/?q={}&page={n}", url_enc(&q, false))));
    v.page(StatusCode::OK, "Repositories", &body)
}

/// Table rows for `names`, with tag counts and last pushes looked up a
/// few at a time.
async fn summaries(v: &View<'_>, names: &[String]) -> String {
    let sums: Vec<_> = stream::iter(names.to_vec())
        .map(|n| {
            let reg = v.st.registry.clone();
            async move {
                match n.parse::<RepoName>() {
                    Ok(name) => reg.repo_summary(&name, MAX_TAG_STATS).await.ok(),
                    Err(_) => None,
                }
            }
        })
        .buffered(SUMMARY_CONCURRENCY)
        .collect()
        .await;
    let base = v.base();
    let mut out = String::new();
    for (name, sum) in names.iter().zip(sums) {
        let (tags, pushed) = match sum {
            Some(s) => {
                let when = s.last_push.map_or_else(|| "—".to_string(), html::time);
                let when = if s.partial {
                    format!("{when} or later")
                } else {
                    when
                };
                (s.tags.to_string(), when)
            }
            None => ("?".into(), "—".into()),
        };
        let _ = write!(
            out,
            "<tr><td><a href=\"{}/r/{}\">{}</a></td><td class=\"num\">{tags}</td>\
             <td class=\"opt\">{}</td></tr>",
            esc(&base),
            esc(&url_enc(name, true)),
            esc(name),
            esc(&pushed)
        );
    }
    out
}
