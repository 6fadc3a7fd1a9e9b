//! Nothing leaks, however the test process ends.
//!
//! - Every object carries `fixtures.owner=<host>:<pid>:<start time>` of the process that
//!   made it (or `run:<run id>` for session objects shared by a whole run), and
//!   `fixtures.run=<run id>`.
//! - Normal end, failure, panic: ledgers (see `env::ledger`) remove what each test made;
//!   an `atexit` hook removes module and session objects.
//! - Ctrl-C, SIGTERM: a signal handler removes everything this process owns, then exits.
//! - SIGKILL, a crash: a watcher process, started from the test binary itself
//!   (`/proc/self/exe`, caught before `main` by the backend crate's hook), holds a pipe
//!   to the test process; when the pipe closes it removes what that process owned.
//! - And if even the watcher was killed: the next run sweeps objects whose owner
//!   process is gone (on this host only; objects of other hosts are left alone).
//! - A run shared by several processes (cargo-nextest: `NEXTEST_RUN_ID`) shares its
//!   session objects. Each process holds a shared `flock` on the run's lock file for its
//!   whole life; a watcher whose process is gone, finding the lock held by nobody for 4 s,
//!   takes it exclusively and removes the run's session objects.
//!
//! Only objects with `fixtures.managed` are ever removed.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use futures_util::future::join_all;

use crate::labels;
use crate::runtime::Runtime;
use crate::spec::{LabelFilter, Labels};

/// This host's name, as the kernel knows it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// A process's start time (clock ticks since boot), which tells a pid's reuse apart.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after the closing paren are plain.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// `<host>:<pid>:<start time>` of this process.
pub(crate) static OWNER: LazyLock<String> = LazyLock::new(|| {
    let pid = std::process::id();
    format!("{}:{pid}:{}", hostname(), start_time(pid).unwrap_or(0))
});

/// The run this process belongs to: `FIXTURE_RUN_ID` if set, else `NEXTEST_RUN_ID` (shared
/// by a nextest run's processes), else one of its own.
pub(crate) static RUN: LazyLock<String> = LazyLock::new(|| {
    for var in ["FIXTURE_RUN_ID", "NEXTEST_RUN_ID"] {
        if let Ok(id) = std::env::var(var) {
            let id: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
            if !id.is_empty() {
                return id.chars().take(32).collect();
            }
        }
    }
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("p{:x}{:04x}", std::process::id(), (nanos & 0xffff) as u16)
});

/// Whether the run is shared with other processes (its id came from the environment).
pub(crate) fn shared_run() -> bool {
    ["FIXTURE_RUN_ID", "NEXTEST_RUN_ID"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|id| id.chars().any(|c| c.is_ascii_alphanumeric())))
}

/// How long a shared run must be held by no process before its session objects are removed:
/// the next process of the run (nextest starts one per test) joins within it.
const SHARED_RUN_GRACE: std::time::Duration = std::time::Duration::from_secs(4);

/// Whether the run ended: no process held it at any of its checks over [`SHARED_RUN_GRACE`].
/// Between two processes of a runner nobody holds the run for a moment (nextest here: up to
/// ~70 ms, dozens of times a run); one empty look would end a run that goes on. False as soon
/// as a process holds it.
async fn run_ends(run: &str) -> bool {
    let since = std::time::Instant::now();
    while since.elapsed() < SHARED_RUN_GRACE {
        if run_alive(run) {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    !run_alive(run)
}

/// The owner label of session objects: the run, not a process.
pub(crate) fn run_owner() -> String {
    format!("run:{}", *RUN)
}

/// Whether the owner named by a label is a live process (unknown hosts count as alive).
fn owner_alive(owner: &str) -> bool {
    if let Some(run) = owner.strip_prefix("run:") {
        return run_alive(run);
    }
    let mut parts = owner.rsplitn(3, ':');
    let (Some(start), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else { return true };
    if host != hostname() {
        return true;
    }
    match (pid.parse::<u32>(), start.parse::<u64>()) {
        (Ok(pid), Ok(start)) => start_time(pid) == Some(start),
        _ => true,
    }
}

fn lock_path(run: &str) -> std::path::PathBuf {
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("fixtures-runs-{uid}")).join(format!("{run}.lock"))
}

fn flock(file: &File, op: libc::c_int) -> bool {
    // SAFETY: flock on a file descriptor we own.
    unsafe { libc::flock(file.as_raw_fd(), op) == 0 }
}

/// This process's shared hold on its run's lock, kept until exit.
static RUN_HOLD: Mutex<Option<File>> = Mutex::new(None);

fn hold_run() {
    let path = lock_path(&RUN);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // The last one out removes the file while it holds it exclusively; a hold taken meanwhile
    // (this call waits for it) would be on a file nobody else sees: take it on the new one.
    for _ in 0..10 {
        match File::options().create(true).truncate(false).write(true).open(&path) {
            Ok(file) if flock(&file, libc::LOCK_SH) => {
                if same_file(&file, &path) {
                    *RUN_HOLD.lock().unwrap_or_else(|p| p.into_inner()) = Some(file);
                    return;
                }
            }
            Ok(_) | Err(_) => break,
        }
    }
    tracing::warn!(path = %path.display(), "cannot hold the run's lock; session objects may outlive it");
}

/// Whether `file` is the file at `path` now.
fn same_file(file: &File, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(held), Ok(there)) => (held.dev(), held.ino()) == (there.dev(), there.ino()),
        _ => false,
    }
}

/// Whether some process still holds `run`'s lock.
fn run_alive(run: &str) -> bool {
    let Ok(file) = File::options().write(true).open(lock_path(run)) else { return false };
    if flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
        let _ = flock(&file, libc::LOCK_UN);
        false
    } else {
        true
    }
}

/// Takes `run`'s lock exclusively if no process holds it: the caller is the last one out.
fn last_one_out(run: &str) -> Option<File> {
    let file = File::options().write(true).open(lock_path(run)).ok()?;
    flock(&file, libc::LOCK_EX | libc::LOCK_NB).then_some(file)
}

/// Removes what `filter` selects: containers first, then networks and volumes, all at once.
/// Returns how many objects it found.
pub(crate) async fn remove_selected(
    runtime: &dyn Runtime,
    filter: &LabelFilter,
    keep: impl Fn(&Labels) -> bool,
) -> usize {
    let filter = filter.clone().and_eq(labels::MANAGED, "true");
    let mut found = 0;
    if let Ok(list) = runtime.list_containers(&filter).await {
        let list: Vec<_> = list.iter().filter(|c| !keep(&c.labels)).collect();
        found += list.len();
        join_all(list.iter().map(|c| runtime.remove_container(&c.id, true))).await;
    }
    let networks = async {
        let Ok(list) = runtime.list_networks(&filter).await else { return 0 };
        let list: Vec<_> = list.iter().filter(|n| !keep(&n.labels)).collect();
        join_all(list.iter().map(|n| runtime.remove_network(&n.id))).await;
        list.len()
    };
    let volumes = async {
        let Ok(list) = runtime.list_volumes(&filter).await else { return 0 };
        let list: Vec<_> = list.iter().filter(|v| !keep(&v.labels)).collect();
        join_all(list.iter().map(|v| runtime.remove_volume(&v.name, true))).await;
        list.len()
    };
    let (n, v) = tokio::join!(networks, volumes);
    found + n + v
}

static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Held by the signal thread while it removes; the exit hook waits for it.
static SIGNAL_CLEANUP: Mutex<()> = Mutex::new(());

/// At exit: if a signal's cleanup is under way, let it finish first.
pub(crate) fn wait_for_signal_cleanup() {
    if stopping() {
        drop(SIGNAL_CLEANUP.lock());
    }
}

/// Whether the process is being interrupted: nothing new may be created.
pub(crate) fn stopping() -> bool {
    STOPPING.load(std::sync::atomic::Ordering::SeqCst)
}

fn reused(labels: &Labels) -> bool {
    labels.get(labels::REUSE).is_some_and(|v| v == "true")
}

/// Removes everything `owner` made (except reused objects); returns how many it found.
pub(crate) async fn remove_owned(runtime: &dyn Runtime, owner: &str) -> usize {
    remove_selected(runtime, &LabelFilter::eq(labels::OWNER, owner.to_owned()), reused).await
}

/// Removes what `owner` made, again and again until two rounds in a row find nothing:
/// requests sent just before an interruption or a kill may still create objects after a
/// listing. Gives up after 5 s.
async fn remove_owned_until_quiet(runtimes: &[Arc<dyn Runtime>], owner: &str) {
    let mut quiet = 0;
    for _ in 0..50 {
        let found: usize = join_all(runtimes.iter().map(|r| remove_owned(r.as_ref(), owner))).await.into_iter().sum();
        quiet = if found == 0 { quiet + 1 } else { 0 };
        if quiet == 2 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// At exit (or from a watcher): if no process of `run` remains, remove its session objects.
pub(crate) async fn remove_run_if_last(runtime: &dyn Runtime, run: &str) {
    if let Some(_exclusive) = last_one_out(run) {
        remove_selected(runtime, &LabelFilter::eq(labels::OWNER, format!("run:{run}")), reused).await;
        let _ = std::fs::remove_file(lock_path(run));
    }
}

/// Releases this process's hold on the run and, if it was the last, removes the run's
/// session objects. Called at exit.
pub(crate) fn leave_run_blocking() {
    leave_run(true);
}

/// Leaves the run; with `grace`, a shared run's session objects are left to the watcher,
/// which removes them if no process joins within the grace time.
fn leave_run(grace: bool) {
    if RUN_HOLD.lock().unwrap_or_else(|p| p.into_inner()).take().is_none() {
        return;
    }
    if grace && shared_run() && !WATCHER_PIPES.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
        // The watcher removes them once the grace time has passed with no process left.
        return;
    }
    let runtimes: Vec<Arc<dyn Runtime>> = STARTED.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
    if runtimes.is_empty() {
        return;
    }
    let worker = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            rt.block_on(async {
                for runtime in &runtimes {
                    remove_run_if_last(runtime.as_ref(), &RUN).await;
                }
            });
        }
    });
    let _ = worker.join();
}

/// Removes objects on `runtime` whose owner process is gone (and runs nobody holds).
pub(crate) async fn sweep(runtime: &dyn Runtime) {
    let dead = |labels: &Labels| labels.get(labels::OWNER).is_some_and(|o| !owner_alive(o)) && !reused(labels);
    let filter = LabelFilter::has(labels::MANAGED);
    let mut owners: Vec<String> = Vec::new();
    if let Ok(list) = runtime.list_containers(&filter).await {
        owners.extend(list.iter().filter(|c| dead(&c.labels)).filter_map(|c| c.labels.get(labels::OWNER).cloned()));
    }
    if let Ok(list) = runtime.list_networks(&filter).await {
        owners.extend(list.iter().filter(|n| dead(&n.labels)).filter_map(|n| n.labels.get(labels::OWNER).cloned()));
    }
    if let Ok(list) = runtime.list_volumes(&filter).await {
        owners.extend(list.iter().filter(|v| dead(&v.labels)).filter_map(|v| v.labels.get(labels::OWNER).cloned()));
    }
    owners.sort();
    owners.dedup();
    for owner in owners {
        tracing::info!(owner = %owner, "removing what a process that is gone left behind");
        remove_owned(runtime, &owner).await;
    }
}

/// Runtimes this process has made objects on, with their watcher's pipe.
static STARTED: LazyLock<Mutex<HashMap<String, Arc<dyn Runtime>>>> = LazyLock::new(Default::default);
static WATCHER_PIPES: Mutex<Vec<std::process::ChildStdin>> = Mutex::new(Vec::new());

/// The environment variable that turns the test binary into a watcher.
pub const WATCHER_VAR: &str = "FIXTURES_WATCHER";

/// Joins the run (a shared hold on its lock) and installs the signal handler, once per
/// process. Called first thing when a test starts, before connecting to an engine, so that a
/// run's other processes see this one alive as early as possible.
pub(crate) fn join_run() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        hold_run();
        install_signal_handler();
    });
}

/// Before the first object on `runtime`: sweep what dead processes left, start this
/// process's watcher, install the signal handler and join the run. Once per runtime.
pub(crate) async fn prepare(runtime: &Arc<dyn Runtime>) {
    let first = {
        let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
        let first = !started.contains_key(runtime.name());
        if first {
            started.insert(runtime.name().to_owned(), runtime.clone());
        }
        first
    };
    if !first {
        return;
    }
    join_run();
    sweep(runtime.as_ref()).await;
    start_watcher(runtime.name());
}

fn start_watcher(runtime_name: &str) {
    if std::env::var_os("FIXTURE_NO_WATCHER").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut cmd = std::process::Command::new(exe);
    // If the hook is missing, these arguments make a libtest binary list nothing and exit.
    cmd.args(["--list", "--exact", "__fixtures_watcher__"])
        .env(WATCHER_VAR, runtime_name)
        .env("FIXTURES_WATCH_OWNER", OWNER.as_str())
        .env("FIXTURES_WATCH_RUN", RUN.as_str())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // Its own process group: Ctrl-C in a terminal must not kill it with the tests.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    match cmd.spawn() {
        Ok(mut child) => {
            if let Some(stdin) = child.stdin.take() {
                WATCHER_PIPES.lock().unwrap_or_else(|p| p.into_inner()).push(stdin);
            }
            // Reap it in the background whenever it ends.
            std::thread::spawn(move || child.wait());
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the watcher; a killed test process may leave objects until the next run")
        }
    }
}

/// The watcher's life, called by a backend's pre-`main` hook when [`WATCHER_VAR`] is set:
/// wait until the test process is gone (its pipe closes), remove what it owned, and leave
/// the run. Never returns.
pub fn watch(runtime: Arc<dyn Runtime>) -> ! {
    let owner = std::env::var("FIXTURES_WATCH_OWNER").unwrap_or_default();
    let run = std::env::var("FIXTURES_WATCH_RUN").unwrap_or_default();
    let mut stdin = std::io::stdin();
    let mut buf = [0u8; 64];
    while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
    if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
        rt.block_on(async {
            if !owner.is_empty() {
                remove_owned_until_quiet(std::slice::from_ref(&runtime), &owner).await;
            }
            if !run.is_empty() {
                if shared_run() && !run_ends(&run).await {
                    // Another process holds it: its watcher takes over.
                    return;
                }
                remove_run_if_last(runtime.as_ref(), &run).await;
            }
        });
    }
    // SAFETY: leave at once, running none of the test binary's exit hooks.
    unsafe { libc::_exit(0) }
}

/// The watcher hook's test: is this process meant to be a watcher for `runtime_name`?
pub fn watcher_requested(runtime_name: &str) -> bool {
    std::env::var(WATCHER_VAR).is_ok_and(|v| v == runtime_name)
}

static SIGNAL_PIPE: OnceLock<(i32, i32)> = OnceLock::new();

extern "C" fn on_signal(signal: libc::c_int) {
    if let Some((_, write)) = SIGNAL_PIPE.get() {
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe.
        unsafe {
            libc::write(*write, (&raw const byte).cast(), 1);
        }
    }
}

/// On SIGINT or SIGTERM: remove everything this process owns (and the run's session
/// objects if it is the last), then exit with 128 + the signal.
fn install_signal_handler() {
    let mut fds = [0i32; 2];
    // SAFETY: a pipe for the handler to wake the cleanup thread.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    if SIGNAL_PIPE.set((fds[0], fds[1])).is_err() {
        return;
    }
    let spawned = std::thread::Builder::new().name("fixtures-signals".to_owned()).spawn(move || {
        let mut byte = 0u8;
        // SAFETY: reading one byte from our own pipe.
        let n = unsafe { libc::read(fds[0], (&raw mut byte).cast(), 1) };
        if n != 1 {
            return;
        }
        let _cleaning = SIGNAL_CLEANUP.lock().unwrap_or_else(|p| p.into_inner());
        STOPPING.store(true, std::sync::atomic::Ordering::SeqCst);
        eprintln!("fixtures: signal {byte}: removing this process's containers, networks and volumes");
        let runtimes: Vec<Arc<dyn Runtime>> =
            STARTED.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            rt.block_on(remove_owned_until_quiet(&runtimes, &OWNER));
        }
        // Interrupted: no grace; the run's session objects go now if this was its last process.
        leave_run(false);
        // SAFETY: exit without the normal exit hooks: everything was removed above.
        unsafe { libc::_exit(128 + i32::from(byte)) }
    });
    if spawned.is_err() {
        return;
    }
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installing a handler that only writes to a pipe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_name_this_process_and_its_start() {
        let owner = OWNER.as_str();
        assert!(owner.starts_with(&format!("{}:{}:", hostname(), std::process::id())), "{owner}");
        assert!(owner_alive(owner), "this process is alive");
        assert!(!owner_alive(&format!("{}:{}:1", hostname(), std::process::id())), "same pid, other start time");
        assert!(owner_alive("some-other-host:1:1"), "other hosts' objects are never judged");
        assert!(owner_alive("garbage"), "unreadable owners are left alone");
    }

    #[test]
    fn a_run_is_alive_while_a_process_holds_it() {
        let run = format!("unit{}", std::process::id());
        let path = lock_path(&run);
        std::fs::create_dir_all(path.parent().expect("dir")).expect("dir");
        let holder = File::options().create(true).truncate(false).write(true).open(&path).expect("lock file");
        assert!(flock(&holder, libc::LOCK_SH));
        assert!(run_alive(&run));
        assert!(last_one_out(&run).is_none());
        drop(holder);
        // A process forked meanwhile (another test's watcher) shares the lock until it execs.
        let start = std::time::Instant::now();
        while run_alive(&run) && start.elapsed() < std::time::Duration::from_secs(2) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!run_alive(&run));
        assert!(last_one_out(&run).is_some());
        let _ = std::fs::remove_file(path);
    }
}
