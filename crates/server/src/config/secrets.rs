//! A secret key `x` is given either inline as `x` or as `x_env = "VAR"` naming an environment
//! variable — exactly one of the two.

use super::ConfigError;
use secrecy::SecretString;
use std::cell::RefCell;

/// Looks up environment variables; injected so tests need not touch the process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads secrets and keeps every problem it meets, so that one run of `config check` names
/// every missing variable instead of the first.
pub struct Secrets<'a> {
    env: EnvLookup<'a>,
    problems: RefCell<Vec<ConfigError>>,
}

impl<'a> Secrets<'a> {
    pub fn new(env: EnvLookup<'a>) -> Self {
        Secrets {
            env,
            problems: RefCell::new(Vec::new()),
        }
    }

    /// The secret at `key` (e.g. `providers.meta.access_token`); `None` when neither form is
    /// present, or when the one given is unusable (recorded as a problem).
    pub fn optional(
        &self,
        key: &str,
        inline: Option<&str>,
        env_name: Option<&str>,
    ) -> Option<SecretString> {
        match (inline, env_name) {
            (Some(_), Some(_)) => self.problem(ConfigError::new(
                key,
                format!("give either {} or {}_env, not both", last(key), last(key)),
            )),
            (Some(""), None) => self.problem(ConfigError::new(key, "must not be empty")),
            (Some(value), None) => Some(SecretString::from(value.to_string())),
            (None, Some(var)) => match (self.env)(var) {
                Some(value) if !value.is_empty() => Some(SecretString::from(value)),
                _ => self.problem(ConfigError::new(
                    format!("{key}_env"),
                    format!("environment variable {var} is not set (or empty)"),
                )),
            },
            (None, None) => None,
        }
    }

    /// Like [`Secrets::optional`], but one of the two forms must be present. On a problem the
    /// result is an empty placeholder: resolution goes on to find the other problems, and
    /// fails at the end.
    pub fn required(
        &self,
        key: &str,
        inline: Option<&str>,
        env_name: Option<&str>,
    ) -> SecretString {
        if inline.is_none() && env_name.is_none() {
            self.problem::<()>(ConfigError::new(
                key,
                format!("is required: give {} or {}_env", last(key), last(key)),
            ));
        }
        self.optional(key, inline, env_name)
            .unwrap_or_else(|| SecretString::from(String::new()))
    }

    pub fn into_problems(self) -> Vec<ConfigError> {
        self.problems.into_inner()
    }

    /// Records a problem met beside a secret (resolution goes on).
    pub fn report(&self, error: ConfigError) {
        self.problems.borrow_mut().push(error);
    }

    fn problem<T>(&self, error: ConfigError) -> Option<T> {
        self.report(error);
        None
    }
}

fn last(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}
