//! An endpoint's undelivered events: in memory (bounded by `queuesize`)
//! on object-store drivers, or in the journal on filesystem storage.

use std::collections::VecDeque;

use super::envelope::Event;
use super::journal::Journal;

/// Where one endpoint's undelivered events wait.
pub enum Backlog {
    /// At most `cap` events in memory.
    Memory { queue: VecDeque<Event>, cap: usize },
    /// The durable journal.
    Journal(Box<Journal>),
}

/// What happened to an event offered to the backlog.
#[derive(Debug, PartialEq, Eq)]
pub enum Offered {
    /// Kept.
    Kept,
    /// The bound was reached: not kept.
    Full,
    /// Writing it failed: not kept.
    Failed,
}

impl Backlog {
    /// An in-memory backlog of at most `cap` events.
    pub fn memory(cap: usize) -> Backlog {
        Backlog::Memory {
            queue: VecDeque::new(),
            cap,
        }
    }

    /// Keeps `event` unless the bound is reached.
    pub fn push(&mut self, event: &Event) -> Offered {
        match self {
            Backlog::Memory { queue, cap } => {
                if queue.len() >= *cap {
                    return Offered::Full;
                }
                queue.push_back(event.clone());
                Offered::Kept
            }
            Backlog::Journal(j) => match j.append(event) {
                Ok(true) => Offered::Kept,
                Ok(false) => Offered::Full,
                Err(e) => {
                    tracing::error!(error = %e, "cannot append to the events journal");
                    Offered::Failed
                }
            },
        }
    }

    /// The oldest undelivered event.
    pub fn peek(&mut self) -> Option<Event> {
        match self {
            Backlog::Memory { queue, .. } => queue.front().cloned(),
            Backlog::Journal(j) => j.peek().unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot read the events journal");
                None
            }),
        }
    }

    /// Removes the event [`Backlog::peek`] returned.
    pub fn ack(&mut self) {
        match self {
            Backlog::Memory { queue, .. } => {
                queue.pop_front();
            }
            Backlog::Journal(j) => {
                if let Err(e) = j.ack() {
                    tracing::error!(error = %e, "cannot record a delivery in the events journal; it may be sent again after a restart");
                }
            }
        }
    }

    /// Undelivered events held.
    pub fn len(&self) -> u64 {
        match self {
            Backlog::Memory { queue, .. } => queue.len() as u64,
            Backlog::Journal(j) => j.pending(),
        }
    }
}
