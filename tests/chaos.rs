//! Nothing leaks: the chaos suite (`tests/chaos/suite.rs`: 200 tests, function, module and
//! session fixtures, 20% panicking, 10% timing out) run as a subprocess under cargo test
//! (threads) and cargo-nextest (a process per test), then interrupted with SIGINT and
//! killed with SIGKILL mid-run. After each: nothing of the run is left on the engine. All of
//! it under the library's harness (`chaos_harness`), and but for nextest under libtest's.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fixtures::spec::LabelFilter;

fn cargo() -> Command {
    let mut cmd = test_support::cargo();
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
    let rt = test_support::runtime().await;
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
    if !test_support::has(&[test_support::Need::Nextest]) {
        return;
    }
    // Under the library's harness: all four.
    chaos("chaos_harness", true).await;
    // Under libtest's: threads, SIGINT and SIGKILL (cargo-nextest runs a process per test the
    // same way under either harness, and takes the longest: once is enough).
    chaos("chaos_suite", false).await;
}

/// How much of the chaos suite runs: all four modules with `--full` (`FIXTURES_FULL`), else
/// the first (50 tests, with the same mix of passing, panicking and timing-out tests). The
/// libtest filter, the nextest filter, and the expected (passed, failed) counts.
struct Share {
    filter: Option<&'static str>,
    nextest_filter: Option<&'static str>,
    counts: (u32, u32),
    /// Tests that have the session fixture (those that time out have none).
    with_session: usize,
    /// Rounds of the checks that are repeated.
    rounds: u32,
}

fn share() -> Share {
    if test_support::full() {
        Share { filter: None, nextest_filter: None, counts: (140, 60), with_session: 180, rounds: 3 }
    } else {
        Share {
            filter: Some("module_0::"),
            // Under the library's harness the names start with `suite::`.
            nextest_filter: Some("test(/(^|::)module_0::/)"),
            counts: (35, 15),
            with_session: 45,
            rounds: 1,
        }
    }
}

/// The suite `target` under cargo test's threads, cargo-nextest (`nextest`), SIGINT and SIGKILL.
async fn chaos(target: &str, nextest: bool) {
    let binary = test_support::test_binary(target);
    let share = share();

    // 1. cargo test: threads in one process.
    let run = run_id("threads");
    let out = Command::new(&binary)
        .args(["--test-threads=4"])
        .args(share.filter)
        .env("FIXTURE_RUN_ID", &run)
        .output()
        .expect("suite runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(counts(&text), share.counts, "the designed failures and no others:\n{}", test_support::quoted(&text));
    nothing_left_within(&run, Duration::from_secs(10)).await;

    if nextest {
        chaos_under_nextest(target).await;
    }

    // 3. SIGINT mid-run: the process removes everything before it exits.
    let run = run_id("sigint");
    let mut child = started_mid_run(&binary, &run).await;
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(sent.success());
    let status = child.wait().expect("it exits");
    assert!(!status.success());
    nothing_left_within(&run, Duration::from_secs(1)).await;

    // 4. SIGKILL mid-run: the watcher removes everything within 10 s.
    let run = run_id("sigkill");
    let mut child = started_mid_run(&binary, &run).await;
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    nothing_left_within(&run, Duration::from_secs(10)).await;

    // 5. The whole tree SIGKILLed at once, as a CI runner ends a job that ran out of time: its
    // process group and every process below it. The watcher left that tree when it started.
    for round in 0..share.rounds {
        let run = run_id(&format!("tree{round}"));
        let mut child = Command::new(&binary)
            .args(["--test-threads=4"])
            .env("FIXTURE_RUN_ID", &run)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("suite runs");
        wait_for_containers(&run, 3).await;
        let pid = child.id() as i32;
        // The watcher is a process of its own, started beside the suite's first objects: on a
        // busy machine it may come a moment after them. Until its pre-`main` hook has run, the
        // process started as the watcher is still the suite's child (it leaves the tree by a
        // fork and a session of its own before anything else runs): look until every watcher
        // has left, or 30 s have passed.
        let looking = Instant::now();
        let (mut watchers, mut tree) = (watchers_of(&run), descendants(pid));
        while (watchers.is_empty() || watchers.iter().any(|w| tree.contains(w)))
            && looking.elapsed() < Duration::from_secs(30)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
            (watchers, tree) = (watchers_of(&run), descendants(pid));
        }
        assert!(!watchers.is_empty(), "the suite has a watcher (none in {:?})", looking.elapsed());
        assert!(
            watchers.iter().all(|w| !tree.contains(w)),
            "its watchers are out of its tree (suite {pid}, {:?} after its containers came):\n{}",
            looking.elapsed(),
            tree.iter().chain(&watchers).map(|p| process(*p)).collect::<Vec<_>>().join("\n")
        );
        // The group this test started, and the processes it found below it.
        let mut targets = vec![format!("-{pid}")];
        targets.extend(tree.iter().map(i32::to_string));
        let _ = Command::new("kill").args(["-KILL", "--"]).args(&targets).status();
        let _ = child.wait();
        let killed_at = Instant::now();
        nothing_left_within(&run, Duration::from_secs(10)).await;
        eprintln!(
            "{target}: tree of {} processes killed; everything of the run gone {:?} later",
            tree.len() + 1,
            killed_at.elapsed()
        );
    }
}

/// Process `pid` as the failure of a check names it: its parent, session and command line.
fn process(pid: i32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    format!(
        "  {pid}: state {} parent {} session {}: {}",
        fields.first().unwrap_or(&"?"),
        fields.get(1).unwrap_or(&"?"),
        fields.get(3).unwrap_or(&"?"),
        String::from_utf8_lossy(&cmdline).replace('\0', " ")
    )
}

/// The watcher processes of run `run`, found by the variable they were started with.
fn watchers_of(run: &str) -> Vec<i32> {
    let wanted = format!("FIXTURES_WATCH_RUN={run}");
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == wanted.as_bytes()))
        })
        .collect()
}

/// cargo-nextest's own timeout ends a test that hangs holding a container: it signals the
/// test's process group (SIGTERM, SIGKILL half a second later). Once (three times with `--full`): each time,
/// nothing of the run is left within 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nextest_timeouts_leave_nothing_behind() {
    if !test_support::has(&[test_support::Need::Nextest]) {
        return;
    }
    let config = format!("{}/tests/faults/nextest.toml", env!("CARGO_MANIFEST_DIR"));
    for round in 0..share().rounds {
        let run = run_id(&format!("nextimeout{round}"));
        let (nextest_run, config) = (run.clone(), config.clone());
        let out = tokio::task::spawn_blocking(move || {
            cargo()
                .args(["nextest", "run"])
                .args(test_support::SUITE)
                .args(["--test", "faults_suite", "--config-file", &config, "--profile", "timeout-kill"])
                .args(["-E", "test(=hang::forever)"])
                .env("FIXTURE_RUN_ID", &nextest_run)
                .output()
                .expect("cargo nextest runs")
        })
        .await
        .expect("joined");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "the hanging test fails:\n{}", test_support::quoted(&text));
        assert!(text.contains("TIMEOUT"), "nextest ended it at its timeout:\n{}", test_support::quoted(&text));
        assert!(
            text.contains("holding fx-fn_svc-"),
            "it held its container when killed:\n{}",
            test_support::quoted(&text)
        );
        let ended = Instant::now();
        nothing_left_within(&run, Duration::from_secs(10)).await;
        eprintln!("nextest timeout {round}: everything of the run gone {:?} after nextest returned", ended.elapsed());
    }
}

/// Every process below `pid`, read from `/proc`.
fn descendants(pid: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            // After the command's closing parenthesis: state, then the parent's pid.
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
            Some((p, ppid))
        })
        .collect();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    found.remove(0);
    found
}

/// The suite started as run `run`, once it has made its first containers.
async fn started_mid_run(binary: &std::path::Path, run: &str) -> std::process::Child {
    let child = Command::new(binary)
        .args(["--test-threads=4"])
        .env("FIXTURE_RUN_ID", run)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("suite runs");
    wait_for_containers(run, 3).await;
    child
}

/// 2. cargo-nextest: a process per test, one session container for the whole run.
async fn chaos_under_nextest(target: &str) {
    let share = share();
    let run = run_id("nextest");
    let target = target.to_owned();
    let session_log = std::env::temp_dir().join(format!("{run}-session-ids"));
    // The engine's events through the whole run: Podman rotates its event log several times
    // meanwhile, and ends event streams when it does; the backends ask again.
    let rt = test_support::runtime().await;
    let mut events = test_support::EventLog::start(rt.clone(), &[("fixtures.run", run.as_str())]);
    let (nextest_run, nextest_log) = (run.clone(), session_log.clone());
    // Off the async threads: the run takes minutes.
    let out = tokio::task::spawn_blocking(move || {
        cargo()
            .args(["nextest", "run"])
            .args(test_support::SUITE)
            .args(["--test", &target, "--no-fail-fast", "-j", "4"])
            .args(share.nextest_filter.iter().flat_map(|f| ["-E", f]))
            .env("FIXTURE_RUN_ID", &nextest_run)
            .env("CHAOS_SESSION_LOG", &nextest_log)
            .output()
            .expect("cargo nextest runs")
    })
    .await
    .expect("joined");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(counts(&text), share.counts, "the designed failures and no others:\n{}", test_support::quoted(&text));
    // Each test with the session fixture (those that time out have none) wrote down the
    // session container it had.
    let ids = std::fs::read_to_string(&session_log).expect("the tests wrote the session ids");
    std::fs::remove_file(&session_log).expect("remove the id log");
    let mut by_container = std::collections::BTreeMap::<&str, Vec<&str>>::new();
    for line in ids.lines() {
        let (container, test) = line.rsplit_once(' ').unwrap_or((line, "?"));
        by_container.entry(container).or_default().push(test);
    }
    let distinct: std::collections::BTreeSet<&str> =
        by_container.keys().map(|container| container.split_once(' ').map_or(*container, |(id, _)| id)).collect();
    assert_eq!(ids.lines().count(), share.with_session, "every test had the session container: {by_container:#?}");
    // One session container at a time, shared by every test that ran while it was there (a
    // process that comes after the run had none alive makes it anew), each started once.
    let events = events.until_now().await;
    let started = test_support::one_at_a_time(&events, "fx-session_svc-").unwrap_or_else(|e| panic!("{e}"));
    let starts: std::collections::BTreeSet<String> = started.iter().cloned().collect();
    let session: std::collections::BTreeSet<String> = distinct.iter().map(|id| (*id).to_owned()).collect();
    assert_eq!(starts, session, "the session containers the tests had are those that started");
    assert_eq!(started.len(), session.len(), "each session container started once: {by_container:#?}");
    assert!(
        by_container.values().any(|tests| tests.len() > 1),
        "a session container is shared by the processes that overlap it: {by_container:#?}"
    );
    nothing_left_within(&run, Duration::from_secs(10)).await;
}
