//! `test-services`: a static multi-call binary bundling small network
//! services, meant to run as PID 1 in `FROM scratch` test images.
//!
//! The service is chosen by the first argument (`test-services http`) or by
//! the file name the binary is invoked as (a symlink named `http`).

mod alloc;
mod api;
mod common;
mod dns;
mod echo;
mod exit;
mod files;
mod http;
mod memcached;
mod probe;
mod sleep;

use std::path::Path;

const USAGE: &str = "\
usage: test-services <service> [args...]

services:
  http       HTTP server: / (RESPONSE_BODY), /status/<code>, /env/<NAME>, /health
             env: PORT=8080 LISTEN_DELAY_MS=0 RESPONSE_BODY=hello\\n
  echo       TCP echo server (UDP with PROTO=udp or --udp)
             env: PORT=7000 LISTEN_DELAY_MS=0 PROTO=tcp
  dns        fake DNS server (UDP); A answers from DNS_<NAME>__A=ip[,ip...]
             e.g. example.com -> DNS_EXAMPLE_COM__A; env: PORT=53 LISTEN_DELAY_MS=0
  api        HTTP server whose / resolves LOOKUP_NAME via /etc/resolv.conf
             and returns {\"result\": \"<ip>\"}
             env: PORT=8080 LISTEN_DELAY_MS=0 LOOKUP_NAME=example.com DNS_SERVER=ip[:port]|host[:port]
  memcached  memcached text protocol subset (set/get/delete/version/quit)
             env: PORT=11211 LISTEN_DELAY_MS=0
  exit       print lines, sleep, exit
             env: STDOUT_LINES=a|b STDERR_LINES=c|d DELAY_MS=0 EXIT_CODE=0
             args: [--code N] [--delay-ms N] [--stdout LINE]... [--stderr LINE]...
  sleep      print STDOUT_LINES/STDERR_LINES, then sleep until signalled
  alloc      allocate and touch memory until killed
             env: ALLOC_MB_PER_STEP=8 STEP_DELAY_MS=5
  probe      probe <host:port>: exit 0 if a TCP connection opens within 1 s (health checks)
  write      write <path> <content>: write a file (creating parent dirs)
  cat        cat <path>: print a file
  ls         ls <dir>: list directory entries, one per line

SIGTERM/SIGINT exit with code 0.
";

const SERVICES: &[&str] =
    &["http", "echo", "dns", "api", "memcached", "exit", "sleep", "alloc", "probe", "write", "cat", "ls"];

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let invoked_as =
        argv.first().and_then(|a| Path::new(a).file_name()).and_then(|n| n.to_str()).filter(|n| SERVICES.contains(n));
    let (service, args) = match invoked_as {
        Some(name) => (name, argv.get(1..).unwrap_or_default()),
        None => match argv.get(1) {
            Some(name) => (name.as_str(), &argv[2..]),
            None => usage(),
        },
    };

    common::install_signal_handlers();
    match service {
        "http" => http::run(),
        "echo" => echo::run(args),
        "dns" => dns::run(),
        "api" => api::run(),
        "memcached" => memcached::run(),
        "exit" => exit::run(args),
        "sleep" => sleep::run(),
        "alloc" => alloc::run(),
        "probe" => probe::run(args),
        "write" | "cat" | "ls" => files::run(service, args),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
        }
        _ => usage(),
    }
}

fn usage() -> ! {
    eprint!("{USAGE}");
    std::process::exit(2)
}
