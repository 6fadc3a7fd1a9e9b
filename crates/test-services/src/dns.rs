//! `dns`: a fake DNS server on UDP.
//!
//! An `A` query for `example.com` is answered from the env var
//! `DNS_EXAMPLE_COM__A` (name uppercased, `.` and `-` replaced by `_`, then
//! `__A`), a comma-separated list of IPv4 addresses (TTL 60). Names without
//! such a variable get NXDOMAIN; known names queried for other types get
//! NOERROR with no answers.
//!
//! Env: `PORT` (default 53), `LISTEN_DELAY_MS` (default 0).
//! Logs `dns: listening on 0.0.0.0:<port>/udp` and one line per query:
//! `dns: <peer> <name> <type> -> <answers or rcode>`.
//!
//! The packet helpers are also used by the `api` service's resolver.

use std::net::Ipv4Addr;

use crate::common::{bind_udp, log};

pub(crate) const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
const TTL: u32 = 60;

pub(crate) const NOERROR: u8 = 0;
const FORMERR: u8 = 1;
pub(crate) const NXDOMAIN: u8 = 3;
const NOTIMP: u8 = 4;

const FLAG_QR: u16 = 0x8000;
const MASK_OPCODE: u16 = 0x7800;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_RA: u16 = 0x0080;

/// A parsed single-question query.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Query {
    pub(crate) id: u16,
    pub(crate) flags: u16,
    /// Dotted name without the trailing dot (empty for the root).
    pub(crate) name: String,
    pub(crate) qtype: u16,
    /// Raw question section (name, type, class), echoed back verbatim.
    question: Vec<u8>,
}

pub(crate) fn run() -> ! {
    let socket = bind_udp("dns", 53);
    let mut buf = [0u8; 4096];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) => {
                log!("dns: recv: {e}");
                continue;
            }
        };
        let reply = match parse_query(&buf[..len]) {
            Ok(query) => {
                let (rcode, answers) = answer(&query);
                let outcome = if rcode == NOERROR {
                    let ips: Vec<String> = answers.iter().map(Ipv4Addr::to_string).collect();
                    format!("[{}]", ips.join(","))
                } else {
                    rcode_name(rcode).to_owned()
                };
                log!("dns: {peer} {} {} -> {outcome}", display_name(&query.name), type_name(query.qtype));
                build_response(&query, rcode, &answers)
            }
            Err(e) => {
                log!("dns: {peer} malformed query: {e}");
                match format_error(&buf[..len]) {
                    Some(reply) => reply,
                    None => continue,
                }
            }
        };
        if let Err(e) = socket.send_to(&reply, peer) {
            log!("dns: send to {peer}: {e}");
        }
    }
}

/// Decide the rcode and answer records for a query from the environment.
fn answer(query: &Query) -> (u8, Vec<Ipv4Addr>) {
    if query.flags & MASK_OPCODE != 0 {
        return (NOTIMP, Vec::new());
    }
    let Ok(value) = std::env::var(env_name(&query.name)) else {
        return (NXDOMAIN, Vec::new());
    };
    if query.qtype != TYPE_A {
        return (NOERROR, Vec::new());
    }
    let ips = value.split(',').filter_map(|ip| ip.trim().parse().ok()).collect();
    (NOERROR, ips)
}

/// `example.com` → `DNS_EXAMPLE_COM__A`.
pub(crate) fn env_name(name: &str) -> String {
    let name: String = name
        .trim_end_matches('.')
        .chars()
        .map(|c| if c == '.' || c == '-' { '_' } else { c.to_ascii_uppercase() })
        .collect();
    format!("DNS_{name}__A")
}

fn be16(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(buf.get(at..at + 2)?.try_into().ok()?))
}

pub(crate) fn parse_query(pkt: &[u8]) -> Result<Query, &'static str> {
    let (id, flags, qdcount) = match (be16(pkt, 0), be16(pkt, 2), be16(pkt, 4)) {
        (Some(id), Some(flags), Some(qd)) if pkt.len() >= 12 => (id, flags, qd),
        _ => return Err("short header"),
    };
    if flags & FLAG_QR != 0 {
        return Err("not a query");
    }
    if qdcount != 1 {
        return Err("expected exactly one question");
    }
    let mut labels = Vec::new();
    let mut pos = 12;
    loop {
        let len = usize::from(*pkt.get(pos).ok_or("truncated name")?);
        pos += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return Err("compressed or invalid label");
        }
        let label = pkt.get(pos..pos + len).ok_or("truncated name")?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        pos += len;
        if pos - 12 > 255 {
            return Err("name too long");
        }
    }
    let qtype = be16(pkt, pos).ok_or("truncated question")?;
    be16(pkt, pos + 2).ok_or("truncated question")?;
    Ok(Query { id, flags, name: labels.join("."), qtype, question: pkt[12..pos + 4].to_vec() })
}

fn header(id: u16, flags: u16, qd: u16, an: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    for field in [id, flags, qd, an, 0, 0] {
        out.extend_from_slice(&field.to_be_bytes());
    }
    out
}

/// Response flags: QR=1, opcode and RD copied from the query, AA=1, RA=1.
fn response_flags(query_flags: u16, rcode: u8) -> u16 {
    FLAG_QR | (query_flags & (MASK_OPCODE | FLAG_RD)) | FLAG_AA | FLAG_RA | u16::from(rcode & 0x0f)
}

pub(crate) fn build_response(query: &Query, rcode: u8, answers: &[Ipv4Addr]) -> Vec<u8> {
    let flags = response_flags(query.flags, rcode);
    let ancount = u16::try_from(answers.len()).unwrap_or(u16::MAX);
    let mut out = header(query.id, flags, 1, ancount);
    out.extend_from_slice(&query.question);
    for ip in answers.iter().take(usize::from(ancount)) {
        out.extend_from_slice(&0xC00Cu16.to_be_bytes()); // pointer to the question name
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&ip.octets());
    }
    out
}

/// A header-only FORMERR reply, if the packet is long enough to have an id.
fn format_error(pkt: &[u8]) -> Option<Vec<u8>> {
    let (id, flags) = (be16(pkt, 0)?, be16(pkt, 2)?);
    if flags & FLAG_QR != 0 {
        return None; // never answer responses
    }
    Some(header(id, response_flags(flags, FORMERR), 0, 0))
}

/// Build a recursive query for `name` (dotted, trailing dot optional).
pub(crate) fn build_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, String> {
    let mut out = header(id, FLAG_RD, 1, 0);
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|&len| len <= 63)
            .ok_or_else(|| format!("label too long in {name:?}"))?;
        out.push(len);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

/// Advance past a (possibly compressed) name starting at `pos`.
fn skip_name(pkt: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *pkt.get(pos)?;
        match len {
            0 => return Some(pos + 1),
            l if l & 0xC0 == 0xC0 => return Some(pos + 2),
            l => pos += 1 + usize::from(l),
        }
    }
}

/// Parse a response to the query with `id`: the A records on success, or the
/// rcode. `Err(None)` means the packet is malformed or not our response.
pub(crate) fn parse_response(pkt: &[u8], id: u16) -> Result<Vec<Ipv4Addr>, Option<u8>> {
    let (rid, flags) = (be16(pkt, 0).ok_or(None)?, be16(pkt, 2).ok_or(None)?);
    let (qdcount, ancount) = (be16(pkt, 4).ok_or(None)?, be16(pkt, 6).ok_or(None)?);
    if rid != id || flags & FLAG_QR == 0 || pkt.len() < 12 {
        return Err(None);
    }
    let rcode = (flags & 0x000f) as u8;
    if rcode != NOERROR {
        return Err(Some(rcode));
    }
    let mut pos = 12;
    for _ in 0..qdcount {
        pos = skip_name(pkt, pos).ok_or(None)? + 4;
    }
    let mut ips = Vec::new();
    for _ in 0..ancount {
        pos = skip_name(pkt, pos).ok_or(None)?;
        let rtype = be16(pkt, pos).ok_or(None)?;
        let class = be16(pkt, pos + 2).ok_or(None)?;
        let rdlen = usize::from(be16(pkt, pos + 8).ok_or(None)?);
        let rdata = pkt.get(pos + 10..pos + 10 + rdlen).ok_or(None)?;
        if rtype == TYPE_A && class == CLASS_IN && rdlen == 4 {
            ips.push(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]));
        }
        pos += 10 + rdlen;
    }
    // A truncated response with no usable answer is treated as malformed.
    if ips.is_empty() && flags & FLAG_TC != 0 {
        return Err(None);
    }
    Ok(ips)
}

pub(crate) fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        NOERROR => "NOERROR",
        FORMERR => "FORMERR",
        2 => "SERVFAIL",
        NXDOMAIN => "NXDOMAIN",
        NOTIMP => "NOTIMP",
        5 => "REFUSED",
        _ => "error",
    }
}

fn type_name(qtype: u16) -> String {
    match qtype {
        TYPE_A => "A".into(),
        TYPE_AAAA => "AAAA".into(),
        other => format!("TYPE{other}"),
    }
}

fn display_name(name: &str) -> &str {
    if name.is_empty() { "." } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_names_to_env_vars() {
        assert_eq!(env_name("example.com"), "DNS_EXAMPLE_COM__A");
        assert_eq!(env_name("my-host.Example.org."), "DNS_MY_HOST_EXAMPLE_ORG__A");
    }

    #[test]
    fn parses_query() {
        let pkt = build_query(0x1234, "www.example.com", TYPE_A).unwrap();
        let query = parse_query(&pkt).unwrap();
        assert_eq!(query.id, 0x1234);
        assert_eq!(query.name, "www.example.com");
        assert_eq!(query.qtype, TYPE_A);
        assert_eq!(query.flags & FLAG_RD, FLAG_RD);
        assert!(parse_query(&pkt[..pkt.len() - 1]).is_err());
        assert!(parse_query(&pkt[..11]).is_err());
    }

    #[test]
    fn round_trips_answers() {
        let query = parse_query(&build_query(7, "example.com", TYPE_A).unwrap()).unwrap();
        let ips = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)];
        let pkt = build_response(&query, NOERROR, &ips);
        let flags = be16(&pkt, 2).unwrap();
        assert_eq!(flags & (FLAG_QR | FLAG_RD | FLAG_RA), FLAG_QR | FLAG_RD | FLAG_RA);
        assert_eq!(&pkt[12 + query.question.len()..][..2], &[0xC0, 0x0C]);
        assert_eq!(parse_response(&pkt, 7), Ok(ips.to_vec()));
        assert_eq!(parse_response(&pkt, 8), Err(None));
    }

    #[test]
    fn round_trips_nxdomain() {
        let query = parse_query(&build_query(9, "nope.test", TYPE_AAAA).unwrap()).unwrap();
        let pkt = build_response(&query, NXDOMAIN, &[]);
        assert_eq!(parse_response(&pkt, 9), Err(Some(NXDOMAIN)));
    }

    #[test]
    fn answers_from_env() {
        // SAFETY: test-only; no other test reads this variable.
        unsafe { std::env::set_var("DNS_ANSWERS_FROM_ENV_TEST__A", "1.2.3.4, 5.6.7.8") };
        let query = parse_query(&build_query(1, "answers-from.env.test", TYPE_A).unwrap()).unwrap();
        let ips = vec![Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8)];
        assert_eq!(answer(&query), (NOERROR, ips));
        let query = parse_query(&build_query(1, "answers-from.env.test", TYPE_AAAA).unwrap()).unwrap();
        assert_eq!(answer(&query), (NOERROR, vec![]));
        let query = parse_query(&build_query(1, "unknown.env.test", TYPE_A).unwrap()).unwrap();
        assert_eq!(answer(&query).0, NXDOMAIN);
    }
}
