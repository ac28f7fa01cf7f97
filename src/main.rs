//! The `wsgate` command line: run, check, demo, tunnels (design.md "Command line").
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use wsgate::{Config, ConfigError};

mod cli;

#[derive(Parser)]
#[command(
    name = "wsgate",
    version,
    about = "A transparent, WebSocket-aware reverse proxy"
)]
struct Cli {
    /// The YAML configuration file.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log format; the level comes from RUST_LOG (default: info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Worker threads (like nginx's worker_processes): default, one per CPU this process may use
    /// (its affinity mask and cgroup quota). With 1, one thread runs everything, with no
    /// cross-thread handoffs.
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration file: print every warning and exit 0, or print every error and
    /// exit 1.
    Check,
    /// Run the embedded example config with a built-in echo backend.
    Demo,
    /// List, show, close or tap the live tunnels of a running wsgate over its admin API.
    Tunnels(cli::tunnels::TunnelsArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

const DEFAULT_CONFIG: &str = "config/wsgate.yaml";

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Some(Command::Check) => check(cli.config.as_deref()),
        Some(Command::Tunnels(args)) => cli::tunnels::run(args, cli.config.as_deref()),
        Some(Command::Demo) => {
            let config = demo_config(cli.config.as_deref());
            run(config, cli.config, true, cli.threads)
        }
        None => {
            let path = cli.config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
            let config = Config::load(&path).map_err(|e| (path.display().to_string(), e));
            run(config, Some(path), false, cli.threads)
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or journald must not get escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn check(path: Option<&Path>) -> ExitCode {
    let path = path.unwrap_or(Path::new(DEFAULT_CONFIG));
    match Config::load(path) {
        Ok(config) => {
            for warning in &config.warnings {
                eprintln!("{}: warning: {warning}", path.display());
            }
            let warnings = match config.warnings.len() {
                0 => String::new(),
                1 => ", 1 warning".to_owned(),
                n => format!(", {n} warnings"),
            };
            println!(
                "{}: ok ({} listeners, {} upstreams, {} routes{warnings})",
                path.display(),
                config.listeners.len(),
                config.upstreams.len(),
                config.routes.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_config_error(&path.display().to_string(), &e);
            ExitCode::FAILURE
        }
    }
}

fn print_config_error(source: &str, e: &ConfigError) {
    for message in e.messages() {
        eprintln!("{source}: {message}");
    }
}

fn demo_config(path: Option<&Path>) -> Result<Config, (String, ConfigError)> {
    match path {
        Some(path) => Config::load(path).map_err(|e| (path.display().to_string(), e)),
        None => Config::from_yaml(wsgate::EXAMPLE_CONFIG)
            .map_err(|e| ("embedded config/example.yaml".to_owned(), e)),
    }
}

/// `path`: the file SIGHUP re-reads (`None` for the demo's embedded config).
fn run(
    config: Result<Config, (String, ConfigError)>,
    path: Option<PathBuf>,
    demo: bool,
    threads: Option<u16>,
) -> ExitCode {
    let config = match config {
        Ok(config) => config,
        Err((source, e)) => {
            print_config_error(&source, &e);
            return ExitCode::FAILURE;
        }
    };
    let runtime = match build_runtime(threads) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("wsgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(config, path, demo))
}

/// One thread gets tokio's current-thread scheduler: on a single CPU it moves more frames and
/// handshakes than a one-worker multi-thread pool (README "Performance"), which adds a handoff
/// between the thread that polls the sockets and the one that runs the tunnels.
fn build_runtime(threads: Option<u16>) -> std::io::Result<tokio::runtime::Runtime> {
    let threads = match threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    tracing::info!(threads, "starting the runtime");
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    builder.enable_all().build()
}

async fn serve(config: Config, path: Option<PathBuf>, demo: bool) -> ExitCode {
    // Before anything is bound: a SIGHUP or SIGTERM that follows the "listening" log must find the
    // handlers in place (the default action would kill the process).
    let mut signals = match Signals::install() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("wsgate: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    if demo {
        if let Err(e) = start_demo_backend(&config).await {
            eprintln!("wsgate demo: {e}");
            return ExitCode::FAILURE;
        }
    }
    let running = match wsgate::start(config).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("wsgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    if demo {
        print_demo_urls(&running);
    }
    while signals.next().await == Signal::Reload {
        reload(&running, path.as_deref()).await;
    }
    // A second SIGTERM or SIGINT during the drain exits at once.
    tokio::select! {
        report = running.drain() => {
            if report.left_open > 0 {
                tracing::warn!(left_open = report.left_open, "drain deadline reached");
            }
        }
        _ = async { while signals.next().await == Signal::Reload {} } => {
            tracing::warn!("second signal: exiting without finishing the drain")
        }
    }
    ExitCode::SUCCESS
}

/// The echo backend listens where the first upstream's first endpoint points.
async fn start_demo_backend(config: &Config) -> Result<(), String> {
    let endpoint = config
        .upstreams
        .first()
        .and_then(|u| u.endpoints.first())
        .ok_or("the config names no upstream endpoint for the echo backend")?;
    let addr = tokio::net::lookup_host(endpoint.as_str())
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("cannot resolve the echo backend address {endpoint}"))?;
    let bound = wsgate::spawn_echo_backend(addr)
        .await
        .map_err(|e| format!("cannot bind the echo backend at {addr}: {e}"))?;
    tracing::info!(addr = %bound, "demo echo backend listening");
    Ok(())
}

fn print_demo_urls(running: &wsgate::Running) {
    println!("wsgate demo is running. Try:");
    for (_, addr) in running.listeners() {
        println!("  ws://{addr}/ws        WebSocket echo (subprotocols chat.v2, chat.v1)");
        println!("  http://{addr}/        a page that uses it from the browser");
    }
    if let Some(admin) = running.admin_addr() {
        println!("  http://{admin}/metrics  Prometheus metrics");
    }
    println!("Ctrl-C stops it.");
}

/// SIGHUP: re-read the file; an invalid file or a bind failure keeps the old configuration.
async fn reload(running: &wsgate::Running, path: Option<&Path>) {
    let Some(path) = path else {
        tracing::warn!("SIGHUP: the demo runs its embedded config; nothing to reload");
        return;
    };
    tracing::info!(path = %path.display(), "SIGHUP: reloading");
    if let Err(e) = running.reload_file(path).await {
        let messages = match &e {
            wsgate::ReloadError::Config(e) => e.messages(),
            other => vec![other.to_string()],
        };
        for message in messages {
            tracing::error!(path = %path.display(), "reload refused, old configuration kept: {message}");
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// SIGTERM or SIGINT: drain, then exit.
    Stop,
    /// SIGHUP.
    Reload,
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => { tracing::info!("SIGTERM: draining"); Signal::Stop }
            _ = self.int.recv() => { tracing::info!("SIGINT: draining"); Signal::Stop }
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}
