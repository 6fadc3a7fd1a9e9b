//! Configuration, through figment: built-in defaults, then `fixtures.toml` (the nearest one
//! found walking up from the crate's folder; any TOML form of its keys' values), then
//! `FIXTURE_*` environment variables.
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

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

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

/// The settings as written: each key in every form its value may take (a `FIXTURE_*`
/// variable is text, which figment reads as a number or a boolean where it looks like one).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    runtime: Option<String>,
    timeout: Option<Seconds>,
    reuse: Option<Flag>,
    log_tail: Option<Count>,
    docker_host: Option<String>,
    podman_host: Option<String>,
    tls_verify: Option<Flag>,
    cert_path: Option<String>,
    ssh_command: Option<String>,
    engines: Option<List>,
}

/// A yes/no setting: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`.
#[derive(Debug)]
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("yes or no")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Flag, E> {
                Ok(Flag(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Flag, E> {
                match v {
                    0 => Ok(Flag(false)),
                    1 => Ok(Flag(true)),
                    n => Err(E::custom(format!("`{n}` is not yes or no (use true/false, 1/0)"))),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Flag, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_str<E: de::Error>(self, t: &str) -> std::result::Result<Flag, E> {
                match t.trim().to_ascii_lowercase().as_str() {
                    "1" | "true" | "yes" | "on" => Ok(Flag(true)),
                    "0" | "false" | "no" | "off" | "" => Ok(Flag(false)),
                    other => Err(E::custom(format!("`{other}` is not yes or no (use true/false, 1/0)"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A number of seconds: `30`, `2.5`, or the same as text (`"30"`, `"30s"`).
#[derive(Debug)]
struct Seconds(f64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number of seconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Seconds, E> {
                Ok(Seconds(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Seconds, E> {
                Ok(Seconds(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Seconds, E> {
                Ok(Seconds(v))
            }
            fn visit_str<E: de::Error>(self, t: &str) -> std::result::Result<Seconds, E> {
                let trimmed = t.trim();
                trimmed
                    .strip_suffix('s')
                    .unwrap_or(trimmed)
                    .trim()
                    .parse()
                    .map(Seconds)
                    .map_err(|_| E::custom(format!("`{t}` is not a number of seconds (write it as 30 or 2.5)")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A number of lines: `200`, or the same as text.
#[derive(Debug)]
struct Count(usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number of lines")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Count, E> {
                usize::try_from(v)
                    .map(Count)
                    .map_err(|_| E::custom(format!("`{v}` is not a number of lines (0 or more)")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Count, E> {
                usize::try_from(v)
                    .map(Count)
                    .map_err(|_| E::custom(format!("`{v}` is not a number of lines (0 or more)")))
            }
            fn visit_str<E: de::Error>(self, t: &str) -> std::result::Result<Count, E> {
                t.trim()
                    .parse()
                    .map(Count)
                    .map_err(|_| E::custom(format!("`{t}` is not a number of lines (0 or more)")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A list: an array of strings, or text with commas between the items.
#[derive(Debug)]
struct List(Vec<String>);

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = List;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of strings")
            }
            fn visit_str<E: de::Error>(self, t: &str) -> std::result::Result<List, E> {
                Ok(List(t.split(',').map(str::to_owned).collect()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<List, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    out.push(item);
                }
                Ok(List(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// The nearest `fixtures.toml` at or above `dir`.
fn find_file(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().map(|d| d.join("fixtures.toml")).find(|p| p.is_file())
}

/// A figment error as this library words it: which file or variable, which key, what is wrong.
fn described(e: figment::Error, file: Option<&Path>) -> String {
    // `engines[1]`: the key, and where in its value.
    let key = e.path.first().map(|first| {
        e.path[1..].iter().fold(first.clone(), |key, part| match part.parse::<usize>() {
            Ok(i) => format!("{key}[{i}]"),
            Err(_) => format!("{key}.{part}"),
        })
    });
    let variable = e.path.first().map(|k| format!("FIXTURE_{}", k.to_ascii_uppercase()));
    let whence = match (e.metadata.as_ref().and_then(|m| m.source.as_ref()), &key) {
        (Some(figment::Source::File(path)), Some(key)) => format!("`{key}` in {}: ", path.display()),
        (Some(figment::Source::File(path)), None) => format!("{}: ", path.display()),
        (_, Some(_)) if e.metadata.as_ref().is_some_and(|m| m.name.contains("environment")) => {
            format!("{}: ", variable.unwrap_or_default())
        }
        (_, Some(key)) => format!("`{key}`: "),
        (_, None) => file.map(|f| format!("{}: ", f.display())).unwrap_or_default(),
    };
    format!("{whence}{}", e.kind)
}

impl Config {
    /// Loads the configuration for a crate in `dir`, with the `FIXTURE_*` environment
    /// variables of this process.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the file or variable that is wrong and how.
    pub fn load_from(dir: &Path) -> Result<Config> {
        Config::layered(dir, Env::prefixed("FIXTURE_").only(&KEYS))
    }

    /// Defaults, then the file found from `dir`, then the variables of `env`, through figment.
    fn layered(dir: &Path, env: impl figment::Provider) -> Result<Config> {
        let file = find_file(dir);
        let mut figment = Figment::new();
        if let Some(file) = &file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let written: Written = figment.merge(env).extract().map_err(|e| {
            let all: Vec<String> = e.into_iter().map(|e| described(e, file.as_deref())).collect();
            Error::new(ErrorKind::Config, format!("invalid configuration: {}", all.join("; ")))
        })?;
        let defaults = Config::default();
        let config = Config {
            runtime: written.runtime,
            timeout: written.timeout.map_or(defaults.timeout, |s| s.0),
            reuse: written.reuse.map_or(defaults.reuse, |f| f.0),
            log_tail: written.log_tail.map_or(defaults.log_tail, |c| c.0),
            docker_host: written.docker_host,
            podman_host: written.podman_host,
            tls_verify: written.tls_verify.map(|f| f.0),
            cert_path: written.cert_path,
            ssh_command: written.ssh_command,
            engines: written
                .engines
                .map(|l| l.0.into_iter().map(|i| i.trim().to_owned()).filter(|i| !i.is_empty()).collect())
                .unwrap_or_default(),
        };
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
    use figment::value::{Dict, Map, Value};
    use figment::{Metadata, Profile, Provider};

    use super::*;

    /// `FIXTURE_*` variables without touching the process's environment: each value read as
    /// figment's `Env` reads a variable's text.
    struct Vars(Vec<(&'static str, &'static str)>);

    impl Provider for Vars {
        fn metadata(&self) -> Metadata {
            Metadata::named("`FIXTURE_` environment variable(s)")
        }
        fn data(&self) -> std::result::Result<Map<Profile, Dict>, figment::Error> {
            let dict: Dict =
                self.0.iter().map(|(k, v)| ((*k).to_owned(), v.parse::<Value>().expect("any text"))).collect();
            Ok(Profile::Default.collect(dict))
        }
    }

    fn none() -> Vars {
        Vars(Vec::new())
    }

    /// A folder of its own holding a `fixtures.toml` with `text`.
    fn with_file(name: &str, text: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("fixtures-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&root).expect("dir");
        std::fs::write(root.join("fixtures.toml"), text).expect("write");
        root
    }

    #[test]
    fn defaults() {
        let c = Config::default();
        assert_eq!((c.timeout, c.reuse, c.log_tail, c.runtime), (30.0, false, 100, None));
    }

    #[test]
    fn each_source_overrides_the_one_before() {
        let root = with_file("layers", "runtime = \"podman\"\ntimeout = 60\nreuse = true\n");
        let from_file = Config::layered(&root, none()).expect("valid");
        assert_eq!(
            (from_file.runtime.as_deref(), from_file.timeout, from_file.reuse, from_file.log_tail),
            (Some("podman"), 60.0, true, 100)
        );
        let from_env = Config::layered(&root, Vars(vec![("runtime", "docker"), ("log_tail", "5"), ("reuse", "0")]))
            .expect("valid");
        assert_eq!(
            (from_env.runtime.as_deref(), from_env.timeout, from_env.log_tail, from_env.reuse),
            (Some("docker"), 60.0, 5, false)
        );
        assert!(Config::layered(&root, Vars(vec![("reuse", "yes")])).expect("valid").reuse);
        assert_eq!(Config::layered(&root, Vars(vec![("timeout", "2.5s")])).expect("valid").timeout, 2.5);
        let soon = Config::layered(&root, Vars(vec![("timeout", "soon")])).expect_err("text");
        assert_eq!(
            soon.to_string(),
            "invalid configuration: FIXTURE_TIMEOUT: `soon` is not a number of seconds (write it as 30 or 2.5)"
        );
        // A variable replaces a wrong value of the file.
        std::fs::write(root.join("fixtures.toml"), "timeout = \"soon\"\n").expect("write");
        assert_eq!(Config::layered(&root, Vars(vec![("timeout", "5")])).expect("the variable wins").timeout, 5.0);
        std::fs::remove_dir_all(&root).expect("clean");
    }

    #[test]
    fn mistakes_name_the_file_or_variable_and_the_key() {
        let root = with_file("mistakes", "timeout = -1\n");
        let file = root.join("fixtures.toml");
        let err = Config::layered(&root, none()).expect_err("negative");
        assert_eq!(
            err.to_string(),
            format!(
                "`timeout` in {} or FIXTURE_TIMEOUT: the timeout must be a positive number of seconds, not -1",
                file.display()
            )
        );
        std::fs::write(&file, "runtime = 3\n").expect("write");
        let err = Config::layered(&root, none()).expect_err("a number");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid configuration: `runtime` in {}: invalid type: found signed int `3`, expected a string",
                file.display()
            )
        );
        std::fs::write(&file, "retries = 3\n").expect("write");
        let err = Config::layered(&root, none()).expect_err("unknown key");
        assert!(
            err.to_string().contains("unknown field: found `retries`")
                || err.to_string().contains("unknown field `retries`"),
            "{err}"
        );
        assert!(err.to_string().contains("log_tail"), "it lists the keys: {err}");
        std::fs::write(&file, "reuse = true\nreuse = false\n").expect("write");
        let err = Config::layered(&root, none()).expect_err("twice");
        assert!(
            err.to_string().contains(&file.display().to_string()) && err.to_string().contains("duplicate key"),
            "{err}"
        );
        std::fs::write(&file, "reuse = true\n").expect("write");
        let err = Config::layered(&root, Vars(vec![("log_tail", "many")])).expect_err("a bad count");
        assert!(err.to_string().contains("FIXTURE_LOG_TAIL: `many` is not a number of lines (0 or more)"), "{err}");
        std::fs::remove_dir_all(&root).expect("clean");
    }

    /// Every TOML form of the keys' values: literal and basic strings with escapes, numbers
    /// with `_` and radix prefixes, arrays over several lines with comments and a trailing
    /// comma, escaped quotes inside arrays.
    #[test]
    fn any_toml_form_of_a_value_is_read() {
        let root = with_file(
            "forms",
            "# ours\ndocker_host = 'unix:///d.sock' # local\nlog_tail = 2_000\npodman_host = \"unix:///\\u0070.sock\"\n\
             engines = [\n  \"docker=unix:///d.sock\",  # the first\n  'ssh://ci@b',\n  \"podman=ssh://\\\"q\\\"@c\",\n]\n\
             tls_verify = true\ncert_path = \"\"\"/certs\"\"\"\nssh_command = \"ssh -F x\"\n",
        );
        let read = Config::layered(&root, none()).expect("valid");
        assert_eq!(
            (read.docker_host.as_deref(), read.log_tail, read.podman_host.as_deref()),
            (Some("unix:///d.sock"), 2000, Some("unix:///p.sock"))
        );
        assert_eq!(read.engines, ["docker=unix:///d.sock", "ssh://ci@b", "podman=ssh://\"q\"@c"]);
        assert_eq!(
            (read.tls_verify, read.cert_path.as_deref(), read.ssh_command.as_deref()),
            (Some(true), Some("/certs"), Some("ssh -F x"))
        );
        std::fs::write(root.join("fixtures.toml"), "log_tail = 0x10\n").expect("write");
        assert_eq!(Config::layered(&root, none()).expect("valid").log_tail, 16);
        let read = Config::layered(&root, Vars(vec![("engines", " a, b ,"), ("tls_verify", "0")])).expect("valid");
        assert_eq!((read.engines, read.tls_verify), (vec!["a".to_owned(), "b".to_owned()], Some(false)));
        std::fs::write(root.join("fixtures.toml"), "engines = [1, 2]\n").expect("write");
        let err = Config::layered(&root, none()).expect_err("numbers");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid configuration: `engines[0]` in {}: invalid type: found signed int `1`, expected a string",
                root.join("fixtures.toml").display()
            )
        );
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
