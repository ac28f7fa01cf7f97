//! `wsgate tunnels`: list, show, close and tap the live tunnels of a running wsgate over its admin
//! API (API.md "CLI").

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use hyper::Method;

use super::client::{query, Admin, TIMEOUT};
use super::defaults::{self, DEFAULT_ADMIN};
use super::error::CliError;
use super::format::key_values;
use super::list::{self, Row, Sort};
use super::tap::{self, TapLine};

/// A close waits on the server for the tunnel to end, up to its close grace (5 s): the answer gets
/// that on top of the usual timeout.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Args, Debug)]
pub struct TunnelsArgs {
    #[command(flatten)]
    connection: Connection,
    /// List only the tunnels of this route.
    #[arg(long, value_name = "ROUTE")]
    route: Option<String>,
    /// The order of the list [default: age].
    #[arg(long, value_enum)]
    sort: Option<Sort>,
    #[command(subcommand)]
    action: Option<Action>,
}

/// Where the admin listener is and how to get in; the defaults come from `--config`.
#[derive(Args, Debug)]
struct Connection {
    /// The admin listener, host:port [default: admin.bind of --config, else 127.0.0.1:9901].
    #[arg(long, global = true, value_name = "ADDR")]
    admin: Option<String>,
    /// A file holding the admin token, sent as a Bearer token [default: admin.token_file of
    /// --config].
    #[arg(long, global = true, value_name = "FILE")]
    token_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Print every field of one tunnel.
    Show {
        /// The tunnel's id (the list's ID column).
        id: u64,
    },
    /// Close one tunnel: close frames to both sides, then wait for it to end.
    Close {
        /// The tunnel's id.
        id: u64,
        /// The close code sent to both sides [server default: 1001].
        #[arg(long)]
        code: Option<u16>,
        /// The close reason (at most 123 bytes).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Print the tunnel's frames as they pass, until the limit or its end.
    Tap {
        /// The tunnel's id.
        id: u64,
        /// Stop after this many frames.
        #[arg(long)]
        limit: Option<u64>,
        /// Show up to this many payload bytes of each frame (needs admin.tap_payloads).
        #[arg(long, value_name = "BYTES")]
        payload: Option<u64>,
    },
}

/// Runs the command; `config` is the binary's global `--config`, read only for defaults.
pub fn run(args: TunnelsArgs, config: Option<&Path>) -> ExitCode {
    if let Err(e) = args.check() {
        e.exit();
    }
    let mut stdout = std::io::stdout().lock();
    match try_run(args, config, &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`| head`) ended the output, which is not a failure.
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsgate tunnels: {e}");
            ExitCode::FAILURE
        }
    }
}

impl TunnelsArgs {
    /// The list's flags with a subcommand are a usage error. Not clap's
    /// `args_conflicts_with_subcommands`: that also refuses `--admin` before the subcommand.
    fn check(&self) -> Result<(), clap::Error> {
        let list_flag = match (&self.route, &self.sort) {
            (Some(_), _) => "--route",
            (None, Some(_)) => "--sort",
            (None, None) => return Ok(()),
        };
        if self.action.is_none() {
            return Ok(());
        }
        Err(clap::Error::raw(
            clap::error::ErrorKind::ArgumentConflict,
            format!("{list_flag} is for the list, not with a subcommand\n"),
        ))
    }
}

fn try_run(args: TunnelsArgs, config: Option<&Path>, out: &mut impl Write) -> Result<(), CliError> {
    let found = match config {
        Some(path) => defaults::from_config(path)?,
        None => defaults::Defaults::default(),
    };
    let addr = args
        .connection
        .admin
        .or(found.bind)
        .unwrap_or_else(|| DEFAULT_ADMIN.to_owned());
    let token = match args.connection.token_file.or(found.token_file) {
        Some(path) => Some(defaults::read_token(&path)?),
        None => None,
    };
    let admin = Admin {
        addr: addr.trim_start_matches("http://").to_owned(),
        token,
    };
    // One request at a time: a current-thread runtime is all it needs.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let sort = args.sort.unwrap_or(Sort::Age);
    runtime.block_on(act(&admin, args.route, sort, args.action, out))
}

async fn act(
    admin: &Admin,
    route: Option<String>,
    sort: Sort,
    action: Option<Action>,
    out: &mut impl Write,
) -> Result<(), CliError> {
    match action {
        None => {
            let target = format!("/tunnels{}", query(&[("route", route)]));
            let answer = admin.json(Method::GET, &target, TIMEOUT).await?;
            let mut rows: Vec<Row> =
                serde_json::from_value(answer).map_err(|e| CliError::BadAnswer(e.to_string()))?;
            list::sort(&mut rows, sort);
            print(out, list::lines(&rows))
        }
        Some(Action::Show { id }) => {
            let answer = admin
                .json(Method::GET, &format!("/tunnels/{id}"), TIMEOUT)
                .await?;
            print(out, key_values(&answer))
        }
        Some(Action::Close { id, code, reason }) => {
            let q = query(&[("code", code.map(|c| c.to_string())), ("reason", reason)]);
            let target = format!("/tunnels/{id}/close{q}");
            let answer = admin.json(Method::POST, &target, CLOSE_TIMEOUT).await?;
            print(out, [closed_line(id, &answer)])
        }
        Some(Action::Tap { id, limit, payload }) => {
            let q = query(&[
                ("limit", limit.map(|n| n.to_string())),
                ("payload", payload.map(|n| n.to_string())),
            ]);
            admin
                .lines(&format!("/tunnels/{id}/tap{q}"), |line| {
                    if line.trim().is_empty() {
                        return Ok(true);
                    }
                    let (text, more) = match tap::render(line) {
                        TapLine::Show(text) => (text, true),
                        TapLine::End(text) => (text, false),
                    };
                    // Flushed line by line: a tap is read as it happens.
                    writeln!(out, "{text}")?;
                    out.flush()?;
                    Ok(more)
                })
                .await
        }
    }
}

/// "tunnel 17 closed", or that it is still closing when the server's wait ran out.
fn closed_line(id: u64, answer: &serde_json::Value) -> String {
    let id = answer.get("id").and_then(|v| v.as_u64()).unwrap_or(id);
    match answer.get("state").and_then(|v| v.as_str()) {
        Some("closed") => format!("tunnel {id} closed"),
        Some("closing") => {
            format!("tunnel {id} closing: close frames sent, it had not ended within the grace")
        }
        Some(other) => format!("tunnel {id} asked to close; its state: {other}"),
        None => format!("tunnel {id} asked to close"),
    }
}

fn print(out: &mut impl Write, lines: impl IntoIterator<Item = String>) -> Result<(), CliError> {
    for line in lines {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Probe {
        #[command(flatten)]
        args: TunnelsArgs,
    }

    fn parse(line: &[&str]) -> Result<TunnelsArgs, clap::Error> {
        Probe::try_parse_from(std::iter::once("tunnels").chain(line.iter().copied()))
            .map(|p| p.args)
    }

    #[test]
    fn list_flags_and_subcommands_parse() {
        let args = parse(&["--admin", "h:1", "--route", "chat", "--sort", "bytes"]).unwrap();
        assert_eq!(args.connection.admin.as_deref(), Some("h:1"));
        assert_eq!(
            (args.route.as_deref(), args.sort),
            (Some("chat"), Some(Sort::Bytes))
        );
        let args = parse(&["close", "17", "--code", "4000", "--admin", "h:2"]).unwrap();
        assert_eq!(args.connection.admin.as_deref(), Some("h:2"));
        assert!(matches!(
            args.action,
            Some(Action::Close {
                id: 17,
                code: Some(4000),
                reason: None
            })
        ));
        // The connection's flags go before or after the subcommand.
        let args = parse(&["--admin", "h:3", "--token-file", "t", "show", "1"]).unwrap();
        assert_eq!(args.connection.admin.as_deref(), Some("h:3"));
        assert!(args.check().is_ok());
    }

    #[test]
    fn usage_errors() {
        assert!(parse(&["--sort", "size"]).is_err());
        assert!(parse(&["show", "abc"]).is_err());
        assert!(parse(&["close", "1", "--code", "70000"]).is_err());
        // List flags say nothing to a subcommand.
        for line in [
            &["--route", "c", "show", "1"][..],
            &["--sort", "age", "tap", "1"],
        ] {
            assert!(parse(line).unwrap().check().is_err(), "{line:?}");
        }
    }

    #[test]
    fn close_lines() {
        let closed = serde_json::json!({"id": 17, "state": "closed"});
        assert_eq!(closed_line(17, &closed), "tunnel 17 closed");
        let closing = serde_json::json!({"id": 17, "state": "closing"});
        assert!(closed_line(17, &closing).starts_with("tunnel 17 closing"));
    }
}
