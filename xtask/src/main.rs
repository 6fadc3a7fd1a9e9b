//! `cargo xtask`: the project's automation.
//!
//! - `test`: the README's test command and CI's: installs and starts what the tests need when
//!   it is missing (`xtask/setup.sh`: Docker, Podman and its API service, docker-registry,
//!   static busybox), then `checks`, then `integration`.
//! - `checks`: rustfmt, clippy on every feature set of every published crate, `cargo doc`
//!   with warnings denied.
//! - `images [--engine docker|podman|all]`: build the test images (only when their inputs changed).
//! - `integration [--runtime docker|podman|podman-docker-api|all]`: run the whole test suite once
//!   per runtime (default all three: `podman-docker-api` is the Docker backend against Podman's
//!   Docker-compatible API), each right after building its engine's images, then print the
//!   matrix (passed, failed, ignored, seconds); a runtime that ran fewer tests than another
//!   fails. Starts the Podman API service if Podman is installed but its socket does not
//!   answer. A runtime whose engine is not installed is skipped, or fails under `CI=true`.
//!   After the `podman` row, the `podman-rootless` row runs its binaries as an ordinary user
//!   against that user's Podman service (`rootless.rs`); `rootless` runs that row alone.
//! - `demo`: the README's first command: Docker installed and started if missing, the services
//!   image built, the resolver-service example suite run against it, showing what it did.
//! - `bench [--runtime docker|podman] [--reps N] [--only S1,S3]`: the benchmarks side by side.
//! - `clean [--engine ...]`: remove what this library left on an engine (by label), nothing else.
//! - `soak [--runtime podman|docker] [--seed N]`: 1000 tests breaking their own containers, the
//!   engine (a Podman service of its own) restarted once; counts wrong errors and leftovers.
//! - `build-times`: a cold debug build of a minimal user test crate, for each feature set of
//!   `fixtures` and for testcontainers-rs 0.28, one after another in one run (a fresh target
//!   folder each; crates fetched beforehand, so only compiling is timed).
//!
//! Only `test` and `demo` install anything (Debian's packages, through `xtask/setup.sh`); the
//! rest use the machine's tools as they are.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod fresh;
mod rootless;
mod soak;
mod standins;
mod suite;

type Result<T = ()> = std::result::Result<T, String>;

const SERVICES_IMAGE: &str = "fixtures-test/services:latest";
const BUSYBOX_IMAGE: &str = "fixtures-test/busybox:latest";
/// The features the suite is built with (`test_support::test_binary` builds with the same).
const TEST_FEATURES: &str = "fixtures/podman,fixtures/compose,fixtures/tls";
const INPUTS_LABEL: &str = "fixtures.test-image.inputs";
/// The local registry `fetch` is tested against.
const REGISTRY: &str = "127.0.0.1:5000";
/// The image pushed there.
const REGISTRY_IMAGE: &str = "127.0.0.1:5000/fixtures-test/services:latest";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        // `--local`: the engine's own images only, no registry (what a plain `cargo test` builds on demand).
        Some("images") if args.get(1).is_some_and(|a| a == "--local") => {
            engines(&args[2..]).and_then(|e| e.iter().try_for_each(|e| local_images(e)))
        }
        Some("images") => engines(&args[1..]).and_then(|e| e.iter().try_for_each(|e| images(e))),
        Some("integration") => integration(&args[1..]),
        Some("demo") => demo(),
        Some("bench") => bench(&args[1..]),
        Some("clean") if args[1..] == ["--all"] => fresh::clean_all(),
        Some("clean") => engines(&args[1..]).and_then(|e| e.iter().try_for_each(|e| clean(e))),
        Some("build-times") => build_times(),
        Some("test") => test_all(&args[1..]),
        Some("checks") => checks(),
        Some("soak") => soak::soak(&args[1..]),
        Some("rootless") => suite::build().and_then(|b| rootless::row(&b, &[])).and_then(|(ok, c, skipped)| {
            println!("podman-rootless: {} passed, {} failed ({skipped} binaries not run as the user)", c.passed, c.failed);
            if ok && c.failed == 0 { Ok(()) } else { Err("the rootless run failed".to_owned()) }
        }),
        _ => Err("usage: cargo xtask test [--full] [--under-load] | checks | images [--local] [--engine docker|podman|all] | <demo|clean> [--engine docker|podman|all] | clean --all | integration [--runtime docker|podman|podman-docker-api|all] [--full] [--under-load] | bench [--runtime docker|podman] [--reps N] [--only S1,S3] | build-times | rootless | soak [--runtime podman|docker] [--seed N]".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    cmd.current_dir(root());
    cmd
}

fn run(cmd: &mut Command) -> Result {
    let status = cmd.status().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{cmd:?} failed: {status}")) }
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Engines named by `--engine`, default docker.
fn engines(args: &[String]) -> Result<Vec<String>> {
    let chosen = match args {
        [] => "docker",
        [flag, value] if flag == "--engine" => value.as_str(),
        _ => return Err(format!("unexpected arguments {args:?}; expected --engine docker|podman|all")),
    };
    match chosen {
        "docker" | "podman" => Ok(vec![chosen.to_owned()]),
        "all" => Ok(["docker", "podman"]
            .into_iter()
            .filter(|e| output(Command::new(e).arg("info")).is_some())
            .map(str::to_owned)
            .collect()),
        other => Err(format!("unknown engine `{other}`; expected docker, podman or all")),
    }
}

/// FNV-1a, enough to tell whether inputs changed.
fn fingerprint(parts: &[&[u8]]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(&[0xff]) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// Builds `tag` with `engine` from `files` (name → bytes) unless an image with the same inputs exists.
fn build_image(engine: &str, tag: &str, dockerfile: &str, files: &[(&str, Vec<u8>)]) -> Result {
    let mut parts: Vec<&[u8]> = vec![dockerfile.as_bytes()];
    parts.extend(files.iter().map(|(_, bytes)| bytes.as_slice()));
    let inputs = fingerprint(&parts);
    let current = output(Command::new(engine).args([
        "image",
        "inspect",
        "--format",
        &format!("{{{{ index .Config.Labels \"{INPUTS_LABEL}\" }}}}"),
        tag,
    ]));
    if current.as_deref() == Some(inputs.as_str()) {
        println!("xtask: {engine}: {tag} is up to date");
        return Ok(());
    }
    let dir = root().join("target/xtask-images").join(tag.replace(['/', ':'], "_"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    std::fs::write(dir.join("Dockerfile"), dockerfile).map_err(|e| e.to_string())?;
    for (name, bytes) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, bytes).map_err(|e| format!("write {}: {e}", path.display()))?;
        set_executable(&path)?;
    }
    println!("xtask: {engine}: building {tag}");
    run(Command::new(engine)
        .args(["build", "--quiet", "--label", &format!("{INPUTS_LABEL}={inputs}"), "-t", tag])
        .arg(&dir))
}

#[cfg(unix)]
fn set_executable(path: &Path) -> Result {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())
}

/// The test-services binary, static, for `FROM scratch` images.
fn services_binary() -> Result<Vec<u8>> {
    let target = "x86_64-unknown-linux-gnu";
    run(cargo().env("RUSTFLAGS", "-C target-feature=+crt-static").args([
        "build",
        "--quiet",
        "--release",
        "--target",
        target,
        "-p",
        "test-services",
    ]))?;
    let path = root().join("target").join(target).join("release/test-services");
    std::fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))
}

fn busybox_binary() -> Result<Vec<u8>> {
    // Debian's place first, then whatever `busybox` is on PATH (e.g. in `nix develop`).
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("busybox")).collect::<Vec<_>>())
        .unwrap_or_default();
    let found = [PathBuf::from("/bin/busybox"), PathBuf::from("/usr/bin/busybox")]
        .into_iter()
        .chain(on_path)
        .find(|p| p.exists());
    let found =
        found.ok_or("no busybox on this machine: install Debian's busybox-static (apt-get install busybox-static)")?;
    let path = found.to_str().ok_or("busybox's path is not UTF-8")?;
    let bytes = std::fs::read(path).map_err(|e| format!("read {path}: {e}"))?;
    let file = output(Command::new("file").arg("-L").arg(path)).unwrap_or_default();
    if file.contains("dynamically linked") {
        return Err(format!("{path} is dynamically linked; install busybox-static"));
    }
    Ok(bytes)
}

/// The services and busybox images on `engine`.
fn local_images(engine: &str) -> Result {
    services_image(engine)?;
    build_image(
        engine,
        BUSYBOX_IMAGE,
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCMD [\"sh\"]\n",
        &[("busybox", busybox_binary()?)],
    )?;
    standins::build(engine)
}

fn images(engine: &str) -> Result {
    local_images(engine)?;
    ensure_registry()?;
    run(Command::new(engine).args(["tag", SERVICES_IMAGE, REGISTRY_IMAGE]))?;
    let mut push = Command::new(engine);
    push.arg("push");
    if engine == "podman" {
        push.arg("--tls-verify=false");
    }
    run(push.arg("--quiet").arg(REGISTRY_IMAGE).stdout(std::process::Stdio::null()))?;
    println!("xtask: {engine}: pushed {REGISTRY_IMAGE}");
    Ok(())
}

fn registry_up() -> bool {
    let addr: std::net::SocketAddr = REGISTRY.parse().expect("a socket address");
    std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200)).is_ok()
}

/// Starts Debian's `docker-registry` on 127.0.0.1:5000 unless something serves there already.
fn ensure_registry() -> Result {
    if registry_up() {
        return Ok(());
    }
    let dir = root().join("target/xtask-registry");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {REGISTRY}\n",
            dir.join("data").display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let log = std::fs::File::create(dir.join("registry.log")).map_err(|e| e.to_string())?;
    println!("xtask: starting docker-registry on {REGISTRY}");
    let mut cmd = Command::new("docker-registry");
    cmd.arg("serve")
        .arg(&config)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child =
        cmd.spawn().map_err(|e| format!("cannot start docker-registry (apt-get install docker-registry): {e}"))?;
    fresh::remember("registry", child.id(), Some(&dir.join("data")));
    for _ in 0..100 {
        if registry_up() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(format!("docker-registry did not listen on {REGISTRY}; see {}", dir.join("registry.log").display()))
}

/// Counts of one test run, summed from the harness's `test result:` lines.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Counts {
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("test result: ") else { return };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(n)) = (words.next(), words.next()) else { continue };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

/// Runs `cmd`, echoing its output, and sums the test counts it prints.
fn run_counting(cmd: &mut Command) -> Result<(bool, Counts)> {
    use std::io::BufRead;
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let mut counts = Counts::default();
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines().map_while(std::result::Result::ok) {
            println!("{line}");
            // Only libtest's own summary lines (column 0): a failing test may quote another
            // run's output, indented, in its message.
            counts.add_line(line.trim_end());
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    Ok((status.success(), counts))
}

/// A runtime of the matrix: the backend the tests use and the engine behind it.
#[derive(Debug, Clone, Copy)]
struct Runtime {
    /// The row's name.
    name: &'static str,
    /// `FIXTURE_RUNTIME` for the tests.
    backend: &'static str,
    /// The engine's CLI: images are built, and leftovers cleaned, with it.
    engine: &'static str,
    /// Whether the tests reach Podman through its Docker-compatible API.
    docker_api_on_podman: bool,
}

const RUNTIMES: [Runtime; 3] = [
    Runtime { name: "docker", backend: "docker", engine: "docker", docker_api_on_podman: false },
    Runtime { name: "podman", backend: "podman", engine: "podman", docker_api_on_podman: false },
    // The Docker backend against Podman's Docker-compatible API.
    Runtime { name: "podman-docker-api", backend: "docker", engine: "podman", docker_api_on_podman: true },
];

/// Runtimes named by `--runtime` (or `--engine`), default all.
fn runtimes(args: &[String]) -> Result<Vec<Runtime>> {
    let chosen = match args {
        [] => return Ok(RUNTIMES.to_vec()),
        [flag, value] if flag == "--runtime" || flag == "--engine" => value.as_str(),
        _ => {
            return Err(format!(
                "unexpected arguments {args:?}; expected --runtime docker|podman|podman-docker-api|all"
            ));
        }
    };
    if chosen == "all" {
        return Ok(RUNTIMES.to_vec());
    }
    match RUNTIMES.iter().find(|r| r.name == chosen) {
        Some(runtime) => Ok(vec![*runtime]),
        None => Err(format!("unknown runtime `{chosen}`; expected docker, podman, podman-docker-api or all")),
    }
}

fn installed(engine: &str) -> bool {
    Command::new(engine)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The Podman API socket: `CONTAINER_HOST` (unix://), else the rootful socket for root,
/// else the user's (as `fixtures_podman::PodmanRuntime::connect` finds it).
fn podman_socket() -> PathBuf {
    if let Some(path) = std::env::var("CONTAINER_HOST").ok().as_deref().and_then(|h| h.strip_prefix("unix://")) {
        return PathBuf::from(path);
    }
    let uid = output(Command::new("id").arg("-u")).unwrap_or_default();
    if uid == "0" {
        return PathBuf::from("/run/podman/podman.sock");
    }
    let dir = std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| format!("/run/user/{uid}"));
    Path::new(&dir).join("podman/podman.sock")
}

/// Whether the Podman service answers `GET /_ping` on `socket`.
fn podman_answers(socket: &Path) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(socket) else { return false };
    let timeout = Some(std::time::Duration::from_secs(2));
    let _ = stream.set_read_timeout(timeout);
    let _ = stream.set_write_timeout(timeout);
    if stream.write_all(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.") && answer.split_whitespace().nth(1) == Some("200")
}

/// Starts `podman system service` on its socket unless it answers already.
fn ensure_podman_service() -> Result<PathBuf> {
    let socket = podman_socket();
    if podman_answers(&socket) {
        return Ok(socket);
    }
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let dir = root().join("target/xtask-podman");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let log_path = dir.join("service.log");
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    println!("xtask: starting the Podman API service on {}", socket.display());
    let mut cmd = Command::new("podman");
    cmd.args(["system", "service", "--time=0"])
        .arg(format!("unix://{}", socket.display()))
        // conmon (2.1.6, Debian bookworm's) writes a file named `oom` into its working folder
        // when a container is OOM-killed: keep that out of the repository.
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    // Its own process group, so that it outlives this run (and Ctrl-C of it).
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn().map_err(|e| format!("cannot start `podman system service`: {e}"))?;
    fresh::remember("podman-service", child.id(), None);
    for _ in 0..100 {
        if podman_answers(&socket) {
            return Ok(socket);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(format!("the Podman service did not answer on {}; see {}", socket.display(), log_path.display()))
}

/// Why a runtime cannot run here, if it cannot; starts the Podman service when needed.
fn prepare(runtime: &Runtime) -> std::result::Result<Option<PathBuf>, String> {
    if !installed(runtime.engine) {
        return Err(format!("{} is not installed", runtime.engine));
    }
    match runtime.engine {
        "podman" => ensure_podman_service().map(Some),
        _ if output(Command::new(runtime.engine).arg("info")).is_none() => {
            Err(format!("`{} info` fails: is the engine running?", runtime.engine))
        }
        _ => Ok(None),
    }
}

/// One row of the matrix.
#[derive(Debug)]
struct Row {
    runtime: &'static str,
    counts: Counts,
    verdict: String,
    bad: bool,
    /// Seconds the row took.
    seconds: u64,
}

/// How `integration` and `test` run: which rows, the long forms or not, under load or not.
#[derive(Debug)]
struct Options {
    runtimes: Vec<Runtime>,
    /// The long forms too: chaos in full, faults and the user crate on every row.
    full: bool,
    /// A CPU hog per core beside the run (`stress-ng`).
    under_load: bool,
}

fn options(args: &[String]) -> Result<Options> {
    let mut rest = Vec::new();
    let (mut full, mut under_load) = (false, false);
    for arg in args {
        match arg.as_str() {
            "--full" => full = true,
            "--under-load" => under_load = true,
            _ => rest.push(arg.clone()),
        }
    }
    Ok(Options { runtimes: runtimes(&rest)?, full, under_load })
}

/// Why the row `runtime` leaves `binary` out, if it does. The first row runs everything;
/// a later row runs what reaches its engine, less the long forms whose behaviour does not
/// change with the row (all of them with `--full`).
fn left_out(runtime: &Runtime, first: bool, full: bool, binary: &suite::Binary) -> Option<&'static str> {
    if !first && binary.engine_free() {
        return Some("reaches no engine: the first row ran it");
    }
    if full || first {
        return None;
    }
    match binary.name.as_str() {
        "user_crate" => {
            Some("builds a user's crate, the same on every engine: the first row ran it (every row with --full)")
        }
        "faults" if runtime.docker_api_on_podman => Some(
            "drives the Docker client against a Podman service of its own, as the docker row did (every row with --full)",
        ),
        _ => None,
    }
}

/// A CPU hog per core (`stress-ng --cpu 0`), from start to drop: the suite must pass on a
/// machine that is busy with other work, as a user's CI machine is.
struct Load(std::process::Child);

impl Load {
    fn start() -> Result<Load> {
        let mut cmd = Command::new("stress-ng");
        cmd.args(["--cpu", "0", "--quiet"]).stdin(std::process::Stdio::null());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().map_err(|e| format!("cannot start stress-ng (apt-get install stress-ng): {e}"))?;
        println!("xtask: under load: stress-ng keeps every core busy (process group {})", child.id());
        Ok(Load(child))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        // Its own group: stress-ng and the workers it forked, and nothing else.
        let _ = Command::new("kill").args(["-TERM", "--", &format!("-{}", self.0.id())]).status();
        let _ = self.0.wait();
        println!("xtask: under load: stress-ng stopped");
    }
}

fn integration(args: &[String]) -> Result {
    let options = options(args)?;
    let _load = if options.under_load { Some(Load::start()?) } else { None };
    run_matrix(&options)
}

fn run_matrix(options: &Options) -> Result {
    let started_all = std::time::Instant::now();
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    let mut rows = Vec::new();
    // Every row's needs are made before the first row runs: engines, services, and the test
    // images on every engine here (the faults and pool tests reach Podman from any row; the
    // comparison with docker-compose runs on Docker from any row).
    let mut ready = Vec::new();
    for runtime in &options.runtimes {
        match prepare(runtime) {
            Ok(socket) => ready.push((*runtime, socket)),
            Err(why) => {
                // Under CI a missing runtime fails the run; elsewhere it is reported and skipped.
                println!(
                    "xtask: {}: {why}{}",
                    runtime.name,
                    if ci { "" } else { " (skipped; under CI=true this fails)" }
                );
                let verdict = if ci { format!("FAILED: {why}") } else { format!("skipped: {why}") };
                rows.push(Row { runtime: runtime.name, counts: Counts::default(), verdict, bad: ci, seconds: 0 });
            }
        }
    }
    for engine in ["docker", "podman"] {
        if !installed(engine) {
            continue;
        }
        if engine == "podman" {
            ensure_podman_service()?;
        }
        images(engine).map_err(|e| format!("{engine}: the test images could not be made: {e}"))?;
    }
    let binaries = suite::build()?;
    let full_env = if options.full { vec![("FIXTURES_FULL".to_owned(), "1".to_owned())] } else { Vec::new() };
    for (i, (runtime, socket)) in ready.iter().enumerate() {
        let first = i == 0;
        println!("\nxtask: running the test suite against {}", runtime.name);
        let started = std::time::Instant::now();
        let mut env = vec![("FIXTURE_RUNTIME".to_owned(), runtime.backend.to_owned())];
        if runtime.docker_api_on_podman {
            let socket = socket.clone().unwrap_or_else(podman_socket);
            env.push(("DOCKER_HOST".to_owned(), format!("unix://{}", socket.display())));
        }
        env.extend(full_env.iter().cloned());
        let mut jobs = Vec::new();
        for binary in &binaries {
            match left_out(runtime, first, options.full, binary) {
                Some(why) => println!("xtask: {}: not running `{}`: it {why}", runtime.name, binary.name),
                None => jobs.push(suite::Job { binary: binary.clone(), env: env.clone() }),
            }
        }
        let mut counts = Counts::default();
        let mut ok = true;
        if first {
            // The doc examples, once: they are compiled, and reach no engine.
            println!("xtask: {}: the doc examples", runtime.name);
            let mut doc = cargo();
            doc.args(["test", "--doc", "--quiet"]).args(suite::SUITE);
            let (doc_ok, doc_counts) = run_counting(&mut doc)?;
            ok &= doc_ok;
            counts = doc_counts;
        }
        let outcomes = suite::run(runtime.name, jobs, suite::PARALLEL)?;
        let (row_ok, row_counts) = suite::total(&outcomes);
        ok &= row_ok;
        counts.passed += row_counts.passed;
        counts.failed += row_counts.failed;
        counts.ignored += row_counts.ignored;
        let failed: Vec<&str> = outcomes.iter().filter(|o| !o.ok).map(|o| o.name.as_str()).collect();
        // The run's own cleanup (watchers) may still be removing things: a second pass then.
        if let Err(e) = clean(runtime.engine) {
            println!("xtask: {}: {e}; cleaning again", runtime.engine);
            std::thread::sleep(std::time::Duration::from_secs(2));
            if let Err(e) = clean(runtime.engine) {
                println!("xtask: {}: cleaning failed: {e}", runtime.engine);
            }
        }
        let verdict = if !ok || counts.failed > 0 {
            if failed.is_empty() { "FAILED".to_owned() } else { format!("FAILED: {}", failed.join(", ")) }
        } else if counts.passed == 0 {
            "RAN NO TEST".to_owned()
        } else {
            "ok".to_owned()
        };
        let bad = verdict != "ok";
        rows.push(Row { runtime: runtime.name, counts, verdict, bad, seconds: started.elapsed().as_secs() });
    }
    // Rootless Podman, with the binaries built above: most of the suite, as an ordinary user.
    if ready.iter().any(|(r, _)| r.name == "podman") && rows.iter().any(|r| r.runtime == "podman" && !r.bad) {
        println!("\nxtask: running the test suite as an ordinary user against rootless Podman");
        let started = std::time::Instant::now();
        let (counts, verdict, bad) = match rootless::row(&binaries, &full_env) {
            Ok((ok, counts, skipped)) if ok && counts.failed == 0 && counts.passed > 0 => {
                (counts, format!("ok ({skipped} binaries need cargo)"), false)
            }
            Ok((_, counts, _)) => (counts, "FAILED".to_owned(), true),
            Err(e) => {
                println!("xtask: rootless: {e}");
                (Counts::default(), format!("FAILED: {e}"), true)
            }
        };
        rows.push(Row { runtime: rootless::ROW, counts, verdict, bad, seconds: started.elapsed().as_secs() });
    } else if ready.iter().any(|(r, _)| r.name == "podman") {
        // Said in the table, not left out of it: the run fails already, and this row is why too.
        let verdict = "NOT RUN: it runs only after the podman row passes".to_owned();
        rows.push(Row { runtime: rootless::ROW, counts: Counts::default(), verdict, bad: true, seconds: 0 });
    }
    println!("\n{:<18} {:>7} {:>7} {:>8} {:>8}  verdict", "runtime", "passed", "failed", "ignored", "seconds");
    let mut total = Counts::default();
    for row in &rows {
        let c = row.counts;
        println!(
            "{:<18} {:>7} {:>7} {:>8} {:>8}  {}",
            row.runtime, c.passed, c.failed, c.ignored, row.seconds, row.verdict
        );
        total.passed += c.passed;
        total.failed += c.failed;
        total.ignored += c.ignored;
    }
    println!(
        "xtask: the matrix took {} s{}{}",
        started_all.elapsed().as_secs(),
        if options.full { ", long forms included" } else { "" },
        if options.under_load { ", under load" } else { "" }
    );
    let bad: Vec<&str> = rows.iter().filter(|r| r.bad).map(|r| r.runtime).collect();
    println!("integration: {} passed, {} failed", total.passed, total.failed);
    if bad.is_empty() { Ok(()) } else { Err(format!("the test suite failed on: {}", bad.join(", "))) }
}

/// The machine's part of what the tests need (`xtask/setup.sh`): `docker` for the demo, `all`
/// for the tests. It installs or starts only what is missing, and says what it does.
fn setup(mode: &str) -> Result {
    run(Command::new("bash").arg(root().join("xtask/setup.sh")).arg(mode))
}

/// The services image alone: all the demonstration needs.
fn services_image(engine: &str) -> Result {
    build_image(
        engine,
        SERVICES_IMAGE,
        "FROM scratch\nCOPY test-services /test-services\nENTRYPOINT [\"/test-services\"]\nCMD [\"sleep\"]\n",
        &[("test-services", services_binary()?)],
    )
}

/// The README's first command: on a machine with Docker (installed and started if missing),
/// the resolver-service example suite, printing what the library does.
fn demo() -> Result {
    setup("docker")?;
    services_image("docker")?;
    run(cargo().env("FIXTURE_LOG", "info").args([
        "test",
        "-p",
        "fixtures",
        "--test",
        "resolver_service",
        "--",
        "--nocapture",
        "--test-threads=2",
    ]))
}

/// The benchmarks (`bench/`): the engine floor, testcontainers-rs and fixtures side by side,
/// on one engine (`--runtime docker|podman`, default docker). On Podman the floor and
/// testcontainers-rs speak its Docker-compatible API (both are bollard), fixtures its libpod API.
fn bench(args: &[String]) -> Result {
    let (engine, rest): (&str, Vec<String>) = match args.iter().position(|a| a == "--runtime") {
        Some(i) => {
            let engine = args.get(i + 1).ok_or("--runtime needs docker or podman")?.as_str();
            let rest = args.iter().enumerate().filter(|(j, _)| *j != i && *j != i + 1).map(|(_, a)| a.clone());
            (engine, rest.collect())
        }
        None => ("docker", args.to_vec()),
    };
    let mut cmd = cargo();
    match engine {
        "docker" => {}
        "podman" => {
            let socket = ensure_podman_service()?;
            cmd.env("DOCKER_HOST", format!("unix://{}", socket.display()));
        }
        other => return Err(format!("unknown runtime `{other}` for the bench; expected docker or podman")),
    }
    images(engine)?;
    cmd.env("FIXTURE_RUNTIME", engine).env("FIXTURES_BENCH_ENGINE", engine);
    run(cmd.args(["run", "--release", "-p", "fixtures-bench", "--"]).args(rest))?;
    clean(engine)
}

/// Removes containers, networks and volumes that carry our `fixtures.managed` label.
fn clean(engine: &str) -> Result {
    let filter = "label=fixtures.managed";
    let list = |args: &[&str]| -> Vec<String> {
        output(Command::new(engine).args(args)).map(|s| s.lines().map(str::to_owned).collect()).unwrap_or_default()
    };
    let ours = || {
        (
            list(&["ps", "-aq", "--filter", filter]),
            list(&["network", "ls", "-q", "--filter", filter]),
            list(&["volume", "ls", "-q", "--filter", filter]),
        )
    };
    let (containers, networks, volumes) = ours();
    println!(
        "xtask: {engine}: removing {} containers, {} networks, {} volumes of ours",
        containers.len(),
        networks.len(),
        volumes.len()
    );
    // What was left, by name and run: a test that leaves something is a bug to find.
    if !containers.is_empty() {
        let format = "  {{.Names}} ({{.Status}}) run {{.Label \"fixtures.run\"}} node {{.Label \"fixtures.node\"}}";
        for line in list(&["ps", "-a", "--filter", filter, "--format", format]) {
            println!("xtask: {engine}: left: {}", line.trim());
        }
    }
    // Something else (a test's watcher) may remove the same objects meanwhile: a failed
    // removal only counts if the object is still there afterwards.
    let quiet = |cmd: &mut Command| {
        let _ = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status();
    };
    for _ in 0..2 {
        let (containers, networks, volumes) = ours();
        if !containers.is_empty() {
            let mut rm = Command::new(engine);
            rm.args(["rm", "-f", "-v"]);
            if engine == "podman" {
                // Kill at once: Podman's `rm -f` otherwise waits out the stop timeout first.
                rm.args(["-t", "0"]);
            }
            quiet(rm.args(&containers));
        }
        if !networks.is_empty() {
            quiet(Command::new(engine).args(["network", "rm"]).args(&networks));
        }
        if !volumes.is_empty() {
            quiet(Command::new(engine).args(["volume", "rm", "-f"]).args(&volumes));
        }
    }
    let (c, n, v) = ours();
    if c.len() + n.len() + v.len() > 0 {
        return Err(format!(
            "{engine}: could not remove {} containers, {} networks, {} volumes of ours",
            c.len(),
            n.len(),
            v.len()
        ));
    }
    Ok(())
}

/// The user crates `build-times` compiles: a name, the dev-dependency lines, the test file.
fn build_time_crates() -> Vec<(&'static str, String, &'static str)> {
    let root = root();
    let fixtures = |features: &str| {
        format!(
            "fixtures = {{ path = {:?}{features} }}\ntokio = {{ version = \"1\", features = [\"net\"] }}\n",
            root.display()
        )
    };
    const FIXTURES_TEST: &str = r#"
use fixtures::{Container, Env, Result, container, image};

fn env() -> Env {
    Env::new()
        .with("services", image("fixtures-test/services:latest"))
        .with("web", container().image("{services.id}").command(["http"]).port("8080/tcp"))
}

#[fixtures::test(env = env())]
async fn web_answers(web: &Container) -> Result<()> {
    tokio::net::TcpStream::connect(web.addr("8080/tcp")?).await?;
    Ok(())
}
"#;
    const TESTCONTAINERS_TEST: &str = r#"
use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

#[tokio::test]
async fn web_answers() {
    let web = GenericImage::new("fixtures-test/services", "latest")
        .with_exposed_port(ContainerPort::Tcp(8080))
        .with_wait_for(WaitFor::message_on_stdout("listening"))
        .with_cmd(["http"])
        .start()
        .await
        .expect("started");
    let port = web.get_host_port_ipv4(ContainerPort::Tcp(8080)).await.expect("port");
    tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connects");
}
"#;
    vec![
        ("fixtures (default: docker, buildkit, harness)", fixtures(""), FIXTURES_TEST),
        ("fixtures docker + harness (no BuildKit)", fixtures(", default-features = false, features = [\"docker\", \"harness\"]"), FIXTURES_TEST),
        ("fixtures docker alone (lean)", fixtures(", default-features = false, features = [\"docker\"]"), FIXTURES_TEST),
        ("fixtures podman + harness", fixtures(", default-features = false, features = [\"podman\", \"harness\"]"), FIXTURES_TEST),
        (
            "testcontainers-rs 0.28 (default features)",
            "testcontainers = \"0.28\"\ntokio = { version = \"1\", features = [\"macros\", \"rt-multi-thread\", \"net\"] }\n".to_owned(),
            TESTCONTAINERS_TEST,
        ),
    ]
}

/// Cold debug builds of a minimal user test crate per feature set, side by side.
fn build_times() -> Result {
    let base = std::env::temp_dir().join("fixtures-build-times");
    let _ = std::fs::remove_dir_all(&base);
    let mut rows = Vec::new();
    for (i, (name, deps, test)) in build_time_crates().into_iter().enumerate() {
        let dir = base.join(format!("crate-{i}"));
        let write = |path: &Path, text: &str| -> Result {
            std::fs::create_dir_all(path.parent().expect("a folder")).map_err(|e| e.to_string())?;
            std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))
        };
        let manifest = format!(
            "[package]\nname = \"user-crate-{i}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n[dev-dependencies]\n{deps}\n[workspace]\n"
        );
        write(&dir.join("Cargo.toml"), &manifest)?;
        write(&dir.join("src/lib.rs"), "")?;
        write(&dir.join("tests/smoke.rs"), test)?;
        // The versions this repository builds with, where the crates are the same.
        std::fs::copy(root().join("Cargo.lock"), dir.join("Cargo.lock")).map_err(|e| e.to_string())?;
        run(cargo().current_dir(&dir).args(["fetch", "--quiet"]))?;
        let target = dir.join("target");
        let started = std::time::Instant::now();
        run(cargo().current_dir(&dir).env("CARGO_TARGET_DIR", &target).args([
            "build",
            "--tests",
            "--offline",
            "--quiet",
        ]))?;
        let seconds = started.elapsed().as_secs_f64();
        let crates = std::fs::read_dir(target.join("debug/deps"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().extension().is_some_and(|x| x == "rlib" || x == "so"))
                    .count()
            })
            .unwrap_or(0);
        println!("xtask: {name}: {seconds:.1} s, {crates} crates");
        rows.push((name, seconds, crates));
        let _ = std::fs::remove_dir_all(&target);
    }
    let reference = rows.last().map_or(1.0, |r| r.1);
    println!("\n| user crate | cold debug build | crates | vs testcontainers-rs |\n|---|---|---|---|");
    for (name, seconds, crates) in &rows {
        println!("| {name} | {seconds:.1} s | {crates} | {:.2}x |", seconds / reference);
    }
    Ok(())
}

/// Every published crate alone, with no default features and with each feature alone: a crate
/// must not lean on a feature that only the workspace's unification turns on.
const FEATURE_SETS: &[&str] = &[
    "-p fixtures --no-default-features",
    "-p fixtures --no-default-features --features docker",
    "-p fixtures --no-default-features --features buildkit",
    "-p fixtures --no-default-features --features podman",
    "-p fixtures --no-default-features --features harness",
    "-p fixtures --no-default-features --features compose",
    "-p fixtures --no-default-features --features tls",
    "-p fixtures --no-default-features --features podman,tls",
    "-p fixtures-compose",
    "-p fixtures-core --no-default-features",
    "-p fixtures-core",
    "-p fixtures-docker --no-default-features",
    "-p fixtures-docker",
    "-p fixtures-docker --no-default-features --features tls",
    "-p fixtures-podman",
    "-p fixtures-podman --features tls",
    "-p fixtures-engine-api",
    "-p fixtures-engine-api --features tls",
    "-p fixtures-macros",
];

/// The published crates, for the docs.
const PUBLISHED: &[&str] = &[
    "fixtures",
    "fixtures-core",
    "fixtures-compose",
    "fixtures-docker",
    "fixtures-podman",
    "fixtures-engine-api",
    "fixtures-macros",
];

/// What users build: formatted, clippy-clean with every feature set, and the docs without a
/// warning (missing docs, broken links).
fn checks() -> Result {
    println!("xtask: checks: rustfmt");
    run(cargo().args(["fmt", "--all", "--check"]))?;
    println!("xtask: checks: clippy on the workspace");
    // With the suite's features: targets that need `compose` are linted too.
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--features",
        TEST_FEATURES,
        "--quiet",
        "--",
        "-D",
        "warnings",
    ]))?;
    for set in FEATURE_SETS {
        println!("xtask: checks: clippy {set}");
        run(cargo().arg("clippy").args(set.split(" ")).args(["--lib", "--quiet", "--", "-D", "warnings"]))?;
    }
    println!("xtask: checks: clippy of fixtures-core's unit tests without the harness");
    run(cargo().args([
        "clippy",
        "-p",
        "fixtures-core",
        "--no-default-features",
        "--all-targets",
        "--quiet",
        "--",
        "-D",
        "warnings",
    ]))?;
    println!("xtask: checks: cargo doc");
    let mut doc = cargo();
    doc.env("RUSTDOCFLAGS", "-D warnings").args(["doc", "--no-deps", "--quiet"]);
    for p in PUBLISHED {
        doc.args(["-p", p]);
    }
    run(&mut doc)
}

/// The README's test command: the machine set up (`xtask/setup.sh all`), the checks, then the
/// whole suite, doc examples included, on every runtime (`--full`: the long forms too;
/// `--under-load`: with every core kept busy beside it, from the checks on).
fn test_all(args: &[String]) -> Result {
    let options = options(args)?;
    setup("all")?;
    let started = std::time::Instant::now();
    let _load = if options.under_load { Some(Load::start()?) } else { None };
    checks()?;
    println!("xtask: checks took {} s", started.elapsed().as_secs());
    run_matrix(&options)
}
