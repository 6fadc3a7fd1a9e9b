//! What Podman answers differently from Docker through either of its APIs (libpod's own
//! and the Docker-compatible one), smoothed the same way by both backends that reach it.
//!
//! - The default network is called `podman`; Docker's is `bridge`.
//! - Image names without a registry are stored as `localhost/name:tag`, and names from
//!   Docker Hub keep `docker.io/`; Docker shows both as the user wrote them.
//! - Health checks are scheduled with systemd timers, so where there is no systemd
//!   (containers, CI machines) they never run; Docker runs them itself.
//! - libpod 4.3 counts a log `tail` in records, not lines, and conmon stores a line that
//!   came in two writes as two records.
//! - Failures come as 500s more often, told apart by their text ([`crate::status`] reads
//!   them), and some are races worth asking again (`*_retrying_*`).
//! - libpod's own API describes images, containers and networks a little differently from
//!   the Docker-compatible one: [`libpod`].
//! - A container given some process limits gets `nofile` and `nproc` it was not given at
//!   1048576, not at containers.conf's `default_ulimits` (the CLI merges those, the API does
//!   not), which hosts with lower limits refuse when the container starts:
//!   [`with_default_rlimits`].

pub mod libpod;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;

use fixtures_core::runtime::LogChunk;

/// `spec` with the limits of containers.conf's `default_ulimits` that it does not set itself,
/// when it sets some: `podman run --ulimit` merges them so, the API does not. Unchanged when it
/// sets no limit (Podman applies its defaults then) or no containers.conf names any.
pub fn with_default_rlimits(
    spec: &fixtures_core::spec::ContainerSpec,
) -> std::borrow::Cow<'_, fixtures_core::spec::ContainerSpec> {
    let limits = &spec.resources.ulimits;
    if limits.is_empty() {
        return std::borrow::Cow::Borrowed(spec);
    }
    let missing: Vec<fixtures_core::spec::Ulimit> = default_ulimits()
        .into_iter()
        .filter(|d| !limits.iter().any(|u| u.name.eq_ignore_ascii_case(&d.name)))
        .collect();
    if missing.is_empty() {
        return std::borrow::Cow::Borrowed(spec);
    }
    let mut spec = spec.clone();
    spec.resources.ulimits.extend(missing);
    std::borrow::Cow::Owned(spec)
}

/// `default_ulimits` of this machine's containers.conf files (the user's over `/etc` over
/// `/usr/share`, as Podman reads them).
fn default_ulimits() -> Vec<fixtures_core::spec::Ulimit> {
    let mut files = vec![
        std::path::PathBuf::from("/usr/share/containers/containers.conf"),
        std::path::PathBuf::from("/etc/containers/containers.conf"),
    ];
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".config")));
    files.extend(config.map(|c| c.join("containers/containers.conf")));
    let mut found = Vec::new();
    for file in files {
        if let Some(list) = std::fs::read_to_string(file).ok().and_then(|text| parse_default_ulimits(&text)) {
            found = list;
        }
    }
    found
}

/// The `default_ulimits = ["nofile=20000:20000", ...]` entries of a containers.conf, if set.
pub fn parse_default_ulimits(text: &str) -> Option<Vec<fixtures_core::spec::Ulimit>> {
    let at = text
        .split_inclusive('\n')
        .scan(0, |offset, line| {
            let start = *offset;
            *offset += line.len();
            Some((start, line))
        })
        .find(|(_, line)| line.trim_start().starts_with("default_ulimits"))?
        .0;
    let rest = &text[at..];
    let list = &rest[rest.find('[')? + 1..];
    let list = &list[..list.find(']')?];
    let entries = list.split(['"', '\'']).skip(1).step_by(2);
    Some(
        entries
            .filter_map(|entry| {
                let (name, values) = entry.split_once('=')?;
                let (soft, hard) = values.split_once(':').unwrap_or((values, values));
                Some(fixtures_core::spec::Ulimit {
                    name: name.trim().to_owned(),
                    soft: soft.trim().parse().ok()?,
                    hard: hard.trim().parse().ok()?,
                })
            })
            .collect(),
    )
}

/// Podman's default network (`default_network` in containers.conf).
pub const DEFAULT_NETWORK: &str = "podman";

/// Docker's name for the default network.
pub const DOCKER_DEFAULT_NETWORK: &str = "bridge";

/// A network name as Podman knows it: Docker's `bridge` is Podman's default network.
pub fn network_for_podman(name: &str) -> &str {
    if name == DOCKER_DEFAULT_NETWORK { DEFAULT_NETWORK } else { name }
}

/// A network name as Docker would say it: Podman's default network is `bridge`.
pub fn network_for_docker(name: &str) -> &str {
    if name == DEFAULT_NETWORK { DOCKER_DEFAULT_NETWORK } else { name }
}

/// Renames the default network in a container inspect document (`NetworkSettings.Networks`).
pub fn rename_default_network(doc: &mut Value) {
    if let Some(networks) = doc.pointer_mut("/NetworkSettings/Networks").and_then(Value::as_object_mut) {
        if !networks.contains_key(DOCKER_DEFAULT_NETWORK) {
            if let Some(default) = networks.remove(DEFAULT_NETWORK) {
                networks.insert(DOCKER_DEFAULT_NETWORK.to_owned(), default);
            }
        }
    }
}

/// An image name as the user wrote it: `localhost/app:1` and `docker.io/app:1` are `app:1`,
/// `docker.io/library/busybox:1` is `busybox:1`. Other registries are kept.
pub fn short_tag(name: &str) -> &str {
    ["localhost/", "docker.io/library/", "docker.io/"].iter().find_map(|p| name.strip_prefix(p)).unwrap_or(name)
}

/// libpod's answers to failures are mostly 500s (so are some of the Docker-compatible API's);
/// the text (a Go sentinel error's) says what happened.
pub const NOT_FOUND_CAUSES: &[&str] = &[
    "no such container",
    "no such image",
    "image not known",
    "network not found",
    "no such volume",
    "no such object",
    "no such exec session",
    "no such pod",
];

/// libpod's texts for a conflict (see [`NOT_FOUND_CAUSES`]).
pub const CONFLICT_CAUSES: &[&str] = &[
    "is already in use",
    "container already exists",
    "container state improper",
    "volume already exists",
    "network already exists",
    "volume is being used",
    "network is being used",
    "image is in use by a container",
    "image is being used",
];

/// Whether an inspect failed because the container's process exited while Podman read it
/// (`read /proc/<pid>/cgroup: no such process`, a 500): the container is there; asking again
/// a moment later answers.
pub fn exit_race(message: &str) -> bool {
    message.contains("no such process")
}

/// An inspect on Podman, again (three times at most, 10 ms apart) when it lost [`exit_race`].
pub async fn inspect_retrying_exit_races<T, F, Fut>(inspect: F) -> fixtures_core::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = fixtures_core::Result<T>>,
{
    retrying_races(3, exit_race, std::time::Duration::from_millis(10), "an inspect raced with the exit", inspect).await
}

/// Whether a network creation failed because Podman listed the host's interfaces (to pick a
/// free subnet) while another network's removal deleted its bridge: nothing was created.
pub fn network_race(message: &str) -> bool {
    message.contains("no such network interface")
}

/// A network creation on Podman, again (five times at most, 50 ms apart) when it lost
/// [`network_race`].
pub async fn create_network_retrying_races<T, F, Fut>(create: F) -> fixtures_core::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = fixtures_core::Result<T>>,
{
    retrying_races(
        5,
        network_race,
        std::time::Duration::from_millis(50),
        "a network creation raced with a removal",
        create,
    )
    .await
}

/// Runs `call` again, up to `times` more times, `pause` apart, while its error is a race that
/// `lost` recognises by its message.
async fn retrying_races<T, F, Fut>(
    times: usize,
    lost: fn(&str) -> bool,
    pause: std::time::Duration,
    what: &str,
    mut call: F,
) -> fixtures_core::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = fixtures_core::Result<T>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Err(e) if attempt < times && lost(e.message()) => {
                attempt += 1;
                tracing::info!("{what} on Podman; trying again: {}", e.message());
                tokio::time::sleep(pause).await;
            }
            other => return other,
        }
    }
}

/// Whether a build failed because Podman's storage lost an image it was looking at for its
/// cache (removed meanwhile by another client): a race, not the build's fault.
pub fn storage_race(message: &str) -> bool {
    message.contains("layer not known")
}

/// Runs a build on Podman, again (twice at most) when it lost [`storage_race`]: the image it
/// read for its cache was removed meanwhile by another test's clean-up.
pub async fn build_retrying_storage_races<F, Fut>(build: F) -> fixtures_core::Result<String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = fixtures_core::Result<String>>,
{
    retrying_races(2, storage_race, std::time::Duration::ZERO, "a build raced with an image removal", build).await
}

/// When health checks are due, for an engine that does not run them itself.
///
/// A backend asks [`HealthSchedule::due`] whenever it inspects a container and runs the
/// container's check when told to; the first check comes one interval after the container
/// was first seen (Docker too waits an interval after the start).
#[derive(Debug, Default)]
pub struct HealthSchedule {
    last_run: Mutex<HashMap<String, Instant>>,
}

impl HealthSchedule {
    /// Whether the running container described by the inspect document `doc` has a
    /// health check that is due now, marking it run if so.
    pub fn due(&self, doc: &Value) -> bool {
        let running = doc.pointer("/State/Status").and_then(Value::as_str) == Some("running");
        let Some(check) = doc.pointer("/Config/Healthcheck").filter(|_| running) else { return false };
        let test: Vec<&str> = check
            .get("Test")
            .and_then(Value::as_array)
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if test.is_empty() || test[0] == "NONE" {
            return false;
        }
        let interval = check
            .get("Interval")
            .and_then(Value::as_u64)
            .filter(|n| *n > 0)
            .map_or(Duration::from_secs(30), Duration::from_nanos);
        let id = doc.get("Id").and_then(Value::as_str).unwrap_or_default().to_owned();
        let now = Instant::now();
        let mut runs = self.last_run.lock().unwrap_or_else(|p| p.into_inner());
        match runs.get(&id) {
            Some(last) if now.duration_since(*last) >= interval => {
                runs.insert(id, now);
                true
            }
            Some(_) => false,
            None => {
                runs.insert(id, now);
                false
            }
        }
    }

    /// Forgets a removed container (`id` may be a prefix of the full id).
    pub fn forget(&self, id: &str) {
        self.last_run.lock().unwrap_or_else(|p| p.into_inner()).retain(|known, _| !known.starts_with(id));
    }
}

/// Joins log records of one stream that end mid-line with the records that finish the line.
pub fn join_lines(chunks: Vec<LogChunk>) -> Vec<LogChunk> {
    let mut out: Vec<LogChunk> = Vec::with_capacity(chunks.len());
    for chunk in chunks {
        match out.last_mut() {
            Some(last) if last.stream == chunk.stream && !last.bytes.ends_with(b"\n") => {
                let mut joined = Vec::with_capacity(last.bytes.len() + chunk.bytes.len());
                joined.extend_from_slice(&last.bytes);
                joined.extend_from_slice(&chunk.bytes);
                last.bytes = Bytes::from(joined);
            }
            _ => out.push(chunk),
        }
    }
    out
}

/// The chunks holding the last `n` lines (all of them when `n` is `None`); an unfinished
/// last line counts as a line.
pub fn last_lines(chunks: Vec<LogChunk>, n: Option<usize>) -> Vec<LogChunk> {
    let Some(n) = n else { return chunks };
    if n == 0 {
        return Vec::new();
    }
    let ends_with_newline = chunks.last().is_some_and(|c| c.bytes.ends_with(b"\n"));
    // The newline before the wanted lines, counted from the end.
    let mut newlines_to_skip = if ends_with_newline { n + 1 } else { n };
    for (i, chunk) in chunks.iter().enumerate().rev() {
        for (j, byte) in chunk.bytes.iter().enumerate().rev() {
            if *byte == b'\n' {
                newlines_to_skip -= 1;
                if newlines_to_skip == 0 {
                    let mut out = Vec::with_capacity(chunks.len() - i);
                    let rest = chunk.bytes.slice(j + 1..);
                    if !rest.is_empty() {
                        out.push(LogChunk { stream: chunk.stream, bytes: rest });
                    }
                    out.extend(chunks[i + 1..].iter().cloned());
                    return out;
                }
            }
        }
    }
    chunks
}

#[cfg(test)]
mod tests {

    #[test]
    fn default_ulimits_are_read_from_containers_conf() {
        let conf = "[containers]\n# a comment\ndefault_ulimits = [\n  \"nofile=20000:20000\",\n  'nproc=32768',\n]\n[engine]\n";
        let limits = parse_default_ulimits(conf).expect("set");
        let got: Vec<(String, i64, i64)> = limits.into_iter().map(|u| (u.name, u.soft, u.hard)).collect();
        assert_eq!(got, [("nofile".to_owned(), 20000, 20000), ("nproc".to_owned(), 32768, 32768)]);
        assert!(parse_default_ulimits("[containers]\nulimits = 1\n").is_none());
        let crlf = "[containers]\r\n# é\r\n# é\r\n# é\r\ndefault_ulimits = [\"nofile=5:6\"]\r\n";
        assert_eq!(parse_default_ulimits(crlf).map(|l| l.len()), Some(1), "CRLF lines");
    }

    use super::*;
    use fixtures_core::runtime::Stream;
    use serde_json::json;

    #[tokio::test]
    async fn a_build_that_lost_a_storage_race_runs_again_twice_at_most() {
        use fixtures_core::{Error, ErrorKind};
        let race = || Error::new(ErrorKind::Build, "getting top layer info: layer not known");
        let attempts = std::sync::atomic::AtomicUsize::new(0);
        let outcomes = |failures: usize, error: fn() -> Error| {
            attempts.store(0, std::sync::atomic::Ordering::SeqCst);
            let attempts = &attempts;
            build_retrying_storage_races(move || {
                let n = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move { if n < failures { Err(error()) } else { Ok("sha256:built".to_owned()) } }
            })
        };
        assert_eq!(outcomes(2, race).await.expect("the third try builds"), "sha256:built");
        assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert!(storage_race(outcomes(3, race).await.expect_err("three races").message()));
        assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 3, "never a fourth try");
        let broken = || Error::new(ErrorKind::Build, "COPY failed");
        assert_eq!(outcomes(1, broken).await.expect_err("a real failure").message(), "COPY failed");
        assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 1, "a real failure is not built again");
    }

    #[tokio::test]
    async fn an_inspect_that_lost_an_exit_race_is_asked_again() {
        use fixtures_core::{Error, ErrorKind};
        let attempts = std::sync::atomic::AtomicUsize::new(0);
        let race =
            || Error::new(ErrorKind::Engine, "the engine answered 500: read /proc/10242/cgroup: no such process");
        let answer = inspect_retrying_exit_races(|| {
            let n = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { if n < 2 { Err(race()) } else { Ok("exited") } }
        })
        .await;
        assert_eq!(answer.expect("the third try answers"), "exited");
        let gone = inspect_retrying_exit_races(|| async {
            Err::<(), _>(Error::new(ErrorKind::NotFound, "no such container"))
        });
        assert_eq!(gone.await.expect_err("not a race").kind(), ErrorKind::NotFound);
    }

    #[test]
    fn names_read_as_docker_says_them() {
        assert_eq!(short_tag("localhost/fixtures-it/build:v1"), "fixtures-it/build:v1");
        assert_eq!(short_tag("docker.io/fixtures-it/build:v1"), "fixtures-it/build:v1");
        assert_eq!(short_tag("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(short_tag("127.0.0.1:5000/app:1"), "127.0.0.1:5000/app:1");
        assert!(storage_race(
            "checking if cached image exists from a previous build: getting top layer info: layer not known"
        ));
        assert!(!storage_race("COPY failed: file not found in build context"));
        assert_eq!((network_for_podman("bridge"), network_for_podman("fx-net")), ("podman", "fx-net"));
        assert_eq!((network_for_docker("podman"), network_for_docker("fx-net")), ("bridge", "fx-net"));
        let mut doc = json!({"NetworkSettings": {"Networks": {"podman": {"IPAddress": "10.88.0.5"}, "fx": {}}}});
        rename_default_network(&mut doc);
        assert_eq!(doc["NetworkSettings"]["Networks"]["bridge"]["IPAddress"], "10.88.0.5");
        assert!(doc["NetworkSettings"]["Networks"].get("podman").is_none());
    }

    #[test]
    fn health_checks_fall_due_one_interval_apart() {
        let schedule = HealthSchedule::default();
        let doc = |status: &str, test: Value| {
            json!({"Id": "c1", "State": {"Status": status},
                   "Config": {"Healthcheck": {"Test": test, "Interval": 1_000_000u64}}})
        };
        let check = json!(["CMD", "true"]);
        assert!(!schedule.due(&doc("running", check.clone())), "not at first sight");
        std::thread::sleep(Duration::from_millis(2));
        assert!(schedule.due(&doc("running", check.clone())), "one interval later");
        assert!(!schedule.due(&doc("running", check.clone())), "not again at once");
        std::thread::sleep(Duration::from_millis(2));
        assert!(!schedule.due(&doc("exited", check.clone())), "only while running");
        assert!(!schedule.due(&doc("running", json!(["NONE"]))), "a disabled check");
        schedule.forget("c");
        assert!(!schedule.due(&doc("running", check)), "forgotten: first sight again");
    }

    #[test]
    fn log_lines_are_joined_and_tailed() {
        let chunk = |stream, text: &str| LogChunk { stream, bytes: Bytes::from(text.to_owned()) };
        let text = |chunks: &[LogChunk]| {
            chunks.iter().map(|c| String::from_utf8_lossy(&c.bytes).into_owned()).collect::<Vec<_>>()
        };
        // What conmon stored for `fatal: no config` written in two pieces, after other lines.
        let chunks = vec![
            chunk(Stream::Stdout, "out one\n"),
            chunk(Stream::Stderr, "fatal: no config"),
            chunk(Stream::Stderr, "\n"),
            chunk(Stream::Stdout, "two\nthree\n"),
        ];
        let joined = join_lines(chunks);
        assert_eq!(text(&joined), ["out one\n", "fatal: no config\n", "two\nthree\n"]);
        assert_eq!(text(&last_lines(joined.clone(), Some(1))), ["three\n"]);
        assert_eq!(text(&last_lines(joined.clone(), Some(3))), ["fatal: no config\n", "two\nthree\n"]);
        assert_eq!(text(&last_lines(joined.clone(), Some(20))), ["out one\n", "fatal: no config\n", "two\nthree\n"]);
        assert_eq!(last_lines(joined.clone(), Some(0)).len(), 0);
        assert_eq!(last_lines(joined.clone(), None).len(), 3);
        let unfinished = vec![chunk(Stream::Stdout, "a\nb\n"), chunk(Stream::Stdout, "c")];
        assert_eq!(text(&last_lines(join_lines(unfinished), Some(2))), ["b\n", "c"]);
        // Pieces of different streams are not joined.
        let apart = join_lines(vec![chunk(Stream::Stdout, "x"), chunk(Stream::Stderr, "y\n")]);
        assert_eq!(apart.len(), 2);
    }
}
