//! The upload state an object-store writer keeps in the bucket between
//! requests (see `writer.rs` for the scheme): the state object's content,
//! the names of the driver's own objects next to an upload's data, and the
//! reads and aborts that `writer` and the driver's `delete` share.

use object_store::path::Path;
use object_store::{GetOptions, GetResult, MultipartId};
use serde::{Deserialize, Serialize};

use super::inner::is_marked;
use super::Inner;
use crate::storage::StorageResult;

/// Suffix of the state object next to an upload's data key.
pub(super) const STATE_SUFFIX: &str = "~upload";
/// Suffix of the tail object of an upload with parts.
const TAIL_SUFFIX: &str = "~tail";
/// Suffix (before a random id) of an upload's private multipart object.
const MULTIPART_SUFFIX: &str = "~mp-";
/// One uploaded part as recorded in the state object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Part {
    pub(super) etag: String,
    pub(super) size: u64,
}

/// The state object's content.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct State {
    pub(super) upload_id: String,
    pub(super) parts: Vec<Part>,
    /// Length of the tail object.
    pub(super) tail: u64,
    /// The object the multipart upload completes into, when it is not the
    /// data object itself (uploads since berth 0.1 keep it private).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) object: Option<String>,
}

impl State {
    /// The multipart upload's id.
    pub fn upload_id(&self) -> &MultipartId {
        &self.upload_id
    }

    /// Bytes of the upload: parts plus tail.
    pub fn size(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum::<u64>() + self.tail
    }

    /// Where the multipart upload of the data object `data` lives.
    pub fn object(&self, data: &Path) -> Path {
        match &self.object {
            Some(raw) => Path::parse(raw).unwrap_or_else(|_| Path::from(raw.as_str())),
            None => data.clone(),
        }
    }
}

/// A fresh private object next to the data object `data` for an upload's
/// multipart upload: completing it writes nothing another writer of the
/// upload (another replica) can touch, so what is completed is what is
/// then copied into place.
pub(super) fn private_object(data: &Path) -> Path {
    sibling(
        data,
        &format!("{MULTIPART_SUFFIX}{}", uuid::Uuid::new_v4().simple()),
    )
}

/// The state object of the data object `data`.
pub(super) fn state_path(data: &Path) -> Path {
    sibling(data, STATE_SUFFIX)
}

/// The tail object of the data object `data`.
pub(super) fn tail_path(data: &Path) -> Path {
    sibling(data, TAIL_SUFFIX)
}

fn sibling(data: &Path, suffix: &str) -> Path {
    let raw = format!("{data}{suffix}");
    // `data` is a valid path and the suffix has no `/`, so parsing succeeds;
    // the fallback (percent-encoding) is never taken.
    Path::parse(&raw).unwrap_or_else(|_| Path::from(raw))
}

pub(super) fn is_state_path(p: &Path) -> bool {
    p.as_ref().ends_with(STATE_SUFFIX)
}

/// The data object a state object belongs to.
pub(super) fn data_path_of(state: &Path) -> Option<Path> {
    let raw = state.as_ref().strip_suffix(STATE_SUFFIX)?;
    Path::parse(raw).ok()
}

/// The recorded state of the upload at `data`, if it has parts.
pub(super) async fn read_state(d: &Inner, data: &Path) -> StorageResult<Option<State>> {
    match d
        .store
        .get_opts(&state_path(data), GetOptions::default())
        .await
    {
        Ok(r) => {
            let bytes = r.bytes().await.map_err(|e| d.err(e))?;
            let state = serde_json::from_slice(&bytes)
                .map_err(|e| d.err(format!("upload state of {data}: {e}")))?;
            Ok(Some(state))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(d.err(e)),
    }
}

/// Aborts a multipart upload; one already finished or aborted is fine.
pub(super) async fn abort(d: &Inner, data: &Path, id: &MultipartId) -> StorageResult<()> {
    match d.multipart.abort_multipart(data, id).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(d.err(e)),
    }
}

/// Aborts the multipart upload recorded for `data`, if any (used by
/// `delete` before removing an upload's objects), and returns the object it
/// was to complete into. A failure is logged, not returned, so a damaged
/// record never blocks deleting the upload.
pub(super) async fn abort_recorded(d: &Inner, data: &Path) -> Option<Path> {
    let outcome = match read_state(d, data).await {
        Ok(Some(state)) => {
            let object = state.object(data);
            abort(d, &object, &state.upload_id)
                .await
                .map(|()| Some(object))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    outcome.unwrap_or_else(|e| {
        tracing::warn!("cannot abort the multipart upload of {data}: {e}");
        None
    })
}

/// What an upload key holds.
pub(super) enum Loaded {
    /// A plain object: all the content.
    Object(GetResult),
    /// A multipart upload in progress, recorded by its state.
    Upload(State),
}

/// Reads what is at `path`: the object, unless it is marked as an upload
/// (or missing) and a state object records parts.
pub(super) async fn load(d: &Inner, key: &str, path: &Path) -> StorageResult<Loaded> {
    match d.get(key, path, GetOptions::default()).await {
        Ok(r) if !is_marked(&r.attributes) => Ok(Loaded::Object(r)),
        Ok(r) => Ok(match read_state(d, path).await? {
            Some(state) => Loaded::Upload(state),
            None => Loaded::Object(r),
        }),
        Err(e) if e.is_not_found() => match read_state(d, path).await? {
            Some(state) => Ok(Loaded::Upload(state)),
            None => Err(e),
        },
        Err(e) => Err(e),
    }
}
