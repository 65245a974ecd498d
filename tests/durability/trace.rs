//! Reads an `strace -f -y` log into calls with where they started and
//! ended: a call another thread interrupts is split over an
//! `<unfinished ...>` and a `<... NAME resumed>` line, and what matters for
//! durability is when a write *returned* and when a sync *began*.

use std::collections::HashMap;

/// One system call: its name, its argument text (with `-y` paths), the
/// line numbers where it started and returned, and its return value.
#[derive(Debug, Clone)]
pub struct Call {
    pub name: String,
    pub args: String,
    pub start: usize,
    pub end: usize,
    pub ret: i64,
}

impl Call {
    /// The `-y` path of the first descriptor argument (`fd</path>`).
    pub fn fd_path(&self) -> Option<&str> {
        let open = self.args.find('<')?;
        let close = self.args[open..].find('>')? + open;
        Some(&self.args[open + 1..close])
    }

    /// The string arguments (`"..."`), e.g. both paths of a rename.
    pub fn strings(&self) -> Vec<&str> {
        self.args.split('"').skip(1).step_by(2).collect()
    }

    /// True for a call that succeeded.
    pub fn ok(&self) -> bool {
        self.ret >= 0
    }
}

/// `NAME(ARGS...) = RET` parts of a complete line's text. strace pads a
/// resumed call's `)` and `= RET` apart with spaces to align it.
fn split(text: &str) -> Option<(String, String, i64)> {
    let paren = text.find('(')?;
    let name = text[..paren].to_string();
    let eq = text.rfind(" = ")?;
    let args = text[paren + 1..eq].trim_end().strip_suffix(')')?;
    let ret = text[eq + 3..].split_whitespace().next()?.parse().ok()?;
    Some((name, args.to_string(), ret))
}

/// Every call in the log, in the order they returned.
pub fn parse(log: &str) -> Vec<Call> {
    let mut pending: HashMap<&str, (String, usize)> = HashMap::new();
    let mut calls = Vec::new();
    for (idx, line) in log.lines().enumerate() {
        let Some((pid, text)) = line.split_once(' ') else {
            continue;
        };
        let text = text.trim_start();
        if text.starts_with("+++") || text.starts_with("---") {
            continue;
        }
        if let Some(rest) = text.strip_prefix("<... ") {
            let Some((head, start)) = pending.remove(pid) else {
                continue;
            };
            let Some(resumed) = rest.find(" resumed>") else {
                continue;
            };
            let full = format!("{head}{}", &rest[resumed + " resumed>".len()..]);
            if let Some((name, args, ret)) = split(&full) {
                calls.push(Call {
                    name,
                    args,
                    start,
                    end: idx,
                    ret,
                });
            }
        } else if let Some(head) = text.strip_suffix(" <unfinished ...>") {
            pending.insert(pid, (head.to_string(), idx));
        } else if let Some((name, args, ret)) = split(text) {
            calls.push(Call {
                name,
                args,
                start: idx,
                end: idx,
                ret,
            });
        }
    }
    calls
}

#[test]
fn parses_split_and_whole_calls() {
    let log = "\
10 syncfs(7</r> <unfinished ...>
11 writev(9<socket:[1]>, [{iov_base=\"HTTP/1.1 201 Created\\r\\n\", iov_len=22}], 1) = 22
10 <... syncfs resumed>) = 0
12 rename(\"/r/a\", \"/r/b\") = 0
12 +++ exited with 0 +++
13 fsync(8</r/d> <unfinished ...>
14 write(4<anon_inode:[eventfd]>, \"\\1\", 8) = 8
13 <... fsync resumed>)              = 0
";
    let calls = parse(log);
    assert_eq!(calls.len(), 5);
    // A resumed line padded with spaces (as strace aligns them) still parses.
    assert_eq!(
        (
            calls[4].name.as_str(),
            calls[4].start,
            calls[4].end,
            calls[4].ret
        ),
        ("fsync", 5, 7, 0)
    );
    assert_eq!(calls[4].fd_path(), Some("/r/d"));
    assert_eq!(
        (calls[0].name.as_str(), calls[0].start, calls[0].end),
        ("writev", 1, 1)
    );
    assert_eq!(
        (calls[1].name.as_str(), calls[1].start, calls[1].end),
        ("syncfs", 0, 2)
    );
    assert_eq!(calls[1].fd_path(), Some("/r"));
    assert_eq!(calls[2].strings(), vec!["/r/a", "/r/b"]);
}
