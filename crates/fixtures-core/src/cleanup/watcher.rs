//! The watcher: this test binary started again, holding a pipe to the test process, that
//! removes what the process owned when the pipe closes (SIGKILL, a crash).

use super::*;

pub(super) fn start_watcher(runtime: &dyn Runtime, engine: &str) {
    if std::env::var_os("FIXTURE_NO_WATCHER").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut cmd = std::process::Command::new(exe);
    // If the hook is missing, these arguments make a libtest binary list nothing and exit.
    cmd.args(["--list", "--exact", "__fixtures_watcher__"])
        .env(WATCHER_VAR, runtime.name())
        .env(WATCH_HOST_VAR, runtime.host())
        .env("FIXTURES_WATCH_ENGINE", engine)
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
    let engine = std::env::var("FIXTURES_WATCH_ENGINE").unwrap_or_else(|_| engine_key(runtime.as_ref()));
    let mut stdin = std::io::stdin();
    let mut buf = [0u8; 64];
    while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
    if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
        rt.block_on(async {
            if !owner.is_empty() {
                remove_owned_until_quiet(std::slice::from_ref(&runtime), &owner).await;
            }
            if !run.is_empty() {
                if shared_run() && !run_ends(&run, &engine).await {
                    // Another process holds it: its watcher takes over.
                    return;
                }
                remove_run_if_last(runtime.as_ref(), &run, &engine).await;
            }
        });
    }
    // SAFETY: leave at once, running none of the test binary's exit hooks.
    unsafe { libc::_exit(0) }
}

/// The engine a watcher watches (its test process's, which may be one of a pool): the
/// backend's hook connects to this host when it is set.
pub const WATCH_HOST_VAR: &str = "FIXTURES_WATCH_HOST";

/// The watcher hook's test: is this process meant to be a watcher for `runtime_name`? When
/// it is, the process first leaves the test process's tree (a fork and a session of its own).
pub fn watcher_requested(runtime_name: &str) -> bool {
    let requested = std::env::var(WATCHER_VAR).is_ok_and(|v| v == runtime_name);
    if requested {
        detach();
    }
    requested
}

/// Leaves the test process's tree before anything else runs: the process forks, the parent
/// exits (the test process reaps it at once) and the child, the watcher, starts a session of
/// its own. A CI runner that kills a timed-out job by its process group, its session or by
/// walking its children from the test process then does not reach the watcher, which removes
/// what the killed test process made. Only what kills a whole cgroup (a container or a
/// systemd unit stopped) takes it too; the next run's sweep or `cargo fixtures clean` is left
/// for that.
fn detach() {
    // SAFETY: called from the pre-`main` hook, where no other thread runs yet; the parent
    // leaves with `_exit`, running nothing of the test binary.
    unsafe {
        match libc::fork() {
            0 => {
                libc::setsid();
            }
            -1 => {} // Cannot fork: watch from where it is.
            _ => libc::_exit(0),
        }
    }
}
