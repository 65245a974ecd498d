//! `REGISTRY_*` environment overrides applied to the YAML tree (to be written).
