//! Defaults from `--config`: only `admin.bind` and `admin.token_file`, read from the raw YAML so that
//! a file the server would refuse for another reason still tells the client where to go.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use super::error::CliError;

/// Where the admin listener is when neither `--admin` nor `--config` says.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:9901";

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Defaults {
    pub bind: Option<String>,
    pub token_file: Option<PathBuf>,
}

/// Reads the two keys of the config file at `path`.
pub fn from_config(path: &Path) -> Result<Defaults, CliError> {
    let fail = |message: String| CliError::Config {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    // Like the server's: relative paths in the file are relative to the file's directory.
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let defaults = parse(&text, base).map_err(fail)?;
    if defaults.bind.is_none() {
        return Err(fail(
            "it has no admin.bind (that server runs no admin listener); give --admin".to_owned(),
        ));
    }
    Ok(defaults)
}

/// The two keys of a YAML document; `base` resolves a relative token file.
pub fn parse(text: &str, base: &Path) -> Result<Defaults, String> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let Some(admin) = doc.get("admin") else {
        return Ok(Defaults::default());
    };
    let text_of = |key: &str| -> Result<Option<String>, String> {
        match admin.get(key) {
            None | Some(serde_yaml::Value::Null) => Ok(None),
            Some(serde_yaml::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("admin.{key} is not a string")),
        }
    };
    Ok(Defaults {
        bind: text_of("bind")?.map(|bind| connectable(&bind)),
        token_file: text_of("token_file")?.map(|file| base.join(file)),
    })
}

/// A listener bound to every address (0.0.0.0, ::) is reached on loopback.
pub fn connectable(bind: &str) -> String {
    match bind.parse::<SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => {
            let loopback = match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            };
            SocketAddr::new(loopback, addr.port()).to_string()
        }
        _ => bind.to_owned(),
    }
}

/// The token of `path`, trimmed.
pub fn read_token(path: &Path) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::TokenFile {
        path: path.to_owned(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(CliError::EmptyToken {
            path: path.to_owned(),
        });
    }
    if token.chars().any(char::is_control) {
        return Err(CliError::BadToken {
            path: path.to_owned(),
        });
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bind_and_a_token_file_relative_to_the_config() {
        let yaml = "admin:\n  bind: \"127.0.0.1:9911\"\n  token_file: admin.token\nroutes: []\n";
        let defaults = parse(yaml, Path::new("/etc/wsgate")).unwrap();
        assert_eq!(defaults.bind.as_deref(), Some("127.0.0.1:9911"));
        assert_eq!(
            defaults.token_file,
            Some(PathBuf::from("/etc/wsgate/admin.token"))
        );
    }

    #[test]
    fn absolute_token_file_and_missing_sections() {
        let yaml = "admin: { bind: \"[::]:9901\", token_file: /run/t }";
        let defaults = parse(yaml, Path::new("/etc")).unwrap();
        assert_eq!(defaults.bind.as_deref(), Some("[::1]:9901"));
        assert_eq!(defaults.token_file, Some(PathBuf::from("/run/t")));
        assert_eq!(
            parse("listeners: []", Path::new(".")),
            Ok(Defaults::default())
        );
    }

    #[test]
    fn wrong_types_are_errors() {
        let err = parse("admin: { bind: 9901 }", Path::new(".")).unwrap_err();
        assert_eq!(err, "admin.bind is not a string");
        assert!(parse("admin: [", Path::new(".")).is_err());
    }

    #[test]
    fn unspecified_binds_are_reached_on_loopback() {
        assert_eq!(connectable("0.0.0.0:9901"), "127.0.0.1:9901");
        assert_eq!(connectable("10.0.0.1:9901"), "10.0.0.1:9901");
        assert_eq!(connectable("admin.internal:9901"), "admin.internal:9901");
    }
}
