//! Command-line interface: `berth serve`, `berth config check|print`,
//! `berth cert`, `berth garbage-collect`, `berth completions`, `berth man`,
//! `berth --version`. Flags override the file and `REGISTRY_*` variables.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::env::CONFIGURATION_PATH_VAR;
use crate::config::{Config, LogConfig};

mod gc;
mod htpasswd;

use gc::garbage_collect;
use htpasswd::htpasswd;
pub use htpasswd::HtpasswdCommand;

/// berth: a container image registry, drop-in for registry:2.
#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version = env!("BERTH_LONG_VERSION"),
    about,
    propagate_version = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the registry.
    Serve(ServeArgs),
    /// Inspect configuration without starting the server.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage an htpasswd file of bcrypt users (for `auth.htpasswd`).
    #[command(subcommand)]
    Htpasswd(HtpasswdCommand),
    /// Make a CA (or reuse the one in --out) and a server certificate signed
    /// by it, and print where each client puts the CA.
    Cert(CertArgs),
    /// Delete blobs no manifest references (and, with --delete-untagged,
    /// manifests no tag keeps), like `registry garbage-collect`. Run it with
    /// the registry stopped or read-only; `storage.maintenance.gc` collects
    /// online instead.
    GarbageCollect(GcArgs),
    /// Ask the registry this configuration describes for `/healthz`; exit 0
    /// on 200 (a container HEALTHCHECK: the image has no shell or curl).
    Healthcheck(HealthcheckArgs),
    /// Print a shell completion script for SHELL on standard output (e.g.
    /// `berth completions bash > /etc/bash_completion.d/berth`).
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on standard output (e.g.
    /// `berth man > /usr/local/share/man/man1/berth.1`).
    Man,
}

/// `berth healthcheck [CONFIG] [--config FILE] [--timeout SECS]`.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Configuration file of the registry to probe (default: embedded
    /// default, or $REGISTRY_CONFIGURATION_PATH when set).
    #[arg(long, short = 'c', value_name = "FILE", conflicts_with = "config_file")]
    pub config: Option<PathBuf>,
    /// Configuration file, positional.
    #[arg(value_name = "CONFIG")]
    pub config_file: Option<PathBuf>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub timeout: u64,
}

/// `berth garbage-collect [CONFIG] [--config FILE] [--root DIR] [-d] [-m]`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Configuration file (default: embedded default, or
    /// $REGISTRY_CONFIGURATION_PATH when set).
    #[arg(long, short = 'c', value_name = "FILE", conflicts_with = "config_file")]
    pub config: Option<PathBuf>,
    /// Configuration file, positional like `registry garbage-collect CONFIG`.
    #[arg(value_name = "CONFIG")]
    pub config_file: Option<PathBuf>,
    /// Use filesystem storage rooted at DIR, replacing the configured driver.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Print what would be deleted; delete nothing.
    #[arg(long, short = 'd')]
    pub dry_run: bool,
    /// Also delete manifests that no tag points at (never children of a
    /// tagged index, nor referrers of a kept manifest).
    #[arg(long, short = 'm')]
    pub delete_untagged: bool,
}

/// `berth serve [CONFIG] [--config FILE] [--addr ADDR] [--root DIR]`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file in distribution's schema (default: embedded
    /// default, or $REGISTRY_CONFIGURATION_PATH when set).
    #[arg(long, short = 'c', value_name = "FILE", conflicts_with = "config_file")]
    pub config: Option<PathBuf>,
    /// Configuration file, positional like `registry serve CONFIG`.
    #[arg(value_name = "CONFIG")]
    pub config_file: Option<PathBuf>,
    /// Listen address, overriding `http.addr` (e.g. `:5000`, `127.0.0.1:5000`).
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<String>,
    /// Use filesystem storage rooted at DIR, replacing the configured driver.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// `berth cert --host NAME --ip ADDR ... --out DIR [--days N] [--port P]`.
#[derive(Debug, Args)]
pub struct CertArgs {
    /// DNS name clients reach the registry at (repeatable; the first is the
    /// certificate's CN).
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,
    /// IP address clients reach the registry at (repeatable).
    #[arg(long = "ip", value_name = "ADDR")]
    pub ips: Vec<std::net::IpAddr>,
    /// Directory for ca.crt, ca.key, server.crt and server.key; an existing
    /// CA there is reused, never overwritten.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Validity of the server certificate in days.
    #[arg(long, default_value_t = 365, value_name = "N")]
    pub days: u32,
    /// Port the registry serves on, for the client paths printed.
    #[arg(long, default_value_t = 5000, value_name = "PORT")]
    pub port: u16,
}

/// `berth config ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate FILE (with `REGISTRY_*` overrides) exactly as `serve` does
    /// (TLS files, auth files, storage root; no port is bound) and print the
    /// effective configuration; exits non-zero if berth could not serve it.
    Check {
        /// Configuration file.
        file: PathBuf,
        /// Treat every warning (unknown key, accepted-not-implemented key,
        /// duplicate key, ...) as an error, for CI pipelines.
        #[arg(long)]
        strict: bool,
    },
    /// Print the effective configuration (FILE, else
    /// $REGISTRY_CONFIGURATION_PATH, else the embedded default).
    Print {
        /// Configuration file.
        file: Option<PathBuf>,
    },
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Config(ConfigCommand::Check { file, strict }) => check(&file, strict).await,
        Command::Config(ConfigCommand::Print { file }) => {
            let path = file.or_else(configuration_path_from_env);
            let (config, warnings) = load(path.as_deref())?;
            print_warnings(&warnings);
            print!("{}", config.to_yaml()?);
            Ok(())
        }
        Command::Htpasswd(cmd) => htpasswd(cmd),
        Command::Cert(args) => cert(args),
        Command::GarbageCollect(args) => garbage_collect(args).await,
        Command::Healthcheck(args) => healthcheck(args).await,
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "berth", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .context("rendering the man page")?;
            std::io::Write::write_all(&mut std::io::stdout(), &out)
                .context("writing the man page")?;
            Ok(())
        }
    }
}

/// `berth healthcheck`: prints the answer's status line; fails unless 200.
async fn healthcheck(args: HealthcheckArgs) -> anyhow::Result<()> {
    let path = args
        .config
        .or(args.config_file)
        .or_else(configuration_path_from_env);
    let (config, _warnings) = load(path.as_deref())?;
    let timeout = std::time::Duration::from_secs(args.timeout.max(1));
    let status = crate::healthcheck::probe(&config, timeout).await?;
    println!("{status}");
    Ok(())
}

/// `berth cert`: writes the files, then prints what to do with them.
fn cert(args: CertArgs) -> anyhow::Result<()> {
    let req = crate::cert::CertRequest {
        hosts: args.hosts,
        ips: args.ips,
        out: args.out,
        days: args.days,
    };
    let written = crate::cert::make(&req)?;
    print!("{}", crate::cert::instructions(&req, &written, args.port));
    Ok(())
}

/// Loads the effective config for `serve`, applies flags, sets up logging
/// and reports the warnings once, then hands over to the server (which
/// checks everything before binding).
async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let path = args
        .config
        .or(args.config_file)
        .or_else(configuration_path_from_env);
    let (mut config, warnings) = load(path.as_deref())?;
    if let Some(addr) = args.addr {
        config.http.addr = addr;
    }
    if let Some(root) = args.root {
        config.set_filesystem_root(root);
    }
    config.validate().context("invalid configuration")?;
    init_tracing(&config.log)?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    tracing::debug!(
        config = %path.as_deref().map_or_else(|| "embedded default".into(), |p| p.display().to_string()),
        "configuration loaded"
    );
    crate::app::serve(config).await
}

/// `berth config check FILE [--strict]`: the validation `serve` runs
/// ([`crate::app::prepare`]), without binding ports. With `strict`, any
/// warning fails the check too.
async fn check(file: &Path, strict: bool) -> anyhow::Result<()> {
    let (config, warnings) = load(Some(file))?;
    print_warnings(&warnings);
    crate::app::prepare(&config)?;
    for line in crate::config::mirror::describe(config.proxy.as_ref(), &config.mirrors) {
        eprintln!("{line}");
    }
    if strict && !warnings.is_empty() {
        anyhow::bail!(
            "{} warning(s) in {} and --strict was given",
            warnings.len(),
            file.display()
        );
    }
    print!("{}", config.to_yaml()?);
    for line in crate::events::describe_endpoints(&config) {
        eprintln!("{line}");
    }
    eprintln!("configuration {} is valid", file.display());
    Ok(())
}

/// Loads with the process environment's `REGISTRY_*` variables.
fn load(path: Option<&Path>) -> anyhow::Result<(Config, Vec<String>)> {
    Ok(Config::load(path, process_env())?)
}

/// The process environment; variables that are not valid UTF-8 are
/// skipped instead of panicking.
fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// distribution reads the config path from this variable when no argument
/// is given.
fn configuration_path_from_env() -> Option<PathBuf> {
    std::env::var_os(CONFIGURATION_PATH_VAR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn print_warnings(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

/// Sets up the global tracing subscriber from `log.level`,
/// `log.formatter` (`json`/`logstash` → JSON lines) and `log.fields` (on
/// every line). `RUST_LOG`, when set,
/// replaces the level filter.
pub fn init_tracing(log: &LogConfig) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;

    let level = match log.level.to_ascii_lowercase().as_str() {
        "panic" | "fatal" | "error" => "error",
        "warn" | "warning" => "warn",
        "debug" => "debug",
        "trace" => "trace",
        _ => "info",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.is_empty() => EnvFilter::try_new(&s).context("invalid RUST_LOG")?,
        _ => EnvFilter::new(level),
    };
    let json = matches!(log.formatter.as_str(), "json" | "logstash");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::logfields::FieldsWriter::new(json, &log.fields))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| anyhow::anyhow!("setting up logging: {e}"))
}
