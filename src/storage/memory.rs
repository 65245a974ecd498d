//! In-memory driver (to be written).
