//! Compose files as environments on a real engine: many copies of one project at once, scopes
//! per service, only what a test needs, overloading, and a job that fails.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use fixtures::compose::Compose;
use fixtures::spec::LabelFilter;
use fixtures::{Container, Env, ErrorKind, Result, Scope, container, image};
use futures_util::future::try_join_all;
use test_support::{HttpClient, SERVICES_IMAGE};

const APP: &str = "examples/compose-app/docker-compose.yml";

fn app() -> Compose {
    Compose::new(APP)
}

/// The address `app` resolves `db` to, from its `GET /`. Asked again for up to 20 s while the
/// lookup fails: Podman 4.3's DNS server (aardvark-dns 1.4, Debian bookworm's) stops and starts
/// every listener on each change of any network (aardvark-dns issue 389, fixed in 1.11), so
/// with tests making and removing networks all the time a lookup is refused now and then.
async fn db_seen_by(app: &Container) -> Result<String> {
    let client = HttpClient::new(app.addr("8080/tcp")?);
    let mut tries = 0;
    loop {
        let (status, body) = client.get("/").await?;
        tries += 1;
        if status == 200 || tries == 80 {
            assert_eq!(status, 200, "{body}");
            return Ok(body.split('"').nth(3).unwrap_or_default().to_owned());
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// The environment of a compose file with `text`, read from a folder of its own.
fn from_text(text: &str) -> Result<Env> {
    let dir = std::env::temp_dir().join(unique("fixtures-compose"));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("docker-compose.yml");
    std::fs::write(&file, text)?;
    let env = Compose::new(&file).load_into(test_support::base_env());
    std::fs::remove_dir_all(&dir)?;
    env
}

/// Eight copies of the three-service project at once, in one process: each has its own
/// containers and network, and each app finds its own database by the same service name.
#[tokio::test]
async fn many_copies_of_a_project_run_at_once() -> Result<()> {
    let env = app().load_into(test_support::base_env())?;
    // All eight made at once, then all alive together while each is asked, then all removed.
    let copies = try_join_all((0..8).map(|i| {
        let env = env.clone();
        async move {
            let t = env.start(format!("compose::copy_{i}")).await?;
            let (app, db) = (t.container("app").await?, t.container("db").await?);
            Ok::<_, fixtures::Error>((t, app, db))
        }
    }))
    .await?;
    let mut names = BTreeSet::new();
    let mut ips = BTreeSet::new();
    for (i, (_, app, db)) in copies.iter().enumerate() {
        let own = db.ips().primary().map(|ip| ip.to_string()).unwrap_or_default();
        assert_eq!(db_seen_by(app).await?, own, "copy {i}: `db` is this copy's database");
        names.insert((app.name().to_owned(), db.name().to_owned()));
        ips.insert(own);
    }
    assert_eq!((names.len(), ips.len()), (8, 8), "every copy has containers and a database of its own");
    for (t, _, _) in copies {
        t.finish().await?;
    }
    Ok(())
}

/// A module-scoped database is shared by the module's tests; each test's app still finds it
/// by its service name, and the apps of two tests never share a name on a network.
#[tokio::test]
async fn a_service_scoped_to_the_module_is_shared() -> Result<()> {
    let env = app().scope("db", Scope::Module).load_into(test_support::base_env())?;
    let (a, b) = (env.start("compose::shared_a").await?, env.start("compose::shared_b").await?);
    let (app_a, app_b) = tokio::try_join!(a.container("app"), b.container("app"))?;
    let (db_a, db_b) = (a.container("db").await?, b.container("db").await?);
    assert_eq!(db_a.id(), db_b.id(), "one database for the module");
    assert_ne!(app_a.id(), app_b.id());
    let db_ip = db_a.ips().primary().map(|ip| ip.to_string()).unwrap_or_default();
    assert_eq!(db_seen_by(&app_a).await?, db_ip);
    assert_eq!(db_seen_by(&app_b).await?, db_ip);
    // Each app answers to `app` on its own test's network only.
    let networks_a: BTreeSet<String> = app_a.ips().iter().map(|(n, _)| n.to_owned()).collect();
    let networks_b: BTreeSet<String> = app_b.ips().iter().map(|(n, _)| n.to_owned()).collect();
    assert_eq!(networks_a.intersection(&networks_b).count(), 1, "they share the database's network alone");
    a.finish().await?;
    b.finish().await?;
    Ok(())
}

/// Asking for the database alone makes neither the seed job nor the app.
#[tokio::test]
async fn only_what_a_test_asks_for_is_made() -> Result<()> {
    let mark = unique("only");
    let env = app()
        .load_into(test_support::base_env())?
        .edit_container("app", |c| c.label("compose-test", &mark))
        .edit_container("seed", |c| c.label("compose-test", &mark));
    let t = env.start("compose::only_db").await?;
    let db = t.container("db").await?;
    assert!(db.ips().primary().is_some());
    let others = t.runtime().list_containers(&LabelFilter::eq("compose-test", &mark)).await?;
    assert!(others.is_empty(), "made without being asked for: {others:?}");
    t.finish().await
}

/// A service is overloaded like any fixture: here the database is replaced by a plain
/// container, which the rest of the file uses without knowing.
#[tokio::test]
async fn a_service_is_replaced_by_a_fixture_declared_in_code() -> Result<()> {
    let env = app().load_into(test_support::base_env())?.with("services", image(SERVICES_IMAGE)).with(
        "db",
        container()
            .image("{services.id}")
            .command(["memcached"])
            .port("11211/tcp")
            .network_with_aliases("{default-network.name}", ["db"])
            .label("replaced", "yes")
            .wait_for_command(["/test-services", "probe", "127.0.0.1:11211"]),
    );
    let t = env.start("compose::replaced").await?;
    let app = t.container("app").await?;
    let db = t.container("db").await?;
    assert_eq!(db.info().labels.get("replaced").map(String::as_str), Some("yes"));
    assert_eq!(db_seen_by(&app).await?, db.ips().primary().map(|ip| ip.to_string()).unwrap_or_default());
    t.finish().await
}

/// A job that must complete successfully and exits 3 fails the fixture that needs it, with
/// its name, its exit code and its output.
#[tokio::test]
async fn a_job_that_fails_fails_what_depends_on_it() -> Result<()> {
    let env = from_text(&format!(
        "services:\n  migrate:\n    image: {SERVICES_IMAGE}\n    command: [exit, --code, \"3\", --stderr, \"no such table\"]\n  app:\n    image: {SERVICES_IMAGE}\n    command: [http]\n    depends_on:\n      migrate:\n        condition: service_completed_successfully\n"
    ))?;
    let t = env.start("compose::failing_job").await?;
    let err = t.container("app").await.expect_err("the job exits 3");
    assert_eq!(err.kind(), ErrorKind::Exited, "{err:?}");
    assert_eq!(err.exit_code(), Some(3), "{err:?}");
    assert!(err.message().contains("must complete successfully"), "{err:?}");
    assert_eq!(err.fixture(), Some("migrate"), "{err:?}");
    assert!(err.logs_tail().is_some_and(|l| l.contains("no such table")), "{err:?}");
    t.finish().await
}

/// A service that does its work and exits 0 is done, not failed, when what needs it asks only
/// that it started (Compose's default condition).
#[tokio::test]
async fn a_one_shot_service_that_exits_0_is_done() -> Result<()> {
    let env = from_text(&format!(
        "services:\n  init:\n    image: {SERVICES_IMAGE}\n    command: [exit, --stdout, \"prepared\"]\n  app:\n    image: {SERVICES_IMAGE}\n    command: [http]\n    depends_on: [init]\n"
    ))?;
    let t = env.start("compose::one_shot").await?;
    let app = t.container("app").await?;
    let init = t.container("init").await?.refresh().await?;
    assert_eq!((init.status, init.exit_code), (fixtures::ContainerStatus::Exited, Some(0)), "{init:?}");
    assert_eq!(app.status().await?, "running");
    t.finish().await
}

/// Process limits, kernel parameters, a tmpfs and a size of /dev/shm from the file reach the
/// container on every engine.
#[tokio::test]
async fn limits_and_kernel_parameters_reach_the_container() -> Result<()> {
    let env = from_text(&format!(
        "services:\n  box:\n    image: {}\n    command: [sleep, \"300\"]\n    stop_signal: SIGKILL\n    ulimits:\n      nofile: {{soft: 1024, hard: 2048}}\n    sysctls:\n      net.core.somaxconn: \"1234\"\n    tmpfs: /scratch:size=1m\n    shm_size: 8m\n",
        test_support::BUSYBOX_IMAGE
    ))?;
    let t = env.start("compose::limits").await?;
    let b = t.container("box").await?;
    let out = b
        // The main process's limits: Podman gives an exec'd process other ones.
        .exec([
            "sh",
            "-c",
            "grep 'open files' /proc/1/limits | tr -s ' ' | cut -d' ' -f4,5 | tr ' ' '\\n'; \
             cat /proc/sys/net/core/somaxconn; df -k /scratch /dev/shm | tail -n 2",
        ])
        .await?;
    let text = out.stdout_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..3], ["1024", "2048", "1234"], "{out:?}");
    let sizes: Vec<&str> = lines[3..].iter().filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert_eq!(sizes, ["1024", "8192"], "/scratch is 1 MiB and /dev/shm 8 MiB: {out:?}");
    t.finish().await
}
