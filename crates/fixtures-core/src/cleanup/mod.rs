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
//!   session objects, once per engine (a run spread over a pool of engines has a set on
//!   each). Each process holds a shared `flock` on the lock file of its run on its engine for
//!   its whole life; a watcher whose process is gone, finding that lock held by nobody for
//!   4 s, takes it exclusively and removes the run's session objects on that engine.
//!
//! Only objects with `fixtures.managed` are ever removed.
//!
//! `owner` (who owns an object), `run` (the run's lock), `removal` (removing by owner or run,
//! the sweep), `signal`, `watcher`; the process-wide state they share is declared here.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use futures_util::future::join_all;

use crate::labels;
use crate::runtime::Runtime;
use crate::spec::{LabelFilter, Labels};

mod owner;
mod removal;
mod run;
mod signal;
mod watcher;

pub(crate) use owner::*;
pub(crate) use removal::*;
pub(crate) use run::*;
pub(crate) use signal::*;
use watcher::start_watcher;
pub use watcher::{WATCH_HOST_VAR, watch, watcher_requested};

/// Whether the owner an object's `fixtures.owner` label names is still there: a live process
/// on this host, a run one of whose processes is alive, or anything this host cannot judge
/// (another host's process, reuse mode).
pub fn owner_is_alive(owner: &str) -> bool {
    owner_alive(owner)
}

// The process's clean-up state, all of it: what the submodules read and write.

/// This process's shared holds on its run's lock on each engine (by engine key), kept until exit.
static RUN_HOLD: Mutex<Vec<(String, File)>> = Mutex::new(Vec::new());

/// Set when a signal came: nothing new is created from then on.
static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Held by the signal thread while it removes; the exit hook waits for it.
static SIGNAL_CLEANUP: Mutex<()> = Mutex::new(());

/// Runtimes this process has made objects on, by engine key (see [`engine_key`]).
static STARTED: LazyLock<Mutex<HashMap<String, Arc<dyn Runtime>>>> = LazyLock::new(Default::default);

/// The write ends of this process's watchers' pipes, open for its whole life.
static WATCHER_PIPES: Mutex<Vec<std::process::ChildStdin>> = Mutex::new(Vec::new());

/// The self-pipe the signal handler writes to (read end, write end).
static SIGNAL_PIPE: OnceLock<(i32, i32)> = OnceLock::new();

/// The environment variable that turns the test binary into a watcher.
pub const WATCHER_VAR: &str = "FIXTURES_WATCHER";

/// Installs the signal handler, once per process. Called first thing when a test starts.
pub(crate) fn join_run() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(install_signal_handler);
}

/// An engine's key: its backend's name and a hash of its host, for the run's lock files.
pub(crate) fn engine_key(runtime: &dyn Runtime) -> String {
    // FNV-1a: stable across processes and builds.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in runtime.name().bytes().chain([0]).chain(runtime.host().bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let name: String = runtime.name().chars().filter(char::is_ascii_alphanumeric).collect();
    format!("{name}-{:08x}", hash as u32)
}

/// Before the first object on `runtime`: join the run on that engine (a shared hold on its
/// lock), sweep what dead processes left there, start this process's watcher for it. Once
/// per engine.
pub(crate) async fn prepare(runtime: &Arc<dyn Runtime>) {
    let key = engine_key(runtime.as_ref());
    let first = {
        let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
        let first = !started.contains_key(&key);
        if first {
            started.insert(key.clone(), runtime.clone());
        }
        first
    };
    if !first {
        return;
    }
    join_run();
    hold_run(&key);
    sweep(runtime.as_ref()).await;
    start_watcher(runtime.as_ref(), &key);
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
        let path = lock_path(&run, "docker-1");
        std::fs::create_dir_all(path.parent().expect("dir")).expect("dir");
        let holder = File::options().create(true).truncate(false).write(true).open(&path).expect("lock file");
        assert!(flock(&holder, libc::LOCK_SH));
        assert!(run_alive(&run, "docker-1"));
        assert!(run_alive_anywhere(&run));
        assert!(!run_alive(&run, "podman-2"), "another engine's lock is another lock");
        assert!(last_one_out(&run, "docker-1").is_none());
        drop(holder);
        // A process forked meanwhile (another test's watcher) shares the lock until it execs.
        let start = std::time::Instant::now();
        while run_alive(&run, "docker-1") && start.elapsed() < std::time::Duration::from_secs(2) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!run_alive(&run, "docker-1"));
        assert!(!run_alive_anywhere(&run));
        assert!(last_one_out(&run, "docker-1").is_some());
        let _ = std::fs::remove_file(path);
    }
}
