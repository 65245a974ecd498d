//! Storage figures: every driver call's latency and outcome, by driver and
//! operation (fixed tables: no keys in labels).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use super::histogram::Histogram;

/// The driver and writer calls that are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageOp {
    CheckReady,
    GetContent,
    PutContent,
    PutDeferred,
    Reader,
    ReadStream,
    Writer,
    Stat,
    List,
    HasChildren,
    Move,
    MoveDeferred,
    Sync,
    ApplyDeferred,
    Delete,
    RedirectUrl,
    Walk,
    WriterWrite,
    WriterCommit,
    WriterCommitDeferred,
    WriterCommitThen,
    WriterClose,
    WriterCancel,
}

/// Every operation, in label order (the enum's order).
const OPS: [StorageOp; 23] = {
    use StorageOp::*;
    [
        CheckReady,
        GetContent,
        PutContent,
        PutDeferred,
        Reader,
        ReadStream,
        Writer,
        Stat,
        List,
        HasChildren,
        Move,
        MoveDeferred,
        Sync,
        ApplyDeferred,
        Delete,
        RedirectUrl,
        Walk,
        WriterWrite,
        WriterCommit,
        WriterCommitDeferred,
        WriterCommitThen,
        WriterClose,
        WriterCancel,
    ]
};

impl StorageOp {
    /// The `operation` label value.
    pub fn label(self) -> &'static str {
        use StorageOp::*;
        match self {
            CheckReady => "check_ready",
            GetContent => "get_content",
            PutContent => "put_content",
            PutDeferred => "put_deferred",
            Reader => "reader",
            ReadStream => "read_stream",
            Writer => "writer",
            Stat => "stat",
            List => "list",
            HasChildren => "has_children",
            Move => "move",
            MoveDeferred => "move_deferred",
            Sync => "sync",
            ApplyDeferred => "apply_deferred",
            Delete => "delete",
            RedirectUrl => "redirect_url",
            Walk => "walk",
            WriterWrite => "writer_write",
            WriterCommit => "writer_commit",
            WriterCommitDeferred => "writer_commit_deferred",
            WriterCommitThen => "writer_commit_then",
            WriterClose => "writer_close",
            WriterCancel => "writer_cancel",
        }
    }
}

/// How a call ended: `not_found` is apart from `error` because asking for
/// an absent key is routine (existence checks), not a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok = 0,
    NotFound = 1,
    Error = 2,
}

const OUTCOMES: [&str; 3] = ["ok", "not_found", "error"];

#[derive(Default)]
struct OpStats {
    outcomes: [AtomicU64; 3],
    latency: Histogram,
}

/// The storage figures of one process (one driver).
#[derive(Default)]
pub struct StorageMetrics {
    /// The driver's name, set when the wrapper is built.
    driver: OnceLock<&'static str>,
    ops: [OpStats; OPS.len()],
}

impl StorageMetrics {
    /// Names the measured driver (the first name given stays).
    pub fn set_driver(&self, name: &'static str) {
        let _ = self.driver.set(name);
    }

    /// Records one call.
    pub fn record(&self, op: StorageOp, outcome: Outcome, took: Duration) {
        if let Some(s) = self.ops.get(op as usize) {
            if let Some(c) = s.outcomes.get(outcome as usize) {
                c.fetch_add(1, Ordering::Relaxed);
            }
            s.latency.observe(took);
        }
    }

    /// Calls of `op` that ended with `outcome` (tests, diagnostics).
    pub fn count(&self, op: StorageOp, outcome: Outcome) -> u64 {
        self.ops
            .get(op as usize)
            .and_then(|s| s.outcomes.get(outcome as usize))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Appends these figures in Prometheus text format; nothing when no
    /// driver is measured.
    pub fn render(&self, out: &mut String) {
        let Some(driver) = self.driver.get() else {
            return;
        };
        out.push_str(
            "# HELP berth_storage_operations_total Storage driver calls, by driver, operation and outcome (ok, not_found, error).\n\
             # TYPE berth_storage_operations_total counter\n",
        );
        for op in OPS {
            let s = &self.ops[op as usize];
            for (i, c) in s.outcomes.iter().enumerate() {
                let n = c.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "berth_storage_operations_total{{driver=\"{driver}\",operation=\"{}\",outcome=\"{}\"}} {n}",
                        op.label(),
                        OUTCOMES.get(i).copied().unwrap_or("error")
                    );
                }
            }
        }
        out.push_str(
            "# HELP berth_storage_operation_duration_seconds Storage driver call latency (streams: until opened), by driver and operation.\n\
             # TYPE berth_storage_operation_duration_seconds histogram\n",
        );
        for op in OPS {
            let s = &self.ops[op as usize];
            if s.latency.count() > 0 {
                let labels = format!("driver=\"{driver}\",operation=\"{}\"", op.label());
                s.latency
                    .render(out, "berth_storage_operation_duration_seconds", &labels);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_table_matches_the_enum_order() {
        for (i, op) in OPS.iter().enumerate() {
            assert_eq!(*op as usize, i, "{op:?}");
        }
    }
}
