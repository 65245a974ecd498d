//! `berth htpasswd ...`: adding, changing and removing bcrypt users.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

/// `berth htpasswd ...` subcommands. The password is read from standard
/// input when it is not a terminal (first line, without its line ending),
/// else prompted for without echo.
#[derive(Debug, Subcommand)]
pub enum HtpasswdCommand {
    /// Add USER to FILE (created, mode 0600, when missing), or change the
    /// password of an existing USER. Asks for the password twice on a terminal.
    Add {
        /// The htpasswd file.
        file: PathBuf,
        /// The user name (no ':' or line breaks).
        user: String,
        /// bcrypt cost: each step doubles the work of every login and of
        /// every guess. Apache's `htpasswd -B` defaults to 5.
        #[arg(long, default_value_t = crate::auth::htpasswd::DEFAULT_COST,
              value_parser = clap::value_parser!(u32).range(4..=31))]
        cost: u32,
    },
    /// Remove USER from FILE; fails when USER is not there.
    Delete {
        /// The htpasswd file.
        file: PathBuf,
        /// The user name.
        user: String,
    },
    /// Check USER's password: exits 0 when it is correct, 1 otherwise.
    Verify {
        /// The htpasswd file.
        file: PathBuf,
        /// The user name.
        user: String,
    },
}

/// Runs `berth htpasswd ...`. bcrypt runs on this thread: nothing else is
/// running in the CLI.
pub(super) fn htpasswd(cmd: HtpasswdCommand) -> anyhow::Result<()> {
    use crate::auth::htpasswd as h;
    match cmd {
        HtpasswdCommand::Add { file, user, cost } => {
            let existed = file.exists() && h::lookup_user(&file, &user).is_ok_and(|u| u.is_some());
            let password = read_password(true)?;
            h::add_user(&file, &user, &password, cost)?;
            if existed {
                eprintln!("updated password of user {user:?} in {}", file.display());
            } else {
                eprintln!("added user {user:?} to {}", file.display());
            }
            Ok(())
        }
        HtpasswdCommand::Delete { file, user } => {
            if !h::delete_user(&file, &user)? {
                anyhow::bail!("user {user:?} not found in {}", file.display());
            }
            eprintln!("deleted user {user:?} from {}", file.display());
            Ok(())
        }
        HtpasswdCommand::Verify { file, user } => {
            let password = read_password(false)?;
            match h::lookup_user(&file, &user)? {
                None => anyhow::bail!(
                    "password incorrect: user {user:?} is not in {}",
                    file.display()
                ),
                Some(_) if !h::verify_user(&file, &user, &password)? => {
                    anyhow::bail!("password incorrect for user {user:?}")
                }
                Some(_) => {
                    eprintln!("password correct for user {user:?}");
                    Ok(())
                }
            }
        }
    }
}

/// The password: first line of standard input when it is not a terminal
/// (for scripts: `echo "$PW" | berth htpasswd add ...`), else prompted for
/// without echo (twice when `confirm`).
fn read_password(confirm: bool) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};

    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("reading password")?;
        if confirm {
            let again =
                rpassword::prompt_password("Retype password: ").context("reading password")?;
            if again != first {
                anyhow::bail!("passwords do not match");
            }
        }
        return Ok(first);
    }
    let mut line = String::new();
    let n = stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    if n == 0 {
        anyhow::bail!("no password on standard input (expected it on the first line)");
    }
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    Ok(line)
}
