//! Finds the repositories under `repositories/` one at a time, with `list`
//! only, so a collection never holds more than the directories still to
//! visit (not every key of the tree, as one recursive `walk` would). A
//! directory is a repository when it has a child whose name starts with `_`
//! (`_manifests`, `_layers`, `_uploads`, `_referrers`); name components
//! never start with `_`, and repositories nest (`a` and `a/b` may both be).

use crate::storage::paths::StoragePath;
use crate::storage::StorageDriver;

use super::super::RegistryResult;

/// Depth-first walk over the repository name tree, in lexical order.
pub struct RepoNames {
    root: String,
    /// Directories still to list, the next one last.
    stack: Vec<String>,
}

impl Default for RepoNames {
    fn default() -> Self {
        let root = StoragePath::RepositoriesRoot.to_key();
        RepoNames {
            stack: vec![root.clone()],
            root,
        }
    }
}

/// The children of `dir`; nothing when it does not exist (or is a file).
async fn children(driver: &dyn StorageDriver, dir: &str) -> RegistryResult<Vec<String>> {
    match driver.list(dir).await {
        Ok(mut c) => {
            c.sort();
            Ok(c)
        }
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

impl RepoNames {
    /// The next repository's name, `None` when every one was seen.
    pub async fn next(&mut self, driver: &dyn StorageDriver) -> RegistryResult<Option<String>> {
        while let Some(dir) = self.stack.pop() {
            let kids = children(driver, &dir).await?;
            let mut is_repo = false;
            for kid in kids.into_iter().rev() {
                let leaf = kid.rsplit('/').next().unwrap_or_default();
                if leaf.starts_with('_') {
                    is_repo = true;
                } else if !leaf.is_empty() && !leaf.starts_with('.') {
                    self.stack.push(kid);
                }
            }
            if !is_repo {
                continue;
            }
            if let Some(name) = dir
                .strip_prefix(self.root.as_str())
                .and_then(|r| r.strip_prefix('/'))
            {
                return Ok(Some(name.to_string()));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryDriver;
    use bytes::Bytes;

    #[tokio::test]
    async fn finds_nested_repositories_in_order() {
        let driver = MemoryDriver::new();
        let r = StoragePath::RepositoriesRoot.to_key();
        for k in [
            "b/_layers/sha256/x/link",
            "a/_manifests/revisions/sha256/x/link",
            "a/c/_uploads/u/data",
            "a/c/d/_manifests/tags/t/current/link",
            "e/f/notarepo",
        ] {
            driver
                .put_content(&format!("{r}/{k}"), Bytes::from_static(b"x"))
                .await
                .expect("put");
        }
        let mut names = RepoNames::default();
        let mut seen = Vec::new();
        while let Some(n) = names.next(&driver).await.expect("list") {
            seen.push(n);
        }
        assert_eq!(seen, vec!["a", "a/c", "a/c/d", "b"]);
        let empty = MemoryDriver::new();
        assert_eq!(RepoNames::default().next(&empty).await.expect("list"), None);
    }
}
