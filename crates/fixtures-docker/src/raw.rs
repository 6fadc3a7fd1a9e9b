//! Reading the engine's JSON documents as they are, without bollard's typed models.
//!
//! bollard's models reject what they do not know: Podman's Docker-compatible API answers
//! `"Status": "stopped"` for a container that exited, which bollard's state enum cannot
//! hold, so the whole inspect fails. Documents that [`fixtures_engine_api::document`] reads are
//! fetched here instead, with the HTTP stack bollard already brings in (hyper 1): one
//! connection per request, like the engine's own CLI.

use bytes::Bytes;
use fixtures_core::{Error, ErrorKind};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Where the engine listens.
#[derive(Debug, Clone)]
pub(crate) enum Endpoint {
    Unix(String),
    Tcp(String),
}

/// A GET that answered something other than 2xx.
#[derive(Debug)]
pub(crate) struct Fault {
    pub(crate) status: u16,
    pub(crate) message: String,
}

async fn send(endpoint: &Endpoint, path_and_query: &str) -> std::io::Result<(u16, Bytes)> {
    let request = hyper::Request::get(path_and_query)
        .header(hyper::header::HOST, "docker")
        .body(Empty::<Bytes>::new())
        .map_err(std::io::Error::other)?;
    let response = match endpoint {
        Endpoint::Unix(path) => {
            let stream = tokio::net::UnixStream::connect(path).await?;
            exchange(TokioIo::new(stream), request).await?
        }
        Endpoint::Tcp(authority) => {
            let stream = tokio::net::TcpStream::connect(authority.as_str()).await?;
            exchange(TokioIo::new(stream), request).await?
        }
    };
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map_err(std::io::Error::other)?.to_bytes();
    Ok((status, body))
}

async fn exchange<T>(
    io: T,
    request: hyper::Request<Empty<Bytes>>,
) -> std::io::Result<hyper::Response<hyper::body::Incoming>>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.map_err(std::io::Error::other)?;
    // The connection is driven until the answer is read, then dropped with it.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender.send_request(request).await.map_err(std::io::Error::other)
}

/// `GET path_and_query` as JSON. Err(Ok(fault)) when the engine answered an error status;
/// Err(Err(error)) when it could not be asked or its answer is not JSON.
pub(crate) async fn get_json(
    endpoint: &Endpoint,
    path_and_query: &str,
) -> std::result::Result<Value, std::result::Result<Fault, Error>> {
    let (status, body) = send(endpoint, path_and_query).await.map_err(|e| {
        Err(Error::new(fixtures_engine_api::transport::kind(&e), fixtures_engine_api::transport::failure(&e))
            .with_source(e))
    })?;
    if !(200..300).contains(&status) {
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
        return Err(Ok(Fault { status, message }));
    }
    serde_json::from_slice(&body).map_err(|e| {
        Err(Error::new(ErrorKind::Engine, "the engine's answer is not the JSON document expected").with_source(e))
    })
}
