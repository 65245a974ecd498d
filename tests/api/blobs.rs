//! Blob reads, ranges, deletes and mounts.

use axum::http::{Method, StatusCode};
use berth::oci::digest::Digest;

use crate::support::TestRegistry;

#[tokio::test]
async fn get_and_head_blob_with_headers() {
    for reg in TestRegistry::all() {
        let data = b"0123456789abcdefghij".to_vec();
        let d = reg.push_blob("lib/app", &data).await;
        let r = reg.head(&format!("/v2/lib/app/blobs/{d}")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-length"), Some("20"));
        assert_eq!(
            r.header("docker-content-digest"),
            Some(d.to_string().as_str())
        );
        assert_eq!(r.header("etag"), Some(format!("\"{d}\"").as_str()));
        assert!(r.body.is_empty());
        let r = reg.get(&format!("/v2/lib/app/blobs/{d}")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body.as_ref(), data.as_slice());
        let r = reg
            .req(
                Method::GET,
                &format!("/v2/lib/app/blobs/{d}"),
                &[("if-none-match", &format!("\"{d}\""))],
                "",
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    }
}

#[tokio::test]
async fn range_requests() {
    for reg in TestRegistry::all() {
        let data: Vec<u8> = (0..100u8).collect();
        let d = reg.push_blob("r", &data).await;
        let url = format!("/v2/r/blobs/{d}");
        let table: [(&str, u16, &[u8], Option<&str>); 5] = [
            ("bytes=0-9", 206, &data[0..10], Some("bytes 0-9/100")),
            ("bytes=90-", 206, &data[90..], Some("bytes 90-99/100")),
            ("bytes=-5", 206, &data[95..], Some("bytes 95-99/100")),
            ("bytes=100-200", 416, b"", Some("bytes */100")),
            ("bytes=9-3", 416, b"", Some("bytes */100")),
        ];
        for (range, status, want, content_range) in table {
            let r = reg.req(Method::GET, &url, &[("range", range)], "").await;
            assert_eq!(r.status.as_u16(), status, "{range}");
            assert_eq!(r.header("content-range"), content_range, "{range}");
            if status == 206 {
                assert_eq!(r.body.as_ref(), want, "{range}");
            } else {
                assert_eq!(r.error_code(), "RANGE_INVALID");
            }
        }
    }
}

#[tokio::test]
async fn unknown_blob_and_other_repository() {
    for reg in TestRegistry::all() {
        let d = reg.push_blob("a", b"only in a").await;
        let r = reg.get(&format!("/v2/b/blobs/{d}")).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::NOT_FOUND, "BLOB_UNKNOWN")
        );
        let other = Digest::sha256_of(b"never pushed");
        let r = reg.head(&format!("/v2/a/blobs/{other}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn zero_length_blob() {
    for reg in TestRegistry::all() {
        let d = reg.push_blob("empty", b"").await;
        let r = reg.get(&format!("/v2/empty/blobs/{d}")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-length"), Some("0"));
        assert!(r.body.is_empty());
    }
}

#[tokio::test]
async fn delete_blob_only_when_enabled() {
    for reg in TestRegistry::all_with(|_| {}) {
        let d = reg.push_blob("x", b"keep me").await;
        let r = reg
            .req(Method::DELETE, &format!("/v2/x/blobs/{d}"), &[], "")
            .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED")
        );
        assert_eq!(
            reg.head(&format!("/v2/x/blobs/{d}")).await.status,
            StatusCode::OK
        );
    }
    for reg in TestRegistry::all() {
        let d = reg.push_blob("x", b"delete me").await;
        let r = reg
            .req(Method::DELETE, &format!("/v2/x/blobs/{d}"), &[], "")
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        assert_eq!(
            reg.head(&format!("/v2/x/blobs/{d}")).await.status,
            StatusCode::NOT_FOUND
        );
        let r = reg
            .req(Method::DELETE, &format!("/v2/x/blobs/{d}"), &[], "")
            .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::NOT_FOUND, "BLOB_UNKNOWN")
        );
    }
}

#[tokio::test]
async fn cross_repository_mount() {
    for reg in TestRegistry::all() {
        let d = reg.push_blob("src/repo", b"shared layer").await;
        let r = reg
            .req(
                Method::POST,
                &format!("/v2/dst/repo/blobs/uploads/?mount={d}&from=src/repo"),
                &[],
                "",
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", reg.kind);
        assert_eq!(
            r.header("location"),
            Some(format!("http://registry.test/v2/dst/repo/blobs/{d}").as_str())
        );
        assert_eq!(
            r.header("docker-content-digest"),
            Some(d.to_string().as_str())
        );
        let r = reg.get(&format!("/v2/dst/repo/blobs/{d}")).await;
        assert_eq!(r.body.as_ref(), b"shared layer");
        // Unknown source: a normal session starts instead.
        let d2 = Digest::sha256_of(b"nowhere");
        let r = reg
            .req(
                Method::POST,
                &format!("/v2/dst/repo/blobs/uploads/?mount={d2}&from=src/repo"),
                &[],
                "",
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        assert!(r.header("docker-upload-uuid").is_some());
        assert_eq!(
            reg.head(&format!("/v2/dst/repo/blobs/{d2}")).await.status,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn multi_mib_blob_and_ranges_byte_exact() {
    const MIB: usize = 1 << 20;
    // Not a multiple of any chunk size, and not uniform.
    let data: Vec<u8> = (0..5 * MIB + 4099)
        .map(|i| (i * 31 + i / 65_537) as u8)
        .collect();
    for reg in TestRegistry::all() {
        let d = reg.push_blob("big/layer", &data).await;
        let url = format!("/v2/big/layer/blobs/{d}");
        let r = reg.get(&url).await;
        assert_eq!(r.status, StatusCode::OK, "{}", reg.kind);
        let len = data.len().to_string();
        assert_eq!(r.header("content-length"), Some(len.as_str()));
        assert!(r.body == data, "{}: whole blob differs", reg.kind);
        assert_eq!(Digest::sha256_of(&r.body), d);
        let ranges = [
            (MIB - 3, MIB + 2),
            (MIB, 2 * MIB - 1),
            (123, 4 * MIB + 5),
            (5 * MIB, data.len() - 1),
        ];
        for (start, end) in ranges {
            let range = format!("bytes={start}-{end}");
            let r = reg.req(Method::GET, &url, &[("range", &range)], "").await;
            assert_eq!(
                r.status,
                StatusCode::PARTIAL_CONTENT,
                "{}: {range}",
                reg.kind
            );
            let want = format!("bytes {start}-{end}/{}", data.len());
            assert_eq!(r.header("content-range"), Some(want.as_str()));
            assert!(r.body == data[start..=end], "{}: {range} differs", reg.kind);
        }
        let r = reg.head(&url).await;
        assert_eq!(r.header("content-length"), Some(len.as_str()));
        assert!(r.body.is_empty());
    }
}
