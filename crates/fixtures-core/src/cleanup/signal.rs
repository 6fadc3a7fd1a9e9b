//! Ctrl-C and SIGTERM: remove everything this process owns, then exit. The handler is
//! registered through signal-hook, which chains to a handler the program (or another
//! library) installed before: that one still runs.

use super::*;

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

/// On SIGINT or SIGTERM: remove everything this process owns (and the run's session
/// objects if it is the last), then exit with 128 + the signal.
pub(super) fn install_signal_handler() {
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
    let write = fds[1];
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // signal-hook keeps a handler installed before ours (the program's own, another
        // library's) and calls it too.
        // SAFETY: the action only writes one byte to our own pipe; write(2) is async-signal-safe.
        let _ = unsafe {
            signal_hook::low_level::register(signal, move || {
                let byte = signal as u8;
                libc::write(write, (&raw const byte).cast(), 1);
            })
        };
    }
}
