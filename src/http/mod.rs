//! HTTP layer (to be written).
