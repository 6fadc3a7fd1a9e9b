//! docker-compose files as test environments.
//!
//! A compose file becomes ordinary fixtures of an [`Env`]: each service a container fixture
//! named after the service, so a test asks for `db` or `api` by name and gets what this
//! library gives any container: a unique name per test (tests run in parallel), its own
//! networks, readiness, logs in the failure report, and removal when the test ends. Only the
//! services a test asks for, and what they depend on, are started. Any service can be
//! replaced ([`Env::with`]) or changed ([`Env::edit_container`]) like a fixture declared in code.
//!
//! ```no_run
//! # use fixtures_core as fixtures;
//! use fixtures::{Container, Env, Scope};
//! use fixtures_compose::Compose;
//!
//! fn env() -> Env {
//!     Compose::new("tests/docker-compose.yml")     // relative to the crate's folder
//!         .file("tests/docker-compose.test.yml")   // an override file, merged as `-f` merges
//!         .var("LOG_LEVEL", "debug")                // as if set in the shell, for `${LOG_LEVEL}`
//!         .scope("db", Scope::Module)               // one database for the module's tests
//!         .env()
//!         .edit_container("api", |api| api.env("FEATURE_X", "on"))
//! }
//! ```
//!
//! What each service becomes:
//! - its image: the fixture `<service>-image`, built from `build` (tagged `image` if given) or
//!   pulled when the engine lacks `image`;
//! - its networks: the fixture `<name>-network` per network (`default` when a service names
//!   none), where it answers to its service name and its aliases, as in Compose;
//! - its named volumes: the fixture `<name>-volume`; bind mounts relative to the first file's folder;
//! - published ports on a host port the engine picks (on the file's host address, else
//!   127.0.0.1), since tests in parallel cannot share one: ask `addr("8080/tcp")`;
//! - readiness: running, every published and exposed port listening, and healthy when it has
//!   a `healthcheck` (or another service needs it `service_healthy`); a service another needs
//!   `service_completed_successfully` is ready once it has exited 0;
//! - `depends_on`: a dependency, made and ready first.
//!
//! Every key a service may have is listed in the README; any other key is an error naming the
//! file, the service, the key and its line, as are YAML errors, unknown services in
//! `depends_on`, cycles and bad ports. `x-` keys are extensions and ignored. Variables
//! (`${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `$$`) come from
//! [`Compose::var`], then the process's environment, then the `.env` file beside the first file.

#![warn(missing_docs)]

mod merge;
mod model;
mod translate;
mod values;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use fixtures_core::{Env, Error, ErrorKind, Result, Scope};

/// A compose project to load: its files, variables, profiles and the scopes of its services.
#[derive(Debug, Clone)]
pub struct Compose {
    files: Vec<PathBuf>,
    env_file: Option<PathBuf>,
    vars: BTreeMap<String, String>,
    profiles: Vec<String>,
    scopes: BTreeMap<String, Scope>,
}

/// The services of the compose file at `path`, as an environment (see [`Compose::env`]).
pub fn env(path: impl AsRef<Path>) -> Env {
    Compose::new(path).env()
}

impl Compose {
    /// The project of the compose file at `path`. A relative path is read from the crate's
    /// folder (`CARGO_MANIFEST_DIR`, as build contexts are), else the current directory.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Compose {
            files: vec![path.as_ref().to_owned()],
            env_file: None,
            vars: BTreeMap::new(),
            profiles: Vec::new(),
            scopes: BTreeMap::new(),
        }
    }

    /// An override file, merged over the files before it as `docker compose -f` merges them.
    pub fn file(mut self, path: impl AsRef<Path>) -> Self {
        self.files.push(path.as_ref().to_owned());
        self
    }

    /// The file of variables to use instead of the `.env` beside the first file.
    pub fn env_file(mut self, path: impl AsRef<Path>) -> Self {
        self.env_file = Some(path.as_ref().to_owned());
        self
    }

    /// A variable for interpolation and for `environment` entries without a value, ahead of
    /// the process's environment and the `.env` file.
    pub fn var(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// Activates a profile (as `--profile`; `COMPOSE_PROFILES` is read too): services with
    /// `profiles` are left out unless one of theirs is active.
    pub fn profile(mut self, name: impl Into<String>) -> Self {
        self.profiles.push(name.into());
        self
    }

    /// The scope of a service (function by default: a container per test). A longer-lived
    /// service's networks and volumes live as long; shorter-lived services still answer to
    /// their names only on networks of their own scope, so parallel tests never share a name.
    pub fn scope(mut self, service: impl Into<String>, scope: Scope) -> Self {
        self.scopes.insert(service.into(), scope);
        self
    }

    /// The services as fixtures of a new environment.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] naming the file, the service, the key and its line: a file
    /// that cannot be read, YAML that does not parse, a key this library does not take, a
    /// required variable unset, an unknown service in `depends_on`, a cycle, a bad port.
    pub fn load(&self) -> Result<Env> {
        self.load_into(Env::new())
    }

    /// The services added to `env` (which may restrict backends, or hold fixtures of its own).
    ///
    /// # Errors
    /// As [`Compose::load`].
    pub fn load_into(&self, env: Env) -> Result<Env> {
        self.read(env).map_err(|message| {
            Error::new(ErrorKind::InvalidInput, message)
                .with_hint("compose files are read when the environment is declared; fix the file or the call")
        })
    }

    /// The services as fixtures of a new environment; a file that does not load makes an
    /// environment whose validation fails with [`Compose::load`]'s message, so every test
    /// that uses it fails with it before anything is created. This is what
    /// `#[fixtures::test(env = ...)]` takes.
    pub fn env(&self) -> Env {
        match self.read(Env::new()) {
            Ok(env) => env,
            Err(message) => Env::new().invalid(message),
        }
    }

    fn read(&self, env: Env) -> std::result::Result<Env, String> {
        // Under cargo, the crate's folder; a binary run by itself, the current folder. Made
        // absolute either way: a bind mount's source means nothing to the engine otherwise.
        let base = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_default();
        let full: Vec<PathBuf> = self.files.iter().map(|f| base.join(f)).collect();
        let names: Vec<String> = self.files.iter().map(|f| format!("`{}`", f.display())).collect();
        let files = format!("compose file{} {}", if names.len() > 1 { "s" } else { "" }, names.join(", "));
        let dir = full[0].parent().map(Path::to_owned).unwrap_or_default();

        // Variables: given here, then the process's, then the `.env` file.
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        let (dotenv, dotenv_required) = match &self.env_file {
            Some(path) => (base.join(path), true),
            None => (dir.join(".env"), false),
        };
        match std::fs::read_to_string(&dotenv) {
            Ok(text) => {
                let parsed = values::dotenv(&text).map_err(|e| format!("`{}`: {e}", dotenv.display()))?;
                vars.extend(parsed.into_iter().filter_map(|(k, v)| Some((k, v?))));
            }
            Err(e) if dotenv_required || e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("cannot read the variables file `{}`: {e}", dotenv.display()));
            }
            Err(_) => {}
        }
        // Variables that are not UTF-8 cannot be interpolated into a file's text: left out.
        vars.extend(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))));
        vars.extend(self.vars.clone());

        let mut merged: Option<model::File> = None;
        for (path, name) in full.iter().zip(&self.files) {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read compose file `{}` ({}): {e}", name.display(), path.display()))?;
            let file = parse(&text, &vars).map_err(|e| format!("compose file `{}`{e}", name.display()))?;
            match &mut merged {
                Some(m) => merge::file(m, file),
                None => merged = Some(file),
            }
        }
        let file = merged.unwrap_or_default();
        let mut profiles: BTreeSet<String> = self.profiles.iter().cloned().collect();
        if let Some(list) = vars.get("COMPOSE_PROFILES") {
            profiles.extend(list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned));
        }
        let project =
            translate::Project { dir: &dir, files: &files, vars: &vars, profiles: &profiles, scopes: &self.scopes };
        translate::into_env(&project, file, env)
    }
}

/// Parses one file; an error reads `, service `web`: line 4 column 5: <what>`, to follow the
/// file's name.
fn parse(text: &str, vars: &BTreeMap<String, String>) -> std::result::Result<model::File, String> {
    let properties: HashMap<String, String> = vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut options = serde_saphyr::Options::default().with_properties(properties);
    options.property_syntax = serde_saphyr::PropertySyntax::DockerCompose;
    options.with_snippet = false;
    model::reset_failing_service();
    serde_saphyr::from_str_with_options::<model::File>(text, options).map_err(|e| {
        let service = model::failing_service().map(|s| format!(", service `{s}`")).unwrap_or_default();
        model::reset_failing_service();
        let (place, message) = describe(&e);
        format!("{service}: {place}{message}")
    })
}

/// Where an error is (`line 4 column 5: `) and what it says, without the parser's own suffix.
fn describe(e: &serde_saphyr::Error) -> (String, String) {
    let text = e.to_string();
    let location = e.location().map(|l| (l.line(), l.column()));
    let body = match location {
        Some((line, column)) => {
            let suffix = format!(" at line {line}, column {column}");
            text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
        }
        None => text,
    };
    // A key's own place, marked by `model::at`, wins over the parser's.
    let (location, body) = match body.strip_prefix(model::MARK).and_then(|rest| rest.split_once(model::MARK)) {
        Some((place, message)) => {
            let mut parts = place.split(':').map(|p| p.parse::<u64>().unwrap_or(0));
            let (line, column) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
            (Some((line, column)), message.to_owned())
        }
        None => (location, body),
    };
    let body = if let Some(rest) = body.strip_prefix("duplicate mapping key: ") {
        format!("key `{}` is given twice", rest.split(',').next().unwrap_or(rest))
    } else if let Some(rest) = body.strip_prefix("missing property ") {
        format!("required variable {rest}")
    } else {
        body
    };
    let place = location.map(|(l, c)| format!("line {l} column {c}: ")).unwrap_or_default();
    (place, body)
}
