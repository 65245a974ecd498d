//! Listings: `_catalog`, `tags/list`, `referrers`, and the old `/v1/search`
//! that `docker search` uses.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

use super::endpoint::Endpoint;
use super::{form_pairs, HttpResult, HttpState, Req};
use crate::auth::authenticator::Identity;
use crate::error::{ApiError, ErrorCode};
use crate::oci::digest::Digest;
use crate::oci::manifest::{referrers_index, OCI_INDEX};
use crate::oci::name::RepoName;
use crate::registry::Page;

/// Default page size of `_catalog` when `n` is absent (distribution's).
const DEFAULT_CATALOG_PAGE: usize = 100;

/// Reads `n`: absent → `default`; not a number, negative or above the
/// configured maximum → 400 PAGINATION_NUMBER_INVALID.
fn page_size(req: Req<'_>, default: Option<usize>) -> Result<Option<usize>, ApiError> {
    let max = req.st.config.catalog.maxentries;
    match req.query("n") {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n <= max => Ok(Some(n)),
            _ => Err(ApiError::new(ErrorCode::PaginationNumberInvalid)
                .detail(format!("n must be an integer from 0 to {max}, got {v:?}"))),
        },
    }
}

/// Adds `Link: <...?last=X&n=N>; rel="next"` when more entries remain.
fn paged_response(
    path: &str,
    key: &str,
    extra: serde_json::Value,
    page: Page<String>,
    n: Option<usize>,
) -> HttpResult {
    let mut body = extra;
    let link = match (page.more, page.items.last(), n) {
        (true, Some(last), Some(n)) => Some(format!(
            "<{path}?last={}&n={n}>; rel=\"next\"",
            url_encode(last)
        )),
        _ => None,
    };
    body[key] = serde_json::json!(page.items);
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if let Some(link) = link {
        if let Ok(v) = link.parse() {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(resp)
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /v2/_catalog?n=&last=`: repository names in lexical order.
pub(super) async fn catalog(req: Req<'_>) -> HttpResult {
    let n = page_size(
        req,
        Some(DEFAULT_CATALOG_PAGE.min(req.st.config.catalog.maxentries)),
    )?;
    let last = req.query("last");
    let st = req.st;
    let page = if st.policy.is_open() {
        st.registry.catalog(n, last.as_deref(), |_| true).await?
    } else {
        st.registry
            .catalog(n, last.as_deref(), |r| {
                super::auth::can_list(st, req.identity, r)
            })
            .await?
    };
    paged_response(
        &format!("{}/v2/_catalog", st.prefix),
        "repositories",
        serde_json::json!({}),
        page,
        n,
    )
}

/// `GET /v2/<name>/tags/list?n=&last=`: all tags when `n` is absent (as
/// registry:2 does; clients rely on it), else one page with `Link`.
pub(super) async fn tags(req: Req<'_>, name: &RepoName) -> HttpResult {
    let n = page_size(req, None)?;
    let last = req.query("last");
    let page = req.st.registry.list_tags(name, n, last.as_deref()).await?;
    let path = format!("{}/v2/{name}/tags/list", req.st.prefix);
    paged_response(
        &path,
        "tags",
        serde_json::json!({ "name": name.as_str() }),
        page,
        n,
    )
}

/// `GET /v2/<name>/referrers/<digest>?artifactType=`: an OCI index of the
/// manifests whose subject is `digest` (empty for unknown digests).
pub(super) async fn referrers(req: Req<'_>, name: &RepoName, digest: &Digest) -> HttpResult {
    let filter = req.query("artifactType").filter(|s| !s.is_empty());
    let list = req
        .st
        .registry
        .referrers(name, digest, filter.as_deref())
        .await?;
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, OCI_INDEX)],
        referrers_index(&list).to_string(),
    )
        .into_response();
    if filter.is_some() {
        resp.headers_mut().insert(
            HeaderName::from_static("oci-filters-applied"),
            axum::http::HeaderValue::from_static("artifactType"),
        );
    }
    Ok(resp)
}

/// `GET /v1/search?q=&n=&page=`: the old registry search, so that
/// `docker search HOST/term` works. Matches names containing the term.
/// It reveals repository names as `_catalog` does, so it requires exactly
/// what `_catalog` requires (same 401 challenge, checked before anything is
/// listed) and shows only what `_catalog` would show the caller.
pub(super) async fn search(
    State(st): State<Arc<HttpState>>,
    request: axum::extract::Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let mut identity = Identity::Anonymous;
    let mut resp = search_inner(&st, &parts, &mut identity)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    if let Some(name) = identity.name() {
        resp.extensions_mut()
            .insert(super::middleware::CallerName(name.to_string()));
    }
    resp
}

async fn search_inner(
    st: &HttpState,
    parts: &axum::http::request::Parts,
    identity: &mut Identity,
) -> HttpResult {
    let uri = &parts.uri;
    let anonymous = Identity::Anonymous;
    let pre = Req {
        st,
        uri,
        headers: &parts.headers,
        identity: &anonymous,
        client: st.client(parts),
        peer: super::peer_socket(&parts.extensions),
    };
    *identity = super::auth::identify(pre, st.client(parts)).await?;
    let req = Req { identity, ..pre };
    super::auth::authorize(req, &Endpoint::Catalog)?;
    let q = uri.query().unwrap_or("");
    let get = |k: &str| form_pairs(q).find(|(key, _)| key == k).map(|(_, v)| v);
    let query = get("q").unwrap_or_default();
    let page_size = get("n")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(25)
        .min(100);
    let page = get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(1);
    let term = query.to_lowercase();
    let skip = (page - 1).saturating_mul(page_size);
    let open = st.policy.is_open();
    let (total, names) = st
        .registry
        .search_repositories(&term, skip, page_size, |n| {
            open || super::auth::can_list(st, identity, n)
        })
        .await?;
    let results: Vec<serde_json::Value> = names
        .iter()
        .map(|n| {
            serde_json::json!({
                "name": n,
                "description": "",
                "star_count": 0,
                "is_official": false,
                "is_automated": false,
                "is_trusted": false,
            })
        })
        .collect();
    let body = serde_json::json!({
        "num_results": total,
        "num_pages": total.div_ceil(page_size),
        "page_size": page_size,
        "page": page,
        "query": query,
        "results": results,
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response())
}
