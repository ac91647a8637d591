//! `rapport create-admin`: the first admin account, with a password from the environment
//! (`RAPPORT_ADMIN_PASSWORD`) or typed at a prompt without echo, never from the command line
//! (where it would end up in shell history and process listings).

use std::io::{BufRead, IsTerminal, Write};

use entity::account::{self, AccountRole};
use secrecy::{ExposeSecret, SecretString};

use crate::{
    config::Settings,
    db,
    domain::accounts::{self, NewAccount},
    error::AppError,
};

/// The environment variable read for the password before prompting.
pub const PASSWORD_ENV: &str = "RAPPORT_ADMIN_PASSWORD";

/// Turn terminal echo on or off (Unix `stty`); harmless where unavailable.
fn set_echo(on: bool) {
    let _ = std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Read one line from standard input; on a terminal, show `label` and hide what is typed.
fn read_secret_line(label: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    if interactive {
        eprint!("{label}");
        std::io::stderr().flush()?;
        set_echo(false);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if interactive {
        set_echo(true);
        eprintln!();
    }
    if read? == 0 {
        anyhow::bail!("no password given: set {PASSWORD_ENV} or type it at the prompt");
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// The new admin's password: `RAPPORT_ADMIN_PASSWORD`, else a prompt (asked twice on a
/// terminal), else one line of piped standard input.
pub fn admin_password(from_env: Option<String>) -> anyhow::Result<SecretString> {
    if let Some(password) = from_env.filter(|p| !p.is_empty()) {
        return Ok(SecretString::from(password));
    }
    let first = read_secret_line("Password for the new admin (at least 12 characters): ")?;
    if std::io::stdin().is_terminal() {
        let second = read_secret_line("Repeat the password: ")?;
        if first != second {
            anyhow::bail!("the passwords do not match");
        }
    }
    Ok(SecretString::from(first))
}

/// Connect, migrate and create an ADMIN account.
pub async fn create_admin(
    settings: &Settings,
    email: &str,
    display_name: Option<&str>,
    password: &SecretString,
) -> anyhow::Result<account::Model> {
    let db = db::connect(&settings.database, None).await?;
    db::migrate(&db).await?;
    let input = NewAccount {
        email: email.to_owned(),
        password: password.expose_secret().to_owned(),
        role: AccountRole::Admin,
        funder_id: None,
        display_name: display_name.unwrap_or("Administrator").to_owned(),
    };
    accounts::create_unchecked(&db, input).await.map_err(|err| match err {
        AppError::Internal(cause) => cause,
        other => anyhow::anyhow!("{other}"),
    })
}
