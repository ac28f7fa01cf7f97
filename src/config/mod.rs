//! Configuration: raw YAML (`raw`), units (`units`), validation into the typed config the runtime uses
//! (`validate`, `types`), and the errors `wsgate check` prints (`error`).

mod access;
mod error;
mod hosts;
mod raw;
mod types;
mod units;
mod validate;

use std::path::Path;

pub use access::*;
pub use error::{ConfigError, FieldError};
pub use types::*;

impl Config {
    /// Parses and validates a YAML document. Syntax errors and unknown keys stop at the first (with
    /// its line); semantic errors are all collected.
    /// Relative file paths (TLS certificates) are taken from the current directory.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        Self::from_yaml_in(text, Path::new("."))
    }

    /// Relative file paths are taken from `base`.
    pub fn from_yaml_in(text: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw: raw::RawConfig = serde_yaml::from_str(text).map_err(ConfigError::from_yaml)?;
        validate::validate(raw, base)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        // Like nginx's, relative paths in the file are relative to the file's directory.
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Self::from_yaml_in(&text, base)
    }
}
