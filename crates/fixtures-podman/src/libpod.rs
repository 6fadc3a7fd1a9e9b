//! Requests to libpod that podman-api 0.11 cannot make, sent over the same socket
//! with the hyper stack podman-api already brings in (hyper 0.14, hyperlocal 0.8).
//!
//! podman-api builds request bodies from typed builders only, so a container create
//! body with a spec's extra `raw` fields cannot go through it, and its `wait` drops
//! the exit code libpod answers with. Those two calls come here.

use std::path::PathBuf;

use bytes::Bytes;
use hyper::{Body, Method, Request, StatusCode};

/// The libpod API version this backend speaks (podman-api 0.11's).
pub(crate) const API_VERSION: &str = "v4.3.1";

#[derive(Clone)]
enum Transport {
    Unix { client: hyper::Client<hyperlocal::UnixConnector>, path: PathBuf },
    Tcp { client: hyper::Client<hyper::client::HttpConnector>, authority: String },
}

/// A minimal libpod client: JSON in, status and bytes out.
#[derive(Clone)]
pub(crate) struct Libpod {
    transport: Transport,
}

impl std::fmt::Debug for Libpod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.transport {
            Transport::Unix { path, .. } => write!(f, "Libpod(unix://{})", path.display()),
            Transport::Tcp { authority, .. } => write!(f, "Libpod(tcp://{authority})"),
        }
    }
}

/// An answer that is not a success: the status and libpod's error document.
#[derive(Debug)]
pub(crate) struct Fault {
    pub(crate) status: u16,
    /// libpod's `message`, or the body as text.
    pub(crate) message: String,
    /// libpod's `cause` (the Go sentinel error's text), if any.
    pub(crate) cause: String,
}

/// Why a request failed.
#[derive(Debug)]
pub(crate) enum RequestError {
    /// The engine answered with an error status.
    Fault(Fault),
    /// The request did not get an answer.
    Transport(hyper::Error),
    /// The request could not be built (a bad path).
    Build(hyper::http::Error),
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Fault(fault) => write!(f, "the engine answered {}: {}", fault.status, fault.message),
            RequestError::Transport(e) => write!(f, "{e}"),
            RequestError::Build(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RequestError::Fault(_) => None,
            RequestError::Transport(e) => Some(e),
            RequestError::Build(e) => Some(e),
        }
    }
}

impl Libpod {
    // No idle connections are kept: a pooled connection belongs to the tokio runtime that
    // opened it, and tests run one runtime each while sharing this client (podman-api's
    // own client is built the same way).
    pub(crate) fn unix(path: impl Into<PathBuf>) -> Self {
        let client = hyper::Client::builder().pool_max_idle_per_host(0).build(hyperlocal::UnixConnector);
        Libpod { transport: Transport::Unix { client, path: path.into() } }
    }

    pub(crate) fn tcp(authority: impl Into<String>) -> Self {
        let client = hyper::Client::builder().pool_max_idle_per_host(0).build_http();
        Libpod { transport: Transport::Tcp { client, authority: authority.into() } }
    }

    /// Sends `method /v4.3.1/libpod{path}` with an optional JSON body; answers the body of a 2xx.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        json: Option<&serde_json::Value>,
    ) -> Result<Bytes, RequestError> {
        let endpoint = format!("/{API_VERSION}/libpod{path}");
        let uri: hyper::Uri = match &self.transport {
            Transport::Unix { path, .. } => hyperlocal::Uri::new(path, &endpoint).into(),
            Transport::Tcp { authority, .. } => format!("http://{authority}{endpoint}")
                .parse()
                .map_err(|e| RequestError::Build(hyper::http::Error::from(e)))?,
        };
        let mut request = Request::builder().method(method).uri(uri);
        let body = match json {
            Some(value) => {
                request = request.header("Content-Type", "application/json");
                Body::from(serde_json::to_vec(value).unwrap_or_default())
            }
            None => Body::empty(),
        };
        let request = request.body(body).map_err(RequestError::Build)?;
        let response = match &self.transport {
            Transport::Unix { client, .. } => client.request(request).await,
            Transport::Tcp { client, .. } => client.request(request).await,
        }
        .map_err(RequestError::Transport)?;
        let status = response.status();
        let bytes = hyper::body::to_bytes(response.into_body()).await.map_err(RequestError::Transport)?;
        if status.is_success() {
            return Ok(bytes);
        }
        Err(RequestError::Fault(fault(status, &bytes)))
    }
}

/// libpod's error document `{"cause": .., "message": .., "response": ..}`, or the body as text.
fn fault(status: StatusCode, body: &[u8]) -> Fault {
    let doc: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    let text = |key: &str| doc.get(key).and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
    let mut message = text("message");
    if message.is_empty() {
        message = String::from_utf8_lossy(body).trim().to_owned();
    }
    if message.is_empty() {
        message = status.canonical_reason().unwrap_or("error").to_owned();
    }
    Fault { status: status.as_u16(), message, cause: text("cause") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_read_libpod_error_documents() {
        let f = fault(
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"{"cause":"image not known","message":"x:1: image not known","response":500}"#,
        );
        assert_eq!((f.status, f.message.as_str(), f.cause.as_str()), (500, "x:1: image not known", "image not known"));
        let f = fault(StatusCode::NOT_FOUND, b"");
        assert_eq!((f.message.as_str(), f.cause.as_str()), ("Not Found", ""));
    }
}
