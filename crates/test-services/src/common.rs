//! Shared helpers: environment parsing, line logging, signal setup and
//! listener creation.
//!
//! Environment variables understood by every listening service:
//! - `PORT`: port to listen on (service-specific default).
//! - `LISTEN_DELAY_MS`: sleep this long before binding (default 0).

use std::fmt;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::str::FromStr;
use std::time::Duration;

/// Print one line to stdout and flush it immediately.
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::common::log_line(format_args!($($arg)*))
    };
}
pub(crate) use log;

pub(crate) fn log_line(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    // Logging must never take the service down (e.g. closed stdout).
    let _ = writeln!(out, "{args}");
    let _ = out.flush();
}

/// Print an error to stderr and exit with `code`.
pub(crate) fn die(code: i32, msg: impl fmt::Display) -> ! {
    eprintln!("test-services: {msg}");
    std::process::exit(code)
}

/// Read and parse an environment variable, falling back to `default` when it
/// is unset or empty. Exits with code 2 on an unparsable value.
pub(crate) fn env_or<T: FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim().parse().unwrap_or_else(|_| die(2, format_args!("invalid value for {name}: {v:?}")))
        }
        _ => default,
    }
}

/// Split a `|`-separated list of lines from an environment variable.
pub(crate) fn env_lines(name: &str) -> Vec<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v.split('|').map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// Print `STDOUT_LINES` to stdout and `STDERR_LINES` to stderr.
pub(crate) fn print_env_lines() {
    for line in env_lines("STDOUT_LINES") {
        log!("{line}");
    }
    for line in env_lines("STDERR_LINES") {
        eprintln!("{line}");
    }
}

pub(crate) fn sleep_ms(ms: u64) {
    if ms > 0 {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

pub(crate) fn sleep_forever() -> ! {
    loop {
        std::thread::park();
    }
}

extern "C" fn exit_on_signal(_signal: libc::c_int) {
    // SAFETY: `_exit` is async-signal-safe.
    unsafe { libc::_exit(0) }
}

/// Make SIGTERM and SIGINT exit the process with code 0. Needed because PID 1
/// ignores signals whose disposition is the default.
pub(crate) fn install_signal_handlers() {
    let handler: extern "C" fn(libc::c_int) = exit_on_signal;
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the sigaction struct is fully initialised (zeroed, then an
        // empty mask) and the handler only calls an async-signal-safe function.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            die(1, format_args!("sigaction({signal}): {}", io::Error::last_os_error()));
        }
    }
}

/// `0.0.0.0:$PORT`, after sleeping `LISTEN_DELAY_MS`.
fn listen_addr(default_port: u16) -> SocketAddr {
    let port = env_or("PORT", default_port);
    sleep_ms(env_or("LISTEN_DELAY_MS", 0));
    SocketAddr::from(([0, 0, 0, 0], port))
}

/// Bind a TCP listener and log `<service>: listening on <addr>`.
pub(crate) fn bind_tcp(service: &str, default_port: u16) -> TcpListener {
    let addr = listen_addr(default_port);
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| die(1, format_args!("{service}: bind {addr}: {e}")));
    let local = listener.local_addr().unwrap_or(addr);
    log!("{service}: listening on {local}");
    listener
}

/// Bind a UDP socket and log `<service>: listening on <addr>/udp`.
pub(crate) fn bind_udp(service: &str, default_port: u16) -> UdpSocket {
    let addr = listen_addr(default_port);
    let socket = UdpSocket::bind(addr).unwrap_or_else(|e| die(1, format_args!("{service}: bind {addr}/udp: {e}")));
    let local = socket.local_addr().unwrap_or(addr);
    log!("{service}: listening on {local}/udp");
    socket
}
