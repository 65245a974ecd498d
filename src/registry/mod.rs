//! Registry layer (to be written).
