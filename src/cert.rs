//! `berth cert`: a private CA and a server certificate signed by it, so a
//! registry can serve HTTPS without a public CA. The CA is made once and
//! reused (clients that trust it keep working when the server certificate
//! is renewed); the output says where each client looks for the CA.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// CA file names inside the output directory (what clients install).
pub const CA_CERT: &str = "ca.crt";
/// The CA's private key; keep it off the registry host if you can.
pub const CA_KEY: &str = "ca.key";
/// The certificate `http.tls.certificate` points at.
pub const SERVER_CERT: &str = "server.crt";
/// The key `http.tls.key` points at.
pub const SERVER_KEY: &str = "server.key";

/// How long a new CA is valid: long, so clients are configured once.
const CA_YEARS: i64 = 10;

/// What to certify and where to write it.
#[derive(Debug, Clone)]
pub struct CertRequest {
    /// DNS names clients use to reach the registry; the first is the CN.
    pub hosts: Vec<String>,
    /// IP addresses clients use to reach the registry.
    pub ips: Vec<IpAddr>,
    /// Directory for ca.crt, ca.key, server.crt, server.key.
    pub out: PathBuf,
    /// Validity of the server certificate, in days.
    pub days: u32,
}

/// What [`make`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// `ca.crt`.
    pub ca_cert: PathBuf,
    /// `ca.key`.
    pub ca_key: PathBuf,
    /// `server.crt`.
    pub server_cert: PathBuf,
    /// `server.key`.
    pub server_key: PathBuf,
    /// True when an existing CA in the directory signed the certificate.
    pub ca_reused: bool,
    /// When the server certificate expires.
    pub not_after: OffsetDateTime,
}

/// Makes (or reuses) the CA in `req.out` and writes a new server
/// certificate and key signed by it. An existing CA is never overwritten;
/// the server files are replaced atomically (a running berth reloads them).
pub fn make(req: &CertRequest) -> anyhow::Result<Written> {
    // Every argument is checked before anything is written.
    let first = match (req.hosts.first(), req.ips.first()) {
        (Some(h), _) => h.clone(),
        (None, Some(ip)) => ip.to_string(),
        (None, None) => bail!("name at least one --host or --ip the registry is reached at"),
    };
    let subject_alt_names = sans(&req.hosts, &req.ips)?;
    let now = OffsetDateTime::now_utc();
    let not_after = server_not_after(now, req.days)?;
    std::fs::create_dir_all(&req.out)
        .with_context(|| format!("cannot create {}", req.out.display()))?;
    let out = std::fs::canonicalize(&req.out)
        .with_context(|| format!("cannot resolve {}", req.out.display()))?;
    let paths = |name: &str| out.join(name);
    let (ca_cert, ca_key) = (paths(CA_CERT), paths(CA_KEY));

    let (issuer, ca_reused) = match (ca_cert.exists(), ca_key.exists()) {
        (true, true) => (load_ca(&ca_cert, &ca_key)?, true),
        (false, false) => (new_ca(&first, now, &ca_cert, &ca_key)?, false),
        (true, false) | (false, true) => bail!(
            "{} has only one of {CA_CERT} and {CA_KEY}; berth will not replace a CA it cannot \
             use. Restore the missing file, or move both away to make a new CA",
            out.display()
        ),
    };

    let mut params = CertificateParams::default();
    params.subject_alt_names = subject_alt_names;
    params.distinguished_name.push(DnType::CommonName, first);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "berth");
    params.serial_number = Some(random_serial());
    params.not_before = now - Duration::hours(1);
    params.not_after = not_after;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().context("generating the server key")?;
    let cert = params
        .signed_by(&key, &issuer)
        .context("signing the server certificate")?;

    let (server_cert, server_key) = (paths(SERVER_CERT), paths(SERVER_KEY));
    // Key first: a reloading server waits for both files to settle anyway.
    replace_file(&server_key, key.serialize_pem().as_bytes(), 0o600)?;
    replace_file(&server_cert, cert.pem().as_bytes(), 0o644)?;
    Ok(Written {
        ca_cert,
        ca_key,
        server_cert,
        server_key,
        ca_reused,
        not_after: params.not_after,
    })
}

/// Longest validity accepted for the server certificate: 100 years (X.509
/// dates end at 9999, and no client needs more).
pub const MAX_DAYS: u32 = 36_500;

/// When a server certificate made `now` for `days` expires; refuses 0 and
/// more than [`MAX_DAYS`].
fn server_not_after(now: OffsetDateTime, days: u32) -> anyhow::Result<OffsetDateTime> {
    if days == 0 {
        bail!("--days must be at least 1");
    }
    if days > MAX_DAYS {
        bail!("--days {days} is too long: at most {MAX_DAYS} (100 years)");
    }
    now.checked_add(Duration::days(i64::from(days)))
        .filter(|t| t.year() <= 9999)
        .with_context(|| format!("--days {days} ends after the year 9999"))
}

/// Whether `name` is a DNS name a certificate can carry: dot-separated
/// labels of letters, digits and inner hyphens, 1..=63 bytes each, 253 in
/// all; the first label may be `*` (a wildcard). A trailing dot is allowed.
pub fn valid_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    name.split('.').enumerate().all(|(i, label)| {
        (i == 0 && label == "*" && name.contains('.'))
            || (!label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    })
}

/// DNS and IP subject alternative names; a DNS name that is really an IP
/// goes in as an IP (clients match IPs only against IP SANs).
fn sans(hosts: &[String], ips: &[IpAddr]) -> anyhow::Result<Vec<SanType>> {
    let mut out = Vec::new();
    for h in hosts {
        let san = match h.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) if !valid_dns_name(h) => bail!(
                "--host {h:?} is not a valid DNS name (letters, digits, '-' and '.'; use --ip for addresses)"
            ),
            Err(_) => SanType::DnsName(
                h.as_str()
                    .try_into()
                    .with_context(|| format!("--host {h:?} is not a valid DNS name"))?,
            ),
        };
        if !out.contains(&san) {
            out.push(san);
        }
    }
    for ip in ips {
        let san = SanType::IpAddress(*ip);
        if !out.contains(&san) {
            out.push(san);
        }
    }
    Ok(out)
}

/// A positive random 128-bit serial, so every certificate is distinct.
fn random_serial() -> rcgen::SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    rcgen::SerialNumber::from(bytes.to_vec())
}

/// Makes a CA and writes it (never over an existing file).
fn new_ca(
    first: &str,
    now: OffsetDateTime,
    cert_path: &Path,
    key_path: &Path,
) -> anyhow::Result<Issuer<'static, KeyPair>> {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("berth CA for {first}"));
    params
        .distinguished_name
        .push(DnType::OrganizationName, "berth");
    params.serial_number = Some(random_serial());
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(365 * CA_YEARS);
    let key = KeyPair::generate().context("generating the CA key")?;
    let cert = params.self_signed(&key).context("self-signing the CA")?;
    create_new_file(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    create_new_file(cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok(Issuer::new(params, key))
}

/// Reads an existing CA to sign with.
fn load_ca(cert_path: &Path, key_path: &Path) -> anyhow::Result<Issuer<'static, KeyPair>> {
    let key_pem = std::fs::read_to_string(key_path)
        .with_context(|| format!("cannot read {}", key_path.display()))?;
    let cert_pem = std::fs::read_to_string(cert_path)
        .with_context(|| format!("cannot read {}", cert_path.display()))?;
    let key = KeyPair::from_pem(&key_pem)
        .with_context(|| format!("{} is not a PEM private key", key_path.display()))?;
    Issuer::from_ca_cert_pem(&cert_pem, key)
        .with_context(|| format!("{} is not a PEM CA certificate", cert_path.display()))
}

/// Creates `path` with `mode`, failing if it exists.
fn create_new_file(path: &Path, data: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `path` atomically (temporary file + rename) with `mode`.
fn replace_file(path: &Path, data: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(
        ".{}.tmp{}",
        name.unwrap_or_default(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    create_new_file(&tmp, data, mode)?;
    // The umask may have cleared bits; set exactly what was asked.
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
}

/// `host:port` as clients write it (IPv6 in brackets).
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// What to do next: the config to serve with, and for every name and
/// `port`, where each client looks for the CA.
pub fn instructions(req: &CertRequest, w: &Written, port: u16) -> String {
    let ca = w.ca_cert.display();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} {ca}\nwrote {} (valid until {}) and {}\n",
        if w.ca_reused {
            "reused the existing CA"
        } else {
            "made a new CA:"
        },
        w.server_cert.display(),
        w.not_after.date(),
        w.server_key.display()
    );
    let _ = writeln!(
        s,
        "Serve with it, in the config file:\n\n  http:\n    addr: :{port}\n    tls:\n      \
         certificate: {crt}\n      key: {key}\n\nor with environment variables:\n\n  \
         REGISTRY_HTTP_TLS_CERTIFICATE={crt} REGISTRY_HTTP_TLS_KEY={key} \\\n    \
         berth serve --addr 0.0.0.0:{port}\n\nRun `berth cert` again with the same --out to \
         renew: the CA is kept, so clients keep trusting it, and a running berth picks up \
         the new server certificate by itself.\n",
        crt = w.server_cert.display(),
        key = w.server_key.display(),
    );
    let _ = writeln!(
        s,
        "Trust the CA on each client machine (copy {ca} there first; ca.key stays private):\n"
    );
    let names = req
        .hosts
        .iter()
        .cloned()
        .chain(req.ips.iter().map(ToString::to_string));
    for name in names {
        let hp = host_port(&name, port);
        let _ = writeln!(
            s,
            "  {hp}\n    docker:                   /etc/docker/certs.d/{hp}/ca.crt\n    \
             podman, skopeo, buildah:  /etc/containers/certs.d/{hp}/ca.crt\n    \
             containerd:               /etc/containerd/certs.d/{hp}/ca.crt and \
             /etc/containerd/certs.d/{hp}/hosts.toml:\n        \
             server = \"https://{hp}\"\n        [host.\"https://{hp}\"]\n          \
             ca = \"/etc/containerd/certs.d/{hp}/ca.crt\"\n"
        );
    }
    let _ = writeln!(
        s,
        "  everything else (curl, helm, oras, the docker daemon too) via the system trust store:\n    \
         cp {ca} /usr/local/share/ca-certificates/berth-ca.crt && update-ca-certificates"
    );
    s
}

#[cfg(test)]
#[path = "cert_tests.rs"]
mod tests;
