//! The OCI vocabulary shared by every layer: digests, names and manifests.

pub mod digest;
pub mod manifest;
pub mod name;
pub mod sha256_state;
