//! The example compose files brought up twice: by Debian's docker-compose (1.29.2, on the
//! machine's Docker engine) and by this library (on the engine under test), then compared:
//! each service's environment, who is reachable by service name, the published container
//! ports, and the start order. Each comparison is printed (`--nocapture` shows it) and the
//! README states the result.
//!
//! Expected differences, not compared: names (docker-compose's `<project>_<service>_1`, ours
//! unique per test) and host ports (docker-compose binds a port the engine picks on 0.0.0.0,
//! ours one it picks on 127.0.0.1).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fixtures::compose::Compose;
use fixtures::{Container, Result};
use serde_json::Value;
use test_support::HttpClient;

/// A docker-compose project, taken down (with its volumes and built images) when dropped.
struct Project {
    name: String,
    file: &'static str,
}

impl Project {
    fn up(file: &'static str) -> Project {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let project = Project { name: format!("fxcmp{}x{nanos}", std::process::id()), file };
        let out = project.compose(&["up", "-d", "--build"]);
        assert!(out.status.success(), "docker-compose up failed:\n{}", String::from_utf8_lossy(&out.stderr));
        project
    }

    fn compose(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker-compose")
            // docker-compose drives the machine's Docker engine, whatever engine the suite tests.
            .env_remove("DOCKER_HOST")
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
            .args(["--no-ansi", "-p", &self.name, "-f", self.file])
            .args(args)
            .output()
            .expect("docker-compose runs (xtask/setup.sh installs Debian's docker-compose)")
    }

    /// `docker inspect` of the service's container.
    fn inspect(&self, service: &str) -> Value {
        let ids = Command::new("docker")
            .env_remove("DOCKER_HOST")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label=com.docker.compose.project={}", self.name))
            .args(["--filter", &format!("label=com.docker.compose.service={service}")])
            .output()
            .expect("docker runs");
        // `deploy.replicas` makes several: they are alike, the first stands for them (the
        // library makes one per test, as the README says).
        let listed = String::from_utf8_lossy(&ids.stdout).into_owned();
        let id = listed.lines().next().unwrap_or_default().trim().to_owned();
        assert!(!id.is_empty(), "a container for `{service}`");
        let out =
            Command::new("docker").env_remove("DOCKER_HOST").args(["inspect", &id]).output().expect("docker runs");
        let list: Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");
        list[0].clone()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let out = self.compose(&["down", "-v", "--rmi", "local", "--timeout", "1"]);
        if !out.status.success() {
            eprintln!("docker-compose down failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// What is compared of one service.
#[derive(Debug, PartialEq)]
struct Seen {
    env: BTreeMap<String, String>,
    published: Vec<String>,
}

/// The variables the file sets: without those an engine adds by itself (`PATH`; Podman also
/// adds `HOSTNAME`, `TERM` and `container`).
fn set_by_the_file(env: BTreeMap<String, String>) -> BTreeMap<String, String> {
    env.into_iter().filter(|(k, _)| !matches!(k.as_str(), "PATH" | "HOSTNAME" | "TERM" | "container")).collect()
}

fn theirs(inspect: &Value) -> Seen {
    let env = inspect["Config"]["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str()?.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let mut published: Vec<String> = inspect["NetworkSettings"]["Ports"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, bindings)| bindings.as_array().is_some_and(|b| !b.is_empty()))
        .map(|(port, _)| port.clone())
        .collect();
    published.sort();
    Seen { env: set_by_the_file(env), published }
}

fn ours(c: &Container) -> Seen {
    let mut published: Vec<String> = c.ports().iter().map(|(port, _)| port.to_string()).collect();
    published.sort();
    Seen { env: set_by_the_file(c.env()), published }
}

/// Their host port for `port`.
fn their_addr(inspect: &Value, port: &str) -> std::net::SocketAddr {
    let host_port = inspect["NetworkSettings"]["Ports"][port][0]["HostPort"].as_str().expect("published");
    format!("127.0.0.1:{host_port}").parse().expect("an address")
}

/// Their container's addresses on its networks.
fn their_ips(inspect: &Value) -> Vec<String> {
    inspect["NetworkSettings"]["Networks"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, n)| n["IPAddress"].as_str().map(str::to_owned))
        .collect()
}

/// An engine time as (date, nanoseconds of the day), ordered as the times are.
fn instant(time: &str) -> (String, u128) {
    let (date, clock) = time.split_once('T').unwrap_or(("", time));
    let clock = clock.trim_end_matches('Z');
    let clock = clock.split(['+', '-']).next().unwrap_or(clock);
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, "0"));
    let seconds: u128 = hms.split(':').fold(0, |acc, part| acc * 60 + part.parse::<u128>().unwrap_or(0));
    let fraction: String = fraction.chars().chain(std::iter::repeat('0')).take(9).collect();
    (date.to_owned(), seconds * 1_000_000_000 + fraction.parse::<u128>().unwrap_or(0))
}

/// `GET /` until it answers (docker-compose does not wait for ports), for up to 30 s.
async fn answer(addr: std::net::SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match HttpClient::new(addr).get("/").await {
            Ok((200, body)) => return body.trim().to_owned(),
            other if Instant::now() > deadline => panic!("{addr} does not answer: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Each service's environment and published ports, theirs against ours: whether all are the same.
fn compare_services(project: &Project, services: &[(&str, &Container)]) -> bool {
    let mut same = true;
    for (service, c) in services {
        let (t_seen, o_seen) = (theirs(&project.inspect(service)), ours(c));
        row(&format!("{service}: environment"), t_seen.env == o_seen.env, &format!("{:?}", o_seen.env));
        row(
            &format!("{service}: published container ports"),
            t_seen.published == o_seen.published,
            &format!("{:?}", o_seen.published),
        );
        same &= t_seen == o_seen;
    }
    same
}

fn row(what: &str, same: bool, detail: &str) {
    println!("  {what:<48} {:<9} {detail}", if same { "same" } else { "DIFFERENT" });
}

#[tokio::test]
async fn the_three_service_file_compared_with_docker_compose() -> Result<()> {
    if !test_support::has(&[test_support::Need::DockerCompose]) {
        return Ok(());
    }
    const FILE: &str = "examples/compose-app/docker-compose.yml";
    let project = Project::up(FILE);
    let t = Compose::new(FILE).load_into(test_support::base_env())?.start("compare::app").await?;
    let (app, db, seed) = (t.container("app").await?, t.container("db").await?, t.container("seed").await?);
    println!("{FILE}: docker-compose 1.29.2 on Docker vs fixtures on the engine under test");
    let mut same = compare_services(&project, &[("db", &db), ("seed", &seed), ("app", &app)]);
    // Reachability: the app resolves `db` to the database's address on their network.
    let (their_app, their_db) = (project.inspect("app"), project.inspect("db"));
    let their_answer = answer(their_addr(&their_app, "8080/tcp")).await;
    let their_db_ip = their_answer.split('"').nth(3).unwrap_or_default().to_owned();
    let our_answer = answer(app.addr("8080/tcp")?).await;
    let our_db_ip = our_answer.split('"').nth(3).unwrap_or_default().to_owned();
    let reach = (
        their_ips(&their_db).contains(&their_db_ip),
        Some(our_db_ip.as_str()) == db.ips().primary().map(|i| i.to_string()).as_deref(),
    );
    row(
        "app reaches db by its service name",
        reach == (true, true),
        &format!("theirs {their_db_ip}, ours {our_db_ip}"),
    );
    same &= reach == (true, true);
    // Start order: db before seed; seed finished before app started.
    let their_seed = project.inspect("seed");
    let their_order = (
        instant(their_db["State"]["StartedAt"].as_str().unwrap_or_default())
            <= instant(their_seed["State"]["StartedAt"].as_str().unwrap_or_default()),
        instant(their_seed["State"]["FinishedAt"].as_str().unwrap_or_default())
            <= instant(their_app["State"]["StartedAt"].as_str().unwrap_or_default()),
        their_seed["State"]["ExitCode"].as_i64() == Some(0),
    );
    let (db_info, seed_info, app_info) = (db.refresh().await?, seed.refresh().await?, app.refresh().await?);
    let our_order = (
        instant(db_info.started_at.as_deref().unwrap_or_default())
            <= instant(seed_info.started_at.as_deref().unwrap_or_default()),
        instant(seed_info.finished_at.as_deref().unwrap_or_default())
            <= instant(app_info.started_at.as_deref().unwrap_or_default()),
        seed_info.exit_code == Some(0),
    );
    row(
        "order: db, then seed (exit 0), then app",
        their_order == (true, true, true) && our_order == their_order,
        &format!("theirs {their_order:?}, ours {our_order:?}"),
    );
    same &= their_order == (true, true, true) && our_order == their_order;
    t.finish().await?;
    assert!(same, "fixtures and docker-compose differ on {FILE} (see the rows marked DIFFERENT above)");
    Ok(())
}

#[tokio::test]
async fn the_resolver_file_compared_with_docker_compose() -> Result<()> {
    if !test_support::has(&[test_support::Need::DockerCompose]) {
        return Ok(());
    }
    const FILE: &str = "examples/resolver-service/docker-compose.yml";
    let project = Project::up(FILE);
    let t = Compose::new(FILE).load_into(test_support::base_env())?.start("compare::resolver").await?;
    let (api, dns) = (t.container("apiserver").await?, t.container("fakedns").await?);
    println!("{FILE}: docker-compose 1.29.2 on Docker vs fixtures on the engine under test");
    let mut same = compare_services(&project, &[("fakedns", &dns), ("apiserver", &api)]);
    // Reachability: the API finds the fake DNS server by its service name and asks it.
    let their_api = project.inspect("apiserver");
    let theirs_answer = answer(their_addr(&their_api, "8080/tcp")).await;
    let ours_answer = answer(api.addr("8080/tcp")?).await;
    row("apiserver reaches fakedns by its service name", theirs_answer == ours_answer, &ours_answer);
    same &= theirs_answer == ours_answer && ours_answer == r#"{"result": "127.0.0.1"}"#;
    let their_dns = project.inspect("fakedns");
    let their_order = instant(their_dns["State"]["StartedAt"].as_str().unwrap_or_default())
        <= instant(their_api["State"]["StartedAt"].as_str().unwrap_or_default());
    let our_order = instant(dns.refresh().await?.started_at.as_deref().unwrap_or_default())
        <= instant(api.refresh().await?.started_at.as_deref().unwrap_or_default());
    row("order: fakedns, then apiserver", their_order && our_order, &format!("theirs {their_order}, ours {our_order}"));
    same &= their_order && our_order;
    t.finish().await?;
    assert!(same, "fixtures and docker-compose differ on {FILE} (see the rows marked DIFFERENT above)");
    Ok(())
}

/// What is compared of one service's container, read from its inspect document (Docker's, or
/// libpod's, which names these fields alike).
#[derive(Debug, PartialEq)]
struct Shape {
    env: BTreeMap<String, String>,
    command: Vec<String>,
    entrypoint: Vec<String>,
    exposed: BTreeSet<String>,
    /// The names it answers to on its networks (service name, aliases, `container_name`),
    /// without those each tool makes up (its id, its generated name).
    names: BTreeSet<String>,
    networks: usize,
    /// Mount types and their paths in the container.
    mounts: BTreeSet<(String, String)>,
    health: Vec<String>,
    user: String,
    working_dir: String,
    /// Labels, without each tool's own (`com.docker.compose.*`, `fixtures.*`).
    labels: BTreeMap<String, String>,
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
        Value::String(s) if !s.is_empty() => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

fn shape(inspect: &Value, made_up_name: impl Fn(&str) -> bool) -> Shape {
    let config = &inspect["Config"];
    let id = inspect["Id"].as_str().unwrap_or_default();
    let env =
        strings(&config["Env"]).iter().filter_map(|e| e.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect();
    let mut exposed: BTreeSet<String> =
        config["ExposedPorts"].as_object().into_iter().flatten().map(|(p, _)| p.clone()).collect();
    if exposed.is_empty() {
        exposed =
            inspect["NetworkSettings"]["Ports"].as_object().into_iter().flatten().map(|(p, _)| p.clone()).collect();
    }
    let networks = inspect["NetworkSettings"]["Networks"].as_object().cloned().unwrap_or_default();
    let mut names: BTreeSet<String> = networks
        .values()
        .flat_map(|n| strings(&n["Aliases"]))
        .filter(|a| !(made_up_name(a) || (a.len() >= 12 && id.starts_with(a.as_str()))))
        .collect();
    let name = inspect["Name"].as_str().unwrap_or_default().trim_start_matches('/');
    if !made_up_name(name) {
        // A container's own name resolves on Docker's networks: docker-compose's `container_name`.
        names.insert(name.to_owned());
    }
    let mounts = inspect["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["Type"].as_str().unwrap_or_default().to_owned(),
                m["Destination"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let labels = config["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        // Podman's image builder labels what it builds (`io.buildah.version`): the stand-in
        // image's label, not the file's.
        .filter(|(k, _)| {
            !k.starts_with("com.docker.compose.") && !k.starts_with("fixtures.") && *k != "io.buildah.version"
        })
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    Shape {
        env: set_by_the_file(env),
        command: strings(&config["Cmd"]),
        entrypoint: strings(&config["Entrypoint"]),
        exposed,
        names,
        networks: networks.len(),
        mounts,
        health: strings(&config["Healthcheck"]["Test"]),
        user: config["User"].as_str().unwrap_or_default().to_owned(),
        // Podman shows the root where Docker shows nothing: both the engine's default.
        working_dir: config["WorkingDir"].as_str().filter(|d| *d != "/").unwrap_or_default().to_owned(),
        labels,
    }
}

/// A real-world file up with docker-compose and with the library, service by service: every
/// field of [`Shape`] the same, and the restart policy as the README says (docker-compose's
/// as written; the library's none).
async fn compare_real_file(file: &'static str, services: &[&str]) -> Result<()> {
    let project = Project::up(file);
    let t = Compose::new(file).load_into(test_support::base_env())?.start("compare::real").await?;
    println!("{file}: docker-compose 1.29.2 on Docker vs fixtures on the engine under test");
    let mut same = true;
    for service in services {
        let ours = t.container(service).await?;
        let their_inspect = project.inspect(service);
        let theirs = shape(&their_inspect, |n| n.starts_with(&project.name));
        let our_inspect = ours.attrs();
        let mine = shape(&our_inspect, |n| n == ours.name());
        let fields: [(&str, String, String); 11] = [
            ("environment", format!("{:?}", theirs.env), format!("{:?}", mine.env)),
            ("command", format!("{:?}", theirs.command), format!("{:?}", mine.command)),
            ("entrypoint", format!("{:?}", theirs.entrypoint), format!("{:?}", mine.entrypoint)),
            ("exposed ports", format!("{:?}", theirs.exposed), format!("{:?}", mine.exposed)),
            ("names on its networks", format!("{:?}", theirs.names), format!("{:?}", mine.names)),
            ("networks", theirs.networks.to_string(), mine.networks.to_string()),
            ("mounts", format!("{:?}", theirs.mounts), format!("{:?}", mine.mounts)),
            ("health check", format!("{:?}", theirs.health), format!("{:?}", mine.health)),
            ("user", theirs.user.clone(), mine.user.clone()),
            ("working dir", theirs.working_dir.clone(), mine.working_dir.clone()),
            ("labels", format!("{:?}", theirs.labels), format!("{:?}", mine.labels)),
        ];
        for (what, t, o) in &fields {
            let ok = t == o;
            row(
                &format!("{service}: {what}"),
                ok,
                if ok { o.clone() } else { format!("theirs {t}, ours {o}") }.as_str(),
            );
            same &= ok;
        }
        let policy = |i: &Value| i["HostConfig"]["RestartPolicy"]["Name"].as_str().unwrap_or_default().to_owned();
        let (their_policy, our_policy) = (policy(&their_inspect), policy(&our_inspect));
        let documented = matches!(our_policy.as_str(), "" | "no");
        row(
            &format!("{service}: restart policy (not applied, by design)"),
            documented,
            &format!("theirs {their_policy:?}, ours {our_policy:?}"),
        );
        same &= documented;
    }
    t.finish().await?;
    assert!(same, "fixtures and docker-compose differ on {file} (see the rows marked DIFFERENT above)");
    Ok(())
}

#[tokio::test]
async fn a_web_app_file_compared_with_docker_compose() -> Result<()> {
    if !test_support::has(&[test_support::Need::DockerCompose]) {
        return Ok(());
    }
    compare_real_file("tests/compose-files/webapp/docker-compose.yml", &["app", "db", "cache"]).await
}

#[tokio::test]
async fn a_queue_file_compared_with_docker_compose() -> Result<()> {
    if !test_support::has(&[test_support::Need::DockerCompose]) {
        return Ok(());
    }
    compare_real_file("tests/compose-files/queue/docker-compose.yml", &["rabbitmq", "mysql", "worker", "scheduler"])
        .await
}

#[tokio::test]
async fn a_reverse_proxy_file_compared_with_docker_compose() -> Result<()> {
    if !test_support::has(&[test_support::Need::DockerCompose]) {
        return Ok(());
    }
    compare_real_file("tests/compose-files/proxy/docker-compose.yml", &["proxy", "users", "orders"]).await
}
