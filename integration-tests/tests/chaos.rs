//! Nothing leaks: the chaos suite (`tests/chaos/suite.rs`: 200 tests, function, module and
//! session fixtures, 20% panicking, 10% timing out) run as a subprocess under cargo test
//! (threads) and cargo-nextest (a process per test), then interrupted with SIGINT and
//! killed with SIGKILL mid-run. After each: nothing of the run is left on the engine.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fixtures_core::runtime::{EventAction, EventObject};
use fixtures_core::spec::LabelFilter;

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

fn run_id(what: &str) -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("chaos{what}{}x{nanos:x}", std::process::id())
}

/// Containers, networks and volumes of `run` on the engine.
async fn left(run: &str) -> (usize, usize, usize) {
    let rt = integration_tests::runtime().await;
    let f = LabelFilter::eq("fixtures.run", run);
    let c = rt.list_containers(&f).await.expect("list").len();
    let n = rt.list_networks(&f).await.expect("list").len();
    let v = rt.list_volumes(&f).await.expect("list").len();
    (c, n, v)
}

async fn nothing_left_within(run: &str, limit: Duration) {
    let start = Instant::now();
    loop {
        let now = left(run).await;
        if now == (0, 0, 0) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "after {limit:?}, still left of run {run}: {now:?} (containers, networks, volumes)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_for_containers(run: &str, n: usize) {
    let start = Instant::now();
    while left(run).await.0 < n {
        assert!(start.elapsed() < Duration::from_secs(60), "the suite never got going");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn counts(output: &str) -> (u32, u32) {
    // libtest: "test result: FAILED. 140 passed; 60 failed; ..."; nextest: "200 tests run: 140 passed, 60 failed".
    let line = output.lines().rev().find(|l| l.contains("passed") && l.contains("failed")).unwrap_or_default();
    let num = |word: &str| {
        line.split([';', ',', ':'])
            .find(|p| p.trim().ends_with(word))
            .and_then(|p| p.split_whitespace().rev().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (num("passed"), num("failed"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_leaves_nothing_behind() {
    let binary = integration_tests::test_binary("chaos_suite");

    // 1. cargo test: threads in one process.
    let run = run_id("threads");
    let out =
        Command::new(&binary).args(["--test-threads=4"]).env("FIXTURE_RUN_ID", &run).output().expect("suite runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(counts(&text), (140, 60), "the designed failures and no others:\n{}", integration_tests::quoted(&text));
    nothing_left_within(&run, Duration::from_secs(10)).await;

    // 2. cargo-nextest: a process per test, one session container for the whole run.
    let run = run_id("nextest");
    let rt = integration_tests::runtime().await;
    let mut events = integration_tests::EventLog::start(rt.clone(), &[("fixtures.run", run.as_str())]);
    let nextest_run = run.clone();
    // Off the async threads, so the event stream is read while the suite runs.
    let out = tokio::task::spawn_blocking(move || {
        cargo()
            .args(["nextest", "run", "-p", "integration-tests", "--test", "chaos_suite", "--no-fail-fast", "-j", "4"])
            .env("FIXTURE_RUN_ID", &nextest_run)
            .output()
            .expect("cargo nextest runs")
    })
    .await
    .expect("joined");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(counts(&text), (140, 60), "the designed failures and no others:\n{}", integration_tests::quoted(&text));
    // Session containers that ran, and that were created: a container whose engine-chosen
    // host port was taken before it started is made again (Podman), so it may be created twice
    // but run once.
    let session: Vec<_> = events
        .until_now()
        .await
        .into_iter()
        .filter(|e| {
            e.object == EventObject::Container
                && e.attributes.get("name").is_some_and(|name| name.starts_with("fx-session_svc-"))
        })
        .collect();
    drop(events);
    let count = |action| session.iter().filter(|e| e.action == action).count();
    assert_eq!(
        count(EventAction::Start),
        1,
        "200 processes, one session container ({} created)",
        count(EventAction::Create)
    );
    nothing_left_within(&run, Duration::from_secs(10)).await;

    // 3. SIGINT mid-run: the process removes everything before it exits.
    let run = run_id("sigint");
    let mut child = Command::new(&binary)
        .args(["--test-threads=4"])
        .env("FIXTURE_RUN_ID", &run)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("suite runs");
    wait_for_containers(&run, 3).await;
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(sent.success());
    let status = child.wait().expect("it exits");
    assert!(!status.success());
    nothing_left_within(&run, Duration::from_secs(1)).await;

    // 4. SIGKILL mid-run: the watcher removes everything within 10 s.
    let run = run_id("sigkill");
    let mut child = Command::new(&binary)
        .args(["--test-threads=4"])
        .env("FIXTURE_RUN_ID", &run)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("suite runs");
    wait_for_containers(&run, 3).await;
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    nothing_left_within(&run, Duration::from_secs(10)).await;
}
