//! Table tests of the challenge parser, hostile input included.
#![allow(clippy::unwrap_used)]

use super::*;

fn ch(scheme: &str, params: &[(&str, &str)]) -> Challenge {
    Challenge {
        scheme: scheme.into(),
        params: params
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        token68: None,
    }
}

#[test]
fn well_formed_challenges() {
    let cases: Vec<(&str, Vec<Challenge>)> = vec![
        (
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
            vec![ch(
                "bearer",
                &[
                    ("realm", "https://auth.docker.io/token"),
                    ("service", "registry.docker.io"),
                    ("scope", "repository:library/alpine:pull"),
                ],
            )],
        ),
        (
            r#"Basic realm="berth""#,
            vec![ch("basic", &[("realm", "berth")])],
        ),
        // Case-insensitive scheme and parameter names; spaces around `=`.
        (
            r#"BEARER Realm = "r" ,  SERVICE=svc"#,
            vec![ch("bearer", &[("realm", "r"), ("service", "svc")])],
        ),
        // Several challenges in one header.
        (
            r#"Basic realm="a", Bearer realm="b",service="s""#,
            vec![
                ch("basic", &[("realm", "a")]),
                ch("bearer", &[("realm", "b"), ("service", "s")]),
            ],
        ),
        (
            r#"Bearer realm="b", error="insufficient_scope", Basic realm="x""#,
            vec![
                ch("bearer", &[("realm", "b"), ("error", "insufficient_scope")]),
                ch("basic", &[("realm", "x")]),
            ],
        ),
        // A scheme without parameters.
        ("Negotiate", vec![ch("negotiate", &[])]),
        (
            "Basic, Bearer realm=x",
            vec![ch("basic", &[]), ch("bearer", &[("realm", "x")])],
        ),
        // Quoted strings with escapes, commas and `=` inside.
        (
            r#"Bearer realm="a\"b\\c,d=e""#,
            vec![ch("bearer", &[("realm", r#"a"b\c,d=e"#)])],
        ),
        // Scopes with spaces (several scopes) stay one value.
        (
            r#"Bearer scope="repository:a:pull repository:b:pull""#,
            vec![ch(
                "bearer",
                &[("scope", "repository:a:pull repository:b:pull")],
            )],
        ),
        // Empty quoted value.
        (r#"Bearer realm="""#, vec![ch("bearer", &[("realm", "")])]),
    ];
    for (input, want) in cases {
        assert_eq!(parse_challenges(input), want, "{input}");
    }
}

#[test]
fn token68() {
    let got = parse_challenges("Negotiate abc+/def==, Basic realm=x");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].scheme, "negotiate");
    assert_eq!(got[0].token68.as_deref(), Some("abc+/def=="));
    assert_eq!(got[1], ch("basic", &[("realm", "x")]));
}

#[test]
fn hostile_input_never_panics_and_stays_bounded() {
    let cases: Vec<(String, Vec<Challenge>)> = vec![
        (String::new(), vec![]),
        ("   ,,, ,".into(), vec![]),
        ("=".into(), vec![]),
        ("realm=x".into(), vec![]),
        ("\"".into(), vec![]),
        // Unterminated quote: the parameter is dropped, the scheme kept.
        (
            r#"Bearer realm="https://evil"#.into(),
            vec![ch("bearer", &[])],
        ),
        (r#"Bearer realm="x\"#.into(), vec![ch("bearer", &[])]),
        // Missing values.
        (
            "Bearer realm=".into(),
            vec![Challenge {
                token68: Some("realm=".into()),
                ..ch("bearer", &[])
            }],
        ),
        // (`realm=` reads as a token68, as RFC 7235's grammar allows; a
        // token68 challenge has no parameters, so `service` is dropped.)
        (
            "Bearer realm=, service=s".into(),
            vec![Challenge {
                token68: Some("realm=".into()),
                ..ch("bearer", &[])
            }],
        ),
        (
            "Bearer a=b, c=, realm=r".into(),
            vec![ch("bearer", &[("a", "b"), ("realm", "r")])],
        ),
        // A duplicate keeps the first value.
        (
            r#"Bearer realm="a", realm="b""#.into(),
            vec![ch("bearer", &[("realm", "a")])],
        ),
        // Garbage glued to a quoted value drops the parameter.
        (
            r#"Bearer realm="a"junk, service="s""#.into(),
            vec![ch("bearer", &[("service", "s")])],
        ),
        // Non-ASCII and control bytes.
        (
            "Bearer realm=\"h\u{e9}llo\"".into(),
            vec![ch("bearer", &[("realm", "h\u{e9}llo")])],
        ),
        ("\u{0}\u{1}Bearer".into(), vec![]),
        ("\u{0}, Bearer".into(), vec![ch("bearer", &[])]),
        (
            "Bearer \u{7f}\u{7f}, Basic".into(),
            vec![ch("bearer", &[]), ch("basic", &[])],
        ),
        (
            "Bearer \"oops\" realm=\"x\"".into(),
            vec![ch("bearer", &[])],
        ),
    ];
    for (input, want) in cases {
        assert_eq!(parse_challenges(&input), want, "{input:?}");
    }

    let many = "Basic, ".repeat(1000);
    assert_eq!(parse_challenges(&many).len(), MAX_CHALLENGES);
    let params: String = (0..1000).map(|i| format!("p{i}=v,")).collect();
    let got = parse_challenges(&format!("Bearer {params}"));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].params.len(), MAX_PARAMS);
    // Deep backslash runs and long input stay linear.
    let long = format!("Bearer realm=\"{}\"", "\\\\".repeat(100_000));
    assert_eq!(
        parse_challenges(&long)[0].param("realm").map(str::len),
        Some(100_000)
    );
    // Found by the fuzzer: a parameter after a token68 is not the token68
    // challenge's (it has none), so it is dropped.
    let got = parse_challenges("Negotiate abc==, service=x, Basic realm=\"r\"");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].token68.as_deref(), Some("abc=="));
    assert!(got[0].params.is_empty(), "{got:?}");
    assert_eq!(got[1].param("realm"), Some("r"));
    // Every prefix of a real header parses without panicking.
    let real =
        r#"Bearer realm="https://a/t",service="s\"x",scope="repository:a:pull", Basic realm="z""#;
    for i in 0..=real.len() {
        if real.is_char_boundary(i) {
            let _ = parse_challenges(&real[..i]);
        }
    }
}
