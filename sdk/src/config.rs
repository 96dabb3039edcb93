//! The plugin's configuration: the `[plugins.<name>.config]` table the operator wrote in
//! the gateway's config file. Values arrive as strings; these functions parse them with
//! [`FromStr`] (surrounding whitespace is ignored).
//!
//! ```
//! # biogate_sdk::testing::set_config(&[("window_seconds", "30"), ("mode", "strict")]);
//! use biogate_sdk::config;
//!
//! let window: u64 = config::get_or("window_seconds", 60)?;      // 30; 60 when unset
//! let mode: String = config::require("mode")?;                 // error when unset
//! let ratio: Option<f64> = config::get("ratio")?;              // None when unset
//! # assert_eq!((window, mode.as_str(), ratio), (30, "strict", None));
//! # Ok::<(), config::ConfigError>(())
//! ```

use std::fmt::Display;
use std::str::FromStr;

/// A configuration value is missing or does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required key is not set.
    #[error("plugin config: required key `{key}` is not set")]
    Missing {
        /// The key.
        key: String,
    },
    /// The value does not parse as the expected type. The value itself is not repeated
    /// (it may be a secret).
    #[error("plugin config: key `{key}` has an invalid value: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// Why the value was refused (the parser's message).
        reason: String,
    },
}

/// The raw string value of `key`, if the operator set it.
pub fn get_str(key: &str) -> Option<String> {
    crate::backend::config_get(key)
}

/// The value of `key` parsed as `T`; `Ok(None)` when the key is not set.
pub fn get<T>(key: &str) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    get_str(key)
        .map(|raw| {
            raw.trim().parse::<T>().map_err(|err| ConfigError::Invalid { key: key.to_owned(), reason: err.to_string() })
        })
        .transpose()
}

/// The value of `key` parsed as `T`, or `default` when the key is not set. A value that
/// is set but does not parse is still an error.
pub fn get_or<T>(key: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    Ok(get(key)?.unwrap_or(default))
}

/// The value of `key` parsed as `T`; an error when the key is not set.
pub fn require<T>(key: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    get(key)?.ok_or_else(|| ConfigError::Missing { key: key.to_owned() })
}

/// Every key and value, sorted by key.
pub fn all() -> Vec<(String, String)> {
    crate::backend::config_all()
}

/// The keys that start with `prefix`, with the prefix removed, and their values, sorted
/// by key: `with_prefix("map.")` turns `map.1 = E1042` into `("1", "E1042")`.
pub fn with_prefix(prefix: &str) -> Vec<(String, String)> {
    all().into_iter().filter_map(|(key, value)| key.strip_prefix(prefix).map(|rest| (rest.to_owned(), value))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn typed_access() {
        testing::set_config(&[("n", " 42 "), ("flag", "false"), ("bad", "x1"), ("map.1", "E1")]);
        assert_eq!(get::<u32>("n"), Ok(Some(42)));
        assert_eq!(get::<u32>("unset"), Ok(None));
        assert_eq!(get_or("flag", true), Ok(false));
        assert_eq!(get_or("unset", 7u8), Ok(7));
        assert_eq!(require::<String>("n"), Ok("42".to_owned()));
        assert!(matches!(
            require::<u32>("unset"),
            Err(ConfigError::Missing { key }) if key == "unset"
        ));
        let err = get::<u32>("bad").unwrap_err();
        assert!(matches!(&err, ConfigError::Invalid { key, .. } if key == "bad"));
        assert!(!err.to_string().contains("x1"), "the value must not leak: {err}");
        assert_eq!(with_prefix("map."), vec![("1".to_owned(), "E1".to_owned())]);
        assert_eq!(all().len(), 4);
    }
}
