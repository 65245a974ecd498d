//! Manifest media types and parsing (to be written).
