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
mod paths;
mod translate;
mod tree;
mod values;

use std::collections::{BTreeMap, BTreeSet};
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
    every_port: bool,
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
            every_port: false,
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

    /// Readiness waits for every published and `expose`d port of every service to listen, and
    /// for health as well where a service has a health check. By default a service with a
    /// health check is ready when healthy, one without when its published ports listen, and
    /// `expose` alone is not awaited (images declare ports their server opens only when
    /// configured, as MySQL's 33060).
    pub fn await_every_port(mut self) -> Self {
        self.every_port = true;
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
            // Override files' relative paths are read from the first file's folder, as Compose does.
            let file = load_file(path, &name.display().to_string(), &dir, &vars, &mut Vec::new())?;
            match &mut merged {
                Some(m) => merge::file(m, file),
                None => merged = Some(file),
            }
        }
        let mut file = merged.unwrap_or_default();
        include(&mut file, &files, &vars, &mut full.clone())?;
        let mut profiles: BTreeSet<String> = self.profiles.iter().cloned().collect();
        if let Some(list) = vars.get("COMPOSE_PROFILES") {
            profiles.extend(list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned));
        }
        let project = translate::Project {
            dir: &dir,
            files: &files,
            vars: &vars,
            profiles: &profiles,
            scopes: &self.scopes,
            every_port: self.every_port,
        };
        translate::into_env(&project, file, env)
    }
}

/// Reads one file: parsed, interpolated, read into the model, its relative paths made
/// absolute against `dir`, and its services' `extends` resolved. `stack` holds the services
/// being extended, to tell a cycle.
fn load_file(
    path: &Path,
    shown: &str,
    dir: &Path,
    vars: &BTreeMap<String, String>,
    stack: &mut Vec<(PathBuf, String)>,
) -> std::result::Result<model::File, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read compose file `{shown}` ({}): {e}", path.display()))?;
    let mut file = parse(&text, vars).map_err(|e| format!("compose file `{shown}`{e}"))?;
    paths::absolute(&mut file, dir);
    let names: Vec<String> = file.services.keys().cloned().collect();
    for name in names {
        let service = extended(&file, &name, path, shown, vars, stack)?;
        file.services.insert(name, service);
    }
    Ok(file)
}

/// Service `name` of `file` (read from `path`) with what it `extends` merged under it.
fn extended(
    file: &model::File,
    name: &str,
    path: &Path,
    shown: &str,
    vars: &BTreeMap<String, String>,
    stack: &mut Vec<(PathBuf, String)>,
) -> std::result::Result<model::Service, String> {
    let here = || format!("compose file `{shown}`, service `{name}`, `extends`");
    let Some(mut service) = file.services.get(name).cloned() else {
        return Err(format!("compose file `{shown}`: names no service `{name}` to extend"));
    };
    let Some(ext) = service.extends.take() else { return Ok(service) };
    let place = (path.to_owned(), name.to_owned());
    if stack.contains(&place) {
        let chain: Vec<String> = stack.iter().map(|(_, s)| s.clone()).chain([name.to_owned()]).collect();
        return Err(format!("{}: services extend each other in a cycle: {}", here(), chain.join(" -> ")));
    }
    stack.push(place);
    let mut base = match &ext.file {
        None => {
            if !file.services.contains_key(&ext.service) {
                return Err(format!("{}: there is no service `{}` in this file", here(), ext.service));
            }
            extended(file, &ext.service, path, shown, vars, stack)?
        }
        Some(other) => {
            // Made absolute against this file's folder when the file was read.
            let other_path = PathBuf::from(other);
            let other_dir = other_path.parent().map(Path::to_owned).unwrap_or_default();
            let text = std::fs::read_to_string(&other_path)
                .map_err(|e| format!("{}: cannot read `{other}` ({}): {e}", here(), other_path.display()))?;
            let mut other_file = parse(&text, vars).map_err(|e| format!("compose file `{other}`{e}"))?;
            paths::absolute(&mut other_file, &other_dir);
            if !other_file.services.contains_key(&ext.service) {
                return Err(format!("{}: there is no service `{}` in `{other}`", here(), ext.service));
            }
            extended(&other_file, &ext.service, &other_path, other, vars, stack)?
        }
    };
    stack.pop();
    // What a service depends on is its own: Compose does not carry `depends_on` or `links` over.
    base.depends_on.clear();
    base.links.clear();
    merge::service(&mut base, service);
    Ok(base)
}

/// The files of the top-level `include`s merged in, each read from its own folder; a service,
/// network or volume both files define is an error, as in Compose.
fn include(
    file: &mut model::File,
    files: &str,
    vars: &BTreeMap<String, String>,
    seen: &mut Vec<PathBuf>,
) -> std::result::Result<(), String> {
    for inc in std::mem::take(&mut file.include) {
        let Some(first) = inc.path.first() else { continue };
        let first = PathBuf::from(first);
        if seen.contains(&first) {
            return Err(format!("{files}: `include` of `{}` includes itself", first.display()));
        }
        seen.push(first.clone());
        let dir = match &inc.project_directory {
            Some(d) => PathBuf::from(d),
            None => first.parent().map(Path::to_owned).unwrap_or_default(),
        };
        let mut vars = vars.clone();
        for env_file in &inc.env_file {
            let text = std::fs::read_to_string(env_file)
                .map_err(|e| format!("{files}: `include` cannot read the variables file `{env_file}`: {e}"))?;
            let parsed = values::dotenv(&text).map_err(|e| format!("`{env_file}`: {e}"))?;
            // The caller's own variables still win.
            for (k, v) in parsed {
                if let Some(v) = v {
                    vars.entry(k).or_insert(v);
                }
            }
        }
        let mut included: Option<model::File> = None;
        for path in &inc.path {
            let loaded = load_file(Path::new(path), path, &dir, &vars, &mut Vec::new())?;
            match &mut included {
                Some(m) => merge::file(m, loaded),
                None => included = Some(loaded),
            }
        }
        let mut included = included.unwrap_or_default();
        include(&mut included, files, &vars, seen)?;
        let from = first.display();
        for (name, service) in included.services {
            if file.services.contains_key(&name) {
                return Err(format!("{files}: service `{name}` is defined here and in the included `{from}`"));
            }
            file.services.insert(name, service);
        }
        for (name, def) in included.networks {
            file.networks.entry(name).or_insert(def);
        }
        for (name, def) in included.volumes {
            file.volumes.entry(name).or_insert(def);
        }
        for (name, def) in included.secrets {
            file.secrets.entry(name).or_insert(def);
        }
        for (name, def) in included.configs {
            file.configs.entry(name).or_insert(def);
        }
    }
    Ok(())
}

/// Parses one file's text into the model; an error reads `, service `web`, `ports[0]`: line 4
/// column 5: <what>`, to follow the file's name.
fn parse(text: &str, vars: &BTreeMap<String, String>) -> std::result::Result<model::File, String> {
    let root = parse_tree(text).map_err(|e| {
        let (place, message) = describe(&e);
        let service = e.location().and_then(|l| service_at(text, l.line())).map(|s| format!(", service `{s}`"));
        format!("{}: {place}{message}", service.unwrap_or_default())
    })?;
    let Some(mut root) = root.filter(|r| !matches!(r.value, tree::Value::Null)) else {
        return Ok(model::File::default());
    };
    tree::interpolate(&mut root, vars).map_err(located)?;
    tree::read::<model::File>(&root).map_err(located)
}

/// The service whose block holds line `line` of a file's text (for YAML errors, which come
/// before there is a tree to tell): the last key indented one step under `services:` before it.
fn service_at(text: &str, line: u64) -> Option<String> {
    let mut service = None;
    let mut in_services = false;
    let mut indent = None;
    for (n, l) in text.lines().enumerate() {
        if n as u64 + 1 >= line {
            break;
        }
        let trimmed = l.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let depth = l.len() - trimmed.len();
        if depth == 0 {
            in_services = trimmed.starts_with("services:");
            service = None;
            indent = None;
            continue;
        }
        if in_services && *indent.get_or_insert(depth) == depth {
            service = trimmed.split(':').next().map(|k| k.trim().trim_matches(['"', '\'']).to_owned());
        }
    }
    service
}

/// The YAML tree of a file's text, read as Compose reads it: YAML 1.2's booleans (`no` is
/// text), numbers with a leading zero as written (`0440`, a file mode), anchors and `<<`
/// merges applied, a key given twice an error.
fn parse_tree(text: &str) -> std::result::Result<Option<tree::Node>, serde_saphyr::Error> {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    serde_saphyr::from_str_with_options(text, options)
}

/// A model error as it follows the file's name: the service, the key, the place.
fn located(e: tree::Error) -> String {
    let mut out = String::new();
    let mut path = e.path.as_slice();
    if let [first, name, rest @ ..] = path
        && first == "services"
    {
        out.push_str(&format!(", service `{name}`"));
        path = rest;
    }
    if !path.is_empty() {
        let mut key = String::new();
        for part in path {
            if part.parse::<usize>().is_ok() {
                key.push_str(&format!("[{part}]"));
            } else {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(part);
            }
        }
        out.push_str(&format!(", `{key}`"));
    }
    let place = if e.at.line > 0 { format!("line {} column {}: ", e.at.line, e.at.column) } else { String::new() };
    format!("{out}: {place}{}", e.message)
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
