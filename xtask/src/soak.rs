//! `cargo xtask soak [--runtime podman|docker] [--seed N]`: the soak suite (`tests/soak`,
//! 1000 tests, 10% killing their own container mid-test, 5% taking it off its network) run
//! against a Podman service this command starts on a socket of its own and restarts once
//! mid-run (never the machine's engine). `--runtime docker` drives that service through the
//! Docker backend (Podman's Docker API). Afterwards it counts:
//!
//! - tests reporting the wrong error: a failure whose report does not show its cause (a killed
//!   container "exited with code 137", a disconnected one "on no network", an engine error for
//!   a test the restart caught), or a test that passed although its container was broken;
//! - objects of the run left on the engine.
//!
//! Either count above zero fails the command. Not part of `cargo xtask test`: it takes minutes.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Result, output, podman_answers, root};

const TESTS: usize = 1000;

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// The soak suite's binary, built with the suite's features.
fn binary() -> Result<PathBuf> {
    let out = crate::cargo()
        .args(["test", "-p", "fixtures", "--features", crate::TEST_FEATURES, "--test", "soak_suite"])
        .args(["--no-run", "--message-format=json"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"name\":\"soak_suite\""))
        .find_map(|l| {
            let start = l.find("\"executable\":\"")? + 14;
            Some(PathBuf::from(l[start..].split('"').next()?))
        })
        .ok_or_else(|| "cargo built no soak_suite binary".to_owned())
}

/// The Podman service of this command, on its own socket.
struct Engine {
    socket: PathBuf,
    child: Option<Child>,
}

impl Engine {
    fn up(&mut self) -> Result {
        let _ = std::fs::remove_file(&self.socket);
        let mut cmd = Command::new("podman");
        cmd.args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", self.socket.display()))
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        self.child = Some(cmd.spawn().map_err(|e| format!("cannot start podman system service: {e}"))?);
        let start = Instant::now();
        while !podman_answers(&self.socket) {
            if start.elapsed() > Duration::from_secs(30) {
                return Err(format!("the soak's Podman service never answered on {}", self.socket.display()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// SIGKILL to the service this command started, and only to it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// What `podman` (sharing the service's storage) lists of run `run`.
fn left(run: &str) -> Vec<String> {
    let filter = format!("label=fixtures.run={run}");
    let mut all = Vec::new();
    for (args, format) in
        [(&["ps", "-a"][..], "{{.Names}}"), (&["network", "ls"][..], "{{.Name}}"), (&["volume", "ls"][..], "{{.Name}}")]
    {
        let listed = output(Command::new("podman").args(args).args(["--filter", &filter, "--format", format]));
        all.extend(listed.unwrap_or_default().lines().map(str::to_owned));
    }
    all
}

/// libtest's failure reports: test name to report.
fn reports(text: &str) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("---- ").and_then(|l| l.strip_suffix(" stdout ----")) {
            out.extend(current.take());
            current = Some((name.to_owned(), String::new()));
        } else if line == "failures:" {
            out.extend(current.take());
        } else if let Some((_, report)) = &mut current {
            report.push_str(line);
            report.push('\n');
        }
    }
    out.extend(current);
    out
}

fn engine_error(report: &str) -> bool {
    report.contains("kind: engine") || report.contains("the engine ")
}

pub(crate) fn soak(args: &[String]) -> Result {
    let mut backend = "podman";
    let mut seed = "1".to_owned();
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        match (flag.as_str(), rest.next()) {
            ("--runtime", Some(v)) if v == "podman" || v == "docker" => {
                backend = if v == "podman" { "podman" } else { "docker" }
            }
            ("--seed", Some(v)) => seed.clone_from(v),
            _ => return Err(format!("unexpected arguments {args:?}; expected [--runtime podman|docker] [--seed N]")),
        }
    }
    let binary = binary()?;
    let pid = std::process::id();
    let mut engine = Engine { socket: std::env::temp_dir().join(format!("fx-soak-engine-{pid}.sock")), child: None };
    engine.up()?;
    let host = format!("unix://{}", engine.socket.display());
    let host_var = if backend == "podman" { "CONTAINER_HOST" } else { "DOCKER_HOST" };
    let run = format!("soak{pid}");
    let log_path = std::env::temp_dir().join(format!("fx-soak-{pid}.log"));
    let _ = std::fs::remove_file(&log_path);
    println!("xtask: soak: {TESTS} tests through the {backend} backend against {host} (seed {seed}), run {run}");

    let started = Instant::now();
    let mut suite = Command::new(&binary)
        .arg("--test-threads=4")
        .current_dir(root())
        .env("FIXTURE_RUNTIME", backend)
        .env(host_var, &host)
        .env("FIXTURE_RUN_ID", &run)
        .env("SOAK_LOG", &log_path)
        .env("SOAK_SEED", &seed)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run the soak suite: {e}"))?;
    let stdout = suite.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let mut done = 0;
        for line in std::io::BufReader::new(stdout).lines().map_while(std::result::Result::ok) {
            if line.starts_with("test ") && line.contains(" ... ") {
                done += 1;
                if done % 100 == 0 {
                    println!("xtask: soak: {done} tests done");
                }
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    // The engine is killed once 40% of the tests have started, and back a second later.
    let mut restart: Option<(u128, u128)> = None;
    while suite.try_wait().map_err(|e| e.to_string())?.is_none() {
        std::thread::sleep(Duration::from_millis(200));
        let begun = std::fs::read_to_string(&log_path).map_or(0, |t| t.lines().count());
        if restart.is_none() && begun >= TESTS * 2 / 5 {
            let killed = now_ms();
            engine.kill();
            std::thread::sleep(Duration::from_secs(1));
            engine.up()?;
            println!(
                "xtask: soak: the engine was killed after {begun} tests began, and answered again {} ms later",
                now_ms() - killed
            );
            restart = Some((killed, now_ms()));
        }
    }
    let text = reader.join().map_err(|_| "the reader panicked")?;
    let took = started.elapsed();
    let (killed_at, up_at) = restart.ok_or("the suite ended before the engine was restarted")?;

    // What each test did to itself, and when its body began.
    let begun: std::collections::HashMap<u32, (String, u128)> = std::fs::read_to_string(&log_path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.parse().ok()?, (f.next()?.to_owned(), f.next()?.parse().ok()?)))
        })
        .collect();
    let _ = std::fs::remove_file(&log_path);
    let reports = reports(&text);
    // A test the restart may have caught: its body began up to 5 s before the kill (a test
    // lasts under a second) or soon after the engine was back, or never began.
    let exposed = |start: Option<u128>| start.is_none_or(|s| s + 5_000 >= killed_at && s <= up_at + 1_000);
    let (mut passed, mut failed, mut wrong) = (0, 0, Vec::new());
    let mut by_cause = std::collections::BTreeMap::<&str, usize>::new();
    for line in text.lines().filter(|l| l.starts_with("test ") && l.contains(" ... ")) {
        let Some((name, verdict)) = line["test ".len()..].split_once(" ... ") else { continue };
        let n: Option<u32> = name.rsplit("::t").next().and_then(|d| d.parse().ok());
        let (fault, start) = match n.and_then(|n| begun.get(&n)) {
            Some((fault, start)) => (fault.as_str(), Some(*start)),
            None => ("none", None),
        };
        if verdict == "ok" {
            passed += 1;
            if fault != "none" && !exposed(start) {
                wrong.push(format!("{name}: passed although its container was broken ({fault})"));
            }
            continue;
        }
        failed += 1;
        let report = reports.get(name).map_or("", String::as_str);
        let cause = if fault == "kill" && report.contains("exited with code 137") {
            "container killed: reported exited with code 137"
        } else if fault == "disconnect" && report.contains("on no network") {
            "container disconnected: reported on no network"
        } else if exposed(start) && engine_error(report) {
            "the engine restart: an engine error naming it"
        } else {
            wrong.push(format!(
                "{name} ({fault}): {}",
                report.lines().find(|l| !l.trim().is_empty()).unwrap_or("no report")
            ));
            "wrong"
        };
        *by_cause.entry(cause).or_default() += 1;
    }

    // Nothing of the run left, once its last removals are done.
    let waited = Instant::now();
    let mut remaining = left(&run);
    while !remaining.is_empty() && waited.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(500));
        remaining = left(&run);
    }
    drop(engine);

    println!("\nsoak: {} tests in {:.0} s ({backend} backend, seed {seed})", passed + failed, took.as_secs_f64());
    println!("  {:<60} {passed:>5}", "passed");
    for (cause, count) in &by_cause {
        println!("  {:<60} {count:>5}", format!("failed, {cause}"));
    }
    println!("  {:<60} {:>5}", "tests reporting the wrong error", wrong.len());
    println!("  {:<60} {:>5}", "objects of the run left", remaining.len());
    for w in wrong.iter().take(20) {
        println!("    wrong: {w}");
    }
    if passed + failed != TESTS {
        return Err(format!("{} of {TESTS} tests reported", passed + failed));
    }
    if !wrong.is_empty() || !remaining.is_empty() {
        return Err(format!("{} wrong errors, left: {remaining:?}", wrong.len()));
    }
    Ok(())
}
