//! The `rapport` command line: serve (default), migrate, schema, token, seed.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

use crate::{
    auth::{JwtKeys, Role, Scope, TokenRequest},
    config::Settings,
    db, graphql,
    startup::Application,
    telemetry,
};

#[derive(Parser, Debug)]
#[command(name = "rapport", version, about = "Rapport: relationship management for libraries (GraphQL API)")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the API server (the default).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Mint an access token with the configured key (for operators and tests).
    Token(TokenArgs),
    /// Fill an empty database with the demo library and exit.
    Seed,
    /// Exit 0 when the server at RAPPORT_BIND answers `/readyz` (for container health checks).
    Healthcheck,
    /// Create an ADMIN account. The password comes from RAPPORT_ADMIN_PASSWORD or a prompt,
    /// never from the command line.
    CreateAdmin(CreateAdminArgs),
    /// Apply the retention policy now: anonymise interactions older than RETENTION_DAYS (or
    /// --days) and delete expired refresh tokens, then exit.
    Purge(PurgeArgs),
    /// Recompute the funder-report roll-ups from the interactions, then exit.
    RebuildRollups,
    /// Offline evaluation of recommendations: hold out each patron's most recent service and
    /// report hit-rate@5 of the ranking against a popularity-within-type baseline, then exit.
    EvalRecommendations,
}

#[derive(Args, Debug)]
struct PurgeArgs {
    /// Days to keep interactions linked to their patron (default: RETENTION_DAYS).
    #[arg(long)]
    days: Option<u32>,
}

#[derive(Args, Debug)]
struct CreateAdminArgs {
    /// Login email of the new admin.
    #[arg(long)]
    email: String,
    /// Name shown for the account (default: "Administrator").
    #[arg(long)]
    name: Option<String>,
}

#[derive(Args, Debug, Default)]
struct ServeArgs {
    /// Fill an empty database with a realistic demo library (also RAPPORT_DEMO=1).
    #[arg(long)]
    demo: bool,
}

#[derive(Args, Debug)]
struct TokenArgs {
    /// ADMIN, STAFF, PATRON, FUNDER or PARTNER.
    #[arg(long)]
    role: Role,
    /// Subject: account id, patron id (PATRON) or client id (PARTNER).
    #[arg(long)]
    sub: Option<String>,
    /// The funder a FUNDER token belongs to.
    #[arg(long)]
    funder: Option<Uuid>,
    /// Partner scopes, e.g. `--scope patrons:read --scope interactions:write`.
    #[arg(long = "scope")]
    scopes: Vec<Scope>,
    /// Lifetime in seconds (default: the configured access-token TTL).
    #[arg(long)]
    ttl: Option<u64>,
}

pub fn main() -> ExitCode {
    // A missing .env is normal; a broken one is worth a warning once logging is up.
    let dotenv = dotenvy::dotenv();
    let cli = Cli::parse();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init("info,sqlx=warn,sea_orm=warn", settings.log_format_json, std::io::stderr);
    if let Err(err) = dotenv
        && !err.not_found()
    {
        tracing::warn!(error = %err, "could not read .env");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve(ServeArgs::default())), settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = ?err, "rapport failed");
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, mut settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            settings.demo |= args.demo;
            let demo = settings.demo;
            let app = Application::build(settings).await?;
            let base = format!("http://{}", display_addr(&app.state().settings.bind, app.port()));
            tracing::info!(graphiql = %format!("{base}/graphql"), "Rapport is listening; open GraphiQL in a browser");
            if demo {
                print_demo_tokens(&app).await?;
            }
            app.run_until_stopped().await?;
            tracing::info!("stopped");
            Ok(())
        }
        Command::Migrate => {
            let db = db::connect(&settings.database, None).await?;
            db::migrate(&db).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Schema => {
            println!("{}", graphql::sdl());
            Ok(())
        }
        Command::Token(args) => {
            let keys = JwtKeys::from_settings(&settings.jwt)?;
            let subject = match (args.role, args.sub) {
                (_, Some(sub)) => sub,
                (Role::Patron, None) => anyhow::bail!("--sub <patron id> is required for PATRON tokens"),
                (role, None) => format!("cli-{}", role.as_str().to_ascii_lowercase()),
            };
            if args.role == Role::Funder && args.funder.is_none() {
                anyhow::bail!("--funder <funder id> is required for FUNDER tokens");
            }
            let request = TokenRequest {
                role: args.role,
                subject,
                funder_id: args.funder,
                scopes: args.scopes,
                ttl: args.ttl.map(std::time::Duration::from_secs),
            };
            let (token, _) = keys.mint(&request)?;
            println!("{token}");
            Ok(())
        }
        Command::CreateAdmin(args) => {
            let password =
                crate::auth::bootstrap::admin_password(std::env::var(crate::auth::bootstrap::PASSWORD_ENV).ok())?;
            let account =
                crate::auth::bootstrap::create_admin(&settings, &args.email, args.name.as_deref(), &password).await?;
            tracing::info!(account = %account.id, email = %account.email, "admin account created");
            println!("admin account {} created for {}", account.id, account.email);
            Ok(())
        }
        Command::Purge(args) => {
            let db = db::connect(&settings.database, None).await?;
            db::migrate(&db).await?;
            let report = crate::domain::privacy::purge_command(&db, args.days.or(settings.retention_days)).await?;
            println!("{report}");
            Ok(())
        }
        Command::RebuildRollups => {
            let db = db::connect(&settings.database, None).await?;
            db::migrate(&db).await?;
            let report = crate::domain::rollups::rebuild(&db).await?;
            println!("roll-ups rebuilt from {} interactions", report.interactions);
            Ok(())
        }
        Command::EvalRecommendations => {
            let db = db::connect(&settings.database, None).await?;
            db::migrate(&db).await?;
            let report = crate::domain::recommendations::evaluate(&db).await?;
            println!("{report}");
            Ok(())
        }
        Command::Healthcheck => {
            let addr = display_addr(&settings.bind, bind_port(&settings.bind));
            healthcheck(&addr)
        }
        Command::Seed => {
            let db = db::connect(&settings.database, None).await?;
            db::migrate(&db).await?;
            if crate::seed::seed_demo_if_empty(&db).await? {
                tracing::info!("demo library written");
            } else {
                tracing::info!("database not empty; demo data left as it was");
            }
            Ok(())
        }
    }
}

fn bind_port(bind: &str) -> u16 {
    bind.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or(8080)
}

/// A dependency-free HTTP/1.1 GET of `/readyz`: container images need no curl.
fn healthcheck(addr: &str) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let timeout = std::time::Duration::from_secs(3);
    let socket = addr.parse().map_err(|e| anyhow::anyhow!("bad address {addr}: {e}"))?;
    let mut stream = std::net::TcpStream::connect_timeout(&socket, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    write!(stream, "GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status_line = response.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        anyhow::bail!("not ready: {status_line}")
    }
}

fn display_addr(bind: &str, port: u16) -> String {
    let host = bind.rsplit_once(':').map(|(h, _)| h).unwrap_or("127.0.0.1");
    let host = if host == "0.0.0.0" || host == "[::]" { "127.0.0.1" } else { host };
    format!("{host}:{port}")
}

/// Print a token for each role so a new user can try every kind of client at once.
async fn print_demo_tokens(app: &Application) -> anyhow::Result<()> {
    let state = app.state();
    let demo = crate::seed::demo_principals(&state.db).await?;
    let day = Some(std::time::Duration::from_secs(24 * 3600));
    let mint = |role: Role, subject: String, funder_id: Option<Uuid>, scopes: Vec<Scope>| {
        state.jwt.mint(&TokenRequest { role, subject, funder_id, scopes, ttl: day }).map(|(t, _)| t)
    };
    let mut lines = vec![
        format!("ADMIN    {}", mint(Role::Admin, "demo-admin".into(), None, vec![])?),
        format!("STAFF    {}", mint(Role::Staff, "demo-staff".into(), None, vec![])?),
        format!("PARTNER  {}", mint(Role::Partner, "demo-partner".into(), None, Scope::ALL.to_vec())?),
    ];
    if let Some(patron_id) = demo.patron_id {
        lines.push(format!(
            "PATRON   {}  (card {})",
            mint(Role::Patron, patron_id.to_string(), None, vec![])?,
            demo.patron_card.unwrap_or_default()
        ));
    }
    if let Some(funder_id) = demo.funder_id {
        lines.push(format!(
            "FUNDER   {}  ({})",
            mint(Role::Funder, "demo-funder".into(), Some(funder_id), vec![])?,
            demo.funder_name.unwrap_or_default()
        ));
    }
    let mut logins: Vec<String> = crate::seed::accounts::DEMO_ACCOUNTS
        .iter()
        .map(|(email, password, _)| format!("login(email: \"{email}\", password: \"{password}\")"))
        .collect();
    logins.push(format!(
        "patronLogin(cardNumber: \"{}\", pin: \"{}\")  (cards {})",
        crate::seed::accounts::DEMO_PIN_CARDS[0],
        crate::seed::accounts::DEMO_PIN,
        crate::seed::accounts::DEMO_PIN_CARDS.join(", ")
    ));
    // Printed, not logged: these are for the person at the terminal, valid for 24 hours.
    println!(
        "\nDemo tokens (valid 24 h; send as `Authorization: Bearer <token>`):\n{}\n\nDemo logins:\n{}\n",
        lines.join("\n"),
        logins.join("\n")
    );
    Ok(())
}
