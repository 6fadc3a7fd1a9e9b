//! Compose files as people write them (`tests/compose-files`: a web app with its database and
//! cache, a queue with workers, a reverse proxy in front of two services, a stack with secrets
//! and shared definitions) brought up whole on the engine under test, on stand-ins of the
//! public images they name (`cargo xtask images`): every service ready, reachable by the
//! names the file gives it, its secrets and bind mounts in place, without a change in code.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use fixtures::compose::Compose;
use fixtures::{Container, Env, ErrorKind, Result, TestEnv};
use futures_util::future::try_join_all;
use test_support::HttpClient;

const QUEUE: &str = "tests/compose-files/queue/docker-compose.yml";
const PROXY: &str = "tests/compose-files/proxy/docker-compose.yml";
const SECRETS: &str = "tests/compose-files/secrets/docker-compose.yml";

/// A copy of `tests/compose-files/<project>` in a folder of this test's own, as a user's
/// checkout would be: what the file makes beside itself (a missing bind source) lands there,
/// not in the source tree, which the user running the tests may not be able to write.
fn own_copy(project: &str) -> std::path::PathBuf {
    fn copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).expect("a folder for the copy");
        for entry in std::fs::read_dir(from).expect("the project's folder") {
            let entry = entry.expect("an entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("its type").is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).expect("a copy");
            }
        }
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let to = std::env::temp_dir().join(format!("fixtures-compose-{project}-{}-{nanos}", std::process::id()));
    copy(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compose-files").join(project), &to);
    to
}

fn load(compose: Compose) -> Result<Env> {
    compose.load_into(test_support::base_env())
}

/// Every service of the file, started and ready.
async fn all(t: &TestEnv, services: &[&str]) -> Result<Vec<Container>> {
    try_join_all(services.iter().map(|s| t.container(s))).await
}

/// Runs `cmd` in `c` until it exits 0, for up to 20 s (Podman 4.3's DNS server refuses a
/// lookup now and then while other tests change networks: aardvark-dns issue 389).
async fn succeeds(c: &Container, cmd: &[&str]) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = c.exec(cmd.iter().copied()).await?;
        if out.exit_code == 0 {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        assert!(
            Instant::now() < deadline,
            "`{}` in {} exits {}: {}{}",
            cmd.join(" "),
            c.fixture(),
            out.exit_code,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `c` reaches `name:port` over TCP.
async fn reaches(c: &Container, name: &str, port: u16) -> Result<()> {
    succeeds(c, &["/test-services", "probe", &format!("{name}:{port}")]).await.map(drop)
}

/// The mount of `c` at `target`, from its inspect document.
fn mount<'a>(attrs: &'a serde_json::Value, target: &str) -> Option<&'a serde_json::Value> {
    attrs["Mounts"].as_array()?.iter().find(|m| m["Destination"].as_str() == Some(target))
}

#[tokio::test]
async fn a_web_app_with_its_database_and_cache() -> Result<()> {
    let dir = own_copy("webapp");
    let logs = dir.join("logs");
    let t = load(Compose::new(dir.join("docker-compose.yml")))?.start("real::webapp").await?;
    let [app, db, cache] = <[Container; 3]>::try_from(all(&t, &["app", "db", "cache"]).await?).expect("three");
    // Ready: the app answers on the port it publishes (on one the engine chose: fixed host
    // ports cannot be shared by tests in parallel), and its health check passed.
    let (status, _) = HttpClient::new(app.addr("3000/tcp")?).get("/health").await?;
    assert_eq!(status, 200);
    assert_eq!(app.refresh().await?.health, fixtures::runtime::Health::Healthy);
    // Names: service names, `container_name`s, network aliases.
    for (name, port) in [("db", 5432), ("webapp-db", 5432), ("cache", 6379), ("webapp-cache", 6379), ("redis", 6379)] {
        reaches(&app, name, port).await?;
    }
    // Interpolated as Compose does, `$$` a literal `$`.
    let env = app.env();
    assert_eq!(env["DATABASE_URL"], "postgres://app:secret@db:5432/app");
    assert_eq!(env["PRICE_TAG"], "costs $5");
    // The missing bind source `./logs/` was made, a folder, and mounted where the file says
    // (without the trailing slash, as the engine keeps it).
    assert!(logs.is_dir(), "{} was made", logs.display());
    let attrs = app.attrs();
    let m = mount(&attrs, "/usr/src/app/logs").expect("the logs bind mount");
    assert_eq!(m["Type"], "bind");
    assert!(mount(&db.attrs(), "/docker-entrypoint-initdb.d/init.sql").is_some());
    // `deploy.resources.limits.memory` is the cache's memory limit, where the engine can limit.
    let limits = !test_support::rootless_on_cgroups_v1(cache.runtime().as_ref());
    let memory = cache.attrs()["HostConfig"]["Memory"].as_i64().filter(|m| *m > 0);
    assert_eq!(memory, limits.then_some(128 << 20));
    // `restart` is not applied: a test's containers are not brought back (the README says why).
    let policy = db.attrs()["HostConfig"]["RestartPolicy"]["Name"].as_str().unwrap_or_default().to_owned();
    assert!(matches!(policy.as_str(), "" | "no"), "restart policy {policy:?}");
    t.finish().await?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Eight copies of the web app at once: each container answers to the same fixed
/// `container_name` on its own test's network only, and each publishes the file's fixed
/// host ports on ports of its own.
#[tokio::test]
async fn eight_copies_with_fixed_names_and_ports_run_at_once() -> Result<()> {
    let dir = own_copy("webapp");
    let env = load(Compose::new(dir.join("docker-compose.yml")))?;
    let copies = try_join_all((0..8).map(|i| {
        let env = env.clone();
        async move {
            let t = env.start(format!("real::copy_{i}").as_str()).await?;
            let (app, db) = (t.container("app").await?, t.container("db").await?);
            let db_ip = db.ips().primary().expect("an address").to_string();
            // The trailing dot: a name without the search domain Podman adds (`dns.podman`).
            let seen = succeeds(&app, &["nslookup", "webapp-db."]).await?;
            Ok::<_, fixtures::Error>((t, app, db, db_ip, seen))
        }
    }))
    .await?;
    let db_ips: BTreeSet<&str> = copies.iter().map(|c| c.3.as_str()).collect();
    let host_ports: BTreeSet<u16> =
        copies.iter().map(|c| c.2.ports().host_port("5432/tcp").expect("published")).collect();
    assert_eq!(host_ports.len(), 8, "each copy publishes 5432 on a port of its own");
    for (_, app, _, own, seen) in &copies {
        assert!(seen.contains(own.as_str()), "{} finds its own database ({own}) as webapp-db:\n{seen}", app.name());
        for other in db_ips.iter().filter(|ip| *ip != own) {
            assert!(!seen.contains(other), "{} also resolves another copy's database {other}:\n{seen}", app.name());
        }
    }
    for (t, ..) in copies {
        t.finish().await?;
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test]
async fn a_queue_with_workers() -> Result<()> {
    let t = load(Compose::new(QUEUE))?.start("real::queue").await?;
    // MySQL's stand-in exposes 33060 and never opens it, as the real image without its X
    // plugin: `expose` alone is not awaited, so the service is ready without it.
    let services = all(&t, &["rabbitmq", "mysql", "worker", "scheduler"]).await?;
    let worker = &services[2];
    reaches(worker, "rabbitmq", 5672).await?;
    reaches(worker, "results-db", 3306).await?;
    // `deploy.resources.limits`, where the engine can limit (rootless Podman on cgroups v1
    // runs the service without them, as it would under Compose).
    let limits = !test_support::rootless_on_cgroups_v1(worker.runtime().as_ref());
    let host = &worker.attrs()["HostConfig"];
    let cpus = host["NanoCpus"].as_i64().filter(|n| *n > 0).or_else(|| {
        host["CpuQuota"]
            .as_i64()
            .filter(|q| *q > 0)
            .map(|q| q * 1_000_000_000 / host["CpuPeriod"].as_i64().unwrap_or(100_000))
    });
    assert_eq!(cpus, limits.then_some(500_000_000), "{host}");
    assert_eq!(host["Memory"].as_i64().filter(|m| *m > 0), limits.then_some(256 << 20));
    assert_eq!(worker.attrs()["Config"]["WorkingDir"], "/app");
    let scheduler = &services[3];
    assert_eq!(scheduler.attrs()["Config"]["Tty"], true);
    assert_eq!(scheduler.attrs()["Config"]["OpenStdin"], true);
    t.finish().await?;
    Ok(())
}

/// With `await_every_port`, the same file waits for MySQL's 33060, which never opens: the
/// stricter readiness stays available, and says what it waited for.
#[tokio::test]
async fn awaiting_every_port_waits_for_an_exposed_port_that_never_opens() -> Result<()> {
    let env =
        load(Compose::new(QUEUE).await_every_port())?.edit_container("mysql", |c| c.timeout(Duration::from_secs(3)));
    let t = env.start("real::strict").await?;
    let err = t.container("mysql").await.expect_err("33060 never listens");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    let report = format!("{err:?}");
    assert!(
        report.contains("waiting for: port 33060/tcp to listen"),
        "the report names the port it waited for: {report}"
    );
    t.finish().await?;
    Ok(())
}

#[tokio::test]
async fn a_reverse_proxy_in_front_of_two_services() -> Result<()> {
    let t = load(Compose::new(PROXY))?.start("real::proxy").await?;
    let proxy = t.container("proxy").await?;
    let (status, _) = HttpClient::new(proxy.addr("80/tcp")?).get("/").await?;
    assert_eq!(status, 200);
    // `links: [users:users-api, orders]`: the aliases the proxy's configuration uses.
    reaches(&proxy, "users-api", 4000).await?;
    reaches(&proxy, "orders", 4001).await?;
    reaches(&proxy, "orders-api", 4001).await?;
    let conf = succeeds(&proxy, &["cat", "/etc/nginx/conf.d/default.conf"]).await?;
    assert!(conf.contains("proxy_pass http://users-api:4000/"), "{conf}");
    t.finish().await?;
    Ok(())
}

#[tokio::test]
async fn a_stack_with_secrets_and_a_shared_definition() -> Result<()> {
    let compose = Compose::new(SECRETS).var("API_KEY", "key-from-the-environment");
    let t = load(compose)?.start("real::secrets").await?;
    let api = t.container("api").await?;
    // `extends` brought the base's image, working dir, environment and health check.
    let env = api.env();
    assert_eq!((env["LOG_LEVEL"].as_str(), env["PORT"].as_str()), ("info", "8080"));
    assert_eq!(api.attrs()["Config"]["WorkingDir"], "/srv/api");
    assert_eq!(api.refresh().await?.health, fixtures::runtime::Health::Healthy);
    // Secrets where Compose mounts them: from a file, and from a variable with its mode.
    let password = succeeds(&api, &["cat", "/run/secrets/db_password"]).await?;
    assert_eq!(password.trim(), "correct-horse-battery-staple");
    let key = succeeds(&api, &["cat", "/run/secrets/api_key"]).await?;
    assert_eq!(key, "key-from-the-environment");
    let mode = succeeds(&api, &["stat", "-L", "-c", "%a", "/run/secrets/api_key"]).await?;
    assert_eq!(mode.trim(), "440");
    let db = t.container("db").await?;
    assert_eq!(succeeds(&db, &["cat", "/run/secrets/db_password"]).await?.trim(), "correct-horse-battery-staple");
    reaches(&api, "secure-db", 5432).await?;
    t.finish().await?;
    Ok(())
}

/// A service that asks for GPUs loads (the rest of the file is usable), and fails when a test
/// starts it, saying why and what to do; so does a bind source that must exist and does not.
#[tokio::test]
async fn what_cannot_run_here_fails_when_started_naming_the_service() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("fixtures-compose-gpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("docker-compose.yml");
    std::fs::write(
        &file,
        "services:\n  trainer:\n    image: python:3.12-slim\n    deploy:\n      resources:\n        reservations:\n          \
         devices:\n            - driver: nvidia\n              count: 1\n              capabilities: [gpu]\n  web:\n    \
         image: nginx:1.27-alpine\n  data:\n    image: python:3.12-slim\n    volumes:\n      - type: bind\n        \
         source: ./must-exist\n        target: /data\n        bind:\n          create_host_path: false\n",
    )?;
    let env = load(Compose::new(&file))?;
    std::fs::remove_dir_all(&dir)?;
    let t = env.start("real::gpu").await?;
    t.container("web").await?;
    let err = t.container("trainer").await.expect_err("no GPU is passed");
    assert!(err.to_string().contains("service `trainer`, `gpus`: the service asks for GPUs"), "{err}");
    let err = t.container("data").await.expect_err("the bind source is missing");
    assert!(err.to_string().contains("service `data`, `volumes`: the bind source `"), "{err}");
    assert!(err.to_string().contains("must-exist` does not exist"), "{err}");
    t.finish().await?;
    Ok(())
}

/// The benchmark's six-service stack (`cargo xtask bench --only S10`): every service healthy,
/// in the order the health of what it depends on allows.
#[tokio::test]
async fn a_six_service_stack_with_health_checks() -> Result<()> {
    let t = load(Compose::new("tests/compose-files/stack/docker-compose.yml"))?.start("real::stack").await?;
    let services = all(&t, &["proxy", "api", "worker", "db", "cache", "broker"]).await?;
    for s in &services {
        assert_eq!(s.refresh().await?.health, fixtures::runtime::Health::Healthy, "{}", s.fixture());
    }
    let (status, _) = HttpClient::new(services[0].addr("80/tcp")?).get("/").await?;
    assert_eq!(status, 200);
    t.finish().await?;
    Ok(())
}

fn dashed() -> Env {
    load(Compose::new("tests/compose-files/dashed/docker-compose.yml")).expect("the file loads")
}

/// A service whose name is not a Rust identifier is a test's argument by `#[fixture("..")]`.
#[fixtures::test(env = dashed())]
async fn a_service_named_with_a_dash_is_a_test_argument(#[fixture("web-app")] web: &Container) -> Result<()> {
    assert_eq!(web.fixture(), "web-app");
    let (status, _) = HttpClient::new(web.addr("3000/tcp")?).get("/health").await?;
    assert_eq!(status, 200);
    Ok(())
}
