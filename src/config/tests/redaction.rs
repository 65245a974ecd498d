//! `config print`/`config check` never show a secret: each family's
//! secrets are set to a marker, and the printed YAML must not contain it
//! (and must still load).

use super::*;

/// Loads `yaml`, prints it, checks no `SECRET` marker survived, that the
/// output loads again, and returns it.
fn printed(yaml: &str) -> String {
    let yaml = if yaml.contains("storage:") {
        yaml.to_string()
    } else {
        format!("{yaml}storage:\n  inmemory: {{}}\n")
    };
    let yaml = yaml.as_str();
    let (c, _) = load(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let out = c.to_yaml().unwrap();
    assert!(!out.contains("SECRET"), "a secret was printed:\n{out}");
    assert!(out.contains("<redacted>"), "{out}");
    let again: serde_yaml_ng::Value = serde_yaml_ng::from_str(&out).unwrap();
    assert!(again.is_mapping());
    out
}

#[test]
fn s3_keys_are_redacted() {
    let out = printed(
        "version: 0.1\nstorage:\n  s3:\n    bucket: b\n    region: us-east-1\n    \
         accesskey: AKSECRET1\n    secretkey: SECRET2\n    sessiontoken: SECRET3\n",
    );
    assert!(
        out.contains("bucket: b") && out.contains("region: us-east-1"),
        "{out}"
    );
}

#[test]
fn azure_keys_and_connection_strings_are_redacted() {
    printed(
        "version: 0.1\nstorage:\n  azure:\n    accountname: acct\n    accountkey: SECRETKEY\n    \
         container: c\n",
    );
    printed(
        "version: 0.1\nstorage:\n  azure:\n    container: c\n    connectionstring: \
         \"AccountName=acct;AccountKey=SECRETKEY;BlobEndpoint=http://127.0.0.1:10000/acct\"\n",
    );
    printed(
        "version: 0.1\nstorage:\n  azure:\n    accountname: acct\n    container: c\n    \
         credentials:\n      type: client_secret\n      clientid: id\n      tenantid: t\n      \
         secret: SECRETCLIENT\n",
    );
}

#[test]
fn gcs_private_key_is_redacted() {
    let out = printed(
        "version: 0.1\nstorage:\n  gcs:\n    bucket: b\n    credentials:\n      \
         type: service_account\n      client_email: a@p.iam.gserviceaccount.com\n      \
         private_key_id: SECRETID\n      private_key: \"-----BEGIN PRIVATE KEY-----SECRET\"\n",
    );
    assert!(out.contains("a@p.iam.gserviceaccount.com"), "{out}");
}

#[test]
fn mirror_and_proxy_passwords_are_redacted() {
    printed(
        "version: 0.1\nproxy:\n  remoteurl: https://user:SECRETURL@registry-1.docker.io\n  \
         username: bob\n  password: SECRETPW\n",
    );
    let out = printed(
        "version: 0.1\nmirrors:\n  - prefix: hub\n    remoteurl: https://registry-1.docker.io\n    \
         username: bob\n    password: SECRETPW\n",
    );
    assert!(out.contains("username: bob"), "{out}");
}

#[test]
fn notification_headers_secrets_and_url_credentials_are_redacted() {
    let out = printed(
        "version: 0.1\nnotifications:\n  endpoints:\n    - name: ci\n      \
         url: https://hook:SECRETPW@ci.example/hook?token=SECRETQ\n      \
         headers:\n        Authorization: [Bearer SECRETTOKEN]\n      hmacsecret: SECRETHMAC\n",
    );
    assert!(
        out.contains("Authorization") && out.contains("https://ci.example/hook?token="),
        "{out}"
    );
}

#[test]
fn http_secret_and_health_headers_are_redacted() {
    printed(
        "version: 0.1\nhttp:\n  secret: SECRETHTTP\nhealth:\n  http:\n    - uri: http://h/x\n      \
         headers:\n        Authorization: [Basic SECRETB]\n",
    );
}

#[test]
fn raw_sections_are_redacted_by_key_name() {
    let out = printed(
        "version: 0.1\nredis:\n  addr: r:6379\n  password: SECRETREDIS\nreporting:\n  bugsnag:\n    \
         apikey: SECRETBUG\n  newrelic:\n    licensekey: SECRETNR\n",
    );
    assert!(out.contains("addr: r:6379"), "{out}");
}
