//! In-memory driver: the reference behaviour every other driver is tested
//! against, and a zero-setup backend for tests and throwaway registries.
//!
//! Objects live in one ordered map from key to bytes; directories are implied
//! by key prefixes, as on an object store. Like a filesystem, an object and a
//! directory cannot share a key, and an object cannot sit under another object.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    validate_path, BoxReader, DeferredWrite, FileInfo, FileWriter, StorageDriver, StorageError,
    StorageResult,
};

const DRIVER: &str = "inmemory";

/// One stored object.
#[derive(Debug, Clone)]
struct Object {
    data: Bytes,
    modified: SystemTime,
}

type Map = BTreeMap<String, Object>;

/// Keeps everything in process memory, so tests and demos need no disk and
/// other drivers have a simple model to be compared with.
#[derive(Debug, Clone, Default)]
pub struct MemoryDriver {
    objects: Arc<RwLock<Map>>,
}

impl MemoryDriver {
    /// An empty store; cloning shares the same contents.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Map> {
        // No code panics while holding the lock, so a poisoned lock still
        // guards a consistent map.
        self.objects.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Map> {
        write_lock(&self.objects)
    }
}

fn write_lock(objects: &RwLock<Map>) -> RwLockWriteGuard<'_, Map> {
    objects.write().unwrap_or_else(|e| e.into_inner())
}

/// `path` followed by `/`: every key under the directory `path` starts with it.
fn dir_prefix(path: &str) -> String {
    format!("{path}/")
}

/// True when some stored key lives under the directory `path`.
fn is_dir(map: &Map, path: &str) -> bool {
    let prefix = dir_prefix(path);
    map.range(prefix.clone()..)
        .next()
        .is_some_and(|(k, _)| k.starts_with(&prefix))
}

/// Stores `data` at `path` unless that would put an object where a directory
/// is, or under an existing object (what a filesystem would refuse too).
fn store(map: &mut Map, path: &str, data: Bytes) -> StorageResult<()> {
    if is_dir(map, path) {
        return Err(StorageError::backend(
            DRIVER,
            format!("{path} is a directory"),
        ));
    }
    for (i, _) in path.match_indices('/').skip(1) {
        if map.contains_key(&path[..i]) {
            return Err(StorageError::backend(
                DRIVER,
                format!("{} is an object, not a directory", &path[..i]),
            ));
        }
    }
    map.insert(
        path.to_string(),
        Object {
            data,
            modified: SystemTime::now(),
        },
    );
    Ok(())
}

#[async_trait]
impl StorageDriver for MemoryDriver {
    fn name(&self) -> &'static str {
        DRIVER
    }

    async fn get_content(&self, path: &str) -> StorageResult<Bytes> {
        validate_path(path)?;
        self.read()
            .get(path)
            .map(|o| o.data.clone())
            .ok_or_else(|| StorageError::NotFound(path.to_string()))
    }

    async fn put_content(&self, path: &str, content: Bytes) -> StorageResult<()> {
        validate_path(path)?;
        store(&mut self.write(), path, content)
    }

    async fn reader(&self, path: &str, offset: u64) -> StorageResult<BoxReader> {
        let data = self.get_content(path).await?;
        let start = usize::try_from(offset)
            .ok()
            .filter(|&o| o <= data.len())
            .ok_or_else(|| StorageError::InvalidOffset {
                path: path.to_string(),
                offset,
            })?;
        Ok(Box::pin(Cursor::new(data.slice(start..))))
    }

    async fn writer(&self, path: &str, append: bool) -> StorageResult<Box<dyn FileWriter>> {
        validate_path(path)?;
        let buf = if append {
            self.read()
                .get(path)
                .map(|o| o.data.to_vec())
                .ok_or_else(|| StorageError::NotFound(path.to_string()))?
        } else {
            Vec::new()
        };
        Ok(Box::new(MemoryWriter {
            objects: Arc::clone(&self.objects),
            path: path.to_string(),
            append,
            buf,
        }))
    }

    async fn stat(&self, path: &str) -> StorageResult<FileInfo> {
        validate_path(path)?;
        let map = self.read();
        if let Some(o) = map.get(path) {
            return Ok(FileInfo {
                path: path.to_string(),
                size: o.data.len() as u64,
                modified: Some(o.modified),
                is_dir: false,
            });
        }
        if is_dir(&map, path) {
            return Ok(FileInfo {
                path: path.to_string(),
                size: 0,
                modified: None,
                is_dir: true,
            });
        }
        Err(StorageError::NotFound(path.to_string()))
    }

    async fn list(&self, path: &str) -> StorageResult<Vec<String>> {
        validate_path(path)?;
        let prefix = dir_prefix(path);
        let map = self.read();
        let mut out: Vec<String> = Vec::new();
        for key in map.range(prefix.clone()..).map(|(k, _)| k) {
            let Some(rest) = key.strip_prefix(&prefix) else {
                break;
            };
            let child = match rest.find('/') {
                Some(i) => &key[..prefix.len() + i],
                None => key.as_str(),
            };
            // Keys are sorted, so all keys under one child directory are
            // adjacent: comparing with the last pushed child deduplicates.
            if out.last().map(String::as_str) != Some(child) {
                out.push(child.to_string());
            }
        }
        if out.is_empty() {
            return Err(StorageError::NotFound(path.to_string()));
        }
        Ok(out)
    }

    async fn move_object(&self, source: &str, dest: &str) -> StorageResult<()> {
        validate_path(source)?;
        validate_path(dest)?;
        let mut map = self.write();
        let obj = map
            .get(source)
            .cloned()
            .ok_or_else(|| StorageError::NotFound(source.to_string()))?;
        if source == dest {
            return Ok(());
        }
        map.remove(source);
        if let Err(e) = store(&mut map, dest, obj.data.clone()) {
            map.insert(source.to_string(), obj);
            return Err(e);
        }
        Ok(())
    }

    async fn delete(&self, path: &str) -> StorageResult<()> {
        validate_path(path)?;
        let mut map = self.write();
        let mut found = map.remove(path).is_some();
        let prefix = dir_prefix(path);
        let under: Vec<String> = map
            .range(prefix.clone()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        found |= !under.is_empty();
        for k in under {
            map.remove(&k);
        }
        if found {
            Ok(())
        } else {
            Err(StorageError::NotFound(path.to_string()))
        }
    }

    async fn walk(&self, path: &str) -> StorageResult<Vec<String>> {
        validate_path(path)?;
        let prefix = dir_prefix(path);
        let out: Vec<String> = self
            .read()
            .range(prefix.clone()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        if out.is_empty() {
            return Err(StorageError::NotFound(path.to_string()));
        }
        Ok(out)
    }
}

/// Buffers everything and publishes the whole object at once, which is the
/// visibility the trait promises without any temp-object machinery.
struct MemoryWriter {
    objects: Arc<RwLock<Map>>,
    path: String,
    append: bool,
    buf: Vec<u8>,
}

impl MemoryWriter {
    fn publish(self) -> StorageResult<()> {
        let mut map = write_lock(&self.objects);
        store(&mut map, &self.path, Bytes::from(self.buf))
    }
}

#[async_trait]
impl FileWriter for MemoryWriter {
    async fn write(&mut self, data: &[u8]) -> StorageResult<()> {
        self.buf.extend_from_slice(data);
        Ok(())
    }

    fn size(&self) -> u64 {
        self.buf.len() as u64
    }

    async fn commit(self: Box<Self>) -> StorageResult<()> {
        self.publish()
    }

    async fn commit_to_then(
        self: Box<Self>,
        driver: &dyn StorageDriver,
        dest: &str,
        then: Vec<DeferredWrite>,
    ) -> StorageResult<()> {
        validate_path(dest)?;
        {
            let mut map = write_lock(&self.objects);
            store(&mut map, dest, Bytes::from(self.buf))?;
        }
        driver.apply_deferred(then).await
    }

    async fn close(self: Box<Self>) -> StorageResult<()> {
        self.publish()
    }

    async fn cancel(self: Box<Self>) -> StorageResult<()> {
        if self.append {
            write_lock(&self.objects).remove(&self.path);
        }
        Ok(())
    }
}
