//! `WWW-Authenticate` challenges (RFC 7235 section 4.1), parsed by a pure
//! function that never fails: an upstream (or anyone in the path) controls
//! the header, so malformed parts are skipped, never trusted, and the output
//! is bounded. Fuzzed (fuzz/fuzz_targets/challenge.rs, `crate::fuzzing::challenge`).

/// At most this many challenges are kept from one header value.
pub const MAX_CHALLENGES: usize = 16;
/// At most this many parameters are kept per challenge.
pub const MAX_PARAMS: usize = 32;

/// One challenge: `Bearer realm="...",service="..."` or `Basic realm="x"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The auth scheme, lowercased (`bearer`, `basic`): schemes are
    /// case-insensitive.
    pub scheme: String,
    /// Parameters in order, names lowercased, values unquoted. A name seen
    /// twice keeps its first value (RFC 7235: each name at most once).
    pub params: Vec<(String, String)>,
    /// A `token68` instead of parameters (`Negotiate abc==`), rare.
    pub token68: Option<String>,
}

impl Challenge {
    /// The value of parameter `name` (case-insensitive), if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `tchar` of RFC 7230.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `token68` characters (besides the trailing `=`).
fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_ws_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    /// Skips to just past the next comma outside a quoted string (error
    /// recovery for garbage).
    fn skip_element(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b',' => {
                    self.i += 1;
                    return;
                }
                b'"' => {
                    // An unterminated quote swallows the rest.
                    let _ = self.quoted();
                }
                _ => self.i += 1,
            }
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    /// A quoted-string starting at the `"`: returns its unescaped content,
    /// or `None` when it never ends (the cursor is then at the end).
    fn quoted(&mut self) -> Option<String> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.i += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => match self.peek() {
                    Some(next) => {
                        out.push(next);
                        self.i += 1;
                    }
                    None => return None,
                },
                _ => out.push(b),
            }
        }
        None
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Parses one `WWW-Authenticate` header value into its challenges, in
/// order. Never fails: unparsable parts are skipped, a parameter without a
/// value is dropped, an unterminated quoted string ends the parse, and at
/// most [`MAX_CHALLENGES`] x [`MAX_PARAMS`] items are kept.
pub fn parse_challenges(input: &str) -> Vec<Challenge> {
    let mut c = Cursor {
        s: input.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    let mut current: Option<Challenge> = None;
    loop {
        c.skip_ws_and_commas();
        if c.peek().is_none() {
            break;
        }
        let name = c.take_while(is_tchar);
        if name.is_empty() {
            c.skip_element();
            continue;
        }
        let after_name = c.i;
        c.skip_ws();
        if c.peek() == Some(b'=') {
            // `name = value`: a parameter of the current challenge.
            c.i += 1;
            c.skip_ws();
            let value = match c.peek() {
                Some(b'"') => match c.quoted() {
                    Some(v) => Some(v),
                    None => break,
                },
                Some(b) if is_tchar(b) => Some(lossy(c.take_while(is_tchar))),
                _ => None,
            };
            c.skip_ws();
            let clean_end = matches!(c.peek(), None | Some(b','));
            match (value, current.as_mut()) {
                // A token68 challenge has no parameters (RFC 7235).
                (Some(v), Some(ch)) if clean_end && ch.token68.is_none() => {
                    add_param(ch, &lossy(name), v)
                }
                // A parameter before any scheme, after a token68, without a
                // value, or with garbage glued to its value: dropped.
                _ => c.skip_element(),
            }
            continue;
        }
        // A new challenge: `scheme [ 1*SP ( token68 / #auth-param ) ]`.
        c.i = after_name;
        if let Some(done) = current.take() {
            push_challenge(&mut out, done);
        }
        let mut ch = Challenge {
            scheme: lossy(name).to_ascii_lowercase(),
            params: Vec::new(),
            token68: None,
        };
        if !matches!(c.peek(), Some(b' ' | b'\t')) {
            current = Some(ch);
            continue;
        }
        c.skip_ws();
        // token68 or the first auth-param: a param when `token =` is
        // followed by a value; it is then read on the next turn.
        let save = c.i;
        let first = c.take_while(is_tchar);
        c.skip_ws();
        let param_follows = !first.is_empty() && c.peek() == Some(b'=') && {
            let mut look = c.i + 1;
            while matches!(c.s.get(look), Some(b' ' | b'\t')) {
                look += 1;
            }
            matches!(c.s.get(look), Some(&b) if b == b'"' || is_tchar(b))
        };
        c.i = save;
        if !param_follows {
            let t = c.take_while(is_token68_char);
            let eq = c.take_while(|b| b == b'=');
            c.skip_ws();
            if !t.is_empty() && matches!(c.peek(), None | Some(b',')) {
                ch.token68 = Some(format!("{}{}", lossy(t), lossy(eq)));
            } else {
                c.skip_element();
            }
        }
        current = Some(ch);
    }
    if let Some(done) = current.take() {
        push_challenge(&mut out, done);
    }
    out
}

fn add_param(ch: &mut Challenge, name: &str, value: String) {
    if ch.params.len() >= MAX_PARAMS || ch.param(name).is_some() {
        return;
    }
    ch.params.push((name.to_ascii_lowercase(), value));
}

fn push_challenge(out: &mut Vec<Challenge>, ch: Challenge) {
    if out.len() < MAX_CHALLENGES {
        out.push(ch);
    }
}

#[cfg(test)]
#[path = "challenge_tests.rs"]
mod tests;
