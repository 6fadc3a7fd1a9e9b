//! A merged compose project as fixtures of an [`Env`]: each service a container fixture
//! named after it, its image `<service>-image`, each network `<name>-network`, each named
//! volume `<name>-volume`. Strings from the file are literal (their braces escaped), so only
//! what Rust code adds is a template.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use fixtures_core::spec::Healthcheck;
use fixtures_core::{Env, Scope, build, container, fetch, network, volume};

use crate::model::{Condition, File, HealthTest, NetworkDef, Service, ServiceVolume, VolumeDef};
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

/// The networks a service joins, by name (none with `network_mode`).
fn networks_of(service: &Service) -> Vec<(String, Vec<String>)> {
    if service.network_mode.is_some() {
        return Vec::new();
    }
    match &service.networks {
        Some(map) => map.iter().map(|(n, a)| (n.clone(), a.aliases.clone())).collect(),
        None => vec![("default".to_owned(), Vec::new())],
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
        let mut deps: Vec<(&str, &str)> = service.depends_on.keys().map(|d| (d.as_str(), "depends_on")).collect();
        if let Some(other) = service.network_mode.as_deref().and_then(|m| m.strip_prefix("service:")) {
            deps.push((other, "network_mode"));
        }
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
        for (dep, condition) in &service.depends_on {
            match condition {
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
        if def.external {
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
        if !def.external {
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
        for path in &service.env_file {
            let full = under(project.dir, path);
            let text = std::fs::read_to_string(&full)
                .map_err(|e| format!("{}: cannot read `{}`: {e}", here(name, "env_file"), full.display()))?;
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
        for v in &service.volumes {
            c = match v {
                ServiceVolume::Named { name: volume, target, read_only } => {
                    let def = &file.volumes[volume];
                    let source = if def.external {
                        literal(def.name.as_deref().unwrap_or(volume))
                    } else {
                        format!("{{{}.name}}", volume_node(volume))
                    };
                    if *read_only { c.volume_ro(source, literal(target)) } else { c.volume(source, literal(target)) }
                }
                ServiceVolume::Bind { source, target, read_only } => {
                    let path = bind_source(project.dir, source);
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
        for t in &service.tmpfs {
            c = c.tmpfs(literal(&t.target), t.size);
        }
        match service.network_mode.as_deref() {
            Some(mode) => {
                c = match mode.strip_prefix("service:") {
                    Some(other) => c.network_mode(format!("container:{{{other}.id}}")),
                    None => c.network_mode(literal(mode)),
                };
            }
            None => {
                // Its own scope's network first: that is where its address is primary.
                let mut attachments = networks_of(service);
                attachments.sort_by_key(|(network, _)| network != "default");
                for (network, aliases) in attachments {
                    let def = file.networks.get(&network).unwrap_or(&default_network);
                    let mut names = vec![name.to_string()];
                    names.extend(aliases.iter().map(|a| literal(a)));
                    if def.external {
                        c = c.network_with_aliases(literal(def.name.as_deref().unwrap_or(&network)), names);
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
        if !service.depends_on.is_empty() {
            let deps: Vec<String> = service.depends_on.keys().cloned().collect();
            c = c.configure(deps, |_, _| Ok(()));
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
        for (host, ip) in &service.extra_hosts {
            c = c.extra_host(literal(host), literal(ip));
        }
        for cap in &service.cap_add {
            c = c.cap_add(literal(cap));
        }
        for cap in &service.cap_drop {
            c = c.cap_drop(literal(cap));
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
        if let Some(v) = service.cpus {
            c = c.cpus(v);
        }
        for (limit, (soft, hard)) in &service.ulimits {
            c = c.ulimit(limit.clone(), *soft, *hard);
        }
        for (k, v) in &service.sysctls {
            c = c.sysctl(literal(k), literal(v));
        }
        env = add(project.files, env, name.to_string(), c, &format!("service `{name}`"))?;
    }
    Ok(env)
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

/// `dir` joined with a relative path, without its `.` steps (`./context` is `dir/context`).
pub(crate) fn under(dir: &Path, relative: &str) -> PathBuf {
    let mut path = dir.to_owned();
    for part in Path::new(relative).components() {
        match part {
            std::path::Component::CurDir => {}
            other => path.push(other),
        }
    }
    path
}

fn image_fixture(
    project: &Project<'_>,
    name: &str,
    service: &Service,
) -> Result<fixtures_core::env::ImageNode, String> {
    match (&service.build, &service.image) {
        (Some(b), tag) => {
            let context = under(project.dir, b.context.as_deref().unwrap_or("."));
            let mut node = build().path(literal(&context.to_string_lossy()));
            if let Some(dockerfile) = &b.dockerfile {
                node = node.dockerfile(literal(dockerfile));
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
        (None, Some(image)) => Ok(fetch(literal(image)).if_missing().into()),
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
