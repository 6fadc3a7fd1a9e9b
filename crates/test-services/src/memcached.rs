//! `memcached`: a TCP server speaking a subset of the memcached text protocol.
//!
//! Commands: `set <key> <flags> <exptime> <bytes> [noreply]` + data block,
//! `get <key>...` (also `gets`, without CAS), `delete <key> [noreply]`,
//! `version`, `quit`; anything else → `ERROR`. The store is shared by all
//! connections. Pipelined commands and data split across reads are handled.
//!
//! Env: `PORT` (default 11211), `LISTEN_DELAY_MS` (default 0).
//! Logs `memcached: listening on 0.0.0.0:<port>`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::{bind_tcp, log};

const MAX_LINE: usize = 2048;
const MAX_KEY: usize = 250;
const MAX_VALUE: usize = 16 * 1024 * 1024;
/// Expiry times above this many seconds are absolute Unix timestamps.
const RELATIVE_EXPIRY_LIMIT: i64 = 60 * 60 * 24 * 30;

#[derive(Debug)]
struct Entry {
    flags: u32,
    data: Vec<u8>,
    expires: Option<Instant>,
}

type Store = Arc<Mutex<HashMap<String, Entry>>>;

#[derive(Debug, PartialEq, Eq)]
enum Command {
    Set {
        key: String,
        flags: u32,
        exptime: i64,
        data: Vec<u8>,
        noreply: bool,
    },
    Get {
        keys: Vec<String>,
    },
    Delete {
        key: String,
        noreply: bool,
    },
    Version,
    Quit,
    /// Reply with this line and carry on.
    Error(&'static str),
    /// Reply with this line and close the connection.
    Fatal(&'static str),
}

pub(crate) fn run() -> ! {
    let listener = bind_tcp("memcached", 11211);
    let store = Store::default();
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    if let Err(e) = handle(stream, &store) {
                        log!("memcached: connection error: {e}");
                    }
                });
            }
            Err(e) => log!("memcached: accept: {e}"),
        }
    }
    unreachable!("TcpListener::incoming never ends")
}

fn handle(mut stream: TcpStream, store: &Store) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut out = Vec::new();
        let mut consumed = 0;
        let mut open = true;
        while let Some((cmd, used)) = parse(&buf[consumed..]) {
            consumed += used;
            open = execute(cmd, store, &mut out);
            if !open {
                break;
            }
        }
        buf.drain(..consumed);
        stream.write_all(&out)?;
        if !open {
            return Ok(());
        }
    }
}

/// Parse one command from the front of `buf`: the command and the number of
/// bytes it used, or `None` if more input is needed.
fn parse(buf: &[u8]) -> Option<(Command, usize)> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return (buf.len() > MAX_LINE).then_some((Command::Fatal("CLIENT_ERROR line too long"), buf.len()));
    };
    let line_len = nl + 1;
    let Ok(line) = std::str::from_utf8(&buf[..nl]) else {
        return Some((Command::Error("CLIENT_ERROR invalid utf-8"), line_len));
    };
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let cmd = match tokens.as_slice() {
        ["set", key, flags, exptime, bytes, rest @ ..] if rest.is_empty() || rest == ["noreply"] => {
            let parsed = (flags.parse::<u32>(), exptime.parse::<i64>(), bytes.parse::<usize>());
            let (Ok(flags), Ok(exptime), Ok(bytes)) = parsed else {
                return Some((Command::Error("CLIENT_ERROR bad command line format"), line_len));
            };
            if key.len() > MAX_KEY {
                return Some((Command::Error("CLIENT_ERROR bad command line format"), line_len));
            }
            if bytes > MAX_VALUE {
                return Some((Command::Fatal("SERVER_ERROR object too large for cache"), line_len));
            }
            let end = line_len + bytes + 2;
            if buf.len() < end {
                return None;
            }
            if &buf[end - 2..end] != b"\r\n" {
                return Some((Command::Error("CLIENT_ERROR bad data chunk"), end));
            }
            let data = buf[line_len..end - 2].to_vec();
            let noreply = !rest.is_empty();
            return Some((Command::Set { key: (*key).to_owned(), flags, exptime, data, noreply }, end));
        }
        ["get" | "gets", keys @ ..] if !keys.is_empty() => {
            Command::Get { keys: keys.iter().map(|k| (*k).to_owned()).collect() }
        }
        ["delete", key] => Command::Delete { key: (*key).to_owned(), noreply: false },
        ["delete", key, "noreply"] => Command::Delete { key: (*key).to_owned(), noreply: true },
        ["version"] => Command::Version,
        ["quit"] => Command::Quit,
        _ => Command::Error("ERROR"),
    };
    Some((cmd, line_len))
}

/// Convert a memcached expiry time into a deadline.
fn expiry(exptime: i64) -> Option<Instant> {
    let now = Instant::now();
    let secs = match exptime {
        0 => return None,
        e if e < 0 => return Some(now),
        e if e <= RELATIVE_EXPIRY_LIMIT => e,
        e => {
            let unix_now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            e.saturating_sub(i64::try_from(unix_now).unwrap_or(i64::MAX)).max(0)
        }
    };
    Some(now + Duration::from_secs(secs.unsigned_abs()))
}

/// Run a command, appending the reply to `out`. Returns false to close.
fn execute(cmd: Command, store: &Store, out: &mut Vec<u8>) -> bool {
    let mut map = store.lock().unwrap_or_else(PoisonError::into_inner);
    match cmd {
        Command::Set { key, flags, exptime, data, noreply } => {
            map.insert(key, Entry { flags, data, expires: expiry(exptime) });
            if !noreply {
                out.extend_from_slice(b"STORED\r\n");
            }
        }
        Command::Get { keys } => {
            let now = Instant::now();
            for key in keys {
                if map.get(&key).is_some_and(|e| e.expires.is_some_and(|t| t <= now)) {
                    map.remove(&key);
                }
                if let Some(entry) = map.get(&key) {
                    out.extend_from_slice(format!("VALUE {key} {} {}\r\n", entry.flags, entry.data.len()).as_bytes());
                    out.extend_from_slice(&entry.data);
                    out.extend_from_slice(b"\r\n");
                }
            }
            out.extend_from_slice(b"END\r\n");
        }
        Command::Delete { key, noreply } => {
            let now = Instant::now();
            let live = map.remove(&key).is_some_and(|e| e.expires.is_none_or(|t| t > now));
            if !noreply {
                out.extend_from_slice(if live { b"DELETED\r\n" } else { b"NOT_FOUND\r\n" });
            }
        }
        Command::Version => out.extend_from_slice(b"VERSION 1.6.0-test-services\r\n"),
        Command::Quit => return false,
        Command::Error(reply) => out.extend_from_slice(format!("{reply}\r\n").as_bytes()),
        Command::Fatal(reply) => {
            out.extend_from_slice(format!("{reply}\r\n").as_bytes());
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `chunks` one at a time like successive reads; collect the replies.
    fn exchange(store: &Store, chunks: &[&[u8]]) -> String {
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            let mut consumed = 0;
            while let Some((cmd, used)) = parse(&buf[consumed..]) {
                consumed += used;
                execute(cmd, store, &mut out);
            }
            buf.drain(..consumed);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn parses_pipelined_commands() {
        let buf = b"set mykey 0 600 4\r\ndata\r\nget mykey other\r\n";
        let (cmd, used) = parse(buf).unwrap();
        let expected =
            Command::Set { key: "mykey".into(), flags: 0, exptime: 600, data: b"data".to_vec(), noreply: false };
        assert_eq!(cmd, expected);
        let (cmd, rest) = parse(&buf[used..]).unwrap();
        assert_eq!(cmd, Command::Get { keys: vec!["mykey".into(), "other".into()] });
        assert_eq!(used + rest, buf.len());
    }

    #[test]
    fn waits_for_split_input() {
        assert_eq!(parse(b"get myk"), None);
        assert_eq!(parse(b"set k 0 0 4\r\nda"), None);
        assert_eq!(parse(b"set k 0 0 4\r\ndata\r"), None);
        assert_eq!(parse(b"set k 0 0 4\r\ndataxx").unwrap().0, Command::Error("CLIENT_ERROR bad data chunk"));
        assert_eq!(parse(b"bogus\r\n").unwrap().0, Command::Error("ERROR"));
        assert_eq!(parse(b"set k x 0 4\r\n").unwrap().0, Command::Error("CLIENT_ERROR bad command line format"));
    }

    #[test]
    fn expected_exchange() {
        let store = Store::default();
        let replies = exchange(&store, &[b"set mykey 0 600 4\r\nda", b"ta\r\nget mykey\r\n"]);
        assert_eq!(replies, "STORED\r\nVALUE mykey 0 4\r\ndata\r\nEND\r\n");
        let replies = exchange(&store, &[b"delete mykey\r\ndelete mykey\r\nget mykey\r\nset x 1 0 0 noreply\r\n\r\n"]);
        assert_eq!(replies, "DELETED\r\nNOT_FOUND\r\nEND\r\n");
        assert_eq!(exchange(&store, &[b"get x\r\n"]), "VALUE x 1 0\r\n\r\nEND\r\n");
        let replies = exchange(&store, &[b"set gone 0 -1 1\r\nz\r\nget gone\r\n"]);
        assert_eq!(replies, "STORED\r\nEND\r\n");
    }
}
