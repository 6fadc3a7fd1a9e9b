//! The suite's test binaries: built once, then run per row of the matrix, several at a time.
//!
//! `cargo test` runs a package's test binaries one after another; most of the suite's time
//! there is spent waiting on an engine, one binary at a time. Here the binaries are built once
//! (with the targets the tests run themselves, so nothing is built mid-run), then each row runs
//! them [`PARALLEL`] at a time, the longest first, each with what `cargo test` would give it
//! (its package's folder, `CARGO_MANIFEST_DIR`, ...). A binary's output goes to a log under
//! `target/xtask-logs/<row>/`, printed whole when it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Counts, Result, TEST_FEATURES, cargo, output, root};

/// cargo's selection for the suite. Tests that run cargo themselves (`test_support::SUITE`)
/// use the same, so cargo resolves features once and builds nothing twice.
pub(crate) const SUITE: [&str; 5] = ["--workspace", "--exclude", "fixtures-bench", "--features", TEST_FEATURES];

/// How many binaries run at once. The suite waits on engines far more than it computes.
pub(crate) const PARALLEL: usize = 3;

/// A binary that has not finished by then is stopped (with its process group) and fails.
const BINARY_LIMIT: Duration = Duration::from_secs(20 * 60);

/// The binaries that take longest, in that order: started first, so the run does not end
/// waiting on one of them.
const LONGEST: &[&str] = &[
    "chaos",
    "faults",
    "remote",
    "parallel",
    "user_crate",
    "compose",
    "pool",
    "compile_errors",
    "lifetimes",
    "compose_vs_docker_compose",
];

/// One test binary of the suite.
#[derive(Debug, Clone)]
pub(crate) struct Binary {
    /// The target's name (`chaos`, `fixtures_core`).
    pub(crate) name: String,
    /// Its package's name.
    pub(crate) package: String,
    pub(crate) exe: PathBuf,
    /// Its package's folder, where `cargo test` runs it.
    pub(crate) dir: PathBuf,
}

impl Binary {
    /// Whether its tests reach no engine: the unit tests of the library's crates (fake
    /// runtimes, parsers, request builders) and the compile-fail checks.
    pub(crate) fn engine_free(&self) -> bool {
        self.package != "fixtures" || self.name == "compile_errors"
    }
}

fn json(line: &str) -> Option<serde_json::Value> {
    serde_json::from_str(line).ok()
}

/// The workspace's packages (`cargo metadata`).
fn packages() -> Result<Vec<serde_json::Value>> {
    let out =
        output(cargo().args(["metadata", "--no-deps", "--format-version", "1"])).ok_or("cargo metadata failed")?;
    let meta = json(&out).ok_or("cargo metadata printed no JSON")?;
    Ok(meta["packages"].as_array().cloned().unwrap_or_default())
}

/// The `fixtures` package's test targets with `test = false`: suites the tests run as
/// subprocesses (`test_support::test_binary`).
fn run_by_tests(packages: &[serde_json::Value]) -> Vec<String> {
    packages
        .iter()
        .filter(|p| p["name"] == "fixtures")
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter(|t| t["test"] == false && t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "test")))
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

/// Builds the suite and the suites its tests run; returns the binaries `cargo test` would run.
pub(crate) fn build() -> Result<Vec<Binary>> {
    let packages = packages()?;
    let hidden = run_by_tests(&packages);
    println!("xtask: building the suite, and {} suites its tests run", hidden.len());
    let mut extra = cargo();
    extra.args(["test", "--no-run", "--quiet"]).args(SUITE);
    for target in &hidden {
        extra.args(["--test", target]);
    }
    crate::run(&mut extra)?;
    let out = cargo()
        .args(["test", "--no-run", "--message-format=json-render-diagnostics"])
        .args(SUITE)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err("the suite does not build".to_owned());
    }
    let mut found = Vec::new();
    for message in String::from_utf8_lossy(&out.stdout).lines().filter_map(json) {
        if message["reason"] != "compiler-artifact" || message["profile"]["test"] != true {
            continue;
        }
        let (Some(exe), Some(name), Some(manifest)) =
            (message["executable"].as_str(), message["target"]["name"].as_str(), message["manifest_path"].as_str())
        else {
            continue;
        };
        let package = packages
            .iter()
            .find(|p| p["manifest_path"] == manifest)
            .and_then(|p| p["name"].as_str())
            .unwrap_or(name)
            .to_owned();
        let dir = Path::new(manifest).parent().map(Path::to_path_buf).unwrap_or_else(root);
        found.push(Binary { name: name.to_owned(), package, exe: PathBuf::from(exe), dir });
    }
    if found.is_empty() {
        return Err("cargo listed no test binary".to_owned());
    }
    found.sort_by_key(|b| (LONGEST.iter().position(|l| *l == b.name).unwrap_or(LONGEST.len()), b.name.clone()));
    Ok(found)
}

/// A binary to run, and how.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) binary: Binary,
    /// The variables of the row (`FIXTURE_RUNTIME`, `DOCKER_HOST`, ...).
    pub(crate) env: Vec<(String, String)>,
}

/// The toolchain's libraries, which a proc-macro crate's tests link to (cargo puts them on
/// `LD_LIBRARY_PATH` when it runs them).
fn toolchain_libs() -> Option<String> {
    let sysroot = output(Command::new("rustc").args(["--print", "sysroot"]))?;
    let host = output(Command::new("rustc").args(["--print", "host-tuple"]))?;
    Some(format!("{sysroot}/lib/rustlib/{host}/lib:{sysroot}/lib"))
}

fn start(job: &Job, log: &Path, libs: Option<&str>) -> Result<Child> {
    let file = std::fs::File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let mut cmd = Command::new(&job.binary.exe);
    cmd.current_dir(&job.binary.dir)
        .env("CARGO", std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .env("CARGO_MANIFEST_DIR", &job.binary.dir)
        .env("CARGO_PKG_NAME", &job.binary.package)
        .env("CARGO_CRATE_NAME", job.binary.name.replace('-', "_"))
        .env("CARGO_TARGET_TMPDIR", root().join("target/tmp"))
        .env("RUST_BACKTRACE", "1")
        // Every engine of the run has the test images already: the tests need not look.
        .env("FIXTURES_TEST_IMAGES_READY", "1")
        .stdin(Stdio::null())
        .stdout(file.try_clone().map_err(|e| e.to_string())?)
        .stderr(file);
    if let Some(libs) = libs {
        let deps = root().join("target/debug/deps");
        cmd.env("LD_LIBRARY_PATH", format!("{libs}:{}", deps.display()));
    }
    for (key, value) in &job.env {
        cmd.env(key, value);
    }
    // Its own process group: a binary past its limit is stopped with everything it started.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn().map_err(|e| format!("cannot run {}: {e}", job.binary.exe.display()))
}

/// What one binary did.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) name: String,
    pub(crate) ok: bool,
    pub(crate) counts: Counts,
}

/// Runs `jobs`, `parallel` at a time, logging to `target/xtask-logs/<row>/`. A binary passes
/// when it exits 0 and printed libtest's summary.
pub(crate) fn run(row: &str, jobs: Vec<Job>, parallel: usize) -> Result<Vec<Outcome>> {
    let logs = root().join("target/xtask-logs").join(row);
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).map_err(|e| format!("create {}: {e}", logs.display()))?;
    std::fs::create_dir_all(root().join("target/tmp")).map_err(|e| e.to_string())?;
    let libs = toolchain_libs();
    let mut waiting: std::collections::VecDeque<Job> = jobs.into();
    let mut running: Vec<(Job, Child, Instant, PathBuf)> = Vec::new();
    let mut outcomes = Vec::new();
    while !waiting.is_empty() || !running.is_empty() {
        while running.len() < parallel.max(1) {
            let Some(job) = waiting.pop_front() else { break };
            let log = logs.join(format!("{}.log", job.binary.name));
            let child = start(&job, &log, libs.as_deref())?;
            running.push((job, child, Instant::now(), log));
        }
        let mut i = 0;
        while i < running.len() {
            let (_, child, started, _) = &mut running[i];
            let status = child.try_wait().map_err(|e| e.to_string())?;
            let over = status.is_none() && started.elapsed() > BINARY_LIMIT;
            if status.is_none() && !over {
                i += 1;
                continue;
            }
            let (job, mut child, started, log) = running.swap_remove(i);
            let status = match status {
                Some(status) => status,
                None => {
                    // SIGKILL to its process group: it and whatever it started.
                    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
                    child.wait().map_err(|e| e.to_string())?
                }
            };
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let mut counts = Counts::default();
            let mut summaries = 0;
            for line in text.lines() {
                if line.starts_with("test result: ") {
                    summaries += 1;
                }
                counts.add_line(line.trim_end());
            }
            let seconds = started.elapsed().as_secs_f64();
            let ok = status.success() && summaries > 0 && !over;
            let name = &job.binary.name;
            if ok {
                println!(
                    "xtask: {row}: {name}: ok, {} passed, {} ignored ({seconds:.1} s)",
                    counts.passed, counts.ignored
                );
            } else {
                let why = if over {
                    format!("stopped after {} s, its limit", BINARY_LIMIT.as_secs())
                } else if summaries == 0 {
                    format!("{status}, and it printed no test summary")
                } else {
                    format!("{status}")
                };
                println!("xtask: {row}: {name}: FAILED ({why}; {seconds:.1} s); its output ({}):", log.display());
                for line in text.lines() {
                    println!("    | {line}");
                }
            }
            outcomes.push(Outcome { name: name.clone(), ok, counts });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(outcomes)
}

/// Sums the outcomes of a row.
pub(crate) fn total(outcomes: &[Outcome]) -> (bool, Counts) {
    let mut counts = Counts::default();
    for o in outcomes {
        counts.passed += o.counts.passed;
        counts.failed += o.counts.failed;
        counts.ignored += o.counts.ignored;
    }
    (outcomes.iter().all(|o| o.ok), counts)
}
