//! A program that installed a SIGINT handler of its own before the library's: on Ctrl-C its
//! handler still runs (the library's is chained through signal-hook), and the library still
//! removes what the process made and exits with 130.

use std::process::Command;
use std::time::{Duration, Instant};

use fixtures::spec::LabelFilter;

#[tokio::test]
async fn the_programs_own_handler_runs_and_nothing_is_left() {
    let binary = test_support::test_binary("signal_suite");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let run = format!("signals{}x{nanos:x}", std::process::id());
    let log = std::env::temp_dir().join(format!("fixtures-{run}.log"));
    let mut child = Command::new(&binary)
        .args(["--exact", "holds_a_container_until_interrupted", "--nocapture"])
        .env("SIGNAL_LOG", &log)
        .env("FIXTURE_RUN_ID", &run)
        .spawn()
        .expect("the program runs");
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    let started = Instant::now();
    while !read().contains("ready") {
        assert!(started.elapsed() < Duration::from_secs(60), "the program never held its container: {}", read());
        assert!(child.try_wait().expect("waits").is_none(), "the program ended early: {}", read());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(sent.success());
    let status = child.wait().expect("it exits");
    assert_eq!(status.code(), Some(130), "the library's exit after its cleanup: {}", read());
    assert!(read().contains("the program's own handler ran"), "the program's handler was called: {}", read());
    let rt = test_support::runtime().await;
    let left = rt.list_containers(&LabelFilter::eq("fixtures.run", run.as_str())).await.expect("list");
    assert!(left.is_empty(), "the interrupted program's containers are gone: {left:?}");
    std::fs::remove_file(&log).expect("clean");
}
