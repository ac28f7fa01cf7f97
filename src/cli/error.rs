//! What can go wrong in a client command; each prints as one line after `wsgate tunnels: `.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read the config {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("cannot read the token file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token file {path} is empty")]
    EmptyToken { path: PathBuf },
    #[error("the token in {path} cannot be sent in a header (it has a control character)")]
    BadToken { path: PathBuf },
    #[error("cannot reach the admin listener at {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("the admin listener at {addr} did not answer within {seconds} s")]
    Timeout { addr: String, seconds: u64 },
    #[error("the exchange with the admin listener at {addr} failed: {source}")]
    Http { addr: String, source: hyper::Error },
    /// The server said no: its `{"error": ..}` text and the status.
    #[error("{message} (HTTP {status})")]
    Server { status: u16, message: String },
    #[error("the admin listener answered something that is not the API's JSON: {0}")]
    BadAnswer(String),
    #[error("the tap stream ended without its end line")]
    TapCut,
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}
