//! Authentication and authorization at the HTTP edge: who is calling, and
//! whether the endpoint's action on its repository is allowed.

use std::net::IpAddr;

use axum::http::{header, HeaderValue, StatusCode};

use super::endpoint::Endpoint;
use super::{HttpState, Req};
use crate::auth::authenticator::{AuthFailure, Identity};
use crate::auth::policy::ActionSet;
use crate::auth::{Action, Credentials};
use crate::error::{ApiError, ErrorCode};

/// Identifies the caller from the `Authorization` header. Wrong credentials
/// are a 401 with the challenge (429 when throttled); none is anonymous.
pub(super) async fn identify(req: Req<'_>, client: Option<IpAddr>) -> Result<Identity, ApiError> {
    let creds = Credentials::from_header(req.header("authorization"));
    match req.st.auth.authenticate(&creds, client).await {
        Ok(id) => Ok(id),
        Err(AuthFailure::RateLimited(wait)) => Err(rate_limited(wait)),
        Err(AuthFailure::InvalidToken(why)) => {
            tracing::info!(reason = why, "bearer token refused");
            Err(unauthorized(req, None, Some("invalid_token")))
        }
        Err(AuthFailure::BadCredentials) => Err(unauthorized(req, None, None)),
    }
}

/// 429 with `Retry-After` for throttled logins.
pub(super) fn rate_limited(wait: std::time::Duration) -> ApiError {
    let secs = wait.as_secs().max(1);
    let mut e = ApiError::new(ErrorCode::TooManyRequests)
        .message("too many failed or concurrent logins from this address; retry later");
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        e = e.header(header::RETRY_AFTER, v);
    }
    e
}

/// 401 UNAUTHORIZED with the scheme's challenge.
pub(super) fn unauthorized(req: Req<'_>, scope: Option<&str>, error: Option<&str>) -> ApiError {
    let realm = req.location("/auth/token");
    let mut e = ApiError::new(ErrorCode::Unauthorized);
    if let Some(access) = scope.and_then(crate::auth::token::parse_scope) {
        // distribution's detail: the access records the request needed.
        let records: Vec<_> = access
            .actions
            .iter()
            .map(|a| serde_json::json!({ "Type": access.kind, "Name": access.name, "Action": a }))
            .collect();
        e = e.detail(records);
    }
    if let Some(ch) = req.st.auth.challenge(&realm, scope, error) {
        if let Ok(v) = HeaderValue::from_str(&ch) {
            e = e.header(header::WWW_AUTHENTICATE, v);
        }
    }
    e
}

/// What the caller may do on `repo`.
pub(crate) fn permissions(st: &HttpState, id: &Identity, repo: &str) -> ActionSet {
    match id {
        Identity::Anonymous => st.policy.allowed(None, repo),
        Identity::User(u) => st.policy.allowed(Some(u), repo),
        Identity::Token(claims) => claims
            .access
            .iter()
            .filter(|a| a.kind == "repository" && a.name == repo)
            .fold(ActionSet::NONE, |set, a| {
                set.union(ActionSet::granted(a.actions.iter().map(String::as_str)))
            }),
    }
}

/// True when the caller may see `repo` in listings (`_catalog`, search).
pub(crate) fn can_list(st: &HttpState, id: &Identity, repo: &str) -> bool {
    match id {
        // berth's own tokens: the policy of the token's subject.
        Identity::Token(c) if st.auth.builtin().is_some() => {
            let user = (!c.subject.is_empty()).then_some(c.subject.as_str());
            st.policy.allowed(user, repo).contains(Action::Pull)
        }
        // External tokens: `_catalog` and search are reached only with a
        // `registry:catalog` grant (`authorize`), which shows every name,
        // as registry:2's catalog does.
        Identity::Token(_) => true,
        other => permissions(st, other, repo).contains(Action::Pull),
    }
}

/// The scope string a challenge names for an action on a repository.
fn scope_for(repo: &str, action: Action) -> String {
    let actions = match action {
        Action::Pull => "pull",
        Action::Push => "pull,push",
        Action::Delete => "delete",
    };
    format!("repository:{repo}:{actions}")
}

/// Allows or refuses the endpoint for the caller: 401 with a challenge when
/// credentials (or a token with more scope) could help, 403 DENIED when a
/// signed-in user lacks the permission.
pub(super) fn authorize(req: Req<'_>, endpoint: &Endpoint) -> Result<(), ApiError> {
    let st = req.st;
    if st.policy.is_open() {
        return Ok(());
    }
    let id = req.identity;
    match endpoint.required_access() {
        None => match (endpoint, id) {
            (Endpoint::Base, Identity::Anonymous) if st.auth.enabled() => {
                Err(unauthorized(req, None, None))
            }
            (Endpoint::Catalog, Identity::Anonymous)
                if st.auth.enabled() && !st.policy.anonymous_has_rules() =>
            {
                Err(unauthorized(req, Some("registry:catalog:*"), None))
            }
            (Endpoint::Catalog, Identity::Token(c)) if st.auth.builtin().is_none() => {
                let granted = c
                    .access
                    .iter()
                    .any(|a| a.kind == "registry" && a.name == "catalog");
                if granted {
                    Ok(())
                } else {
                    Err(unauthorized(
                        req,
                        Some("registry:catalog:*"),
                        Some("insufficient_scope"),
                    ))
                }
            }
            _ => Ok(()),
        },
        Some((name, action)) => {
            if permissions(st, id, name.as_str()).contains(action) {
                return Ok(());
            }
            let scope = scope_for(name.as_str(), action);
            match id {
                Identity::Anonymous => Err(unauthorized(req, Some(&scope), None)),
                Identity::Token(_) => Err(unauthorized(req, Some(&scope), Some("insufficient_scope"))),
                Identity::User(_) => Err(ApiError::new(ErrorCode::Denied)
                    .detail(serde_json::json!({ "repository": name.as_str(), "action": action.as_str() }))
                    .status(StatusCode::FORBIDDEN)),
            }
        }
    }
}
