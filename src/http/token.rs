//! `/auth/token`: berth's own token server (Docker token spec), used when
//! `auth.token.builtin` is on. `docker login` sends Basic credentials here
//! and gets a short-lived bearer token whose scopes the policy trimmed.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};

use super::{form_pairs, HttpResult, HttpState};
use crate::auth::authenticator::AuthFailure;
use crate::auth::policy::ActionSet;
use crate::auth::token::parse_scope;
use crate::auth::{Credentials, ResourceAccess};
use crate::error::{ApiError, ErrorCode};

/// Largest form body accepted on POST.
const MAX_FORM: usize = 64 * 1024;

/// Issues a token (GET with Basic credentials or anonymously; POST with an
/// OAuth2 `grant_type=password` form). 404 unless the built-in issuer is on.
pub(super) async fn token(State(st): State<Arc<HttpState>>, request: Request) -> Response {
    issue(&st, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn issue(st: &HttpState, request: Request) -> HttpResult {
    let Some(builtin) = st.auth.builtin() else {
        return Err(ApiError::new(ErrorCode::Unsupported)
            .message("this registry does not issue tokens")
            .status(StatusCode::NOT_FOUND));
    };
    let (parts, body) = request.into_parts();
    let client = st.client(&parts);
    let mut params: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| form_pairs(q).collect())
        .unwrap_or_default();
    let mut creds = Credentials::from_header(
        parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    if parts.method == Method::POST {
        params.extend(read_form(body).await?);
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        match get("grant_type").as_deref() {
            Some("password") => {
                creds = Credentials::Basic {
                    user: get("username").unwrap_or_default(),
                    password: get("password").unwrap_or_default(),
                }
            }
            other => {
                return Err(ApiError::new(ErrorCode::Unsupported)
                    .message(format!("unsupported grant_type {other:?}; use password"))
                    .status(StatusCode::BAD_REQUEST))
            }
        }
    }
    let user = match &creds {
        Credentials::None => None,
        Credentials::Basic { user, password } => {
            match st
                .auth
                .check_password(&builtin.users, user, password, client)
                .await
            {
                Ok(()) => Some(user.clone()),
                Err(AuthFailure::RateLimited(wait)) => return Err(super::auth::rate_limited(wait)),
                Err(_) => {
                    let mut e = ApiError::new(ErrorCode::Unauthorized)
                        .message("wrong user name or password");
                    if let Ok(v) = HeaderValue::from_str(&st.auth.basic_challenge()) {
                        e = e.header(header::WWW_AUTHENTICATE, v);
                    }
                    return Err(e);
                }
            }
        }
        Credentials::Bearer(_) => {
            return Err(ApiError::new(ErrorCode::Unauthorized)
                .message("the token endpoint takes Basic credentials"))
        }
    };
    let requested = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter_map(|s| parse_scope(&s));
    let access: Vec<ResourceAccess> = requested
        .filter_map(|r| trim(st, user.as_deref(), r))
        .collect();
    let issued = builtin
        .issuer
        .issue(user.as_deref().unwrap_or(""), access)
        .map_err(ApiError::internal)?;
    let body = serde_json::to_string(&issued).map_err(ApiError::internal)?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}

/// Keeps only the actions the policy allows this user; `registry:catalog:*`
/// for authenticated users (the catalog is filtered per user when served).
fn trim(st: &HttpState, user: Option<&str>, r: ResourceAccess) -> Option<ResourceAccess> {
    match r.kind.as_str() {
        "repository" => {
            // Unknown actions are dropped, the known ones next to them kept.
            let wanted = ActionSet::granted(r.actions.iter().map(String::as_str));
            let allowed = st.policy.allowed(user, &r.name);
            let actions: Vec<String> = wanted
                .iter()
                .filter(|a| allowed.contains(*a))
                .map(|a| a.as_str().to_string())
                .collect();
            Some(ResourceAccess { actions, ..r })
        }
        "registry"
            if r.name == "catalog" && (user.is_some() || st.policy.anonymous_has_rules()) =>
        {
            Some(ResourceAccess {
                actions: vec!["*".into()],
                ..r
            })
        }
        _ => None,
    }
}

async fn read_form(body: Body) -> Result<Vec<(String, String)>, ApiError> {
    let bytes = Limited::new(body, MAX_FORM)
        .collect()
        .await
        .map_err(|e| {
            ApiError::new(ErrorCode::Unsupported)
                .message(format!("reading form: {e}"))
                .status(StatusCode::BAD_REQUEST)
        })?
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    Ok(form_pairs(&text).collect())
}
