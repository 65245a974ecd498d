//! Loader tests: real registry:2 configs and defaults (`loading`),
//! `REGISTRY_*` overrides (`overrides`), warnings and errors (`keys`).
//! The fixtures and helpers here are shared by the three.
#![allow(clippy::unwrap_used)]

use super::*;

mod keys;
mod limits;
mod loading;
mod object_store;
mod overrides;
mod parsing;
mod redaction;
use std::time::Duration;

/// Debian's `/etc/docker/registry/config.yml` (docker-registry 2.8.2), verbatim.
pub(super) const DEBIAN_CONFIG: &str = "\
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: basic-realm
    path: /etc/docker/registry
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
";

/// distribution's classic `cmd/registry/config-example.yml` (the registry:2 image default).
pub(super) const CLASSIC_CONFIG: &str = "\
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
";

/// A config using most typed keys, shaped like distribution's config-dev.yml
/// and the reference's option list.
pub(super) const FULL_CONFIG: &str = "\
version: 0.1
log:
  accesslog:
    disabled: true
  level: debug
  formatter: json
  fields:
    service: registry
    environment: development
storage:
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /srv/registry
    maxthreads: 100
  maintenance:
    uploadpurging:
      enabled: false
      age: 72h
      interval: 1h30m
      dryrun: true
    readonly:
      enabled: true
  redirect:
    disable: true
  tag:
    concurrencylimit: 8
http:
  addr: localhost:5000
  net: tcp
  prefix: /my/nested/registry/
  host: https://myregistryaddress.org:5000
  secret: asecretforlocaldevelopment
  relativeurls: true
  draintimeout: 60s
  tls:
    certificate: /path/to/x509/public
    key: /path/to/x509/private
    clientcas:
      - /path/to/ca.pem
    minimumtls: tls1.2
    ciphersuites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
  debug:
    addr: :5001
    prometheus:
      enabled: true
      path: /metrics
  headers:
    X-Content-Type-Options: [nosniff]
  http2:
    disabled: true
catalog:
  maxentries: 250
  refreshinterval: 5s
  indexlimit: 20000
";

pub(super) fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

pub(super) fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn load(yaml: &str) -> Result<(Config, Vec<String>), ConfigError> {
    Config::load_str(yaml, "test.yml", no_env())
}
