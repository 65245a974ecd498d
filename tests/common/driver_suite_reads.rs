//! Suite cases for reads: offsets, large streamed objects, and
//! `read_stream` ranges (the blob GET path).

use super::*;

/// Range requests and resumed downloads read from an offset; the end is empty, past it an error.
pub async fn reads_at_offsets(d: Driver) {
    let key = format!("{}/obj", base());
    let content = pseudo_random(3, 1000);
    put(&d, &key, &content).await;
    assert_eq!(read_from(&d, &key, 0).await, content);
    assert_eq!(read_from(&d, &key, 1).await, &content[1..]);
    assert_eq!(read_from(&d, &key, 500).await, &content[500..]);
    assert_eq!(read_from(&d, &key, 999).await, &content[999..]);
    assert_eq!(read_from(&d, &key, 1000).await, b"");
    for offset in [1001, 1_000_000, u64::MAX] {
        match d.reader(&key, offset).await {
            Err(StorageError::InvalidOffset { path, offset: o }) => {
                assert_eq!(path, key);
                assert_eq!(o, offset);
            }
            Err(e) => panic!("offset {offset}: wrong error {e}"),
            Ok(_) => panic!("offset {offset}: reader opened past the end"),
        }
    }
    let empty = format!("{key}-empty");
    put(&d, &empty, b"").await;
    assert_eq!(read_from(&d, &empty, 0).await, b"");
    assert_eq!(kind(&d.reader(&empty, 1).await), "invalid_offset");
}

/// Layers are large: a 101 MiB object must stream in and out intact.
pub async fn large_object_streamed(d: Driver) {
    const CHUNK: usize = 1 << 20;
    const CHUNKS: u64 = 101;
    let key = format!("{}/blobs/large/data", base());
    let mut w = writer(&d, &key, false).await;
    let mut written = Sha256::new();
    for i in 0..CHUNKS {
        let chunk = pseudo_random(1000 + i, CHUNK);
        written.update(&chunk);
        w.write(&chunk).await.expect("write");
    }
    assert_eq!(w.size(), CHUNKS * CHUNK as u64);
    w.commit().await.expect("commit");
    let written = written.finalize();

    assert_eq!(
        d.stat(&key).await.expect("stat").size,
        CHUNKS * CHUNK as u64
    );
    let mut r = d.reader(&key, 0).await.expect("reader");
    let mut read = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        total += n as u64;
        read.update(&buf[..n]);
    }
    assert_eq!(total, CHUNKS * CHUNK as u64);
    assert_eq!(read.finalize(), written, "sha256 of content read back");

    // The same through read_stream, the blob GET path.
    let size = CHUNKS * CHUNK as u64;
    let mut s = d.read_stream(&key, 0, size).await.expect("read_stream");
    let mut streamed = Sha256::new();
    let mut total = 0u64;
    while let Some(chunk) = s.next().await {
        let chunk = chunk.expect("stream chunk");
        total += chunk.len() as u64;
        streamed.update(&chunk);
    }
    assert_eq!(total, size);
    assert_eq!(streamed.finalize(), written, "sha256 of content streamed");

    // A read near the end starts at the right byte.
    let tail = read_from(&d, &key, CHUNKS * CHUNK as u64 - 100).await;
    let last = pseudo_random(1000 + CHUNKS - 1, CHUNK);
    assert_eq!(tail, &last[CHUNK - 100..]);
}

/// Blob GETs, whole and ranged, stream exactly the bytes asked for, across
/// chunk boundaries; a length past the end is an error, never a short body.
pub async fn read_stream_ranges(d: Driver) {
    const MIB: u64 = 1 << 20;
    let key = format!("{}/obj", base());
    let size = 3 * MIB + 17;
    let content = pseudo_random(7, size as usize);
    put(&d, &key, &content).await;
    let table = [
        (0, size),
        (1, size - 1),
        (0, MIB),
        (MIB - 5, 10),
        (MIB, MIB),
        (123, 2 * MIB + 7),
        (size - 1, 1),
        (size, 0),
        (0, 0),
        (500, 0),
    ];
    for (offset, len) in table {
        let got = stream_from(&d, &key, offset, len)
            .await
            .unwrap_or_else(|(n, e)| panic!("{offset}+{len}: error after {n} bytes: {e}"));
        let want = &content[offset as usize..(offset + len) as usize];
        assert!(
            got == want,
            "{offset}+{len}: {} bytes, not the range",
            got.len()
        );
    }
    // Asking for more than is there: the stream must fail, after at most
    // the bytes that exist, all of them correct.
    for (offset, len) in [(0, size + 1), (size - 10, 11), (size, 1)] {
        match stream_from(&d, &key, offset, len).await {
            Ok(got) => panic!("{offset}+{len}: ended cleanly after {} bytes", got.len()),
            Err((n, e)) => {
                assert_eq!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof,
                    "{offset}+{len}: {e}"
                );
                assert!(n as u64 <= size - offset, "{offset}+{len}: {n} bytes");
            }
        }
    }
    for offset in [size + 1, u64::MAX] {
        assert_eq!(
            kind(&d.read_stream(&key, offset, 0).await),
            "invalid_offset",
            "{offset}"
        );
    }
    let missing = format!("{key}-missing");
    assert_eq!(kind(&d.read_stream(&missing, 0, 1).await), "not_found");
    let dir = key
        .rsplit_once('/')
        .map(|(dir, _)| dir.to_string())
        .unwrap_or_default();
    assert_eq!(kind(&d.read_stream(&dir, 0, 1).await), "not_found");
    // A stream dropped part-way leaves the object readable and deletable.
    let mut s = d.read_stream(&key, 0, size).await.expect("read_stream");
    assert!(s.next().await.is_some_and(|c| c.is_ok()));
    drop(s);
    assert_eq!(
        stream_from(&d, &key, 0, 10).await.ok().as_deref(),
        Some(&content[..10])
    );
    d.delete(&key).await.expect("delete");
    assert_eq!(kind(&d.read_stream(&key, 0, 1).await), "not_found");
}
