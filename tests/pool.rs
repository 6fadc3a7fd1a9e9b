//! A run spread over a pool of engines: the pool suite (`tests/pool/suite.rs`) under
//! cargo-nextest, a process per test, with `FIXTURE_ENGINES` naming this row's engine and
//! the machine's other one, and one that is down. Every test passes; the processes are
//! spread over both engines that answer (those whose turn was the one down pass over it);
//! each engine holds one session container at a time, shared by the tests that ran there;
//! nothing of the run is left on either afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use fixtures::spec::LabelFilter;

/// The pool: this row's engine first, the machine's other engine second.
fn pool() -> Vec<String> {
    let docker = "docker=unix:///var/run/docker.sock".to_owned();
    let podman = "podman=unix:///run/podman/podman.sock".to_owned();
    match std::env::var("FIXTURE_RUNTIME").as_deref() {
        Ok("podman") => vec![podman, docker],
        // The Docker backend on Podman's Docker-compatible socket (the podman-docker-api row).
        _ if std::env::var("DOCKER_HOST").is_ok_and(|h| h.contains("podman")) => {
            vec!["docker=unix:///run/podman/podman.sock".to_owned(), docker]
        }
        _ => vec![docker, podman],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nextest_run_spreads_over_the_pool() {
    if !test_support::has(&[test_support::Need::PodmanService, test_support::Need::Nextest]) {
        return;
    }
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let run = format!("pool{}x{nanos:x}", std::process::id());
    let log = std::env::temp_dir().join(format!("{run}.log"));
    let engines = pool();
    // And an engine that is down: the processes whose turn it is pass over it to the next.
    let down = "docker=unix:///run/fixtures-no-engine-here.sock".to_owned();
    let listed = [engines[0].clone(), down, engines[1].clone()];
    let (nextest_run, nextest_log, list) = (run.clone(), log.clone(), listed.join(","));
    // Both engines' events through the run: a session container is made anew when an engine
    // had no process of the run alive for a moment, but never two at once.
    let docker: std::sync::Arc<dyn fixtures::Runtime> = std::sync::Arc::new(
        fixtures::docker::DockerRuntime::connect_to("unix:///var/run/docker.sock").await.expect("docker"),
    );
    let podman: std::sync::Arc<dyn fixtures::Runtime> = std::sync::Arc::new(
        fixtures::podman::PodmanRuntime::connect_to("unix:///run/podman/podman.sock").await.expect("podman"),
    );
    let mut logs = [
        test_support::EventLog::start(docker.clone(), &[("fixtures.run", run.as_str())]),
        test_support::EventLog::start(podman.clone(), &[("fixtures.run", run.as_str())]),
    ];
    let out = tokio::task::spawn_blocking(move || {
        test_support::cargo()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["nextest", "run"])
            .args(test_support::SUITE)
            .args(["--test", "pool_suite", "--no-fail-fast", "-j", "4"])
            .env_remove("DOCKER_HOST")
            .env_remove("FIXTURE_RUNTIME")
            .env("FIXTURE_ENGINES", &list)
            .env("FIXTURE_RUN_ID", &nextest_run)
            .env("FIXTURE_TEST_POOL_LOG", &nextest_log)
            .output()
            .expect("cargo nextest runs")
    })
    .await
    .expect("joined");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "every test passes:\n{}", test_support::quoted(&text));
    assert!(text.contains("16 tests run: 16 passed"), "{}", test_support::quoted(&text));

    // Which engine each test ran on, and the session container it was given there.
    let written = std::fs::read_to_string(&log).expect("the tests' log");
    let _ = std::fs::remove_file(&log);
    let mut sessions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut tests = BTreeSet::new();
    for line in written.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [test, runtime, host, session] = fields[..] else { panic!("a line of the log: {line}") };
        tests.insert(test.to_owned());
        sessions.entry(format!("{runtime}={host}")).or_default().insert(session.to_owned());
    }
    assert_eq!(tests.len(), 16, "{written}");
    let used: BTreeSet<&String> = sessions.keys().collect();
    let listed: BTreeSet<&String> = engines.iter().collect();
    assert_eq!(used, listed, "the processes are spread over every engine of the pool that answers:\n{written}");
    for log in &mut logs {
        let events = log.until_now().await;
        let started = test_support::one_at_a_time(&events, "fx-session_svc-").unwrap_or_else(|e| panic!("{e}"));
        assert!(!started.is_empty(), "a session container on each engine: {sessions:?}");
    }
    drop(logs);

    // Nothing of the run on either engine, once the last watchers have seen it end.
    let engines: [&dyn fixtures::Runtime; 2] = [docker.as_ref(), podman.as_ref()];
    let filter = LabelFilter::eq("fixtures.run", run.clone());
    let start = Instant::now();
    loop {
        let mut left = Vec::new();
        for engine in engines {
            left.extend(engine.list_containers(&filter).await.expect("containers").into_iter().map(|c| c.id));
            left.extend(engine.list_networks(&filter).await.expect("networks").into_iter().map(|n| n.name));
            left.extend(engine.list_volumes(&filter).await.expect("volumes").into_iter().map(|v| v.name));
        }
        if left.is_empty() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "left on the engines 20 s after the run: {left:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
