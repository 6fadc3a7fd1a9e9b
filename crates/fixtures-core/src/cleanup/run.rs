//! The run's lock files, one per engine: every process of a run holds its engine's shared;
//! the last one out on an engine (or its watcher, after a grace time) removes the run's
//! session objects there.

use super::*;

fn runs_dir() -> std::path::PathBuf {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("fixtures-runs-{uid}"))
}

pub(super) fn lock_path(run: &str, engine: &str) -> std::path::PathBuf {
    runs_dir().join(format!("{run}@{engine}.lock"))
}

pub(super) fn flock(file: &File, op: libc::c_int) -> bool {
    // SAFETY: flock on a file descriptor we own.
    unsafe { libc::flock(file.as_raw_fd(), op) == 0 }
}

pub(super) fn hold_run(engine: &str) {
    let path = lock_path(&RUN, engine);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // The last one out removes the file while it holds it exclusively; a hold taken meanwhile
    // (this call waits for it) would be on a file nobody else sees: take it on the new one.
    for _ in 0..10 {
        match File::options().create(true).truncate(false).write(true).open(&path) {
            Ok(file) if flock(&file, libc::LOCK_SH) => {
                if same_file(&file, &path) {
                    RUN_HOLD.lock().unwrap_or_else(|p| p.into_inner()).push((engine.to_owned(), file));
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

/// Whether some process still holds `run`'s lock on `engine`.
pub(super) fn run_alive(run: &str, engine: &str) -> bool {
    let Ok(file) = File::options().write(true).open(lock_path(run, engine)) else { return false };
    if flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
        let _ = flock(&file, libc::LOCK_UN);
        false
    } else {
        true
    }
}

/// The run's counter of processes (see [`next_slot`]).
pub(super) fn turn_path(run: &str) -> std::path::PathBuf {
    runs_dir().join(format!("{run}.turn"))
}

/// This process's turn among the processes of its run, for spreading them over a pool of
/// engines: a counter in the run's folder that each process takes and moves on (under a lock),
/// or the process id when the run is this process alone.
pub(crate) fn next_slot() -> usize {
    if !shared_run() {
        return std::process::id() as usize;
    }
    let path = turn_path(&RUN);
    let _ = std::fs::create_dir_all(runs_dir());
    let Ok(mut file) = File::options().create(true).truncate(false).read(true).write(true).open(&path) else {
        return std::process::id() as usize;
    };
    if !flock(&file, libc::LOCK_EX) {
        return std::process::id() as usize;
    }
    use std::io::{Seek, Write};
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let turn: usize = text.trim().parse().unwrap_or(0);
    let _ = file.seek(std::io::SeekFrom::Start(0));
    let _ = file.set_len(0);
    let _ = write!(file, "{}", turn + 1);
    turn
}

/// Whether some process still holds `run` on any engine.
pub(super) fn run_alive_anywhere(run: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(runs_dir()) else { return false };
    let prefix = format!("{run}@");
    entries.flatten().any(|entry| {
        let name = entry.file_name().to_string_lossy().into_owned();
        name.strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".lock"))
            .is_some_and(|engine| run_alive(run, engine))
    })
}

/// Takes `run`'s lock on `engine` exclusively if no process holds it: the caller is the last
/// one out there.
pub(super) fn last_one_out(run: &str, engine: &str) -> Option<File> {
    let file = File::options().write(true).open(lock_path(run, engine)).ok()?;
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
    let held: Vec<String> =
        std::mem::take(&mut *RUN_HOLD.lock().unwrap_or_else(|p| p.into_inner())).into_iter().map(|(e, _)| e).collect();
    if held.is_empty() {
        return;
    }
    if grace && shared_run() && !WATCHER_PIPES.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
        // The watcher removes them once the grace time has passed with no process left.
        return;
    }
    let runtimes: Vec<(String, Arc<dyn Runtime>)> = {
        let started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
        held.into_iter().filter_map(|engine| Some((engine.clone(), started.get(&engine)?.clone()))).collect()
    };
    if runtimes.is_empty() {
        return;
    }
    let worker = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            rt.block_on(async {
                for (engine, runtime) in &runtimes {
                    remove_run_if_last(runtime.as_ref(), &RUN, engine).await;
                }
            });
        }
    });
    let _ = worker.join();
}

/// Whether the run ended on `engine`: no process held it there at any of its checks over [`SHARED_RUN_GRACE`].
/// Between two processes of a runner nobody holds the run for a moment (nextest here: up to
/// ~70 ms, dozens of times a run); one empty look would end a run that goes on. False as soon
/// as a process holds it.
pub(super) async fn run_ends(run: &str, engine: &str) -> bool {
    let since = std::time::Instant::now();
    while since.elapsed() < SHARED_RUN_GRACE {
        if run_alive(run, engine) {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    !run_alive(run, engine)
}
