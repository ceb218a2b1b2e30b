//! A secret key `x` is given either inline as `x` or as `x_env = "VAR"` naming an environment
//! variable — exactly one of the two.

use super::ConfigError;
use secrecy::SecretString;

/// Looks up environment variables; injected so tests need not touch the process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Resolves the secret at `key` (e.g. `providers.meta.access_token`). `Ok(None)` when neither
/// form is present.
pub fn optional_secret(
    key: &str,
    inline: Option<&str>,
    env_name: Option<&str>,
    env: EnvLookup<'_>,
) -> Result<Option<SecretString>, ConfigError> {
    match (inline, env_name) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            key,
            format!("give either {} or {}_env, not both", last(key), last(key)),
        )),
        (Some(""), None) => Err(ConfigError::new(key, "must not be empty")),
        (Some(value), None) => Ok(Some(SecretString::from(value.to_string()))),
        (None, Some(var)) => match env(var) {
            Some(value) if !value.is_empty() => Ok(Some(SecretString::from(value))),
            _ => Err(ConfigError::new(
                format!("{key}_env"),
                format!("environment variable {var} is not set (or empty)"),
            )),
        },
        (None, None) => Ok(None),
    }
}

/// Like [`optional_secret`], but one of the two forms must be present.
pub fn required_secret(
    key: &str,
    inline: Option<&str>,
    env_name: Option<&str>,
    env: EnvLookup<'_>,
) -> Result<SecretString, ConfigError> {
    optional_secret(key, inline, env_name, env)?.ok_or_else(|| {
        ConfigError::new(
            key,
            format!("is required: give {} or {}_env", last(key), last(key)),
        )
    })
}

fn last(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}
