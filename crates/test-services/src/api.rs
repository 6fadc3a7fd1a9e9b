//! `api`: an HTTP server that performs a DNS lookup per request.
//!
//! `GET /` resolves `LOOKUP_NAME` (default `example.com`) with a raw UDP DNS
//! `A` query to the first `nameserver` in `/etc/resolv.conf` (2 s timeout,
//! one retry) and answers 200 `{"result": "<ip>"}` with the first A record,
//! or 500 `{"error": "<message>"}`. `GET /health` → 200 `ok`; else 404.
//!
//! Env: `PORT` (default 8080), `LISTEN_DELAY_MS` (default 0), `LOOKUP_NAME`,
//! `DNS_SERVER` (`ip`, `ip:port`, or a host name looked up through `/etc/resolv.conf`; overrides it).
//! Logs `api: listening on 0.0.0.0:<port>` and one line per request.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::dns;
use crate::http::{self, Request, Response};

const TIMEOUT: Duration = Duration::from_secs(2);
const ATTEMPTS: u32 = 2;

pub(crate) fn run() -> ! {
    http::serve("api", route)
}

fn route(req: &Request) -> Response {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET" | "HEAD", "/health") => Response::text(200, "ok"),
        ("GET" | "HEAD", "/") => {
            let name = std::env::var("LOOKUP_NAME").unwrap_or_else(|_| "example.com".into());
            match resolve(&name) {
                Ok(ip) => Response::json(200, format!("{{\"result\": \"{ip}\"}}")),
                Err(e) => Response::json(500, format!("{{\"error\": \"{}\"}}", json_escape(&e))),
            }
        }
        _ => Response::text(404, "not found\n"),
    }
}

fn nameserver() -> Result<SocketAddr, String> {
    if let Ok(server) = std::env::var("DNS_SERVER") {
        let server = server.trim();
        if let Ok(addr) = server.parse().or_else(|_| server.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53))) {
            return Ok(addr);
        }
        // A host name (a service on the container's network), looked up by the system's server.
        let (host, port) = match server.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().map_err(|_| format!("invalid DNS_SERVER {server:?}"))?),
            None => (server, 53),
        };
        let ip = query(system_nameserver()?, host).map_err(|e| format!("DNS_SERVER {server:?}: {e}"))?;
        return Ok(SocketAddr::new(ip.into(), port));
    }
    system_nameserver()
}

fn system_nameserver() -> Result<SocketAddr, String> {
    let conf = std::fs::read_to_string("/etc/resolv.conf").map_err(|e| format!("reading /etc/resolv.conf: {e}"))?;
    conf.lines()
        .filter_map(|line| line.strip_prefix("nameserver"))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .next()
        .ok_or_else(|| "no nameserver in /etc/resolv.conf".into())
}

fn query_id(attempt: u32) -> u16 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    (nanos ^ std::process::id() ^ attempt.wrapping_mul(0x9e37)) as u16
}

fn resolve(name: &str) -> Result<Ipv4Addr, String> {
    query(nameserver()?, name)
}

fn query(server: SocketAddr, name: &str) -> Result<Ipv4Addr, String> {
    let local =
        SocketAddr::new(if server.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { IpAddr::from([0u16; 8]) }, 0);
    let socket = UdpSocket::bind(local).map_err(|e| format!("bind: {e}"))?;
    socket.connect(server).map_err(|e| format!("connect {server}: {e}"))?;
    let mut buf = [0u8; 4096];
    for attempt in 0..ATTEMPTS {
        let id = query_id(attempt);
        let query = dns::build_query(id, name, dns::TYPE_A)?;
        socket.send(&query).map_err(|e| format!("send to {server}: {e}"))?;
        let deadline = Instant::now() + TIMEOUT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            socket.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
            let len = match socket.recv(&mut buf) {
                Ok(len) => len,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    break;
                }
                Err(e) => return Err(format!("receive from {server}: {e}")),
            };
            match dns::parse_response(&buf[..len], id) {
                Ok(ips) => {
                    return ips.first().copied().ok_or_else(|| format!("no A record for {name}"));
                }
                Err(Some(rcode)) => return Err(format!("{} for {name}", dns::rcode_name(rcode))),
                Err(None) => {} // stray or malformed packet: keep waiting
            }
        }
    }
    Err(format!("timeout querying {server} for {name}"))
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_json() {
        assert_eq!(json_escape("a\"b\\c\n"), "a\\\"b\\\\c\\u000a");
    }
}
