//! Custom fixtures' teardowns: newest first, before the containers they need are removed,
//! after a panic too; a teardown that fails or hangs fails its test, is bounded, and stops
//! no other teardown or removal; a session fixture's runs at the process's exit. The suite
//! (`tests/teardown/suite.rs`) runs as a subprocess on one thread.

use std::process::Command;

use fixtures::labels;
use fixtures::spec::LabelFilter;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardowns_run_in_reverse_order_after_failures_and_at_exit() {
    let rt = test_support::runtime().await;
    let binary = test_support::test_binary("teardown_suite");
    let dir = std::env::temp_dir().join(format!("fixtures-teardown-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let log_file = dir.join("log");
    let _ = std::fs::remove_file(&log_file);
    let run = format!("teardown-{}", std::process::id());
    let out = {
        let (binary, log_file, run) = (binary.clone(), log_file.clone(), run.clone());
        tokio::task::spawn_blocking(move || {
            Command::new(binary)
                .args(["--test-threads=1"])
                .env("TEARDOWN_LOG", &log_file)
                .env("FIXTURE_RUN_ID", &run)
                .output()
                .expect("the suite runs")
        })
        .await
        .expect("joined")
    };
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let quoted = test_support::quoted(&text);
    assert!(!out.status.success(), "three tests fail on purpose:\n{quoted}");
    for (test, verdict) in [
        ("a_passes", "ok"),
        ("b_panics", "FAILED"),
        ("c_teardown_fails", "FAILED"),
        ("d_teardown_hangs", "FAILED"),
        ("e_uses_the_session_client", "ok"),
    ] {
        assert!(text.contains(&format!("test {test} ... {verdict}")), "{test} {verdict}:\n{quoted}");
    }
    assert!(text.contains("b_panics panics on purpose"), "{quoted}");
    assert!(text.contains("fixture `failing`: teardown: its teardown returned an error"), "{quoted}");
    assert!(text.contains("could not drop the schema"), "the cause is kept:\n{quoted}");
    assert!(text.contains("fixture `hanging`: teardown: its teardown did not finish within 0.3s"), "{quoted}");

    let log = std::fs::read_to_string(&log_file).expect("the suite wrote its log");
    let expected = "\
made memcached client
made outer
body a_passes
teardown outer
teardown memcached client: server answered=true
made memcached client
made outer
body b_panics
teardown outer
teardown memcached client: server answered=true
made memcached client
made failing
body c_teardown_fails
teardown failing
teardown memcached client: server answered=true
made memcached client
made hanging
body d_teardown_hangs
teardown hanging
teardown memcached client: server answered=true
made session_memcached client
body e_uses_the_session_client
teardown session_memcached client: server answered=true
";
    assert_eq!(log, expected, "the order of makes, bodies and teardowns; the suite said:\n{quoted}");

    // The suite's containers go, function and session ones: a run named by FIXTURE_RUN_ID may
    // have other processes, so its session objects go once nobody joined it for 4 s.
    let filter = LabelFilter::eq(labels::RUN, run.clone());
    let start = std::time::Instant::now();
    let mut left = rt.list_containers(&filter).await.expect("listed");
    while !left.is_empty() && start.elapsed() < std::time::Duration::from_secs(20) {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        left = rt.list_containers(&filter).await.expect("listed");
    }
    assert!(left.is_empty(), "left behind: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
