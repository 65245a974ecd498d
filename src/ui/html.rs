//! HTML building blocks: the one escaping helper every interpolated value
//! goes through, URL encoding, the page layout, and value formatting.

use std::fmt::Write as _;
use std::time::SystemTime;

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value or path segment (`/` too unless `keep_slash`).
pub fn url_enc(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Byte counts as people read them (base 1024, one decimal).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A time as `2026-12-02 19:14 UTC`.
pub fn time(t: SystemTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from(t)
        .format(&f)
        .unwrap_or_else(|_| "?".into())
}

/// An RFC 3339 time from an image config, shown as [`time`] does; the raw
/// text (escaped by the caller) when it does not parse.
pub fn config_time(s: &str) -> String {
    match time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        Ok(t) => time(t.into()),
        Err(_) => s.to_string(),
    }
}

/// A duration as `3d 4h 5m 6s`.
pub fn uptime(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (days, h, m, sec) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (days, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{days}d {h}h {m}m"),
    }
}

/// The first 12 hex digits of a digest, for tables (the full one is in the
/// link's title and on the manifest page).
pub fn short_digest(d: &str) -> &str {
    let hex = d.split_once(':').map_or(d, |(_, h)| h);
    hex.get(..12).unwrap_or(hex)
}

/// `1 tag`, `2 tags`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// What every page shares around its content.
pub struct Layout<'a> {
    /// `<title>` and the `<h1>`.
    pub title: &'a str,
    /// The UI's root path (`{http.prefix}/ui`).
    pub base: &'a str,
    /// The signed-in user.
    pub user: Option<&'a str>,
    /// True when a login is possible (htpasswd or built-in token issuer).
    pub can_login: bool,
    /// The session's CSRF token (for the logout form).
    pub csrf: &'a str,
    /// Content hashes of the assets, for cache-busting URLs.
    pub css_version: &'a str,
    /// See `css_version`.
    pub js_version: &'a str,
}

/// A whole HTML document around `body`.
pub fn page(l: &Layout<'_>, body: &str) -> String {
    let base = esc(l.base);
    let account = match (l.user, l.can_login) {
        (Some(u), _) => format!(
            "<span class=\"who\">Signed in as <strong>{}</strong></span>\
             <form method=\"post\" action=\"{base}/logout\" class=\"inline\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\" id=\"logout\">Log out</button></form>",
            esc(u),
            esc(l.csrf)
        ),
        (None, true) => format!("<a href=\"{base}/login\" id=\"login-link\">Log in</a>"),
        (None, false) => String::new(),
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <meta name=\"csrf-token\" content=\"{csrf}\">\
         <title>{title} · berth</title>\
         <link rel=\"stylesheet\" href=\"{base}/assets/ui.css?v={css}\">\
         <script src=\"{base}/assets/ui.js?v={js}\" defer></script></head>\
         <body><a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header><nav aria-label=\"Main\"><a class=\"brand\" href=\"{base}/\">berth</a>\
         <a href=\"{base}/\">Repositories</a><a href=\"{base}/status\">Status</a></nav>\
         <div class=\"account\">{account}</div></header>\
         <main id=\"main\"><h1>{title}</h1>\n{body}\n</main></body></html>\n",
        title = esc(l.title),
        css = esc(l.css_version),
        js = esc(l.js_version),
        csrf = esc(l.csrf),
    )
}

/// A `<dl>` of label/value pairs; values are HTML already.
pub fn facts(rows: &[(&str, String)]) -> String {
    let mut out = String::from("<dl class=\"facts\">");
    for (k, v) in rows {
        let _ = write!(out, "<dt>{}</dt><dd>{v}</dd>", esc(k));
    }
    out.push_str("</dl>");
    out
}

/// A message box: `kind` is `info` or `error`; `text` is escaped here.
pub fn notice(kind: &str, text: &str) -> String {
    let role = if kind == "error" { "alert" } else { "status" };
    format!(
        "<p class=\"notice {kind}\" role=\"{role}\">{}</p>",
        esc(text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc(r#"<script>alert("x&y")</script>'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#39;"
        );
        assert_eq!(esc("plain/name:tag"), "plain/name:tag");
        assert_eq!(esc("é→"), "é→");
    }

    #[test]
    fn url_encoding() {
        assert_eq!(url_enc("a/b c&d=e", false), "a%2Fb%20c%26d%3De");
        assert_eq!(url_enc("a/b", true), "a/b");
        assert_eq!(url_enc("sha256:ab", false), "sha256:ab");
        assert_eq!(url_enc("\"<>", true), "%22%3C%3E");
    }

    #[test]
    fn formatting() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(5 * 1024 * 1024 * 1024), "5.0 GiB");
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(86400 + 3600 + 120);
        assert_eq!(time(t), "1970-01-02 01:02 UTC");
        assert_eq!(config_time("1970-01-02T01:02:03Z"), "1970-01-02 01:02 UTC");
        assert_eq!(config_time("yesterday"), "yesterday");
        assert_eq!(uptime(std::time::Duration::from_secs(59)), "59s");
        assert_eq!(uptime(std::time::Duration::from_secs(90061)), "1d 1h 1m");
        assert_eq!(short_digest("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_digest("x"), "x");
        assert_eq!(
            (count(1, "tag"), count(0, "tag")),
            ("1 tag".into(), "0 tags".into())
        );
    }

    #[test]
    fn layout_escapes_what_it_interpolates() {
        let l = Layout {
            title: "<b>",
            base: "/ui",
            user: Some("<u>"),
            can_login: true,
            csrf: "\"tok",
            css_version: "1",
            js_version: "2",
        };
        let p = page(&l, "BODY");
        assert!(p.contains("<title>&lt;b&gt; · berth</title>"));
        assert!(p.contains("<strong>&lt;u&gt;</strong>"));
        assert!(p.contains("value=\"&quot;tok\""));
        assert!(!p.contains("<b>") && !p.contains("style="));
        assert!(p.contains("BODY"));
    }
}
