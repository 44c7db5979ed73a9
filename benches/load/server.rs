//! The servers under load: the real release binary as a child process on a fresh
//! PostgreSQL database and Redis key prefix, the trivial "ceiling" server, and what the
//! kernel says about their CPU time and memory.

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sea_orm::{ConnectionTrait, Database};
use tokio::process::{Child, Command};

use crate::http;

/// The FACTORY account the servers create at start; the bench logs in with it.
pub const FACTORY_USERNAME: &str = "load-factory";
pub const FACTORY_PASSWORD: &str = "Load-Factory-Pass-1";
/// HS256 key shared by the instances of a run (production mode wants 32 bytes or more).
const JWT_SECRET: &str = "load-bench-jwt-secret-0123456789-abcdefghijklmnopqrstuvwxyz";

/// Settings of the server that a caller's environment must not leak into a run: every run
/// gets exactly the configuration below (and the server's own defaults for the rest).
const SERVER_VARIABLES: &[&str] = &[
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_KEY_PREFIX",
    "ORDER_REDELIVER_SECS",
    "EMBEDDED_FACTORY",
    "FACTORY_STEP_MS",
    "WS_INIT_TIMEOUT_MS",
    "WS_KEEPALIVE_MS",
    "WS_MAX_SOCKETS",
    "WS_MAX_SOCKETS_PER_ADDRESS",
    "SHUTDOWN_DRAIN_MS",
    "SHUTDOWN_CLOSE_SPREAD_MS",
    "HOST",
    "PORT",
    "JWT_SECRET",
    "JWT_TTL_SECS",
    "FACTORY_USERNAME",
    "FACTORY_PASSWORD",
    "APP_ENV",
    "GRAPHQL_INTROSPECTION",
    "RUST_LOG",
    "LOG_FORMAT",
];

/// Where PostgreSQL and Redis are (the tests' variables and defaults).
#[derive(Clone, Debug)]
pub struct Services {
    pub admin_url: String,
    pub redis_url: String,
}

impl Services {
    pub fn from_env() -> Services {
        Services {
            admin_url: std::env::var("TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
            redis_url: std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        }
    }

    fn database_url(&self, name: &str) -> String {
        let base = self.admin_url.rsplit_once('/').map_or(self.admin_url.as_str(), |(base, _)| base);
        format!("{base}/{name}")
    }
}

/// Raises this process's soft limit on open files to the hard limit (children inherit it).
/// Returns the limit now in force.
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// A free TCP port on 127.0.0.1 (free a moment ago: the server binds it right after).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0)).context("bind a probe port")?;
    Ok(listener.local_addr()?.port())
}

/// One child process serving HTTP on `addr`.
pub struct Server {
    pub label: String,
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Server {
    /// Spawns `command` (its output going to `log`), killed when dropped.
    pub fn spawn(label: &str, mut command: Command, port: u16, log: PathBuf) -> anyhow::Result<Server> {
        let file = std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let err = file.try_clone()?;
        command.stdin(Stdio::null()).stdout(Stdio::from(file)).stderr(Stdio::from(err)).kill_on_drop(true);
        let child = command.spawn().context("spawn the server")?;
        let pid = child.id().context("the child's pid")?;
        Ok(Server { label: label.to_owned(), child, pid, addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)), log })
    }

    /// Waits until `GET /readyz` answers 200 (at most `limit`); fails early if the child exits.
    pub async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited with {status} before it was ready; its log ends with:\n{}",
                    self.label,
                    self.log_tail()
                );
            }
            if let Ok(mut conn) = http::Conn::connect(self.addr).await {
                if let Ok(reply) = conn.get("/readyz").await {
                    if reply.status == 200 {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                bail!("{} was not ready within {limit:?}; its log ends with:\n{}", self.label, self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines of the child's output.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    pub fn rss_mib(&self) -> f64 {
        rss_kib(self.pid).unwrap_or(0) as f64 / 1024.0
    }

    /// Kills the child and waits for it.
    pub async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// The run's servers: instance A (mutations) and, with two instances, B (subscribers), on
/// their own database and Redis key prefix, dropped and deleted after the run.
pub struct Stack {
    pub servers: Vec<Server>,
    pub database_url: String,
    database: String,
    prefix: String,
    services: Services,
    keep_logs: bool,
    cleaned: bool,
}

/// How a run starts its servers.
#[derive(Clone, Debug)]
pub struct Launch {
    pub binary: PathBuf,
    pub instances: usize,
    pub server_log: Option<String>,
    /// Keep the servers' output files after the run (their paths are printed).
    pub keep_logs: bool,
}

impl Stack {
    pub async fn start(services: &Services, launch: &Launch) -> anyhow::Result<Stack> {
        let binary = std::fs::canonicalize(&launch.binary)
            .with_context(|| format!("no server binary at {} (cargo build --release?)", launch.binary.display()))?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let database = format!("minifig_load_{id}");
        let admin = Database::connect(&services.admin_url)
            .await
            .with_context(|| format!("PostgreSQL at {} (TEST_POSTGRES_URL)", services.admin_url))?;
        admin.execute_unprepared(&format!("CREATE DATABASE \"{database}\"")).await.context("create the database")?;
        let _ = admin.close().await;
        let mut stack = Stack {
            servers: Vec::new(),
            database_url: services.database_url(&database),
            database,
            prefix: format!("load:{id}:"),
            services: services.clone(),
            keep_logs: launch.keep_logs,
            cleaned: false,
        };
        for index in 0..launch.instances.max(1) {
            let label = ["A", "B", "C", "D"].get(index).copied().unwrap_or("X");
            let port = free_port()?;
            let mut command = Command::new(&binary);
            for name in SERVER_VARIABLES {
                command.env_remove(name);
            }
            command
                .current_dir(std::env::temp_dir())
                .env("DATABASE_URL", &stack.database_url)
                .env("REDIS_URL", &services.redis_url)
                .env("REDIS_KEY_PREFIX", &stack.prefix)
                .env("HOST", "127.0.0.1")
                .env("PORT", port.to_string())
                .env("JWT_SECRET", JWT_SECRET)
                .env("APP_ENV", "production")
                .env("FACTORY_USERNAME", FACTORY_USERNAME)
                .env("FACTORY_PASSWORD", FACTORY_PASSWORD)
                .env("EMBEDDED_FACTORY", "false")
                // The scenarios open up to 10,000 sockets (more with --sockets) from a few
                // loopback addresses, plus the warm-up's still closing: the caps must not
                // be what a run measures.
                .env("WS_MAX_SOCKETS", "1000000")
                .env("WS_MAX_SOCKETS_PER_ADDRESS", "1000000");
            if let Some(filter) = &launch.server_log {
                command.env("RUST_LOG", filter);
            }
            let log = std::env::temp_dir().join(format!("minifig-load-{id}-{label}.log"));
            let mut server = Server::spawn(&format!("server {label}"), command, port, log)?;
            // Instances start one after the other: the first applies the migrations.
            let ready = server.wait_ready(Duration::from_secs(120)).await;
            stack.servers.push(server);
            ready?;
        }
        Ok(stack)
    }

    /// Where mutations and HTTP queries go: instance A.
    pub fn a(&self) -> SocketAddr {
        self.servers[0].addr
    }

    /// Where subscribers connect: the last instance (B with two instances, else A).
    pub fn b(&self) -> SocketAddr {
        self.servers[self.servers.len() - 1].addr
    }

    pub fn pids(&self) -> Vec<u32> {
        self.servers.iter().map(|s| s.pid).collect()
    }

    /// The servers' resident memory, summed, in MiB.
    pub fn rss_mib(&self) -> f64 {
        self.servers.iter().map(Server::rss_mib).sum()
    }

    /// Kills the servers, drops the database and deletes the run's Redis keys.
    pub async fn cleanup(mut self) {
        for server in &mut self.servers {
            server.stop().await;
        }
        for server in &self.servers {
            if self.keep_logs {
                println!("  log of {}: {}", server.label, server.log.display());
            } else {
                let _ = std::fs::remove_file(&server.log);
            }
        }
        cleanup_resources(&self.services, &self.database, &self.prefix).await;
        self.cleaned = true;
    }
}

impl Drop for Stack {
    /// After a failure or a panic: the children die with their handles (kill_on_drop), and
    /// a short-lived runtime on its own thread removes the database and the keys.
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        for server in &mut self.servers {
            let _ = server.child.start_kill();
            eprintln!("(log of {} kept at {})", server.label, server.log.display());
        }
        let (services, database, prefix) = (self.services.clone(), self.database.clone(), self.prefix.clone());
        let cleanup = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                runtime.block_on(async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    cleanup_resources(&services, &database, &prefix).await;
                });
            }
        });
        let _ = cleanup.join();
    }
}

async fn cleanup_resources(services: &Services, database: &str, prefix: &str) {
    if let Ok(admin) = Database::connect(&services.admin_url).await {
        if let Err(err) =
            admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)")).await
        {
            eprintln!("could not drop database {database}: {err}");
        }
        let _ = admin.close().await;
    }
    if let Err(err) = delete_keys(&services.redis_url, prefix).await {
        eprintln!("could not delete the Redis keys {prefix}*: {err:#}");
    }
}

/// SCAN + DEL of every key under `prefix`.
async fn delete_keys(redis_url: &str, prefix: &str) -> anyhow::Result<()> {
    use fred::prelude::*;
    use futures::TryStreamExt;
    let client = Builder::from_config(Config::from_url(redis_url)?).build()?;
    client.init().await?;
    let keys: Vec<fred::types::Key> =
        client.scan_buffered(format!("{prefix}*"), Some(1000), None).try_collect().await?;
    for chunk in keys.chunks(500) {
        let _: i64 = client.del(chunk.to_vec()).await?;
    }
    let _ = client.quit().await;
    Ok(())
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields count from after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0], so utime (14) and stime (15) are fields[11] and [12].
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// VmRSS of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// Busy and total clock ticks of the whole machine (every core), from /proc/stat.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// CPU time of the servers and of this process over a window, as % of one core, and how
/// busy the whole machine was (PostgreSQL and Redis included).
pub struct CpuWindow {
    pids: Vec<u32>,
    started: Instant,
    ticks: Vec<u64>,
    own: u64,
    machine: Option<(u64, u64)>,
}

#[derive(Clone, Debug, Default)]
pub struct CpuUsage {
    /// Every server together.
    pub server_percent: f64,
    pub per_server: Vec<f64>,
    /// The load generator (this process).
    pub client_percent: f64,
    /// Every core of the machine, busy time as % of all of them.
    pub machine_percent: f64,
}

impl CpuWindow {
    pub fn start(pids: &[u32]) -> CpuWindow {
        CpuWindow {
            pids: pids.to_vec(),
            started: Instant::now(),
            ticks: pids.iter().map(|&pid| cpu_ticks(pid).unwrap_or(0)).collect(),
            own: cpu_ticks(std::process::id()).unwrap_or(0),
            machine: machine_ticks(),
        }
    }

    pub fn finish(&self) -> CpuUsage {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        let percent =
            |before: u64, after: u64| after.saturating_sub(before) as f64 / ticks_per_second() / seconds * 100.0;
        let per_server: Vec<f64> = self
            .pids
            .iter()
            .zip(&self.ticks)
            .map(|(&pid, &before)| percent(before, cpu_ticks(pid).unwrap_or(before)))
            .collect();
        let machine_percent = match (self.machine, machine_ticks()) {
            (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => {
                (busy1 - busy0.min(busy1)) as f64 / (total1 - total0) as f64 * 100.0
            }
            _ => f64::NAN,
        };
        CpuUsage {
            server_percent: per_server.iter().sum(),
            per_server,
            client_percent: percent(self.own, cpu_ticks(std::process::id()).unwrap_or(self.own)),
            machine_percent,
        }
    }
}

/// The trivial server of the `ceiling` scenario, run by this bench binary re-executed with
/// `--serve-ceiling PORT BODY_FILE CONTENT_TYPE`: answers `POST /graphql` with the bytes of
/// the file and that content type, and `GET /readyz` with 200. Multi-threaded like the real
/// server, so it gets the other core.
pub fn serve_ceiling(port: &str, body_file: &Path, content_type: &str) -> anyhow::Result<()> {
    use axum::body::Bytes;
    use axum::http::HeaderValue;
    use axum::http::header::CONTENT_TYPE;
    use axum::routing::{get, post};

    let port: u16 = port.parse().context("port")?;
    let body = Bytes::from(std::fs::read(body_file).with_context(|| format!("read {}", body_file.display()))?);
    let content_type = HeaderValue::from_str(content_type).context("content type")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let answer = move |_request: Bytes| {
            let (body, content_type) = (body.clone(), content_type.clone());
            async move { ([(CONTENT_TYPE, content_type)], body) }
        };
        let app = axum::Router::new().route("/graphql", post(answer)).route("/readyz", get(|| async { "ready" }));
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}

/// Starts the ceiling server on a free port, answering `body` with `content_type`.
pub async fn start_ceiling(body: &[u8], content_type: &str) -> anyhow::Result<(Server, PathBuf)> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let body_file = std::env::temp_dir().join(format!("minifig-load-{id}-ceiling.json"));
    std::fs::write(&body_file, body)?;
    let port = free_port()?;
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("--serve-ceiling").arg(port.to_string()).arg(&body_file).arg(content_type);
    let log = std::env::temp_dir().join(format!("minifig-load-{id}-ceiling.log"));
    let mut server = Server::spawn("ceiling server", command, port, log)?;
    server.wait_ready(Duration::from_secs(20)).await?;
    Ok((server, body_file))
}
