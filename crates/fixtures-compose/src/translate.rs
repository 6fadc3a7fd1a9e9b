//! A merged compose project as fixtures of an [`Env`]: each service a container fixture
//! named after it, its image `<service>-image`, each network `<name>-network`, each named
//! volume `<name>-volume`. Strings from the file are literal (their braces escaped), so only
//! what Rust code adds is a template.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use fixtures_core::spec::Healthcheck;
use fixtures_core::{Env, Scope, build, container, fetch, network, volume};

use crate::model::{Condition, File, HealthTest, NetworkDef, SecretDef, Service, ServiceVolume, VolumeDef};
use crate::paths::under;
use crate::values;

/// What translation needs besides the merged file.
pub(crate) struct Project<'a> {
    /// The folder relative paths in the files are read from (the first file's).
    pub(crate) dir: &'a Path,
    /// The files, as named to the user, for messages.
    pub(crate) files: &'a str,
    /// Variables for `environment` and `args` entries without a value.
    pub(crate) vars: &'a BTreeMap<String, String>,
    /// Active profiles.
    pub(crate) profiles: &'a BTreeSet<String>,
    /// Scopes chosen per service.
    pub(crate) scopes: &'a BTreeMap<String, Scope>,
    /// Whether readiness waits for every published and exposed port even with a health check.
    pub(crate) every_port: bool,
}

/// A text of the file as a template that stands for itself.
fn literal(text: &str) -> String {
    text.replace('{', "{{").replace('}', "}}")
}

/// The fixture name of a service's image.
pub(crate) fn image_node(service: &str) -> String {
    format!("{service}-image")
}

/// The fixture name of a network (at its widest scope, or at a narrower one).
pub(crate) fn network_node(network: &str, scope: Option<Scope>) -> String {
    match scope {
        None => format!("{network}-network"),
        Some(s) => format!("{network}-network-{}", s.as_str()),
    }
}

/// The fixture name of a named volume.
pub(crate) fn volume_node(name: &str) -> String {
    format!("{name}-volume")
}

fn is_active(service: &Service, profiles: &BTreeSet<String>) -> bool {
    match &service.profiles {
        Some(list) if !list.is_empty() => list.iter().any(|p| profiles.contains(p)),
        _ => true,
    }
}

/// The networks a service joins, by name (none with `network_mode`), with its aliases there.
fn networks_of(service: &Service) -> Vec<(String, Vec<String>)> {
    if service.network_mode.is_some() {
        return Vec::new();
    }
    match &service.networks {
        Some(map) => map.iter().map(|(n, a)| (n.clone(), a.aliases.clone())).collect(),
        None => vec![("default".to_owned(), Vec::new())],
    }
}

/// Another service whose namespace a `network_mode`, `pid` or `ipc` of `service:<name>` shares.
fn shared_namespaces(service: &Service) -> Vec<(&str, &'static str)> {
    [(&service.network_mode, "network_mode"), (&service.pid, "pid"), (&service.ipc, "ipc")]
        .into_iter()
        .filter_map(|(mode, key)| Some((mode.as_deref()?.strip_prefix("service:")?, key)))
        .collect()
}

/// A namespace mode with `service:<name>` as the container of that service.
fn namespace_mode(mode: &str) -> String {
    match mode.strip_prefix("service:") {
        Some(other) => format!("container:{{{other}.id}}"),
        None => literal(mode),
    }
}

/// Adds the project's fixtures to `env`.
pub(crate) fn into_env(project: &Project<'_>, file: File, mut env: Env) -> Result<Env, String> {
    let here = |service: &str, key: &str| format!("{}, service `{service}`, `{key}`", project.files);
    let all: BTreeSet<&str> = file.services.keys().map(String::as_str).collect();
    let active: BTreeMap<&str, &Service> =
        file.services.iter().filter(|(_, s)| is_active(s, project.profiles)).map(|(n, s)| (n.as_str(), s)).collect();
    for name in project.scopes.keys() {
        if !all.contains(name.as_str()) {
            return Err(format!(
                "{}: `scope(\"{name}\", ..)` names no service (services: {})",
                project.files,
                all.iter().copied().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    let scope_of = |name: &str| project.scopes.get(name).copied().unwrap_or(Scope::Function);
    let named = file.networks.keys().map(|n| ("network", n)).chain(file.volumes.keys().map(|v| ("volume", v)));
    for (kind, name) in named {
        if let Some(problem) = values::bad_name(kind, name) {
            return Err(format!("{}: {problem}", project.files));
        }
    }

    // Dependencies: each must be a service, active, and the whole free of cycles.
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, service) in &active {
        let mut deps: Vec<(&str, &str)> = Vec::new();
        for (dep, d) in &service.depends_on {
            // A dependency that is not `required` is left out when it is not in the project.
            if d.required || file.services.get(dep).is_some_and(|s| is_active(s, project.profiles)) {
                deps.push((dep.as_str(), "depends_on"));
            }
        }
        deps.extend(shared_namespaces(service));
        for (dep, key) in &deps {
            match file.services.get(*dep) {
                None => {
                    return Err(format!(
                        "{}: names unknown service `{dep}` (services: {})",
                        here(name, key),
                        all.iter().copied().collect::<Vec<_>>().join(", ")
                    ));
                }
                Some(s) if !is_active(s, project.profiles) => {
                    return Err(format!(
                        "{}: needs `{dep}`, whose profiles ({}) are not active; activate one with `Compose::profile`",
                        here(name, key),
                        s.profiles.clone().unwrap_or_default().join(", ")
                    ));
                }
                Some(_) => {}
            }
        }
        edges.insert(name, deps.into_iter().map(|(d, _)| d).collect());
    }
    if let Some(cycle) = find_cycle(&edges) {
        return Err(format!("{}: services depend on each other in a cycle: {}", project.files, cycle.join(" -> ")));
    }

    // Who needs a dependency healthy, or run to completion.
    let mut healthy: BTreeSet<&str> = BTreeSet::new();
    let mut completes: BTreeSet<&str> = BTreeSet::new();
    for service in active.values() {
        for (dep, d) in &service.depends_on {
            match d.condition {
                Condition::ServiceStarted => {}
                Condition::ServiceHealthy => {
                    healthy.insert(dep);
                }
                Condition::ServiceCompletedSuccessfully => {
                    completes.insert(dep);
                }
            }
        }
    }

    // Networks: one fixture at the widest scope of the services on it, where they have their
    // service name; services of a narrower scope have it on a fixture of their own scope, so
    // two tests' containers never answer to one name on a shared network.
    let mut members: BTreeMap<String, BTreeSet<Scope>> = BTreeMap::new();
    for (name, service) in &active {
        for (network, _) in networks_of(service) {
            if network != "default" && !file.networks.contains_key(&network) {
                return Err(format!(
                    "{}: network `{network}` is not declared under the top-level `networks` (declared: {})",
                    here(name, "networks"),
                    file.networks.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            members.entry(network).or_default().insert(scope_of(name));
        }
    }
    let default_network = NetworkDef::default();
    for (network, scopes) in &members {
        let def = file.networks.get(network).unwrap_or(&default_network);
        if def.external.yes {
            continue;
        }
        let widest = scopes.iter().max().copied().unwrap_or(Scope::Function);
        for scope in scopes {
            let node = network_node(network, (*scope != widest).then_some(*scope));
            env = add(project.files, env, node, network_fixture(def).scope(*scope), &format!("network `{network}`"))?;
        }
    }

    // Named volumes: declared, and as long-lived as the longest-lived service using them.
    let mut volume_scopes: BTreeMap<String, Scope> = BTreeMap::new();
    for (name, service) in &active {
        for v in &service.volumes {
            if let ServiceVolume::Named { name: volume, .. } = v {
                if !file.volumes.contains_key(volume) {
                    return Err(format!(
                        "{}: named volume `{volume}` is not declared under the top-level `volumes` ({})",
                        here(name, "volumes"),
                        declared(file.volumes.keys())
                    ));
                }
                let scope = volume_scopes.entry(volume.clone()).or_insert(Scope::Function);
                *scope = (*scope).max(scope_of(name));
            }
        }
    }
    for (name, def) in &file.volumes {
        if !def.external.yes {
            let scope = volume_scopes.get(name).copied().unwrap_or(Scope::Function);
            env = add(
                project.files,
                env,
                volume_node(name),
                volume_fixture(def).scope(scope),
                &format!("volume `{name}`"),
            )?;
        }
    }

    // Names a service answers to besides its own: its `container_name`, and the aliases other
    // services' `links` give it.
    let mut extra_aliases: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (name, service) in &active {
        if let Some(fixed) = &service.container_name {
            extra_aliases.entry(name).or_default().insert(fixed.clone());
        }
        for (linked, alias) in &service.links {
            let Some((linked, _)) = active.get_key_value(linked.as_str()) else {
                return Err(format!(
                    "{}: names `{linked}`, which is not an active service of the project",
                    here(name, "links")
                ));
            };
            if alias != linked {
                extra_aliases.entry(linked).or_default().insert(alias.clone());
            }
        }
    }

    for (name, service) in &active {
        let scope = scope_of(name);
        env = add(
            project.files,
            env,
            image_node(name),
            image_fixture(project, name, service)?,
            &format!("the image of service `{name}`"),
        )?;
        let mut c = container().image(format!("{{{}.id}}", image_node(name))).scope(scope);
        if let Some(cmd) = &service.command {
            c = c.command(cmd.iter().map(|s| literal(s)));
        }
        if let Some(ep) = &service.entrypoint {
            c = c.entrypoint(ep.iter().map(|s| literal(s)));
        }
        for env_file in &service.env_file {
            let path = &env_file.path;
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) if !env_file.required && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("{}: cannot read `{path}`: {e}", here(name, "env_file"))),
            };
            let vars = values::dotenv(&text).map_err(|e| format!("{}: `{path}`, {e}", here(name, "env_file")))?;
            for (k, v) in vars {
                if let Some(v) = v.or_else(|| project.vars.get(&k).cloned()) {
                    c = c.env(literal(&k), literal(&v));
                }
            }
        }
        for (k, v) in &service.environment {
            // A variable without a value takes the caller's, and is left out without one.
            if let Some(v) = v.clone().or_else(|| project.vars.get(k).cloned()) {
                c = c.env(literal(k), literal(&v));
            }
        }
        for p in &service.ports {
            // The engine picks the host port: tests in parallel cannot share a fixed one.
            c = c.port_on(&p.port.to_string(), p.host_ip.as_deref().unwrap_or("127.0.0.1"), None);
        }
        for p in &service.expose {
            c = c.expose(&p.to_string());
        }
        let mut anonymous = 0;
        let mut binds = Vec::new();
        for v in &service.volumes {
            c = match v {
                ServiceVolume::Named { name: volume, target, read_only } => {
                    let def = &file.volumes[volume];
                    let source = if def.external.yes {
                        literal(def.external.name.as_deref().or(def.name.as_deref()).unwrap_or(volume))
                    } else {
                        format!("{{{}.name}}", volume_node(volume))
                    };
                    if *read_only { c.volume_ro(source, literal(target)) } else { c.volume(source, literal(target)) }
                }
                ServiceVolume::Bind { source, target, read_only, create_host_path } => {
                    let path = bind_source(project.dir, source);
                    binds.push((path.clone(), *create_host_path));
                    c.bind(literal(&path.to_string_lossy()), literal(target), *read_only)
                }
                ServiceVolume::Anonymous { target } => {
                    anonymous += 1;
                    let node = format!("{name}-anonymous-{anonymous}-volume");
                    env = add(
                        project.files,
                        env,
                        node.clone(),
                        volume().scope(scope),
                        &format!("an anonymous volume of service `{name}`"),
                    )?;
                    c.volume(format!("{{{node}.name}}"), literal(target))
                }
                ServiceVolume::Tmpfs(t) => c.tmpfs(literal(&t.target), t.size),
            };
        }
        if !binds.is_empty() {
            // As Compose does when the service starts: a missing bind source is made, a folder,
            // unless its long syntax says `create_host_path: false`.
            let what = here(name, "volumes");
            c = c.configure(Vec::<String>::new(), move |_, _| {
                for (path, create) in &binds {
                    if path.exists() {
                        continue;
                    }
                    if !create {
                        let message = format!(
                            "{what}: the bind source `{}` does not exist, and `create_host_path: false` says not to \
                             make it; create it before the test, or drop that line",
                            path.display()
                        );
                        return Err(fixtures_core::Error::new(fixtures_core::ErrorKind::InvalidInput, message).into());
                    }
                    std::fs::create_dir_all(path).map_err(|e| {
                        let message = format!("{what}: cannot make the missing bind source `{}`: {e}", path.display());
                        fixtures_core::Error::new(fixtures_core::ErrorKind::Io, message)
                    })?;
                }
                Ok(())
            });
        }
        for (kind, refs, defs) in
            [("secrets", &service.secrets, &file.secrets), ("configs", &service.configs, &file.configs)]
        {
            for r in refs {
                let def = defs.get(&r.source).ok_or_else(|| {
                    format!(
                        "{}: `{}` is not declared under the top-level `{kind}` ({})",
                        here(name, kind),
                        r.source,
                        declared(defs.keys())
                    )
                })?;
                let target = match (kind, r.target.as_deref()) {
                    (_, Some(t)) if t.starts_with('/') => t.to_owned(),
                    ("secrets", t) => format!("/run/secrets/{}", t.unwrap_or(&r.source)),
                    (_, t) => format!("/{}", t.unwrap_or(&r.source)),
                };
                let source = secret_source(project, def, r.mode)
                    .map_err(|e| format!("{}: `{}`: {e}", here(name, kind), r.source))?;
                c = c.bind(literal(&source.to_string_lossy()), literal(&target), true);
            }
        }
        for t in &service.tmpfs {
            c = c.tmpfs(literal(&t.target), t.size);
        }
        match service.network_mode.as_deref() {
            Some(mode) => c = c.network_mode(namespace_mode(mode)),
            None => {
                // Its own scope's network first: that is where its address is primary.
                let mut attachments = networks_of(service);
                attachments.sort_by_key(|(network, _)| network != "default");
                for (network, aliases) in attachments {
                    let def = file.networks.get(&network).unwrap_or(&default_network);
                    let mut names = vec![name.to_string()];
                    names.extend(aliases.iter().map(|a| literal(a)));
                    names.extend(extra_aliases.get(name).into_iter().flatten().map(|a| literal(a)));
                    if def.external.yes {
                        let real = def.external.name.as_deref().or(def.name.as_deref()).unwrap_or(&network);
                        c = c.network_with_aliases(literal(real), names);
                        continue;
                    }
                    let scopes = &members[&network];
                    let widest = scopes.iter().max().copied().unwrap_or(Scope::Function);
                    let own = network_node(&network, (scope != widest).then_some(scope));
                    c = c.network_with_aliases(format!("{{{own}.name}}"), names);
                    // Services of wider scopes are reached on their networks, without a name here.
                    for wider in scopes.iter().filter(|s| **s > scope) {
                        let node = network_node(&network, (*wider != widest).then_some(*wider));
                        c = c.network(format!("{{{node}.name}}"));
                    }
                }
            }
        }
        if let Some(mode) = &service.pid {
            c = c.pid_mode(namespace_mode(mode));
        }
        if let Some(mode) = &service.ipc {
            c = c.ipc_mode(namespace_mode(mode));
        }
        let deps: Vec<String> = edges.get(name).into_iter().flatten().map(|d| (*d).to_owned()).collect();
        if !deps.is_empty() {
            c = c.configure(deps, |_, _| Ok(()));
        }
        if service.gpus {
            let what = here(name, "gpus");
            c = c.configure(Vec::<String>::new(), move |_, _| {
                let message = format!(
                    "{what}: the service asks for GPUs (`gpus`, or a `deploy` device reservation with the `gpu` \
                     capability), and this library passes no GPU to a container; leave the key out in an override \
                     file (`Compose::file`) or replace the service with `Env::with`"
                );
                Err(fixtures_core::Error::new(fixtures_core::ErrorKind::InvalidInput, message).into())
            });
        }
        let check = service
            .healthcheck
            .as_ref()
            .map(healthcheck)
            .transpose()
            .map_err(|e| format!("{}: {e}", here(name, "healthcheck")))?;
        let has_check = check.as_ref().is_some_and(|h| h.test.first().map(String::as_str) != Some("NONE"));
        if let Some(check) = check {
            c = c.healthcheck(check);
        }
        if completes.contains(name) {
            c = c.runs_to_completion();
        } else {
            // Compose asks no more of a service than to have started: one that does its work
            // and exits 0 (an init job) is done, not failed.
            c = c.may_exit_successfully();
            if has_check || healthy.contains(name) {
                c = c.wait_for_healthy();
            }
        }
        // Readiness, beyond Compose (which waits for nothing but `depends_on` conditions): a
        // service with a health check is ready when healthy; one without, when its published
        // ports listen. Ports given only with `expose` are not awaited: images declare ports
        // their server opens only when configured. `Compose::await_every_port` waits for all.
        if !project.every_port {
            c = c.no_exposed_port_wait();
            if has_check && !completes.contains(name) {
                c = c.no_port_wait();
            }
        }
        for (k, v) in &service.labels {
            c = c.label(literal(k), literal(v));
        }
        if let Some(v) = &service.user {
            c = c.user(literal(v));
        }
        if let Some(v) = &service.working_dir {
            c = c.working_dir(literal(v));
        }
        if let Some(v) = &service.hostname {
            c = c.hostname(literal(v));
        }
        for d in &service.dns {
            c = c.dns(literal(d));
        }
        for d in &service.dns_search {
            c = c.dns_search(literal(d));
        }
        for d in &service.dns_opt {
            c = c.dns_option(literal(d));
        }
        for (host, ip) in &service.extra_hosts {
            c = c.extra_host(literal(host), literal(ip));
        }
        for cap in &service.cap_add {
            c = c.cap_add(literal(cap));
        }
        for cap in &service.cap_drop {
            c = c.cap_drop(literal(cap));
        }
        for d in &service.devices {
            c = c.device(literal(d));
        }
        for g in &service.group_add {
            c = c.group_add(literal(g));
        }
        for o in &service.security_opt {
            c = c.security_opt(literal(o));
        }
        if service.privileged == Some(true) {
            c = c.privileged();
        }
        if service.read_only == Some(true) {
            c = c.read_only();
        }
        if service.init == Some(true) {
            c = c.init();
        }
        if service.tty == Some(true) {
            c = c.tty();
        }
        if service.stdin_open == Some(true) {
            c = c.open_stdin();
        }
        if let Some(v) = &service.stop_signal {
            c = c.stop_signal(literal(v));
        }
        if let Some(grace) = service.stop_grace_period {
            c = c.stop_timeout(grace);
        }
        if let Some(v) = service.shm_size {
            c = c.shm_size(v);
        }
        if let Some(v) = service.mem_limit {
            c = c.memory(v);
        }
        if let Some(v) = service.mem_reservation {
            c = c.memory_reservation(v);
        }
        if let Some(v) = service.cpus {
            c = c.cpus(v);
        }
        if let Some(v) = service.pids_limit {
            c = c.pids_limit(v);
        }
        for (limit, (soft, hard)) in &service.ulimits {
            c = c.ulimit(limit.clone(), *soft, *hard);
        }
        for (k, v) in &service.sysctls {
            c = c.sysctl(literal(k), literal(v));
        }
        // Limits written for production: an engine that cannot apply them runs the service
        // without, with a warning, as Compose's engines do.
        c = c.limits_optional();
        // `restart` is not applied: a service that crashes fails the test with its logs, and
        // one a test stops, kills or pauses stays so (the README says why).
        let _ = &service.restart;
        env = add(project.files, env, name.to_string(), c, &format!("service `{name}`"))?;
    }
    Ok(env)
}

/// The file a secret or config is mounted from: the file it names, or for one given by a
/// variable (`environment`) or inline (`content`), a file of this library's holding the value,
/// named by its content and mode so that every load of the same value shares one.
fn secret_source(project: &Project<'_>, def: &SecretDef, mode: Option<u32>) -> Result<PathBuf, String> {
    if let Some(path) = &def.file {
        return Ok(PathBuf::from(path));
    }
    if def.external.yes {
        return Err("an `external` secret or config lives in a swarm, which tests do not have; give it a `file` \
                    or an `environment` variable"
            .to_owned());
    }
    let value =
        match (&def.environment, &def.content) {
            (Some(var), _) => project.vars.get(var).cloned().ok_or_else(|| {
                format!("its variable `{var}` is not set (in the environment, `.env` or `Compose::var`)")
            })?,
            (None, Some(content)) => content.clone(),
            (None, None) => return Err("it has neither `file`, `environment` nor `content`".to_owned()),
        };
    let mode = mode.unwrap_or(0o444);
    // FNV-1a: a stable name for the same value.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in value.as_bytes().iter().chain(&mode.to_le_bytes()) {
        hash = (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    // One folder per user: a rootless engine's containers cannot read another user's files.
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("fixtures-compose-secrets-{uid}"));
    let path = dir.join(format!("{hash:016x}"));
    if !path.exists() {
        use std::os::unix::fs::PermissionsExt;
        let fail = |e: std::io::Error| format!("cannot write its value to `{}`: {e}", path.display());
        std::fs::create_dir_all(&dir).map_err(fail)?;
        // Written beside, then moved in place: a parallel load never sees half a file.
        let partial = dir.join(format!("{hash:016x}.{}", std::process::id()));
        std::fs::write(&partial, value.as_bytes()).map_err(fail)?;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(mode)).map_err(fail)?;
        std::fs::rename(&partial, &path).map_err(fail)?;
    }
    Ok(path)
}

/// `env` with the fixture `name`, which must not be declared yet: one fixture quietly replacing
/// another (a service `data-volume` and the volume `data`) would change what the file means.
fn add(
    files: &str,
    env: Env,
    name: String,
    node: impl Into<fixtures_core::env::Node>,
    what: &str,
) -> Result<Env, String> {
    if env.node(&name).is_some() {
        return Err(format!(
            "{files}: the fixture `{name}` for {what} has the name of another fixture (a service is named like another \
             service's `-image`, or a network's `-network`, or a volume's `-volume` fixture); rename one"
        ));
    }
    Ok(env.with(name, node))
}

/// `declared: a, b`, or `none is declared`.
fn declared<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() { "none is declared".to_owned() } else { format!("declared: {}", names.join(", ")) }
}

fn network_fixture(def: &NetworkDef) -> fixtures_core::env::NetworkNode {
    let mut n = network();
    if let Some(driver) = &def.driver {
        n = n.driver(literal(driver));
    }
    if def.internal {
        n = n.internal();
    }
    if def.enable_ipv6 {
        n = n.ipv6();
    }
    for (k, v) in def.driver_opts.clone().strings() {
        n = n.option(k, v);
    }
    for (k, v) in def.labels.clone().strings() {
        n = n.label(k, v);
    }
    let _ = def.attachable;
    n
}

fn volume_fixture(def: &VolumeDef) -> fixtures_core::env::VolumeNode {
    let mut v = volume();
    if let Some(driver) = &def.driver {
        v = v.driver(driver.clone());
    }
    for (k, val) in def.driver_opts.clone().strings() {
        v = v.driver_opt(k, val);
    }
    for (k, val) in def.labels.clone().strings() {
        v = v.label(k, val);
    }
    v
}

fn bind_source(dir: &Path, source: &str) -> PathBuf {
    match source.strip_prefix('~') {
        Some(rest) => {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
            home.join(rest.trim_start_matches('/'))
        }
        None => under(dir, source),
    }
}

fn image_fixture(
    project: &Project<'_>,
    name: &str,
    service: &Service,
) -> Result<fixtures_core::env::ImageNode, String> {
    // `pull_policy` aside from `build`: an image the engine has is used as it is, one it lacks
    // is pulled (tests reach no registry they were not given).
    match (&service.build, &service.image) {
        (Some(b), tag) => {
            let context = under(project.dir, b.context.as_deref().unwrap_or("."));
            let mut node = build().path(literal(&context.to_string_lossy()));
            if let Some(dockerfile) = &b.dockerfile {
                node = node.dockerfile(literal(dockerfile));
            }
            if let Some(text) = &b.dockerfile_inline {
                node = node.dockerfile_text(literal(text));
            }
            for (k, v) in b.labels.clone().strings() {
                node = node.label(literal(&k), literal(&v));
            }
            if b.no_cache == Some(true) {
                node = node.no_cache();
            }
            if let Some(p) = service.platform.as_deref() {
                node = node.platform(literal(p));
            }
            for (k, v) in &b.args.0 {
                if let Some(v) = v.clone().or_else(|| project.vars.get(k).cloned()) {
                    node = node.build_arg(literal(k), literal(&v));
                }
            }
            if let Some(target) = &b.target {
                node = node.target(literal(target));
            }
            if let Some(tag) = tag {
                node = node.tag(literal(tag));
            }
            Ok(node.into())
        }
        (None, Some(image)) => {
            let mut node = fetch(literal(image)).if_missing();
            if let Some(p) = service.platform.as_deref() {
                node = node.platform(literal(p));
            }
            Ok(node.into())
        }
        (None, None) => Err(format!("{}, service `{name}`: has neither `image` nor `build`", project.files)),
    }
}

fn healthcheck(h: &crate::model::Healthcheck) -> Result<Healthcheck, String> {
    if h.disable {
        return Ok(Healthcheck {
            test: vec!["NONE".into()],
            interval: None,
            timeout: None,
            retries: None,
            start_period: None,
        });
    }
    let test = match &h.test {
        // A string is run by the container's shell.
        Some(HealthTest::Shell(text)) => vec!["CMD-SHELL".to_owned(), text.clone()],
        Some(HealthTest::List(list)) => list.clone(),
        None => return Err("`test` is missing (or set `disable: true`)".to_owned()),
    };
    let time = |t: &Option<String>| t.as_deref().map(values::duration).transpose();
    Ok(Healthcheck {
        test: test.iter().map(|s| literal(s)).collect(),
        interval: time(&h.interval)?,
        timeout: time(&h.timeout)?,
        retries: h.retries,
        start_period: time(&h.start_period)?,
    })
}

fn find_cycle<'a>(edges: &BTreeMap<&'a str, Vec<&'a str>>) -> Option<Vec<&'a str>> {
    fn visit<'a>(
        node: &'a str,
        edges: &BTreeMap<&'a str, Vec<&'a str>>,
        done: &mut BTreeSet<&'a str>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(at) = stack.iter().position(|n| *n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node);
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        stack.push(node);
        for dep in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(dep, edges, done, stack) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|n| visit(n, edges, &mut done, &mut Vec::new()))
}
