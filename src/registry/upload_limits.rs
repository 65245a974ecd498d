//! `limits.uploadsessionsperrepository`: how many upload sessions one
//! repository may hold open at once.

use super::{Registry, RegistryError, RegistryResult};
use crate::oci::name::RepoName;
use crate::storage::paths::StoragePath;

impl Registry {
    /// Refuses a new session when the repository already holds the limit's
    /// number of sessions (one listing of `_uploads`; sessions started at
    /// the same moment may pass together, so the bound is approximate by
    /// the uploads in flight). Abandoned sessions count until purged.
    pub(super) async fn check_session_count(&self, name: &RepoName) -> RegistryResult<()> {
        let limit = self.options.upload_sessions_per_repository;
        if limit == 0 {
            return Ok(());
        }
        let open = match self
            .driver
            .list(&StoragePath::UploadsDir { name }.to_key())
            .await
        {
            Ok(entries) => entries.len(),
            Err(e) if e.is_not_found() => 0,
            Err(e) => return Err(e.into()),
        };
        if open >= limit {
            return Err(RegistryError::TooManyUploadSessions { limit });
        }
        Ok(())
    }
}
