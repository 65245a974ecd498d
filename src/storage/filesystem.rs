//! Filesystem driver (to be written).
