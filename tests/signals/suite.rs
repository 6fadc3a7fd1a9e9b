//! A program with a SIGINT handler of its own, installed before the library's: run by
//! `tests/signals.rs`, which interrupts it while it holds a container.

use std::io::Write;
use std::os::fd::IntoRawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use fixtures::{container, image};
use test_support::SERVICES_IMAGE;

/// Where the program's own handler writes.
static LOG: AtomicI32 = AtomicI32::new(-1);

extern "C" fn own_handler(_: libc::c_int) {
    let line = b"the program's own handler ran\n";
    // SAFETY: write(2) is async-signal-safe; the descriptor stays open for the process's life.
    unsafe {
        libc::write(LOG.load(Ordering::Relaxed), line.as_ptr().cast(), line.len());
    }
}

#[tokio::test]
async fn holds_a_container_until_interrupted() {
    let path = std::env::var_os("SIGNAL_LOG").expect("SIGNAL_LOG names the log");
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("the log opens");
    LOG.store(log.try_clone().expect("a second descriptor").into_raw_fd(), Ordering::Relaxed);
    // SAFETY: installing a handler that only writes to a descriptor.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = own_handler as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
    }
    let env = test_support::base_env()
        .with("services", image(SERVICES_IMAGE))
        .with("held", container().image("{services.id}").command(["sleep"]));
    let t = env.start("signals::held").await.expect("starts");
    t.container("held").await.expect("the container runs");
    writeln!(log, "ready").expect("the log is written");
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
