//! What a failed request says when the engine gave no answer at all: the words a report
//! uses, read from the cause's chain rather than from the client library's own text.

use std::error::Error as StdError;
use std::io::ErrorKind as Io;

use fixtures_core::ErrorKind;

/// The kind of a request that got no answer: [`ErrorKind::Unreachable`] when it never
/// reached the engine (nothing listens), else [`ErrorKind::Engine`].
pub fn kind(cause: &(dyn StdError + 'static)) -> ErrorKind {
    if failure(cause) == REFUSED { ErrorKind::Unreachable } else { ErrorKind::Engine }
}

/// One line on why a request got no answer: nothing listens, the engine went away mid-request,
/// or it took too long. Falls back to a plain "the request to the engine failed".
pub fn failure(cause: &(dyn StdError + 'static)) -> &'static str {
    let mut next = Some(cause);
    let mut text = String::new();
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                Io::ConnectionRefused | Io::NotFound => return REFUSED,
                Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe | Io::UnexpectedEof => return CLOSED,
                Io::TimedOut => return SLOW,
                _ => {}
            }
        }
        text.push_str(&err.to_string().to_ascii_lowercase());
        text.push('\n');
        next = err.source();
    }
    if text.contains("connection refused") {
        REFUSED
    } else if [
        "connection closed",
        "connection reset",
        "broken pipe",
        "error reading a body from connection",
        "end of file before message",
    ]
    .iter()
    .any(|t| text.contains(t))
    {
        CLOSED
    } else if text.contains("timed out") || text.contains("timeout") {
        SLOW
    } else {
        "the request to the engine failed"
    }
}

const REFUSED: &str = "the engine does not answer (connection refused): is it running?";
pub(crate) const CLOSED: &str = "the engine closed the connection before answering: did it stop or restart?";
const SLOW: &str = "the engine did not answer in time";

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapped(std::io::Error);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error")
        }
    }
    impl StdError for Wrapped {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn reads_the_cause_chain() {
        let refused = Wrapped(std::io::Error::from(Io::ConnectionRefused));
        assert_eq!(failure(&refused), REFUSED);
        assert_eq!(kind(&refused), ErrorKind::Unreachable);
        let reset = Wrapped(std::io::Error::from(Io::ConnectionReset));
        assert_eq!(failure(&reset), CLOSED);
        assert_eq!(kind(&reset), ErrorKind::Engine);
        let hyper_like = std::io::Error::other("connection closed before message completed");
        assert_eq!(failure(&hyper_like), CLOSED);
        // hyper's words for an answer cut off mid-body, with no I/O error under them.
        assert_eq!(failure(&std::io::Error::other("error reading a body from connection")), CLOSED);
        assert_eq!(failure(&std::io::Error::other("bad things")), "the request to the engine failed");
    }
}
