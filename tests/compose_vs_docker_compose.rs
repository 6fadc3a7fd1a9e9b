//! The example compose files brought up twice: by Debian's docker-compose (1.29.2, on the
//! machine's Docker engine) and by this library (on the engine under test), then compared:
//! each service's environment, who is reachable by service name, the published container
//! ports, and the start order. Each comparison is printed (`--nocapture` shows it) and the
//! README states the result.
//!
//! Expected differences, not compared: names (docker-compose's `<project>_<service>_1`, ours
//! unique per test) and host ports (docker-compose binds a port the engine picks on 0.0.0.0,
//! ours one it picks on 127.0.0.1).

use std::collections::BTreeMap;
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
        let id = String::from_utf8_lossy(&ids.stdout).trim().to_owned();
        assert!(!id.is_empty() && !id.contains('\n'), "one container for `{service}`: {id:?}");
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
