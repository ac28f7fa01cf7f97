//! Configuration: raw YAML (`raw`), units (`units`), validation into the typed config the runtime uses
//! (`validate`, `types`), and the errors `wsgate check` prints (`error`).

mod error;
mod raw;
mod types;
mod units;
mod validate;

use std::path::Path;

pub use error::{ConfigError, FieldError};
pub use types::*;

impl Config {
    /// Parses and validates a YAML document. Syntax errors and unknown keys stop at the first (with
    /// its line); semantic errors are all collected.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        let raw: raw::RawConfig = serde_yaml::from_str(text).map_err(ConfigError::from_yaml)?;
        validate::validate(raw)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text)
    }
}
