//! One endpoint's durable backlog on filesystem storage:
//! `<root>/_berth/events/<endpoint>.journal`, one JSON event per line,
//! appended as events arrive, and `<endpoint>.offset`, where the first
//! undelivered line starts. Replayed at start; emptied (truncated) each
//! time every line is delivered; bounded in size. The journal file is
//! locked (`flock`) by the process using it, so replicas sharing a root
//! never deliver each other's events.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::envelope::Event;

/// Why a journal could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Another process holds the lock.
    #[error("{0} is locked by another process")]
    Locked(PathBuf),
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// The open journal of one endpoint.
pub struct Journal {
    path: PathBuf,
    offset_path: PathBuf,
    /// Append handle (also holds the lock).
    file: File,
    /// Read handle, positioned at `cursor`.
    reader: BufReader<File>,
    /// Bytes in the file.
    len: u64,
    /// Start of the first undelivered line.
    read_off: u64,
    /// Where `reader` stands (after a peeked line).
    cursor: u64,
    /// The line read by [`Journal::peek`] and the offset after it.
    peeked: Option<(Event, u64)>,
    /// Undelivered events.
    pending: u64,
    max: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A file name for endpoint `name`: itself when plain, else a cleaned
/// form with a short hash (names are free-form in the config).
pub fn file_stem(name: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !name.is_empty() && name.chars().all(plain) && !name.starts_with('.') {
        return name.to_string();
    }
    let clean: String = name
        .chars()
        .map(|c| if plain(c) { c } else { '_' })
        .take(64)
        .collect();
    let hash = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    format!("{clean}-{}", hex::encode(&hash.as_ref()[..6]))
}

impl Journal {
    /// Opens (creating) the journal of endpoint `name` under `dir`, takes
    /// its lock, drops a torn last line left by a crash, and finds where
    /// delivery resumes. `max`: the largest file size accepted.
    pub fn open(dir: &Path, name: &str, max: u64) -> Result<Journal, JournalError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let stem = file_stem(name);
        let path = dir.join(format!("{stem}.journal"));
        let offset_path = dir.join(format!("{stem}.offset"));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(io(&path))?;
        use rustix::fs::{flock, FlockOperation};
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(JournalError::Locked(path)),
            Err(e) => return Err(io(&path)(e.into())),
        }
        let mut len = file.metadata().map_err(io(&path))?.len();
        // A line cut short by a crash: cut it off, so appends start clean.
        let mut content = Vec::new();
        (&file).seek(SeekFrom::Start(0)).map_err(io(&path))?;
        (&file).read_to_end(&mut content).map_err(io(&path))?;
        let complete = content
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1) as u64;
        if complete < len {
            tracing::warn!(journal = %path.display(), "dropping a torn last line left by a crash");
            file.set_len(complete).map_err(io(&path))?;
            len = complete;
        }
        let read_off = std::fs::read_to_string(&offset_path)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|o| *o <= len)
            .unwrap_or(0);
        let start = usize::try_from(read_off).unwrap_or(0);
        let pending = content
            .get(start..usize::try_from(len).unwrap_or(0))
            .map_or(0, |rest| rest.iter().filter(|b| **b == b'\n').count())
            as u64;
        let mut reader = BufReader::new(File::open(&path).map_err(io(&path))?);
        reader.seek(SeekFrom::Start(read_off)).map_err(io(&path))?;
        Ok(Journal {
            path,
            offset_path,
            file,
            reader,
            len,
            read_off,
            cursor: read_off,
            peeked: None,
            pending,
            max,
        })
    }

    /// Undelivered events.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Appends `event`; `Ok(false)` when the journal is full (the event is
    /// not kept).
    pub fn append(&mut self, event: &Event) -> Result<bool, JournalError> {
        let mut line = serde_json::to_vec(event).map_err(|e| io(&self.path)(e.into()))?;
        line.push(b'\n');
        if self.len + line.len() as u64 > self.max && self.read_off > 0 {
            // Delivered lines still take room: drop them first.
            self.compact()?;
        }
        if self.len + line.len() as u64 > self.max {
            return Ok(false);
        }
        // One write of a whole line: a crash leaves at most a torn tail.
        self.file.write_all(&line).map_err(io(&self.path))?;
        self.len += line.len() as u64;
        self.pending += 1;
        Ok(true)
    }

    /// The first undelivered event, if any (read once, then kept until
    /// [`Journal::ack`]). Unreadable lines are logged and skipped.
    pub fn peek(&mut self) -> Result<Option<Event>, JournalError> {
        loop {
            if let Some((e, _)) = &self.peeked {
                return Ok(Some(e.clone()));
            }
            if self.cursor >= self.len {
                return Ok(None);
            }
            let mut line = Vec::new();
            let n = self
                .reader
                .read_until(b'\n', &mut line)
                .map_err(io(&self.path))? as u64;
            if n == 0 {
                return Ok(None);
            }
            self.cursor += n;
            match serde_json::from_slice::<Event>(&line) {
                Ok(e) => self.peeked = Some((e, self.cursor)),
                Err(err) => {
                    tracing::error!(journal = %self.path.display(), error = %err, "skipping an unreadable journal line");
                    self.read_off = self.cursor;
                    self.pending = self.pending.saturating_sub(1);
                }
            }
        }
    }

    /// Marks the peeked event delivered (or given up); empties the file
    /// once nothing is left.
    pub fn ack(&mut self) -> Result<(), JournalError> {
        let Some((_, next)) = self.peeked.take() else {
            return Ok(());
        };
        self.read_off = next;
        self.pending = self.pending.saturating_sub(1);
        if self.read_off >= self.len {
            self.file.set_len(0).map_err(io(&self.path))?;
            self.len = 0;
            self.read_off = 0;
            self.cursor = 0;
            self.pending = 0;
            self.reader
                .seek(SeekFrom::Start(0))
                .map_err(io(&self.path))?;
        } else if self.read_off >= self.max / 2 {
            // An endpoint that never quite catches up: keep the file small.
            self.compact()?;
        }
        std::fs::write(&self.offset_path, self.read_off.to_string()).map_err(io(&self.offset_path))
    }

    /// Rewrites the journal without its delivered lines: the rest goes to
    /// a new file, locked before it replaces the old one. The offset is set
    /// to 0 before the rename, so a crash in between resends the delivered
    /// prefix of the old file (at least once) rather than skip lines.
    fn compact(&mut self) -> Result<(), JournalError> {
        let mut rest = Vec::new();
        let mut r = File::open(&self.path).map_err(io(&self.path))?;
        r.seek(SeekFrom::Start(self.read_off))
            .map_err(io(&self.path))?;
        r.read_to_end(&mut rest).map_err(io(&self.path))?;
        let tmp = self.path.with_extension("journal.tmp");
        let _ = std::fs::remove_file(&tmp);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .read(true)
            .open(&tmp)
            .map_err(io(&tmp))?;
        use rustix::fs::{flock, FlockOperation};
        flock(&file, FlockOperation::NonBlockingLockExclusive).map_err(|e| io(&tmp)(e.into()))?;
        (&file).write_all(&rest).map_err(io(&tmp))?;
        std::fs::write(&self.offset_path, "0").map_err(io(&self.offset_path))?;
        std::fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        // The new handle holds the lock on the new file from here on.
        self.file = file;
        let delivered = self.read_off;
        self.len -= delivered;
        self.cursor -= delivered;
        self.read_off = 0;
        if let Some((_, next)) = &mut self.peeked {
            *next -= delivered;
        }
        self.reader = BufReader::new(File::open(&self.path).map_err(io(&self.path))?);
        self.reader
            .seek(SeekFrom::Start(self.cursor))
            .map_err(io(&self.path))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::envelope::{ActorRecord, RequestRecord, SourceRecord, Target};

    fn ev(id: &str) -> Event {
        Event {
            id: id.into(),
            timestamp: "t".into(),
            action: "push".into(),
            target: Target::default(),
            request: RequestRecord::default(),
            actor: ActorRecord::default(),
            source: SourceRecord::default(),
        }
    }

    fn id(j: &mut Journal) -> Option<String> {
        j.peek().ok().flatten().map(|e| e.id)
    }

    #[test]
    fn replays_what_was_not_acknowledged() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        {
            let mut j =
                Journal::open(dir.path(), "hook", 1 << 20).unwrap_or_else(|e| panic!("{e}"));
            for i in 0..3 {
                assert!(j.append(&ev(&i.to_string())).unwrap_or(false));
            }
            assert_eq!(id(&mut j).as_deref(), Some("0"));
            j.ack().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(j.pending(), 2);
        }
        // A torn line, as a kill -9 mid-write leaves.
        let path = dir.path().join("hook.journal");
        let mut f = OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        f.write_all(b"{\"id\":\"torn")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut j = Journal::open(dir.path(), "hook", 1 << 20).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(j.pending(), 2);
        assert_eq!(id(&mut j).as_deref(), Some("1"));
        j.ack().unwrap_or_else(|e| panic!("{e}"));
        assert!(j.append(&ev("3")).unwrap_or(false));
        assert_eq!(id(&mut j).as_deref(), Some("2"));
        j.ack().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(id(&mut j).as_deref(), Some("3"));
        j.ack().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(id(&mut j), None);
        // All delivered: the file is empty again.
        assert_eq!(std::fs::metadata(&path).map(|m| m.len()).unwrap_or(1), 0);
    }

    #[test]
    fn delivered_lines_are_compacted_away_and_the_lock_kept() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let one = serde_json::to_vec(&ev("0"))
            .map(|v| v.len() as u64 + 1)
            .unwrap_or(0);
        // Room for four lines.
        let mut j = Journal::open(dir.path(), "c", one * 4).unwrap_or_else(|e| panic!("{e}"));
        for i in 0..4 {
            assert!(j.append(&ev(&i.to_string())).unwrap_or(false));
        }
        assert!(!j.append(&ev("x")).unwrap_or(true), "full");
        // Delivering two makes room (compaction at half the bound).
        for want in ["0", "1"] {
            assert_eq!(id(&mut j).as_deref(), Some(want));
            j.ack().unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(j.append(&ev("4")).unwrap_or(false));
        assert!(j.append(&ev("5")).unwrap_or(false));
        assert_eq!(j.pending(), 4);
        assert!(matches!(
            Journal::open(dir.path(), "c", one * 4),
            Err(JournalError::Locked(_))
        ));
        let mut got = Vec::new();
        while let Some(e) = id(&mut j) {
            got.push(e);
            j.ack().unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(got, ["2", "3", "4", "5"]);
        drop(j);
        // Reopened after a clean end: nothing left.
        let mut j = Journal::open(dir.path(), "c", one * 4).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((j.pending(), id(&mut j)), (0, None));
    }

    #[test]
    fn bounded_and_locked() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut j = Journal::open(dir.path(), "a b", 300).unwrap_or_else(|e| panic!("{e}"));
        let mut kept = 0;
        for i in 0..10 {
            if j.append(&ev(&i.to_string())).unwrap_or(false) {
                kept += 1;
            }
        }
        assert!(kept > 0 && kept < 10, "{kept}");
        assert!(matches!(
            Journal::open(dir.path(), "a b", 300),
            Err(JournalError::Locked(_))
        ));
        assert!(file_stem("a b").starts_with("a_b-"));
        assert_eq!(file_stem("hook-1"), "hook-1");
    }
}
