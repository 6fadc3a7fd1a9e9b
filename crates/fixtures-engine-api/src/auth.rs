//! Registry logins found where the user's own tools keep them, for a pull that was given no
//! credentials in code: a user who ran `docker login` or `podman login` pulls from their
//! private registry as those tools would.
//!
//! - The docker CLI's order: `DOCKER_AUTH_CONFIG` (a config file's JSON), else
//!   `$DOCKER_CONFIG/config.json` (`~/.docker/config.json`); in it, a `credHelpers` entry for
//!   the registry, else its `auths` entry (`auth`: base64 of `user:password`, or
//!   `identitytoken`), else the `credsStore` helper. A helper is the program
//!   `docker-credential-<name>` on `PATH`, asked with `get` and the registry on its input.
//! - Podman's: `REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`, else
//!   `~/.config/containers/auth.json`, else the docker CLI's files as above.
//!
//! Secrets never reach an error or a log line: a failing helper is reported by name only.

use std::path::PathBuf;

use fixtures_core::spec::Credentials;
use serde_json::Value;

/// Whose files to read first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// The docker CLI's.
    Docker,
    /// Podman's, then the docker CLI's.
    Podman,
}

/// The registry of an image reference as the tools key their logins: `docker.io` for Docker
/// Hub's images, else the first path component when it names a host.
pub fn registry_of(reference: &str) -> String {
    match reference.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first.to_owned(),
        _ => "docker.io".to_owned(),
    }
}

/// The login for `registry` the user's tools would use, if any.
pub fn lookup(registry: &str, tool: Tool) -> Option<Credentials> {
    let mut configs: Vec<Value> = Vec::new();
    if tool == Tool::Podman {
        let env_file = std::env::var_os("REGISTRY_AUTH_FILE").map(PathBuf::from);
        let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(|d| PathBuf::from(d).join("containers/auth.json"));
        let config = home().map(|h| h.join(".config/containers/auth.json"));
        configs.extend([env_file, runtime, config].into_iter().flatten().filter_map(|p| read_json(&p)));
    }
    match std::env::var("DOCKER_AUTH_CONFIG").ok().and_then(|t| serde_json::from_str(&t).ok()) {
        Some(inline) => configs.push(inline),
        None => {
            let dir =
                std::env::var_os("DOCKER_CONFIG").map(PathBuf::from).or_else(|| home().map(|h| h.join(".docker")));
            configs.extend(dir.and_then(|d| read_json(&d.join("config.json"))));
        }
    }
    configs.iter().find_map(|config| from_config(config, registry))
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn read_json(path: &std::path::Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The keys a config may file `registry` under: as written, with a scheme, with Docker Hub's
/// old index address.
fn keys(registry: &str) -> Vec<String> {
    let mut keys = vec![registry.to_owned(), format!("https://{registry}"), format!("http://{registry}")];
    if registry == "docker.io" {
        keys.extend(["https://index.docker.io/v1/".to_owned(), "index.docker.io".to_owned()]);
    }
    keys
}

/// The entry of `map` for `registry`, by any of its keys (a trailing `/` or `/v1/` aside).
fn entry<'a>(map: &'a Value, registry: &str) -> Option<&'a Value> {
    let wanted = keys(registry);
    map.as_object()?.iter().find_map(|(key, value)| {
        let bare = key.trim_end_matches('/').trim_end_matches("/v1").trim_end_matches("/v2");
        (wanted.iter().any(|w| w == key || w == bare)).then_some(value)
    })
}

fn from_config(config: &Value, registry: &str) -> Option<Credentials> {
    if let Some(helper) = entry(&config["credHelpers"], registry).and_then(Value::as_str) {
        return from_helper(helper, registry);
    }
    if let Some(auth) = entry(&config["auths"], registry) {
        if let Some(token) = auth["identitytoken"].as_str().filter(|t| !t.is_empty()) {
            return Some(Credentials {
                identity_token: Some(token.to_owned()),
                server_address: Some(registry.to_owned()),
                ..Credentials::default()
            });
        }
        if let Some(pair) = auth["auth"].as_str().and_then(base64).and_then(|b| String::from_utf8(b).ok())
            && let Some((user, password)) = pair.split_once(':')
        {
            return Some(Credentials {
                username: Some(user.to_owned()),
                password: Some(password.to_owned()),
                server_address: Some(registry.to_owned()),
                ..Credentials::default()
            });
        }
    }
    config["credsStore"].as_str().filter(|s| !s.is_empty()).and_then(|store| from_helper(store, registry))
}

/// Asks `docker-credential-<helper>` for `registry`'s login. Its output is never shown.
fn from_helper(helper: &str, registry: &str) -> Option<Credentials> {
    use std::io::Write;
    let program = format!("docker-credential-{helper}");
    let mut child = std::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| tracing::warn!(helper = %program, error = %e, "the credential helper cannot run"))
        .ok()?;
    child.stdin.take()?.write_all(registry.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        // "credentials not found" is the usual answer for a registry it has no login for.
        tracing::debug!(helper = %program, registry, "the credential helper has no login for the registry");
        return None;
    }
    let answer: Value = serde_json::from_slice(&out.stdout).ok()?;
    let user = answer["Username"].as_str().unwrap_or_default();
    let secret = answer["Secret"].as_str().unwrap_or_default().to_owned();
    let server = answer["ServerURL"].as_str().filter(|s| !s.is_empty()).unwrap_or(registry).to_owned();
    Some(if user == "<token>" {
        Credentials { identity_token: Some(secret), server_address: Some(server), ..Credentials::default() }
    } else {
        Credentials {
            username: Some(user.to_owned()),
            password: Some(secret),
            server_address: Some(server),
            ..Credentials::default()
        }
    })
}

/// Standard base64, padding optional.
fn base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.trim().bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_of_references() {
        assert_eq!(registry_of("postgres:16"), "docker.io");
        assert_eq!(registry_of("library/postgres"), "docker.io");
        assert_eq!(registry_of("ghcr.io/org/app:1"), "ghcr.io");
        assert_eq!(registry_of("127.0.0.1:5001/app"), "127.0.0.1:5001");
        assert_eq!(registry_of("localhost/app"), "localhost");
    }

    #[test]
    fn logins_from_a_config() {
        let config: Value = serde_json::from_str(
            r#"{"auths": {"https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNzOndvcmQ="},
                          "reg.example:5000": {"identitytoken": "tok"}}}"#,
        )
        .unwrap();
        let hub = from_config(&config, "docker.io").expect("Docker Hub's login");
        assert_eq!((hub.username.as_deref(), hub.password.as_deref()), (Some("user"), Some("pass:word")));
        let token = from_config(&config, "reg.example:5000").expect("a token");
        assert_eq!(token.identity_token.as_deref(), Some("tok"));
        assert!(from_config(&config, "ghcr.io").is_none());
        assert!(!format!("{hub:?}").contains("pass:word"), "never printed");
        assert_eq!(base64("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(base64("Zm9vYg==").unwrap(), b"foob");
    }
}
