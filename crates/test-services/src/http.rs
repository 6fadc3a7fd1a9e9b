//! `http`: a tiny HTTP/1.1 server (thread per connection, `Connection: close`).
//!
//! Routes (`GET` or `HEAD`):
//! - `/` → 200 with `RESPONSE_BODY` (default `hello\n`)
//! - `/status/<code>` → status `<code>` (200..=599) with body `<code>\n`
//! - `/env/<NAME>` → 200 with the value of env var `NAME` (no newline added), or 404
//! - `/health` → 200 `ok`
//! - anything else → 404
//!
//! Env: `PORT` (default 8080), `LISTEN_DELAY_MS` (default 0), `RESPONSE_BODY`.
//! Logs `http: listening on 0.0.0.0:<port>` and one line per request:
//! `http: <peer> "<request line>" <status>`.
//!
//! The connection handling is shared with the `api` service via [`serve`].

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::{bind_tcp, log};

const MAX_HEAD: u64 = 16 * 1024;

#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// Path without the query string.
    pub(crate) path: String,
    pub(crate) line: String,
}

#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: String,
}

impl Response {
    pub(crate) fn text(status: u16, body: impl Into<String>) -> Self {
        Self { status, content_type: "text/plain; charset=utf-8", body: body.into() }
    }

    pub(crate) fn json(status: u16, body: impl Into<String>) -> Self {
        Self { status, content_type: "application/json", body: body.into() }
    }
}

pub(crate) fn run() -> ! {
    serve("http", route)
}

fn route(req: &Request) -> Response {
    if !matches!(req.method.as_str(), "GET" | "HEAD") {
        return Response::text(404, "not found\n");
    }
    let path = req.path.as_str();
    if path == "/" {
        let body = std::env::var("RESPONSE_BODY").unwrap_or_else(|_| "hello\n".into());
        return Response::text(200, body);
    }
    if path == "/health" {
        return Response::text(200, "ok");
    }
    if let Some(code) = path.strip_prefix("/status/") {
        return match code.parse::<u16>() {
            Ok(status @ 200..=599) => Response::text(status, format!("{status}\n")),
            _ => Response::text(400, "bad status code\n"),
        };
    }
    if let Some(name) = path.strip_prefix("/env/") {
        return match std::env::var(name) {
            Ok(value) => Response::text(200, value),
            Err(_) => Response::text(404, "not found\n"),
        };
    }
    Response::text(404, "not found\n")
}

/// Listen on `PORT` and answer every request with `handler`.
pub(crate) fn serve(service: &'static str, handler: fn(&Request) -> Response) -> ! {
    let listener = bind_tcp(service, 8080);
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                std::thread::spawn(move || {
                    if let Err(e) = handle(service, stream, handler) {
                        log!("{service}: connection error: {e}");
                    }
                });
            }
            Err(e) => log!("{service}: accept: {e}"),
        }
    }
    unreachable!("TcpListener::incoming never ends")
}

fn handle(service: &str, stream: TcpStream, handler: fn(&Request) -> Response) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let peer = stream.peer_addr()?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let Some(req) = read_request(&mut reader)? else {
        return Ok(());
    };
    let (resp, with_body) = match req {
        Ok(req) => {
            let resp = handler(&req);
            log!("{service}: {peer} \"{}\" {}", req.line, resp.status);
            (resp, req.method != "HEAD")
        }
        Err(line) => {
            log!("{service}: {peer} \"{line}\" 400");
            (Response::text(400, "bad request\n"), true)
        }
    };
    let mut stream = stream;
    stream.write_all(&encode(&resp, with_body))?;
    stream.flush()
}

/// Read one request head and discard its body. `Ok(None)` on a closed
/// connection, `Ok(Some(Err(line)))` on a malformed request line.
fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Result<Request, String>>> {
    let mut head = reader.take(MAX_HEAD);
    let mut line = String::new();
    if head.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let request_line = line.trim_end().to_owned();
    let mut content_length = 0u64;
    loop {
        line.clear();
        if head.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated request head"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let header = header.split_once(':');
        if let Some((_, value)) = header.filter(|(name, _)| name.eq_ignore_ascii_case("content-length")) {
            content_length = value.trim().parse().unwrap_or(0);
        }
    }
    // Drain the body so closing the socket does not reset the connection.
    io::copy(&mut reader.take(content_length), &mut io::sink())?;
    Ok(Some(parse_request_line(&request_line).ok_or(request_line)))
}

fn parse_request_line(line: &str) -> Option<Request> {
    let mut parts = line.split_whitespace();
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !version.starts_with("HTTP/") {
        return None;
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    Some(Request { method: method.to_owned(), path: path.to_owned(), line: line.to_owned() })
}

/// Serialise a response; `with_body` is false for `HEAD` requests.
fn encode(resp: &Response, with_body: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    // 204 and 304 responses carry no body and no Content-Length.
    let bodyless = matches!(resp.status, 204 | 304);
    if !bodyless {
        out += &format!("Content-Type: {}\r\n", resp.content_type);
        out += &format!("Content-Length: {}\r\n", resp.body.len());
    }
    out += "Connection: close\r\n\r\n";
    if with_body && !bodyless {
        out += &resp.body;
    }
    out.into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        418 => "I'm a teapot",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Response {
        route(&parse_request_line(&format!("GET {path} HTTP/1.1")).unwrap())
    }

    #[test]
    fn parses_request_line() {
        let req = parse_request_line("GET /status/503?x=1 HTTP/1.1").unwrap();
        assert_eq!((req.method.as_str(), req.path.as_str()), ("GET", "/status/503"));
        assert!(parse_request_line("GET /").is_none());
        assert!(parse_request_line("hello world foo").is_none());
    }

    #[test]
    fn routes() {
        assert_eq!(get("/health").body, "ok");
        let resp = get("/status/503");
        assert_eq!((resp.status, resp.body.as_str()), (503, "503\n"));
        assert_eq!(get("/status/abc").status, 400);
        assert_eq!(get("/nope").status, 404);
        assert_eq!(get("/env/TEST_SERVICES_SURELY_UNSET").status, 404);
    }

    #[test]
    fn reads_request_and_drains_body() {
        let raw = b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n";
        let mut reader = &raw[..];
        let req = read_request(&mut reader).unwrap().unwrap().unwrap();
        assert_eq!(req.method, "POST");
        let req = read_request(&mut reader).unwrap().unwrap().unwrap();
        assert_eq!(req.path, "/");
        assert!(read_request(&mut reader).unwrap().is_none());
    }

    #[test]
    fn encodes_response() {
        let bytes = encode(&Response::text(200, "hi"), true);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Content-Length: 2\r\n"));
        assert!(text.ends_with("\r\n\r\nhi"));
    }
}
