//! `echo`: a TCP echo server (thread per connection), or a UDP echo server
//! with `PROTO=udp` or the `--udp` argument.
//!
//! Env: `PORT` (default 7000), `LISTEN_DELAY_MS` (default 0), `PROTO`
//! (`tcp` or `udp`, default `tcp`).
//! Logs `echo: listening on 0.0.0.0:<port>` (TCP) or
//! `echo: listening on 0.0.0.0:<port>/udp` (UDP).

use std::io;
use std::net::TcpStream;

use crate::common::{bind_tcp, bind_udp, die, log};

pub(crate) fn run(args: &[String]) -> ! {
    let proto = std::env::var("PROTO").unwrap_or_default().to_ascii_lowercase();
    let udp = match args {
        [] => proto == "udp",
        [flag] if flag == "--udp" => true,
        [flag] if flag == "--tcp" => false,
        _ => die(2, "usage: echo [--udp|--tcp]"),
    };
    if udp { run_udp() } else { run_tcp() }
}

fn run_tcp() -> ! {
    let listener = bind_tcp("echo", 7000);
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                std::thread::spawn(move || {
                    if let Err(e) = echo(&stream) {
                        log!("echo: connection error: {e}");
                    }
                });
            }
            Err(e) => log!("echo: accept: {e}"),
        }
    }
    unreachable!("TcpListener::incoming never ends")
}

fn echo(stream: &TcpStream) -> io::Result<()> {
    let peer = stream.peer_addr()?;
    log!("echo: connection from {peer}");
    let (mut reader, mut writer) = (stream, stream);
    let bytes = io::copy(&mut reader, &mut writer)?;
    log!("echo: {peer} closed after {bytes} bytes");
    Ok(())
}

fn run_udp() -> ! {
    let socket = bind_udp("echo", 7000);
    let mut buf = vec![0u8; 65536];
    loop {
        match socket.recv_from(&mut buf) {
            Ok((len, peer)) => {
                if let Err(e) = socket.send_to(&buf[..len], peer) {
                    log!("echo: send to {peer}: {e}");
                }
            }
            Err(e) => log!("echo: recv: {e}"),
        }
    }
}
