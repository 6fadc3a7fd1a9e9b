//! `cargo fixtures`: what the fixtures library left on the engines, listed and removed.
//!
//! ```text
//! cargo fixtures ls    [--runtime docker|podman|all] [--run ID] [--older-than 1h]
//! cargo fixtures clean [--runtime docker|podman|all] [--run ID] [--older-than 1h] [--dry-run]
//! ```
//!
//! Only containers, networks and volumes that carry the library's `fixtures.managed` label are
//! ever listed or removed; nothing else on the engine is touched. Each engine compiled in
//! (Docker, Podman) is asked, where it answers; its socket is found as the library finds it
//! (`DOCKER_HOST`, `CONTAINER_HOST`, `fixtures.toml`, the usual paths). With a pool of engines
//! (`engines`, `FIXTURE_ENGINES`) each engine of the pool is asked instead.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fixtures::runtime::Runtime;
use fixtures::spec::{LabelFilter, Labels};
use fixtures::{backend, labels};

const USAGE: &str = "\
usage: cargo fixtures ls    [--runtime docker|podman|all] [--run ID] [--older-than AGE]
       cargo fixtures clean [--runtime docker|podman|all] [--run ID] [--older-than AGE] [--dry-run]
                            [--include-alive]

Lists or removes the containers, networks and volumes that the fixtures library made (those
labelled fixtures.managed), on every engine that answers. Nothing else is touched.

  --runtime R       docker, podman or all (default all)
  --run ID          only what the run ID made (its fixtures.run label)
  --older-than AGE  only what was made longer ago than AGE: 90s, 30m, 1h, 2d
  --dry-run         (clean) say what would be removed, remove nothing
  --include-alive   (clean) also remove what a live owner holds: a test process still running,
                    a run in progress, reuse-mode fixtures (left alone otherwise)";

/// What to look at.
#[derive(Debug, Default)]
struct Options {
    clean: bool,
    runtime: Option<String>,
    run: Option<String>,
    older_than: Option<Duration>,
    dry_run: bool,
    include_alive: bool,
}

fn age(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not an age: a number and s, m, h or d (90s, 30m, 1h, 2d)");
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(seconds).map(Duration::from_secs).ok_or_else(bad)
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut args = args.iter().map(String::as_str);
    let clean = match args.next() {
        Some("ls") => false,
        Some("clean") => true,
        Some(other) => return Err(format!("unknown command `{other}`")),
        None => return Err("a command is needed: ls or clean".to_owned()),
    };
    let mut o = Options { clean, ..Options::default() };
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().map(str::to_owned).ok_or_else(|| format!("{flag} needs a value"));
        match arg {
            "--runtime" => {
                let r = value(arg)?;
                if !matches!(r.as_str(), "docker" | "podman" | "all") {
                    return Err(format!("--runtime `{r}`: docker, podman or all"));
                }
                o.runtime = Some(r).filter(|r| r != "all");
            }
            "--run" => o.run = Some(value(arg)?),
            "--older-than" => o.older_than = Some(age(&value(arg)?)?),
            "--dry-run" if o.clean => o.dry_run = true,
            "--include-alive" if o.clean => o.include_alive = true,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(o)
}

/// One object of ours on an engine.
struct Found {
    kind: &'static str,
    id: String,
    name: String,
    labels: Labels,
}

impl Found {
    fn label(&self, key: &str) -> &str {
        self.labels.get(key).map_or("-", String::as_str)
    }

    /// Seconds since it was made, when its label says.
    fn age(&self, now: u64) -> Option<u64> {
        self.labels.get(labels::CREATED)?.parse::<u64>().ok().map(|t| now.saturating_sub(t))
    }
}

fn human(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

async fn ours(rt: &Arc<dyn Runtime>, filter: &LabelFilter) -> fixtures::Result<Vec<Found>> {
    let mut found: Vec<Found> = Vec::new();
    for c in rt.list_containers(filter).await? {
        let name = c.names.first().map(|n| n.trim_start_matches('/').to_owned()).unwrap_or_default();
        found.push(Found { kind: "container", id: c.id, name, labels: c.labels });
    }
    for n in rt.list_networks(filter).await? {
        found.push(Found { kind: "network", id: n.id, name: n.name, labels: n.labels });
    }
    for v in rt.list_volumes(filter).await? {
        found.push(Found { kind: "volume", id: v.name.clone(), name: v.name, labels: v.labels });
    }
    Ok(found)
}

async fn remove(rt: &Arc<dyn Runtime>, f: &Found) -> fixtures::Result<()> {
    let removed = match f.kind {
        "container" => rt.remove_container(&f.id, true).await,
        "network" => rt.remove_network(&f.id).await,
        _ => rt.remove_volume(&f.id, true).await,
    };
    let Err(e) = removed else { return Ok(()) };
    // Another process may be removing it at the same moment (a test run's sweep of objects
    // whose owner is gone; the engine then answers "removal already in progress"): what
    // counts is that it goes, whoever removes it.
    for _ in 0..50 {
        if !exists(rt, f).await {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(e)
}

/// Whether the engine still has `f`.
async fn exists(rt: &Arc<dyn Runtime>, f: &Found) -> bool {
    let gone = |e: fixtures::Error| e.kind() == fixtures::ErrorKind::NotFound;
    match f.kind {
        "container" => !rt.inspect_container(&f.id).await.is_err_and(gone),
        "network" => !rt.inspect_network(&f.id).await.is_err_and(gone),
        _ => !rt.inspect_volume(&f.id).await.is_err_and(gone),
    }
}

async fn main_async(o: Options) -> Result<(), String> {
    let mut filter = LabelFilter::has(labels::MANAGED);
    if let Some(run) = &o.run {
        filter = filter.and_eq(labels::RUN, run.clone());
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut reached = 0;
    let mut failures = 0;
    // Every backend as configured, or every engine of a pool (`engines`, FIXTURE_ENGINES).
    let backends = backend::compiled_in();
    let pool = backend::pool::engines(backends.first().map_or("docker", |b| b.name())).map_err(|e| e.to_string())?;
    let targets: Vec<(backend::Backend, Option<String>)> = if pool.is_empty() {
        backends.iter().map(|b| (*b, None)).collect()
    } else {
        let mut targets = Vec::new();
        for (runtime, host) in pool {
            let b = backends
                .iter()
                .find(|b| b.name() == runtime)
                .ok_or_else(|| format!("{runtime}={host}: runtime `{runtime}` is not compiled in"))?;
            targets.push((*b, Some(host)));
        }
        targets
    };
    for (b, host) in &targets {
        if o.runtime.as_deref().is_some_and(|r| r != b.name()) {
            continue;
        }
        let name = match host {
            Some(host) => format!("{}={host}", b.name()),
            None => b.name().to_owned(),
        };
        let connected = match host {
            Some(host) => b.connect_to(host).await,
            None => b.connect().await,
        };
        let rt = match connected {
            Ok(rt) => rt,
            Err(e) if o.runtime.is_some() => return Err(format!("{name}: {}", e.message())),
            Err(_) => {
                println!("{name}: not reachable, skipped");
                continue;
            }
        };
        reached += 1;
        let mut found = match ours(&rt, &filter).await {
            Ok(found) => found,
            Err(e) => {
                failures += 1;
                println!("{name}: cannot list: {}", e.message());
                continue;
            }
        };
        let undated = found.iter().filter(|f| f.age(now).is_none()).count();
        if let Some(min) = o.older_than {
            found.retain(|f| f.age(now).is_some_and(|a| a >= min.as_secs()));
        }
        println!("{name}: {} object{} of ours", found.len(), if found.len() == 1 { "" } else { "s" });
        if !found.is_empty() {
            println!(
                "  {:<9} {:<40} {:<18} {:<9} {:<18} {:>5}  owner",
                "kind", "name", "fixture", "scope", "run", "age"
            );
        }
        for f in &found {
            let age = f.age(now).map_or_else(|| "?".to_owned(), human);
            let owner = f.label(labels::OWNER);
            let state = if fixtures::cleanup::owner_is_alive(owner) { "alive" } else { "gone" };
            println!(
                "  {:<9} {:<40} {:<18} {:<9} {:<18} {:>5}  {owner} ({state})",
                f.kind,
                f.name,
                f.label(labels::NODE),
                f.label(labels::SCOPE),
                f.label(labels::RUN),
                age
            );
        }
        if o.older_than.is_some() && undated > 0 {
            println!("  ({undated} made by an older version of the library carry no creation time and are left out)");
        }
        if !o.clean || found.is_empty() {
            continue;
        }
        let alive = |f: &Found| fixtures::cleanup::owner_is_alive(f.label(labels::OWNER));
        if !o.include_alive {
            let held = found.iter().filter(|f| alive(f)).count();
            found.retain(|f| !alive(f));
            if held > 0 {
                println!("  {held} held by a live owner left alone (--include-alive removes them too)");
            }
        }
        if o.dry_run {
            println!("  dry run: nothing removed");
            continue;
        }
        // Containers first: a network or volume in use cannot go.
        let mut removed = [0usize; 3];
        for (i, kind) in ["container", "network", "volume"].iter().enumerate() {
            for f in found.iter().filter(|f| f.kind == *kind) {
                match remove(&rt, f).await {
                    Ok(()) => removed[i] += 1,
                    Err(e) if e.kind() == fixtures::ErrorKind::NotFound => removed[i] += 1,
                    Err(e) => {
                        failures += 1;
                        println!("  could not remove {} {}: {}", f.kind, f.name, e.message());
                    }
                }
            }
        }
        println!("{name}: removed {} container(s), {} network(s), {} volume(s)", removed[0], removed[1], removed[2]);
    }
    if reached == 0 {
        return Err("no engine answered (is Docker running? is the Podman service started?)".to_owned());
    }
    if failures > 0 {
        return Err(format!("{failures} failure(s): see above"));
    }
    Ok(())
}

fn main() -> ExitCode {
    // As a cargo subcommand the first argument is `fixtures`.
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "fixtures") {
        args.remove(0);
    }
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cargo fixtures: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cargo fixtures: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main_async(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cargo fixtures: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn arguments() {
        let o = parse(&args("clean --runtime podman --run abc --older-than 2h --dry-run")).expect("valid");
        assert!(o.clean && o.dry_run);
        assert_eq!((o.runtime.as_deref(), o.run.as_deref()), (Some("podman"), Some("abc")));
        assert_eq!(o.older_than, Some(Duration::from_secs(7200)));
        assert_eq!(parse(&args("ls --runtime all")).expect("valid").runtime, None);
        assert_eq!(parse(&args("ls --dry-run")).err().as_deref(), Some("unknown argument `--dry-run`"));
        assert_eq!(parse(&args("rm")).err().as_deref(), Some("unknown command `rm`"));
        assert!(parse(&args("ls --older-than soon")).unwrap_err().contains("is not an age"));
        assert!(parse(&args("ls --runtime lxc")).is_err());
        assert!(parse(&args("clean --older-than 213503982334602d")).unwrap_err().contains("is not an age"));
        assert!(parse(&args("clean --include-alive")).expect("valid").include_alive);
    }
}
