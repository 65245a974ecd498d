//! The OCI vocabulary shared by every layer: digests, names and manifests.

pub mod digest;
pub mod manifest;
mod manifest_fields;
pub mod name;
pub mod sha256_state;
