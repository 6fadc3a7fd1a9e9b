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
//! # An engine on another host: tcp:// with TLS, or ssh://user@host[:port][/socket/path]
//! tls_verify = true       # TLS with a client certificate (the `tls` feature)
//! cert_path = "/home/me/.docker"   # ca.pem, cert.pem, key.pem
//! ssh_command = "ssh -F /etc/ci/ssh_config"   # the ssh client and its options
//! # Several engines: each test process takes one of them
//! engines = ["docker=unix:///var/run/docker.sock", "podman=ssh://ci@build-2"]
//! ```
//!
//! The same keys as environment variables: `FIXTURE_RUNTIME`, `FIXTURE_TIMEOUT`,
//! `FIXTURE_REUSE`, `FIXTURE_LOG_TAIL`, `FIXTURE_DOCKER_HOST`, `FIXTURE_PODMAN_HOST`,
//! `FIXTURE_TLS_VERIFY`, `FIXTURE_CERT_PATH`, `FIXTURE_SSH_COMMAND`, `FIXTURE_ENGINES`
//! (a comma-separated list). `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH` and
//! `CONTAINER_HOST` are honoured by the backends when nothing is set here.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use crate::error::{Error, ErrorKind, Result};

/// The settings in force.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Backend to use by name; `None`: the first that answers.
    pub runtime: Option<String>,
    /// Seconds a container has to become ready.
    pub timeout: f64,
    /// Keep named fixtures between runs and reuse them when unchanged.
    pub reuse: bool,
    /// Log lines printed per container when a test fails.
    pub log_tail: usize,
    /// Docker host (`unix://...`, `tcp://...`).
    pub docker_host: Option<String>,
    /// Podman host (`unix://...`, `tcp://...`, `ssh://...`).
    pub podman_host: Option<String>,
    /// Whether a `tcp://` engine is reached over TLS with a client certificate; `None`:
    /// as `DOCKER_TLS_VERIFY` says.
    pub tls_verify: Option<bool>,
    /// The folder of `ca.pem`, `cert.pem` and `key.pem`; `None`: `DOCKER_CERT_PATH`, else
    /// `~/.docker`.
    pub cert_path: Option<String>,
    /// The ssh client for `ssh://` engines, with its options (`ssh -F file`); `None`: `ssh`.
    pub ssh_command: Option<String>,
    /// A pool of engines, each `host` or `runtime=host`: every test process takes one
    /// (spread over them), and all of its fixtures live there. Empty: one engine, as
    /// `runtime` and the hosts say.
    pub engines: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            runtime: None,
            timeout: 30.0,
            reuse: false,
            log_tail: 100,
            docker_host: None,
            podman_host: None,
            tls_verify: None,
            cert_path: None,
            ssh_command: None,
            engines: Vec::new(),
        }
    }
}

/// The keys, in the order the file's documentation gives them.
const KEYS: [&str; 10] = [
    "runtime",
    "timeout",
    "reuse",
    "log_tail",
    "docker_host",
    "podman_host",
    "tls_verify",
    "cert_path",
    "ssh_command",
    "engines",
];

/// A value as written: in `fixtures.toml` a TOML string, integer, float or boolean; in a
/// `FIXTURE_*` variable always text, read by what its key takes.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A one-line TOML array of strings.
    List(Vec<String>),
}

impl Value {
    /// What it is, for a message: "signed int `3`".
    fn describe(&self) -> String {
        match self {
            Value::Text(t) => format!("string {t:?}"),
            Value::Int(i) => format!("signed int `{i}`"),
            Value::Float(f) => format!("floating point `{f}`"),
            Value::Bool(b) => format!("boolean `{b}`"),
            Value::List(l) => format!("array of {} strings", l.len()),
        }
    }
}

fn invalid_type(value: &Value, expected: &str) -> String {
    format!("invalid type: found {}, expected {expected}", value.describe())
}

/// A yes/no setting: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`.
fn flag(value: &Value) -> std::result::Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Int(0) => Ok(false),
        Value::Int(1) => Ok(true),
        Value::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" | "" => Ok(false),
            other => Err(format!("`{other}` is not yes or no (use true/false, 1/0)")),
        },
        Value::Int(n) => Err(format!("`{n}` is not yes or no (use true/false, 1/0)")),
        Value::Float(_) | Value::List(_) => Err(invalid_type(value, "yes or no")),
    }
}

/// A number of seconds: `30`, `2.5`, or the same as text (`"30"`, `"30s"`).
fn seconds(value: &Value) -> std::result::Result<f64, String> {
    match value {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        Value::Text(t) => {
            let trimmed = t.trim();
            trimmed
                .strip_suffix('s')
                .unwrap_or(trimmed)
                .trim()
                .parse()
                .map_err(|_| format!("`{t}` is not a number of seconds (write it as 30 or 2.5)"))
        }
        Value::Bool(_) | Value::List(_) => Err(invalid_type(value, "a number of seconds")),
    }
}

fn count(value: &Value) -> std::result::Result<usize, String> {
    match value {
        Value::Int(i) => usize::try_from(*i).map_err(|_| format!("`{i}` is not a number of lines (0 or more)")),
        Value::Text(t) => t.trim().parse().map_err(|_| format!("`{t}` is not a number of lines (0 or more)")),
        _ => Err(invalid_type(value, "a number of lines")),
    }
}

/// A list: a TOML array of strings, or text with commas between the items.
fn list(value: &Value) -> std::result::Result<Vec<String>, String> {
    let items = match value {
        Value::List(items) => items.clone(),
        Value::Text(t) => t.split(',').map(str::to_owned).collect(),
        _ => return Err(invalid_type(value, "a list of strings")),
    };
    Ok(items.into_iter().map(|i| i.trim().to_owned()).filter(|i| !i.is_empty()).collect())
}

fn text(value: &Value) -> std::result::Result<Option<String>, String> {
    match value {
        Value::Text(t) => Ok(Some(t.clone())),
        _ => Err(invalid_type(value, "a string")),
    }
}

impl Config {
    /// Sets `key` to `value`; the error says what is wrong with the value.
    fn set(&mut self, key: &str, value: &Value) -> std::result::Result<(), String> {
        match key {
            "runtime" => self.runtime = text(value)?,
            "timeout" => self.timeout = seconds(value)?,
            "reuse" => self.reuse = flag(value)?,
            "log_tail" => self.log_tail = count(value)?,
            "docker_host" => self.docker_host = text(value)?,
            "podman_host" => self.podman_host = text(value)?,
            "tls_verify" => self.tls_verify = Some(flag(value)?),
            "cert_path" => self.cert_path = text(value)?,
            "ssh_command" => self.ssh_command = text(value)?,
            "engines" => self.engines = list(value)?,
            other => {
                let expected: Vec<String> = KEYS.iter().map(|k| format!("`{k}`")).collect();
                return Err(format!("unknown field `{other}`, expected one of {}", expected.join(", ")));
            }
        }
        Ok(())
    }
}

/// The `key = value` lines of a `fixtures.toml`: a flat file of the keys above (TOML strings,
/// numbers and booleans; comments and blank lines skipped). A line of another shape (a
/// table, an array) is an error that names it.
fn read_file(text: &str) -> Vec<(String, std::result::Result<Value, String>)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            let what = if line.starts_with('[') { "a table" } else { "a line without `=`" };
            out.push((format!("line {}", n + 1), Err(format!("{what} is not a setting: write `key = value`"))));
            continue;
        };
        let key = key.trim().trim_matches('"').to_owned();
        out.push((key, toml_value(raw.trim())));
    }
    out
}

/// A TOML string, integer, float or boolean, with any comment after it.
fn toml_value(raw: &str) -> std::result::Result<Value, String> {
    if let Some(mut rest) = raw.strip_prefix('[') {
        let mut items = Vec::new();
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix(']') {
                let after = after.trim();
                return if after.is_empty() || after.starts_with('#') {
                    Ok(Value::List(items))
                } else {
                    Err(format!("`{after}` after the array cannot be read"))
                };
            }
            let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'');
            let Some(quote) = quote else {
                return Err("an array that is not of strings on one line: write [\"a\", \"b\"]".to_owned());
            };
            let Some((item, after)) = rest[1..].split_once(quote) else {
                return Err(format!("a string that does not end with `{quote}`"));
            };
            items.push(item.to_owned());
            rest = after.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    if let Some(rest) = raw.strip_prefix('"') {
        let mut text = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    let after = chars.as_str().trim();
                    return if after.is_empty() || after.starts_with('#') {
                        Ok(Value::Text(text))
                    } else {
                        Err(format!("`{after}` after the string cannot be read"))
                    };
                }
                '\\' => match chars.next() {
                    Some('n') => text.push('\n'),
                    Some('t') => text.push('\t'),
                    Some('r') => text.push('\r'),
                    Some('b') => text.push('\u{8}'),
                    Some('f') => text.push('\u{c}'),
                    Some(c @ ('"' | '\\')) => text.push(c),
                    Some(u @ ('u' | 'U')) => {
                        let digits: String = chars.by_ref().take(if u == 'u' { 4 } else { 8 }).collect();
                        match u32::from_str_radix(&digits, 16).ok().and_then(char::from_u32) {
                            Some(c) => text.push(c),
                            None => return Err(format!("`\\{u}{digits}` is not a character")),
                        }
                    }
                    Some(other) => return Err(format!("`\\{other}` is not an escape TOML knows")),
                    None => break,
                },
                c => text.push(c),
            }
        }
        return Err("a string that does not end with `\"`".to_owned());
    }
    if let Some(rest) = raw.strip_prefix('\'') {
        return match rest.split_once('\'') {
            Some((text, after)) if after.trim().is_empty() || after.trim().starts_with('#') => {
                Ok(Value::Text(text.to_owned()))
            }
            _ => Err("a string that does not end with `'`".to_owned()),
        };
    }
    let word = raw.split('#').next().unwrap_or_default().trim();
    match word {
        "true" => Ok(Value::Bool(true)),
        "false" => Ok(Value::Bool(false)),
        _ => {
            let digits = word.replace('_', "");
            let radix =
                [("0x", 16), ("0o", 8), ("0b", 2)].into_iter().find_map(|(p, r)| Some((digits.strip_prefix(p)?, r)));
            if let Some((rest, radix)) = radix {
                return i64::from_str_radix(rest, radix)
                    .map(Value::Int)
                    .map_err(|_| format!("`{word}` is not a number"));
            }
            if let Ok(i) = digits.parse::<i64>() {
                Ok(Value::Int(i))
            } else if let Ok(f) = digits.parse::<f64>() {
                Ok(Value::Float(f))
            } else {
                Err(format!("`{word}` is not a value: write a string in quotes, a number, true or false"))
            }
        }
    }
}

/// The nearest `fixtures.toml` at or above `dir`.
fn find_file(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().map(|d| d.join("fixtures.toml")).find(|p| p.is_file())
}

impl Config {
    /// Loads the configuration for a crate in `dir`, with the `FIXTURE_*` environment
    /// variables of this process.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the file or variable that is wrong and how.
    pub fn load_from(dir: &Path) -> Result<Config> {
        let env: Vec<(String, String)> = KEYS
            .iter()
            .filter_map(|k| {
                std::env::var(format!("FIXTURE_{}", k.to_ascii_uppercase())).ok().map(|v| ((*k).to_owned(), v))
            })
            .collect();
        Config::layered(dir, &env)
    }

    /// Defaults, then the file found from `dir`, then `env` (key, text).
    fn layered(dir: &Path, env: &[(String, String)]) -> Result<Config> {
        let mut config = Config::default();
        let mut errors = Vec::new();
        let file = find_file(dir);
        if let Some(file) = &file {
            let text = std::fs::read_to_string(file).map_err(|e| {
                Error::new(ErrorKind::Config, format!("invalid configuration: {} cannot be read: {e}", file.display()))
            })?;
            let mut seen = std::collections::BTreeSet::new();
            for (key, value) in read_file(&text) {
                // A variable overrides the file's value, a wrong one too.
                if env.iter().any(|(k, _)| *k == key) {
                    continue;
                }
                let value = if seen.insert(key.clone()) { value } else { Err("it is set twice".to_owned()) };
                if let Err(why) = value.and_then(|v| config.set(&key, &v)) {
                    errors.push(format!("`{key}` in {}: {why}", file.display()));
                }
            }
        }
        for (key, text) in env {
            if let Err(why) = config.set(key, &Value::Text(text.clone())) {
                errors.push(format!("FIXTURE_{}: {why}", key.to_ascii_uppercase()));
            }
        }
        if !errors.is_empty() {
            return Err(Error::new(ErrorKind::Config, format!("invalid configuration: {}", errors.join("; "))));
        }
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
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        let from_file = Config::layered(&root, &[]).expect("valid");
        assert_eq!(
            (from_file.runtime.as_deref(), from_file.timeout, from_file.reuse, from_file.log_tail),
            (Some("podman"), 60.0, true, 100)
        );
        let from_env =
            Config::layered(&root, &env(&[("runtime", "docker"), ("log_tail", "5"), ("reuse", "0")])).expect("valid");
        assert_eq!(
            (from_env.runtime.as_deref(), from_env.timeout, from_env.log_tail, from_env.reuse),
            (Some("docker"), 60.0, 5, false)
        );
        let yes = Config::layered(&root, &env(&[("reuse", "yes")])).expect("valid");
        assert!(yes.reuse);
        let text = Config::layered(&root, &env(&[("timeout", "2.5s")])).expect("valid");
        assert_eq!(text.timeout, 2.5);
        let soon = Config::layered(&root, &env(&[("timeout", "soon")])).expect_err("text");
        assert!(soon.to_string().ends_with("`soon` is not a number of seconds (write it as 30 or 2.5)"), "{soon}");

        std::fs::write(root.join("fixtures.toml"), "timeout = -1\n").expect("write");
        let err = Config::layered(&root, &[]).expect_err("negative");
        assert_eq!(
            err.to_string(),
            format!(
                "`timeout` in {} or FIXTURE_TIMEOUT: the timeout must be a positive number of seconds, not -1",
                root.join("fixtures.toml").display()
            )
        );
        std::fs::write(root.join("fixtures.toml"), "runtime = 3\n").expect("write");
        let err = Config::layered(&root, &[]).expect_err("a number");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid configuration: `runtime` in {}: invalid type: found signed int `3`, expected a string",
                root.join("fixtures.toml").display()
            )
        );
        std::fs::write(root.join("fixtures.toml"), "retries = 3\n").expect("write");
        let err = Config::layered(&root, &[]).expect_err("unknown key");
        assert!(err.to_string().contains("unknown field") && err.to_string().contains("retries"), "{err}");
        std::fs::write(
            root.join("fixtures.toml"),
            "# ours\ndocker_host = \"unix:///d.sock\" # local\nlog_tail = 2_000\n[extra]\n",
        )
        .expect("write");
        let err = Config::layered(&root, &env(&[("log_tail", "many")])).expect_err("a table, a bad count");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid configuration: `line 4` in {}: a table is not a setting: write `key = value`; \
                 FIXTURE_LOG_TAIL: `many` is not a number of lines (0 or more)",
                root.join("fixtures.toml").display()
            )
        );
        std::fs::write(root.join("fixtures.toml"), "docker_host = 'unix:///d.sock'\nlog_tail = 2_000\n")
            .expect("write");
        let read = Config::layered(&root, &[]).expect("valid");
        assert_eq!((read.docker_host.as_deref(), read.log_tail), (Some("unix:///d.sock"), 2000));
        std::fs::write(
            root.join("fixtures.toml"),
            "timeout = \"soon\"\npodman_host = \"unix:///\\u0070.sock\"\nlog_tail = 0x10\n",
        )
        .expect("write");
        let overridden = Config::layered(&root, &env(&[("timeout", "5")])).expect("the variable wins over a bad value");
        assert_eq!(
            (overridden.timeout, overridden.podman_host.as_deref(), overridden.log_tail),
            (5.0, Some("unix:///p.sock"), 16)
        );
        std::fs::write(root.join("fixtures.toml"), "reuse = true\nreuse = false\ndocker_host = \"\\q\"\n")
            .expect("write");
        let err = Config::layered(&root, &[]).expect_err("twice, a bad escape");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid configuration: `reuse` in {0}: it is set twice; `docker_host` in {0}: `\\q` is not an escape TOML knows",
                root.join("fixtures.toml").display()
            )
        );
        std::fs::remove_dir_all(&root).expect("clean");
    }

    #[test]
    fn remote_engine_keys_and_the_pool_are_read() {
        let root = std::env::temp_dir().join(format!("fixtures-remote-keys-{}", std::process::id()));
        std::fs::create_dir_all(&root).expect("dir");
        std::fs::write(
            root.join("fixtures.toml"),
            "tls_verify = true\ncert_path = \"/certs\"\nssh_command = \"ssh -F x\"\n\
             engines = [\"docker=unix:///d.sock\", 'ssh://ci@b' ] # two\n",
        )
        .expect("write");
        let read = Config::layered(&root, &[]).expect("valid");
        assert_eq!(
            (read.tls_verify, read.cert_path.as_deref(), read.ssh_command.as_deref(), read.engines.clone()),
            (
                Some(true),
                Some("/certs"),
                Some("ssh -F x"),
                vec!["docker=unix:///d.sock".to_owned(), "ssh://ci@b".to_owned()]
            )
        );
        let env = vec![("engines".to_owned(), " a, b ,".to_owned()), ("tls_verify".to_owned(), "0".to_owned())];
        let read = Config::layered(&root, &env).expect("valid");
        assert_eq!((read.engines, read.tls_verify), (vec!["a".to_owned(), "b".to_owned()], Some(false)));
        std::fs::write(root.join("fixtures.toml"), "engines = [1, 2]\n").expect("write");
        let err = Config::layered(&root, &[]).expect_err("numbers");
        assert!(err.to_string().contains("an array that is not of strings on one line"), "{err}");
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
