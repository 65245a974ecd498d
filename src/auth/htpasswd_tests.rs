//! Tests of the htpasswd store and file edits.

#![allow(clippy::unwrap_used)]

use super::*;

// `htpasswd -nbB -C 4 alice secret` etc., made with Apache's htpasswd.
const ALICE_2Y: &str = "alice:$2y$04$C/dQdy3e/V5SaqrMmTyk.eK/r3KeBVVD1Kig3AbWguzyqW2ZH9K/C";
const ALICE_PASSWORD: &str = "secret";

fn hash4(password: &str, version: bcrypt::Version) -> String {
    bcrypt::hash_with_result(password, 4)
        .unwrap()
        .format_for_version(version)
}

fn tmpfile(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("htpasswd");
    fs::write(&path, text).unwrap();
    (dir, path)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn apache_hash_verifies() {
    let (_d, path) = tmpfile(&format!("{ALICE_2Y}\n"));
    assert!(verify_user(&path, "alice", ALICE_PASSWORD).unwrap());
    assert!(!verify_user(&path, "alice", "wrong").unwrap());
    assert!(!verify_user(&path, "nobody", ALICE_PASSWORD).unwrap());
}

#[test]
fn parse_accepts_bcrypt_variants_comments_and_blank_lines() {
    let y = hash4("py", bcrypt::Version::TwoY);
    let a = hash4("pa", bcrypt::Version::TwoA);
    let b = hash4("pb", bcrypt::Version::TwoB);
    let text = format!("# users\n\n  uy:{y}  \r\n\t# indented comment\nua:{a}\nub:{b}\n\n");
    let (_d, path) = tmpfile(&text);
    let f = HtpasswdFile::open(&path).unwrap();
    assert_eq!(f.users(), ["ua", "ub", "uy"]);
    let rt = rt();
    for (user, pw) in [("uy", "py"), ("ua", "pa"), ("ub", "pb")] {
        assert!(rt.block_on(f.verify(user, pw)), "{user}");
        assert!(!rt.block_on(f.verify(user, "nope")), "{user}");
    }
    // An empty file (or only comments) is valid: no users.
    let (_d, path) = tmpfile("# nobody yet\n");
    assert!(HtpasswdFile::open(&path).unwrap().users().is_empty());
}

#[test]
fn parse_refuses_other_hash_kinds_naming_line_and_kind() {
    let good = hash4("x", bcrypt::Version::TwoY);
    let table = [
        ("bob:{SHA}EfatjsUqKYSrqv18O1FlA3hcIHI=", "SHA-1 ({SHA})"),
        ("bob:$apr1$2VxaFszV$etFzlmdeC8zlsEdi.mOal0", "MD5 ($apr1$)"),
        ("bob:97lBvypB//Z4c", "crypt (DES)"),
        ("bob:x", "plain text"),
        ("bob:hunter2hunter2", "plain text"),
        ("bob:$1$abc$def", "MD5-crypt ($1$)"),
        ("bob:$5$abc$def", "SHA-256-crypt ($5$)"),
        ("bob:$6$abc$def", "SHA-512-crypt ($6$)"),
        (
            "bob:$2x$04$7jZBfqkp/c2Lx4/FTlVyKuPc63oyUP81pv7wND0cHHGq6YFQk5t3O",
            "$2x$",
        ),
    ];
    for (line, kind) in table {
        let (_d, path) = tmpfile(&format!("# c\nalice:{good}\n\n{line}\n"));
        let err = HtpasswdFile::open(&path).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, HtpasswdError::UnsupportedHash { line: 4, .. }),
            "{line}: {msg}"
        );
        assert!(msg.contains(&format!("{}:4:", path.display())), "{msg}");
        assert!(msg.contains(kind), "{line}: {msg}");
        assert!(msg.contains("\"bob\""), "{msg}");
        assert!(msg.contains("htpasswd -B"), "{msg}");
        assert!(msg.contains("berth htpasswd add"), "{msg}");
        // The hash (maybe a plain password) is never echoed.
        let secret = line.split_once(':').unwrap().1;
        assert!(secret.len() < 2 || !msg.contains(secret), "{msg}");
    }
}

#[test]
fn parse_refuses_malformed_lines() {
    let good = hash4("x", bcrypt::Version::TwoY);
    let table = [
        ("no-colon-here".to_string(), "no ':'"),
        (format!(":{good}"), "empty user"),
        ("bob:$2y$04$short".to_string(), "malformed"),
        (format!("bob:$2y$99{}", &good[6..]), "cost 99"),
        (format!("bob:$2y$x4{}", &good[6..]), "not a number"),
        (format!("bob:{}!", &good[..59]), "bad character"),
        (format!("alice:{good}"), "already defined on line 1"),
    ];
    for (line, want) in table {
        let (_d, path) = tmpfile(&format!("alice:{good}\n{line}\n"));
        let msg = HtpasswdFile::open(&path).unwrap_err().to_string();
        assert!(msg.starts_with(&format!("{}:2:", path.display())), "{msg}");
        assert!(msg.contains(want), "{line}: {msg}");
    }
}

#[test]
fn missing_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent");
    let err = HtpasswdFile::open(&path).unwrap_err();
    assert!(matches!(err, HtpasswdError::NotFound { .. }));
    assert!(err.to_string().contains("berth htpasswd add"));
    assert!(matches!(
        verify_user(&path, "a", "b"),
        Err(HtpasswdError::NotFound { .. })
    ));
    assert!(matches!(
        delete_user(&path, "a"),
        Err(HtpasswdError::NotFound { .. })
    ));
}

#[test]
fn verify_right_wrong_unknown() {
    let (_d, path) = tmpfile(&format!("{ALICE_2Y}\n"));
    let f = HtpasswdFile::open(&path).unwrap();
    let rt = rt();
    assert!(rt.block_on(f.verify("alice", ALICE_PASSWORD)));
    assert!(!rt.block_on(f.verify("alice", "Secret")));
    assert!(!rt.block_on(f.verify("alice", "")));
    assert!(!rt.block_on(f.verify("mallory", ALICE_PASSWORD)));
    assert!(!rt.block_on(f.verify("", "")));
}

#[test]
fn dummy_hash_is_well_formed_at_the_files_cost() {
    for cost in [4, 5, 10, 31] {
        let d = dummy_hash(cost);
        assert_eq!(bcrypt_shape_error(&d), None, "{d}");
    }
    // bcrypt can run it (and it matches nothing obvious).
    assert!(!bcrypt::verify("", &dummy_hash(4)).unwrap());
    let (_d, path) = tmpfile(&format!("{ALICE_2Y}\n"));
    let entries = parse(&path, &fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(&entries.dummy[..7], "$2y$04$");
    let entries = parse(&path, "").unwrap();
    assert_eq!(entries.dummy, dummy_hash(DEFAULT_COST));
}

#[test]
fn reloads_after_the_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("htpasswd");
    add_user(&path, "alice", "a-pass", 4).unwrap();
    let f = HtpasswdFile::open(&path).unwrap();
    let rt = rt();
    assert!(rt.block_on(f.verify("alice", "a-pass")));
    assert!(!rt.block_on(f.verify("bob", "b-pass")));

    add_user(&path, "bob", "b-pass", 4).unwrap();
    std::thread::sleep(RECHECK_INTERVAL + Duration::from_millis(200));
    assert!(rt.block_on(f.verify("bob", "b-pass")));
    assert_eq!(f.users(), ["alice", "bob"]);

    // A password change is picked up too.
    add_user(&path, "alice", "new-pass", 4).unwrap();
    std::thread::sleep(RECHECK_INTERVAL + Duration::from_millis(200));
    assert!(rt.block_on(f.verify("alice", "new-pass")));
    assert!(!rt.block_on(f.verify("alice", "a-pass")));
}

#[test]
fn invalid_rewrite_keeps_old_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("htpasswd");
    add_user(&path, "alice", "a-pass", 4).unwrap();
    let f = HtpasswdFile::open(&path).unwrap();
    let rt = rt();

    fs::write(&path, "alice:{SHA}EfatjsUqKYSrqv18O1FlA3hcIHI=\nbob:x\n").unwrap();
    std::thread::sleep(RECHECK_INTERVAL + Duration::from_millis(200));
    assert!(rt.block_on(f.verify("alice", "a-pass")));
    assert!(!rt.block_on(f.verify("bob", "x")));
    assert_eq!(f.users(), ["alice"]);

    // Removing the file keeps the users too.
    fs::remove_file(&path).unwrap();
    std::thread::sleep(RECHECK_INTERVAL + Duration::from_millis(200));
    assert!(rt.block_on(f.verify("alice", "a-pass")));

    // Once fixed, the new file is used.
    add_user(&path, "bob", "b-pass", 4).unwrap();
    std::thread::sleep(RECHECK_INTERVAL + Duration::from_millis(200));
    assert!(rt.block_on(f.verify("bob", "b-pass")));
    assert!(!rt.block_on(f.verify("alice", "a-pass")));
}

#[test]
fn add_replace_delete_keep_comments_and_other_users() {
    let other = "# team A\ncarol:{SHA}EfatjsUqKYSrqv18O1FlA3hcIHI=\n\n# end";
    let (_d, path) = tmpfile(other);
    add_user(&path, "alice", "one", 4).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with(&format!("{other}\nalice:$2y$04$")),
        "{text}"
    );
    assert!(text.ends_with('\n'));
    assert!(verify_user(&path, "alice", "one").unwrap());

    add_user(&path, "bob", "two", 4).unwrap();
    add_user(&path, "alice", "three", 4).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert_eq!(&lines[..4], other.lines().collect::<Vec<_>>());
    assert!(lines[4].starts_with("alice:$2y$04$"), "replaced in place");
    assert!(lines[5].starts_with("bob:$2y$04$"));
    assert!(verify_user(&path, "alice", "three").unwrap());
    assert!(!verify_user(&path, "alice", "one").unwrap());
    assert!(verify_user(&path, "bob", "two").unwrap());

    assert!(delete_user(&path, "alice").unwrap());
    assert!(!delete_user(&path, "alice").unwrap());
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(other), "{text}");
    assert!(!text.contains("alice"));
    assert!(verify_user(&path, "bob", "two").unwrap());
    assert!(!verify_user(&path, "alice", "three").unwrap());

    // Migrating carol off SHA-1: verify names the problem, add fixes it.
    let msg = verify_user(&path, "carol", "x").unwrap_err().to_string();
    assert!(msg.contains("SHA-1"), "{msg}");
    add_user(&path, "carol", "c", 4).unwrap();
    assert!(verify_user(&path, "carol", "c").unwrap());
    let f = HtpasswdFile::open(&path).unwrap();
    assert_eq!(f.users(), ["bob", "carol"]);
}

#[test]
fn add_user_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("htpasswd");
    for user in [
        "",
        "a:b",
        "a\nb",
        "a\rb",
        "a\0b",
        "#a",
        " a",
        "a ",
        &"u".repeat(256),
    ] {
        assert!(
            matches!(
                add_user(&path, user, "pw", 4),
                Err(HtpasswdError::InvalidUser { .. })
            ),
            "{user:?}"
        );
    }
    for cost in [0, 3, 32] {
        assert!(matches!(
            add_user(&path, "a", "pw", cost),
            Err(HtpasswdError::InvalidCost(c)) if c == cost
        ));
    }
    assert!(matches!(
        add_user(&path, "a", "", 4),
        Err(HtpasswdError::InvalidPassword(_))
    ));
    assert!(matches!(
        add_user(&path, "a", &"p".repeat(73), 4),
        Err(HtpasswdError::InvalidPassword(_))
    ));
    assert!(!path.exists(), "nothing written on refusal");
    add_user(&path, "a", &"p".repeat(72), 4).unwrap();
    add_user(&path, "é-ü", "pässwörd", 4).unwrap();
    assert!(verify_user(&path, "a", &"p".repeat(72)).unwrap());
    assert!(verify_user(&path, "é-ü", "pässwörd").unwrap());
}

#[test]
fn writes_are_atomic_and_leave_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("htpasswd");
    for i in 0..5 {
        add_user(&path, &format!("u{i}"), "pw", 4).unwrap();
    }
    delete_user(&path, "u0").unwrap();
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["htpasswd"]);
    // A failed write (directory gone) leaves nothing either.
    let gone = dir.path().join("sub").join("htpasswd");
    assert!(matches!(
        add_user(&gone, "a", "pw", 4),
        Err(HtpasswdError::Io { .. })
    ));
}

#[cfg(unix)]
#[test]
fn created_file_is_0600_and_existing_mode_is_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("htpasswd");
    add_user(&path, "a", "pw", 4).unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);

    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    add_user(&path, "b", "pw", 4).unwrap();
    assert_eq!(mode(&path), 0o640);
    delete_user(&path, "a").unwrap();
    assert_eq!(mode(&path), 0o640);
}

#[cfg(unix)]
#[test]
fn edits_through_a_symlink_replace_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    let link = dir.path().join("link");
    add_user(&real, "a", "pw", 4).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    add_user(&link, "b", "pw", 4).unwrap();
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(verify_user(&real, "b", "pw").unwrap());
}
