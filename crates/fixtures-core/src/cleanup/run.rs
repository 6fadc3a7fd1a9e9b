//! The run's lock file: every process of a run holds it shared; the last one out (or its
//! watcher, after a grace time) removes the run's session objects.

use super::*;

pub(super) fn lock_path(run: &str) -> std::path::PathBuf {
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("fixtures-runs-{uid}")).join(format!("{run}.lock"))
}

pub(super) fn flock(file: &File, op: libc::c_int) -> bool {
    // SAFETY: flock on a file descriptor we own.
    unsafe { libc::flock(file.as_raw_fd(), op) == 0 }
}

pub(super) fn hold_run() {
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
pub(super) fn same_file(file: &File, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(held), Ok(there)) => (held.dev(), held.ino()) == (there.dev(), there.ino()),
        _ => false,
    }
}

/// Whether some process still holds `run`'s lock.
pub(super) fn run_alive(run: &str) -> bool {
    let Ok(file) = File::options().write(true).open(lock_path(run)) else { return false };
    if flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
        let _ = flock(&file, libc::LOCK_UN);
        false
    } else {
        true
    }
}

/// Takes `run`'s lock exclusively if no process holds it: the caller is the last one out.
pub(super) fn last_one_out(run: &str) -> Option<File> {
    let file = File::options().write(true).open(lock_path(run)).ok()?;
    flock(&file, libc::LOCK_EX | libc::LOCK_NB).then_some(file)
}

/// Releases this process's hold on the run and, if it was the last, removes the run's
/// session objects. Called at exit.
pub(crate) fn leave_run_blocking() {
    leave_run(true);
}

/// Leaves the run; with `grace`, a shared run's session objects are left to the watcher,
/// which removes them if no process joins within the grace time.
pub(super) fn leave_run(grace: bool) {
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

/// Whether the run ended: no process held it at any of its checks over [`SHARED_RUN_GRACE`].
/// Between two processes of a runner nobody holds the run for a moment (nextest here: up to
/// ~70 ms, dozens of times a run); one empty look would end a run that goes on. False as soon
/// as a process holds it.
pub(super) async fn run_ends(run: &str) -> bool {
    let since = std::time::Instant::now();
    while since.elapsed() < SHARED_RUN_GRACE {
        if run_alive(run) {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    !run_alive(run)
}
