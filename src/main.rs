//! The `minifig` binary: `serve` (the default), `migrate`, `schema`, `config`, `create-admin`.

use std::io::BufRead;

use anyhow::Context;
use clap::{Parser, Subcommand};
use minifig::auth::passwords::PasswordHasher;
use minifig::config::{self, DEFAULT_LOG_FILTER, Settings};
use minifig::domain::{Address, Email, Password, Role, Username};
use minifig::services::accounts::{self, NewAccount};
use minifig::startup::Application;
use minifig::{db, graphql};
use minifig_common::telemetry;
use secrecy::ExposeSecret;

/// The spans' `service.name` unless `OTEL_SERVICE_NAME` says otherwise.
const SERVICE_NAME: &str = "minifig";

/// mimalloc instead of the system allocator: a request allocates many small short-lived
/// objects, which glibc's malloc served with a sixth of the server's CPU under load, and
/// glibc keeps the memory of closed WebSockets instead of returning it to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "minifig", version, about = "MiniFigurine: order miniature figurines over GraphQL")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL); `schema.graphql` is this output.
    Schema,
    /// Print the settings: `--markdown` is the README's configuration table.
    Config {
        /// As a Markdown table (the only format so far).
        #[arg(long, required = true)]
        markdown: bool,
    },
    /// Create an ADMIN account. The password is read from ADMIN_PASSWORD or, if unset, from
    /// the first line of standard input.
    CreateAdmin {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "MiniFigurine head office")]
        address: String,
    },
}

fn main() -> anyhow::Result<()> {
    no_huge_pages();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(return_freed_memory)
        .build()
        .context("starting the async runtime")?
        .block_on(run())
}

/// How often at most an idle worker thread hands freed memory back.
const RETURN_MEMORY_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Called when a worker thread has nothing to do. A task may end on another thread than
/// the one that allocated its memory (a closed WebSocket, say); mimalloc then frees that
/// memory only when its own thread next collects, so after a burst of closed sockets the
/// memory stayed resident. Collecting on an idle thread, at most once a second, returns it.
fn return_freed_memory() {
    thread_local! {
        static LAST: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
    }
    let now = std::time::Instant::now();
    if LAST.get().is_some_and(|last| now.duration_since(last) < RETURN_MEMORY_EVERY) {
        return;
    }
    LAST.set(Some(now));
    // SAFETY: mi_collect only walks and trims the calling thread's own heap.
    unsafe { libmimalloc_sys::mi_collect(false) };
}

/// Turns transparent huge pages off for this process. mimalloc asks for them, and then a
/// few live objects keep a whole 2 MiB page resident, and every page it faults in is zeroed
/// 2 MiB at a time: during a reconnect storm a third of the request threads' time went to
/// zeroing huge pages (`clear_page_erms` under `do_huge_pmd_anonymous_page`, in `perf`).
/// Many small, long-lived allocations (one set per WebSocket) want small pages.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE only sets a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // These print what the code says, before logging could add to their output.
    match cli.command {
        Some(Command::Schema) => {
            print!("{}", graphql::sdl());
            return Ok(());
        }
        Some(Command::Config { markdown: _ }) => {
            print!("{}", config::settings_markdown());
            return Ok(());
        }
        _ => {}
    }
    let _telemetry = telemetry::init(cli.settings.log_format, DEFAULT_LOG_FILTER, SERVICE_NAME);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => Application::build(cli.settings).await?.run_until_stopped().await,
        Command::Migrate => {
            let db = db::connect(cli.settings.database_url.expose_secret()).await?;
            db::migrate(&db).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Schema | Command::Config { .. } => Ok(()),
        Command::CreateAdmin { username, email, address } => {
            create_admin(&cli.settings, &username, &email, &address).await
        }
    }
}

async fn create_admin(settings: &Settings, username: &str, email: &str, address: &str) -> anyhow::Result<()> {
    let password = match std::env::var("ADMIN_PASSWORD") {
        Ok(password) => password,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let account = NewAccount {
        username: Username::parse(username).map_err(|e| anyhow::anyhow!("username {e}"))?,
        email: Email::parse(email).map_err(|e| anyhow::anyhow!("email {e}"))?,
        password: Password::parse(&password).map_err(|e| anyhow::anyhow!("password {e}"))?,
        address: Address::parse(address).map_err(|e| anyhow::anyhow!("address {e}"))?,
    };
    let db = db::connect(settings.database_url.expose_secret()).await?;
    db::migrate(&db).await?;
    let hasher = PasswordHasher::new(1)?;
    let admin = accounts::register(&db, &hasher, account, Role::Admin)
        .await
        .map_err(|err| err.into_anyhow().context("could not create the admin"))?;
    tracing::info!(id = %admin.id, username = admin.username, "ADMIN account created");
    Ok(())
}
