//! Routing by parsing: `(method, path under /v2/)` becomes one `Endpoint`.
//! Repository names have any number of `/`-separated components, so routes are
//! recognised from the end of the path, and every name, tag, digest and upload
//! id is validated here, before any storage is touched.

use axum::http::Method;

pub use crate::auth::Action;
use crate::error::{ApiError, ErrorCode};
use crate::oci::digest::{Digest, DigestError};
use crate::oci::name::{NameError, Reference, RepoName, UploadId};

/// Every API operation the registry serves under `/v2/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET|HEAD /v2/`: API version check.
    Base,
    /// `GET /v2/_catalog`.
    Catalog,
    /// `GET /v2/<name>/tags/list`.
    TagsList { name: RepoName },
    /// `GET|HEAD /v2/<name>/manifests/<reference>`.
    GetManifest {
        name: RepoName,
        reference: Reference,
        head: bool,
    },
    /// `PUT /v2/<name>/manifests/<reference>`.
    PutManifest {
        name: RepoName,
        reference: Reference,
    },
    /// `DELETE /v2/<name>/manifests/<reference>`.
    DeleteManifest {
        name: RepoName,
        reference: Reference,
    },
    /// `GET|HEAD /v2/<name>/blobs/<digest>`.
    GetBlob {
        name: RepoName,
        digest: Digest,
        head: bool,
    },
    /// `DELETE /v2/<name>/blobs/<digest>`.
    DeleteBlob { name: RepoName, digest: Digest },
    /// `POST /v2/<name>/blobs/uploads/` (session, monolithic or mount by query).
    StartUpload { name: RepoName },
    /// `GET /v2/<name>/blobs/uploads/<id>`.
    GetUpload { name: RepoName, id: UploadId },
    /// `PATCH /v2/<name>/blobs/uploads/<id>`.
    PatchUpload { name: RepoName, id: UploadId },
    /// `PUT /v2/<name>/blobs/uploads/<id>?digest=`.
    PutUpload { name: RepoName, id: UploadId },
    /// `DELETE /v2/<name>/blobs/uploads/<id>`.
    DeleteUpload { name: RepoName, id: UploadId },
    /// `GET /v2/<name>/referrers/<digest>`.
    Referrers { name: RepoName, digest: Digest },
}

impl Endpoint {
    /// The repository and action a caller needs for this endpoint; `None` for
    /// registry-wide endpoints (`/v2/`, `_catalog`). A cross-repository mount
    /// additionally needs pull on its source, checked where the query is read.
    pub fn required_access(&self) -> Option<(&RepoName, Action)> {
        use Endpoint::*;
        match self {
            Base | Catalog => None,
            TagsList { name }
            | GetManifest { name, .. }
            | GetBlob { name, .. }
            | Referrers { name, .. } => Some((name, Action::Pull)),
            PutManifest { name, .. }
            | StartUpload { name }
            | GetUpload { name, .. }
            | PatchUpload { name, .. }
            | PutUpload { name, .. }
            | DeleteUpload { name, .. } => Some((name, Action::Push)),
            DeleteManifest { name, .. } | DeleteBlob { name, .. } => Some((name, Action::Delete)),
        }
    }

    /// The repository name, to rewrite (containerd's `?ns=` maps a name to
    /// its mirror's cache name before authorization); `None` for
    /// registry-wide endpoints.
    pub fn name_mut(&mut self) -> Option<&mut RepoName> {
        use Endpoint::*;
        match self {
            Base | Catalog => None,
            TagsList { name }
            | GetManifest { name, .. }
            | PutManifest { name, .. }
            | DeleteManifest { name, .. }
            | GetBlob { name, .. }
            | DeleteBlob { name, .. }
            | StartUpload { name }
            | GetUpload { name, .. }
            | PatchUpload { name, .. }
            | PutUpload { name, .. }
            | DeleteUpload { name, .. }
            | Referrers { name, .. } => Some(name),
        }
    }

    /// True for endpoints that change stored data (refused in read-only mode).
    pub fn is_write(&self) -> bool {
        matches!(
            self.required_access(),
            Some((_, Action::Push | Action::Delete))
        )
    }

    /// Parses a request. `path` is the raw (still percent-encoded) path after
    /// `/v2/`, so an encoded slash can never split or join name components.
    pub fn parse(method: &Method, path: &str) -> Result<Endpoint, ApiError> {
        let head = method == Method::HEAD;
        if path.is_empty() {
            return only(method, &[Method::GET, Method::HEAD], Endpoint::Base);
        }
        if path == "_catalog" {
            return only(method, &[Method::GET], Endpoint::Catalog);
        }
        let segs: Vec<&str> = path.split('/').collect();
        let n = segs.len();
        let name_of = |k: usize| -> Result<RepoName, ApiError> {
            if k == 0 {
                return Err(not_found());
            }
            segs[..k].join("/").parse().map_err(name_error)
        };
        // Longest suffixes first: ".../blobs/uploads/<id>" before ".../blobs/<digest>".
        if n >= 4 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" {
            let name = name_of(n - 3)?;
            if segs[n - 1].is_empty() {
                return only(method, &[Method::POST], Endpoint::StartUpload { name });
            }
            let id: UploadId = segs[n - 1]
                .parse()
                .map_err(|_| ApiError::new(ErrorCode::BlobUploadUnknown).detail(segs[n - 1]))?;
            return match *method {
                Method::GET | Method::HEAD => Ok(Endpoint::GetUpload { name, id }),
                Method::PATCH => Ok(Endpoint::PatchUpload { name, id }),
                Method::PUT => Ok(Endpoint::PutUpload { name, id }),
                Method::DELETE => Ok(Endpoint::DeleteUpload { name, id }),
                _ => Err(method_not_allowed()),
            };
        }
        if n >= 3 && segs[n - 2] == "blobs" && segs[n - 1] == "uploads" {
            let name = name_of(n - 2)?;
            return only(method, &[Method::POST], Endpoint::StartUpload { name });
        }
        if n >= 3 && segs[n - 2] == "tags" && segs[n - 1] == "list" {
            let name = name_of(n - 2)?;
            return only(
                method,
                &[Method::GET, Method::HEAD],
                Endpoint::TagsList { name },
            );
        }
        if n >= 3 && segs[n - 2] == "manifests" {
            let name = name_of(n - 2)?;
            let reference: Reference = match segs[n - 1].parse() {
                Ok(r) => r,
                // A manifest cannot be stored under a reference that is not
                // a valid tag or digest, so reads and deletes find nothing:
                // 404 as distribution and the conformance suite expect. A
                // PUT is told why its reference is refused.
                Err(e) if *method == Method::PUT => return Err(reference_error(e)),
                Err(_) if is_manifest_method(method) => {
                    return Err(ApiError::new(ErrorCode::ManifestUnknown).detail(segs[n - 1]))
                }
                Err(_) => return Err(method_not_allowed()),
            };
            return match *method {
                Method::GET | Method::HEAD => Ok(Endpoint::GetManifest {
                    name,
                    reference,
                    head,
                }),
                Method::PUT => Ok(Endpoint::PutManifest { name, reference }),
                Method::DELETE => Ok(Endpoint::DeleteManifest { name, reference }),
                _ => Err(method_not_allowed()),
            };
        }
        if n >= 3 && segs[n - 2] == "blobs" {
            let name = name_of(n - 2)?;
            let digest = parse_digest(segs[n - 1])?;
            return match *method {
                Method::GET | Method::HEAD => Ok(Endpoint::GetBlob { name, digest, head }),
                Method::DELETE => Ok(Endpoint::DeleteBlob { name, digest }),
                _ => Err(method_not_allowed()),
            };
        }
        if n >= 3 && segs[n - 2] == "referrers" {
            let name = name_of(n - 2)?;
            let digest = parse_digest(segs[n - 1])?;
            return only(
                method,
                &[Method::GET, Method::HEAD],
                Endpoint::Referrers { name, digest },
            );
        }
        Err(not_found())
    }
}

/// Parses a digest from a path or query, as DIGEST_INVALID on failure.
pub fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    s.parse::<Digest>().map_err(|e| {
        let msg = match e {
            DigestError::Unsupported(_) => "unsupported digest algorithm",
            DigestError::Format(_) => "invalid digest",
        };
        ApiError::new(ErrorCode::DigestInvalid)
            .message(msg)
            .detail(s)
    })
}

fn only(method: &Method, allowed: &[Method], endpoint: Endpoint) -> Result<Endpoint, ApiError> {
    if allowed.contains(method) {
        Ok(endpoint)
    } else {
        Err(method_not_allowed())
    }
}

/// Methods the manifests endpoint serves.
fn is_manifest_method(method: &Method) -> bool {
    [Method::GET, Method::HEAD, Method::PUT, Method::DELETE].contains(method)
}

fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::Unsupported).message("method not allowed on this endpoint")
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::Unsupported)
        .message("unknown API endpoint")
        .status(axum::http::StatusCode::NOT_FOUND)
}

fn name_error(e: NameError) -> ApiError {
    ApiError::new(ErrorCode::NameInvalid).detail(e.to_string())
}

fn reference_error(e: NameError) -> ApiError {
    match e {
        NameError::Digest(d) => ApiError::new(ErrorCode::DigestInvalid).detail(d.to_string()),
        other => ApiError::new(ErrorCode::TagInvalid)
            .message("invalid tag")
            .detail(other.to_string()),
    }
}

#[cfg(test)]
#[path = "endpoint_tests.rs"]
mod tests;
