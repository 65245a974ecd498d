//! Suite cases for listings: direct children only, many keys, changes
//! seen at once, `has_children`, and the recursive walk GC relies on.

use super::*;

/// Catalog and tag listing rely on `list` returning children only, deduplicated.
pub async fn list_direct_children(d: Driver) {
    let b = base();
    for key in ["a", "b/c", "b/d", "e/f/g", "e/h", "a-x"] {
        put(&d, &format!("{b}/p/{key}"), key.as_bytes()).await;
    }
    assert_eq!(
        sorted(d.list(&format!("{b}/p")).await.expect("list")),
        vec![
            format!("{b}/p/a"),
            format!("{b}/p/a-x"),
            format!("{b}/p/b"),
            format!("{b}/p/e"),
        ]
    );
    assert_eq!(
        sorted(d.list(&format!("{b}/p/b")).await.expect("list")),
        vec![format!("{b}/p/b/c"), format!("{b}/p/b/d")]
    );
    assert_eq!(
        sorted(d.list(&format!("{b}/p/e")).await.expect("list")),
        vec![format!("{b}/p/e/f"), format!("{b}/p/e/h")]
    );
    assert_eq!(d.list(&b).await.expect("list"), vec![format!("{b}/p")]);
    assert!(d.stat(&format!("{b}/p/e/f")).await.expect("stat").is_dir);
    assert!(!d.stat(&format!("{b}/p/e/h")).await.expect("stat").is_dir);
    // A key that only shares a string prefix is not a child.
    assert_eq!(kind(&d.list(&format!("{b}/p/a-")).await), "not_found");
}

/// Listings beyond one backend page (1,000 on object stores) must be complete.
pub async fn list_many_keys(d: Driver) {
    let b = base();
    let dir = format!("{b}/many");
    let keys: Vec<String> = (0..1500).map(|i| format!("{dir}/k{i:05}")).collect();
    stream::iter(keys.iter().cloned())
        .map(|k| {
            let d = d.clone();
            async move { d.put_content(&k, Bytes::from(k.clone())).await }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await
        .expect("puts");
    let listed = d.list(&dir).await.expect("list");
    assert_eq!(listed.len(), 1500, "no duplicates, none missing");
    assert_eq!(sorted(listed), keys);
    assert_eq!(d.walk(&b).await.expect("walk"), keys);
    assert_eq!(get(&d, &keys[1234]).await, keys[1234].as_bytes());
}

/// A listing reflects every add and delete made before it, at once (the
/// filesystem driver caches large listings; the cache must never lag).
pub async fn list_follows_adds_and_deletes(d: Driver) {
    let b = base();
    let dir = format!("{b}/tags");
    let mut keys: Vec<String> = (0..100).map(|i| format!("{dir}/t{i:03}")).collect();
    for k in &keys {
        put(&d, &format!("{k}/current/link"), b"x").await;
    }
    for _ in 0..2 {
        assert_eq!(sorted(d.list(&dir).await.expect("list")), keys);
    }
    d.delete(&keys[42]).await.expect("delete");
    let gone = keys.remove(42);
    assert_eq!(sorted(d.list(&dir).await.expect("list")), keys);
    put(&d, &format!("{dir}/t999/current/link"), b"x").await;
    keys.push(format!("{dir}/t999"));
    assert_eq!(sorted(d.list(&dir).await.expect("list")), keys);
    put(&d, &format!("{gone}/current/link"), b"x").await;
    keys.insert(42, gone);
    assert_eq!(sorted(d.list(&dir).await.expect("list")), keys);
}

/// `has_children` agrees with `list`: true for a directory with children,
/// false for an emptied, missing or object key.
pub async fn has_children_of_dirs(d: Driver) {
    let b = base();
    let has = |k: String| {
        let d = d.clone();
        async move { d.has_children(&k).await.expect("has_children") }
    };
    assert!(!has(format!("{b}/nothing")).await);
    put(&d, &format!("{b}/dir/sub/obj"), b"x").await;
    assert!(has(format!("{b}/dir")).await);
    assert!(has(format!("{b}/dir/sub")).await);
    assert!(
        !has(format!("{b}/dir/sub/obj")).await,
        "an object has no children"
    );
    assert!(
        !has(format!("{b}/di")).await,
        "a string prefix is not a directory"
    );
    d.delete(&format!("{b}/dir/sub/obj")).await.expect("delete");
    assert!(!has(format!("{b}/dir/sub")).await);
    assert_eq!(kind(&d.has_children("/bad//key").await), "invalid_path");
}

/// Garbage collection walks everything, and its order must be stable across backends.
pub async fn walk_recursive_lexical(d: Driver) {
    let b = base();
    // Chosen so that a depth-first order differs from lexical order
    // ('-' and '.' sort before '/').
    let rel = ["a/b", "a-b", "a.c", "a/c/d", "a/c/e/f", "z", "A", "0"];
    for r in rel {
        put(&d, &format!("{b}/w/{r}"), r.as_bytes()).await;
    }
    let mut expected: Vec<String> = rel.iter().map(|r| format!("{b}/w/{r}")).collect();
    expected.sort();
    let walked = d.walk(&format!("{b}/w")).await.expect("walk");
    assert_eq!(walked, expected);
    let sub = d.walk(&format!("{b}/w/a")).await.expect("walk sub");
    assert_eq!(
        sub,
        vec![
            format!("{b}/w/a/b"),
            format!("{b}/w/a/c/d"),
            format!("{b}/w/a/c/e/f")
        ]
    );
    let unique: BTreeSet<&String> = walked.iter().collect();
    assert_eq!(unique.len(), walked.len());
}
