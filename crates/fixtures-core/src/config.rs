//! Configuration: built-in defaults, then `fixtures.toml` (the nearest one found walking
//! up from the crate's folder), then `FIXTURE_*` environment variables.
//!
//! ```toml
//! # fixtures.toml
//! runtime = "podman"      # docker | podman; unset: the first that answers
//! timeout = 60            # seconds a container has to become ready
//! reuse = true            # keep named fixtures between runs
//! log_tail = 200          # log lines printed per container when a test fails
//! docker_host = "unix:///var/run/docker.sock"
//! podman_host = "unix:///run/podman/podman.sock"
//! ```
//!
//! The same keys as environment variables: `FIXTURE_RUNTIME`, `FIXTURE_TIMEOUT`,
//! `FIXTURE_REUSE`, `FIXTURE_LOG_TAIL`, `FIXTURE_DOCKER_HOST`, `FIXTURE_PODMAN_HOST`.
//! `DOCKER_HOST` and `CONTAINER_HOST` are honoured by the backends when no host is set here.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// The settings in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Backend to use by name; `None`: the first that answers.
    pub runtime: Option<String>,
    /// Seconds a container has to become ready.
    #[serde(deserialize_with = "seconds")]
    pub timeout: f64,
    /// Keep named fixtures between runs and reuse them when unchanged.
    #[serde(deserialize_with = "flag")]
    pub reuse: bool,
    /// Log lines printed per container when a test fails.
    pub log_tail: usize,
    /// Docker host (`unix://...`, `tcp://...`).
    pub docker_host: Option<String>,
    /// Podman host (`unix://...`).
    pub podman_host: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config { runtime: None, timeout: 30.0, reuse: false, log_tail: 100, docker_host: None, podman_host: None }
    }
}

/// A yes/no setting: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`.
fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Int(i64),
        Text(String),
    }
    match Flag::deserialize(d)? {
        Flag::Bool(b) => Ok(b),
        Flag::Int(0) => Ok(false),
        Flag::Int(1) => Ok(true),
        Flag::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" | "" => Ok(false),
            other => Err(serde::de::Error::custom(format!("`{other}` is not yes or no (use true/false, 1/0)"))),
        },
        Flag::Int(n) => Err(serde::de::Error::custom(format!("`{n}` is not yes or no (use true/false, 1/0)"))),
    }
}

/// A number of seconds: `30`, `2.5`, or the same as text (`"30"`, `"30s"`).
fn seconds<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Number(f64),
        Text(String),
    }
    match Seconds::deserialize(d)? {
        Seconds::Number(n) => Ok(n),
        Seconds::Text(t) => {
            let trimmed = t.trim();
            trimmed.strip_suffix('s').unwrap_or(trimmed).trim().parse().map_err(|_| {
                serde::de::Error::custom(format!("`{t}` is not a number of seconds (write it as 30 or 2.5)"))
            })
        }
    }
}

/// A configuration error as its reader needs it: the key, where it was set (the file, or the
/// `FIXTURE_*` variable), and what is wrong with it; one line per error.
fn describe(error: figment::Error) -> String {
    let lines: Vec<String> = error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let place = match e.metadata.as_ref().map(|m| (&m.source, m.name.contains("environment"))) {
                Some((_, true)) => format!("FIXTURE_{}", key.to_ascii_uppercase()),
                Some((Some(figment::Source::File(file)), false)) if key.is_empty() => file.display().to_string(),
                Some((Some(figment::Source::File(file)), false)) => format!("`{key}` in {}", file.display()),
                _ if key.is_empty() => "the configuration".to_owned(),
                _ => format!("`{key}`"),
            };
            format!("{place}: {}", e.kind)
        })
        .collect();
    format!("invalid configuration: {}", lines.join("; "))
}

/// The nearest `fixtures.toml` at or above `dir`.
fn find_file(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().map(|d| d.join("fixtures.toml")).find(|p| p.is_file())
}

impl Config {
    /// Loads the configuration for a crate in `dir`, with environment variables from `env`.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the file or variable that is wrong and how.
    pub fn load_from(dir: &Path) -> Result<Config> {
        let env =
            Env::prefixed("FIXTURE_").only(&["runtime", "timeout", "reuse", "log_tail", "docker_host", "podman_host"]);
        Config::layered(dir, env)
    }

    /// Defaults, then the file found from `dir`, then `env`.
    fn layered(dir: &Path, env: impl figment::Provider) -> Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let file = find_file(dir);
        if let Some(file) = &file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(env);
        let config: Config = figment.extract().map_err(|e| Error::new(ErrorKind::Config, describe(e)))?;
        if !(config.timeout > 0.0 && config.timeout.is_finite()) {
            let whence = match &file {
                Some(f) => format!("`timeout` in {} or FIXTURE_TIMEOUT", f.display()),
                None => "FIXTURE_TIMEOUT".to_owned(),
            };
            return Err(Error::new(
                ErrorKind::Config,
                format!("{whence}: the timeout must be a positive number of seconds, not {}", config.timeout),
            ));
        }
        Ok(config)
    }

    /// The configuration of this process: the crate's folder is `CARGO_MANIFEST_DIR` (set
    /// by cargo for tests), else the current folder.
    ///
    /// # Errors
    /// As [`Config::load_from`].
    pub fn load() -> Result<Config> {
        let dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_default();
        Config::load_from(&dir)
    }

    /// The timeout as a duration.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.timeout)
    }
}

static CURRENT: LazyLock<Result<Config, String>> = LazyLock::new(|| Config::load().map_err(|e| e.message().to_owned()));

/// The configuration loaded once for this process.
///
/// # Errors
/// [`ErrorKind::Config`] when it is invalid.
pub fn current() -> Result<&'static Config> {
    CURRENT.as_ref().map_err(|m| Error::new(ErrorKind::Config, m.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::default();
        assert_eq!((c.timeout, c.reuse, c.log_tail, c.runtime), (30.0, false, 100, None));
    }

    #[test]
    fn each_source_overrides_the_one_before() {
        let root = std::env::temp_dir().join(format!("fixtures-layers-{}", std::process::id()));
        std::fs::create_dir_all(&root).expect("dir");
        std::fs::write(root.join("fixtures.toml"), "runtime = \"podman\"\ntimeout = 60\nreuse = true\n")
            .expect("write");
        let none = Serialized::globals(serde_json::json!({}));
        let from_file = Config::layered(&root, none).expect("valid");
        assert_eq!(
            (from_file.runtime.as_deref(), from_file.timeout, from_file.reuse, from_file.log_tail),
            (Some("podman"), 60.0, true, 100)
        );
        let env = Serialized::globals(serde_json::json!({"runtime": "docker", "log_tail": 5, "reuse": 0}));
        let from_env = Config::layered(&root, env).expect("valid");
        assert_eq!(
            (from_env.runtime.as_deref(), from_env.timeout, from_env.log_tail, from_env.reuse),
            (Some("docker"), 60.0, 5, false)
        );
        let yes = Config::layered(&root, Serialized::globals(serde_json::json!({"reuse": "yes"}))).expect("valid");
        assert!(yes.reuse);
        let text = Config::layered(&root, Serialized::globals(serde_json::json!({"timeout": "2.5s"}))).expect("valid");
        assert_eq!(text.timeout, 2.5);
        let soon =
            Config::layered(&root, Serialized::globals(serde_json::json!({"timeout": "soon"}))).expect_err("text");
        assert!(soon.to_string().ends_with("`soon` is not a number of seconds (write it as 30 or 2.5)"), "{soon}");

        std::fs::write(root.join("fixtures.toml"), "timeout = -1\n").expect("write");
        let err = Config::layered(&root, Serialized::globals(serde_json::json!({}))).expect_err("negative");
        assert_eq!(
            err.to_string(),
            format!(
                "`timeout` in {} or FIXTURE_TIMEOUT: the timeout must be a positive number of seconds, not -1",
                root.join("fixtures.toml").display()
            )
        );
        std::fs::write(root.join("fixtures.toml"), "runtime = 3\n").expect("write");
        let err = Config::layered(&root, Serialized::globals(serde_json::json!({}))).expect_err("a number");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid configuration: `runtime` in {}: invalid type: found signed int `3`, expected a string",
                root.join("fixtures.toml").display()
            )
        );
        std::fs::write(root.join("fixtures.toml"), "retries = 3\n").expect("write");
        let err = Config::layered(&root, Serialized::globals(serde_json::json!({}))).expect_err("unknown key");
        assert!(err.to_string().contains("unknown field") && err.to_string().contains("retries"), "{err}");
        std::fs::remove_dir_all(&root).expect("clean");
    }

    #[test]
    fn files_are_found_walking_up() {
        let root = std::env::temp_dir().join(format!("fixtures-config-{}", std::process::id()));
        let deep = root.join("a/b/c");
        std::fs::create_dir_all(&deep).expect("dirs");
        assert_eq!(find_file(&deep), None);
        std::fs::write(root.join("a/fixtures.toml"), "reuse = true\n").expect("write");
        assert_eq!(find_file(&deep), Some(root.join("a/fixtures.toml")));
        std::fs::remove_dir_all(&root).expect("clean");
    }
}
