//! `probe <host:port>`: exits 0 when a TCP connection to the address opens within a
//! second, 1 otherwise. A health check for images without a shell.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::common::die;

pub(crate) fn run(args: &[String]) -> ! {
    let [target] = args else { die(2, "usage: probe <host:port>") };
    let addrs: Vec<SocketAddr> = match target.to_socket_addrs() {
        Ok(addrs) => addrs.collect(),
        Err(e) => die(2, format_args!("probe: {target}: {e}")),
    };
    for addr in addrs {
        if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
            std::process::exit(0);
        }
    }
    eprintln!("probe: nothing listens on {target}");
    std::process::exit(1)
}
