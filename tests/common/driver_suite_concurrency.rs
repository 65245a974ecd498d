//! Suite cases for concurrent requests on one key: writers racing, and
//! readers during a replace, which must see one whole version.

use super::*;

/// Concurrent pushes of one key must end with one writer's content, never a mix.
pub async fn concurrent_writers_same_key(d: Driver) {
    let key = format!("{}/same", base());
    put(&d, &key, &version(0)).await;
    // Streaming writers all open before any writes, so their writes
    // interleave; whole-object puts land in between.
    let streaming: Vec<u8> = vec![1, 3, 5, 7];
    let opened = Arc::new(tokio::sync::Barrier::new(streaming.len()));
    let handles: Vec<_> = (1..=8u8)
        .map(|v| {
            let d = d.clone();
            let key = key.clone();
            let opened = opened.clone();
            let streams = streaming.contains(&v);
            tokio::spawn(async move {
                if !streams {
                    return d.put_content(&key, Bytes::from(version(v))).await;
                }
                let mut w = d.writer(&key, false).await?;
                opened.wait().await;
                for part in version(v).chunks(300_000) {
                    w.write(part).await?;
                    tokio::task::yield_now().await;
                }
                w.commit().await
            })
        })
        .collect();
    for h in handles {
        h.await.expect("join").expect("each writer succeeds");
    }
    let content = get(&d, &key).await;
    check_whole(&content);
    assert_ne!(content[0], 0, "every writer committed after the first put");
}

/// Version `v` of an object: length and every byte identify the version.
fn version(v: u8) -> Vec<u8> {
    vec![v; (1 << 20) + usize::from(v) * 1000]
}

fn check_whole(content: &[u8]) {
    let v = *content.first().expect("never empty");
    assert_eq!(content, version(v).as_slice(), "torn read");
}

/// Pulls running while a tag is rewritten must see a whole old or whole new object.
pub async fn readers_during_replace(d: Driver) {
    let key = format!("{}/hot", base());
    put(&d, &key, &version(1)).await;
    let writer_task = {
        let d = d.clone();
        let key = key.clone();
        tokio::spawn(async move {
            for v in 2..=30u8 {
                if v % 2 == 0 {
                    d.put_content(&key, Bytes::from(version(v))).await?;
                } else {
                    let mut w = d.writer(&key, false).await?;
                    for part in version(v).chunks(100_000) {
                        w.write(part).await?;
                    }
                    w.commit().await?;
                }
            }
            StorageResult::Ok(())
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let d = d.clone();
            let key = key.clone();
            tokio::spawn(async move {
                let mut seen = BTreeSet::new();
                for i in 0..40 {
                    let content = if i % 2 == 0 {
                        d.get_content(&key).await.expect("get").to_vec()
                    } else {
                        read_from(&d, &key, 0).await
                    };
                    check_whole(&content);
                    seen.insert(content[0]);
                    let info = d.stat(&key).await.expect("stat never misses");
                    assert!(info.size >= 1 << 20);
                }
                seen
            })
        })
        .collect();
    writer_task.await.expect("join").expect("writer");
    for r in readers {
        let seen = r.await.expect("reader");
        assert!(!seen.is_empty());
    }
    assert_eq!(get(&d, &key).await, version(30));
}
