//! The small languages inside compose values: ports, sizes, durations, command lines,
//! volume strings, tmpfs options and `.env` files. Each returns a message a user can act on.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use fixtures_core::spec::{Port, Protocol};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::model::ServiceVolume;

/// Why a service name cannot be a fixture name, if it cannot.
pub(crate) fn bad_service_name(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a service needs a name".to_owned());
    }
    if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return None;
    }
    Some(format!(
        "service name `{name}` has characters a fixture name cannot have: use letters, digits, `_` and `-` \
         (the service is the fixture a test asks for by that name)"
    ))
}

/// Why a network or volume name cannot be a fixture name's stem, if it cannot.
pub(crate) fn bad_name(kind: &str, name: &str) -> Option<String> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return None;
    }
    Some(format!(
        "{kind} name `{name}` has characters a fixture name cannot have: use letters, digits, `_` and `-` \
         (it is the fixture `{name}-{kind}`)"
    ))
}

/// A published port: the container's port, and the host address it is published on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortMapping {
    pub(crate) port: Port,
    /// The host address the file names, if any.
    pub(crate) host_ip: Option<String>,
    /// The host port the file names, if any (kept only for the record: tests in parallel
    /// cannot share one, so the engine picks a free one).
    pub(crate) host_port: Option<String>,
}

fn protocol(text: &str) -> Result<Protocol, String> {
    match text.to_ascii_lowercase().as_str() {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        "sctp" => Ok(Protocol::Sctp),
        other => Err(format!("protocol `{other}` is not tcp, udp or sctp")),
    }
}

/// `8080` or `8000-8010`: the ports of a range.
fn port_range(text: &str, whole: &str) -> Result<Vec<u16>, String> {
    let number = |t: &str| {
        t.trim()
            .parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("port `{whole}`: `{t}` is not a port number (1 to 65535)"))
    };
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (number(a)?, number(b)?);
            if a > b {
                return Err(format!("port `{whole}`: the range `{text}` ends before it starts"));
            }
            Ok((a..=b).collect())
        }
        None => Ok(vec![number(text)?]),
    }
}

/// The short syntax: `[[ip:][host]:]container[/protocol]`, ports or ranges.
pub(crate) fn short_ports(text: &str) -> Result<Vec<PortMapping>, String> {
    let (spec, proto) = match text.rsplit_once('/') {
        Some((spec, proto)) => (spec, protocol(proto).map_err(|e| format!("port `{text}`: {e}"))?),
        None => (text, Protocol::Tcp),
    };
    // An IPv6 host address is written in brackets: `[::1]:8080:80`.
    let (ip, rest) = match spec.strip_prefix('[') {
        Some(after) => match after.split_once("]:") {
            Some((ip, rest)) => (Some(ip.to_owned()), rest),
            None => return Err(format!("port `{text}`: an IPv6 address is written `[addr]:host:container`")),
        },
        None => (None, spec),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match (ip, parts.as_slice()) {
        (None, [c]) => (None, None, *c),
        (None, [h, c]) => (None, Some(*h), *c),
        (None, [ip, h, c]) => (Some((*ip).to_owned()), Some(*h), *c),
        (Some(ip), [h, c]) => (Some(ip), Some(*h), *c),
        _ => {
            return Err(format!(
                "port `{text}` is not `[[ip:][host]:]container[/protocol]` (e.g. `8080`, `8080:80`, `127.0.0.1::80/udp`)"
            ));
        }
    };
    let containers = port_range(container, text)?;
    let hosts = match host.filter(|h| !h.is_empty()) {
        Some(h) => Some(port_range(h, text)?),
        None => None,
    };
    // A host range may give one container port a choice of host ports; otherwise the two
    // ranges pair up one to one.
    if let Some(hosts) = &hosts
        && hosts.len() != containers.len()
        && containers.len() != 1
    {
        return Err(format!(
            "port `{text}`: the host range has {} ports and the container range {}",
            hosts.len(),
            containers.len()
        ));
    }
    Ok(containers
        .iter()
        .enumerate()
        .map(|(i, n)| PortMapping {
            port: Port { number: *n, protocol: proto },
            host_ip: ip.clone().filter(|ip| !ip.is_empty()),
            host_port: hosts.as_ref().map(|h| match (h.len(), containers.len()) {
                (n, 1) if n > 1 => format!("{}-{}", h[0], h[n - 1]),
                _ => h.get(i).unwrap_or(&h[0]).to_string(),
            }),
        })
        .collect())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongPort {
    target: u16,
    published: Option<StringOrNumber>,
    host_ip: Option<String>,
    protocol: Option<String>,
    /// `host` or `ingress`: swarm's routing mesh; a single engine publishes either way.
    #[allow(dead_code)]
    mode: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    Number(u64),
    Text(String),
}

/// One entry of `ports:` (a range in short syntax gives several mappings).
pub(crate) struct PortEntries(pub(crate) Vec<PortMapping>);

impl<'de> Deserialize<'de> for PortEntries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PortEntries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port: `8080`, `8080:80`, `127.0.0.1::80/udp`, or a mapping with target")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortEntries, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortEntries, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<PortEntries, E> {
                short_ports(text).map(PortEntries).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PortEntries, A::Error> {
                let long = LongPort::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let proto = match &long.protocol {
                    Some(p) => protocol(p).map_err(de::Error::custom)?,
                    None => Protocol::Tcp,
                };
                if long.target == 0 {
                    return Err(de::Error::custom("port target 0 is not a port"));
                }
                Ok(PortEntries(vec![PortMapping {
                    port: Port { number: long.target, protocol: proto },
                    host_ip: long.host_ip,
                    host_port: long.published.map(|p| match p {
                        StringOrNumber::Number(n) => n.to_string(),
                        StringOrNumber::Text(t) => t,
                    }),
                }]))
            }
        }
        d.deserialize_any(V)
    }
}

/// `expose:` entries: `80`, `80/udp`, `8000-8010`.
pub(crate) fn expose(text: &str) -> Result<Vec<Port>, String> {
    let (spec, proto) = match text.rsplit_once('/') {
        Some((spec, proto)) => (spec, protocol(proto).map_err(|e| format!("expose `{text}`: {e}"))?),
        None => (text, Protocol::Tcp),
    };
    Ok(port_range(spec, text)?.into_iter().map(|number| Port { number, protocol: proto }).collect())
}

/// A tmpfs mount: where, and its size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TmpfsMount {
    pub(crate) target: String,
    pub(crate) size: Option<u64>,
}

/// `/run` or `/run:size=64m`.
pub(crate) fn tmpfs(text: &str) -> Result<TmpfsMount, String> {
    let (target, options) = match text.split_once(':') {
        Some((t, o)) => (t, o),
        None => (text, ""),
    };
    if !target.starts_with('/') {
        return Err(format!("tmpfs `{text}`: the path in the container must be absolute"));
    }
    let mut size = None;
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("size", v)) => size = Some(bytes(v)? as u64),
            None if option == "rw" => {}
            _ => return Err(format!("tmpfs `{text}`: option `{option}` is not supported (only size=..)")),
        }
    }
    Ok(TmpfsMount { target: target.to_owned(), size })
}

/// A volume's short syntax: `name:/path[:ro]`, `./dir:/path[:ro]`, `/path`.
pub(crate) fn short_volume(text: &str) -> Result<ServiceVolume, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => return Ok(ServiceVolume::Anonymous { target: (*target).to_owned() }),
        [s, t] => (*s, *t, ""),
        [s, t, m] => (*s, *t, *m),
        _ => return Err(format!("volume `{text}` is not `source:target[:ro]`")),
    };
    let mut read_only = false;
    for flag in mode.split(',').filter(|f| !f.is_empty()) {
        match flag {
            "ro" => read_only = true,
            "rw" => read_only = false,
            // SELinux relabelling, consistency and propagation: nothing to do on these engines.
            "z" | "Z" | "cached" | "delegated" | "consistent" | "nocopy" | "shared" | "rshared" | "slave"
            | "rslave" | "private" | "rprivate" => {}
            other => {
                return Err(format!("volume `{text}`: mode `{other}` is not one Compose knows (ro, rw, z, Z, ...)"));
            }
        }
    }
    let target = mount_target(target).map_err(|e| format!("volume `{text}`: {e}"))?;
    if source.starts_with(['.', '/', '~']) {
        Ok(ServiceVolume::Bind { source: source.to_owned(), target, read_only, create_host_path: true })
    } else {
        Ok(ServiceVolume::Named { name: source.to_owned(), target, read_only })
    }
}

/// A mount's path in the container as the engine keeps it: absolute, without a trailing `/`.
pub(crate) fn mount_target(target: &str) -> Result<String, String> {
    if !target.starts_with('/') {
        return Err(format!("the path in the container `{target}` must be absolute"));
    }
    let trimmed = target.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/".to_owned() } else { trimmed.to_owned() })
}

/// `` (did you mean `x`?)`` for a key one or two edits from a Compose key, else nothing.
pub(crate) fn did_you_mean(key: &str) -> String {
    const KEYS: &[&str] = &[
        "image",
        "build",
        "command",
        "entrypoint",
        "environment",
        "env_file",
        "ports",
        "expose",
        "volumes",
        "tmpfs",
        "networks",
        "network_mode",
        "depends_on",
        "healthcheck",
        "labels",
        "user",
        "working_dir",
        "hostname",
        "domainname",
        "dns",
        "dns_search",
        "dns_opt",
        "extra_hosts",
        "cap_add",
        "cap_drop",
        "privileged",
        "read_only",
        "init",
        "stop_signal",
        "stop_grace_period",
        "shm_size",
        "mem_limit",
        "mem_reservation",
        "cpus",
        "pids_limit",
        "ulimits",
        "sysctls",
        "profiles",
        "container_name",
        "restart",
        "secrets",
        "configs",
        "deploy",
        "gpus",
        "platform",
        "stdin_open",
        "tty",
        "pull_policy",
        "links",
        "extends",
        "pid",
        "ipc",
        "devices",
        "group_add",
        "security_opt",
        "logging",
    ];
    let close = KEYS
        .iter()
        .map(|k| (fixtures_core::__private::edit_distance(key, k), k))
        .filter(|(edits, _)| *edits <= 2)
        .min_by_key(|(edits, _)| *edits);
    close.map(|(_, k)| format!(" (did you mean `{k}`?)")).unwrap_or_default()
}

/// Splits a command line into words as a POSIX shell would, without expanding anything.
pub(crate) fn shell_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("command `{text}` has an unclosed single quote")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("command `{text}` ends inside double quotes")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("command `{text}` has an unclosed double quote")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// A duration as Compose writes it (Go's syntax): `10s`, `1m30s`, `1.5s`, `500ms`, `2h`.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration (e.g. `10s`, `1m30s`, `500ms`)");
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = t;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// A size: `1024`, `64m`, `1g`, `512kb`, `1.5g` (binary units, as Compose reads them).
pub(crate) fn bytes(text: &str) -> Result<i64, String> {
    let bad = || format!("`{text}` is not a size (e.g. `64m`, `1g`, `512k`, or a number of bytes)");
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let number: f64 = t[..split].parse().map_err(|_| bad())?;
    let unit = match t[split..].trim() {
        "" | "b" => 1.0,
        "k" | "kb" => 1024.0,
        "m" | "mb" => 1024.0 * 1024.0,
        "g" | "gb" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    Ok((number * unit) as i64)
}

/// The variables of a `.env` or `env_file` file: `KEY=value` lines, `#` comments, an optional
/// `export `, values in single or double quotes taken as they are. A bare `KEY` has no value.
pub(crate) fn dotenv(text: &str) -> Result<BTreeMap<String, Option<String>>, String> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            out.insert(line.to_owned(), None);
            continue;
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("line {}: `{line}` is not `KEY=value`", n + 1));
        }
        let value = value.trim();
        let value = match value.chars().next() {
            Some(q @ ('"' | '\'')) if value.len() >= 2 && value.ends_with(q) => value[1..value.len() - 1].to_owned(),
            // An unquoted value ends at ` #`.
            _ => value.split(" #").next().unwrap_or_default().trim_end().to_owned(),
        };
        out.insert(key.to_owned(), Some(value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(text: &str) -> String {
        match short_ports(text) {
            Ok(list) => list
                .iter()
                .map(|p| {
                    format!(
                        "{}@{}:{}",
                        p.port,
                        p.host_ip.as_deref().unwrap_or("-"),
                        p.host_port.as_deref().unwrap_or("-")
                    )
                })
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn short_port_syntax() {
        assert_eq!(ports("80"), "80/tcp@-:-");
        assert_eq!(ports("8080:80"), "80/tcp@-:8080");
        assert_eq!(ports("127.0.0.1:8080:80/udp"), "80/udp@127.0.0.1:8080");
        assert_eq!(ports("127.0.0.1::80"), "80/tcp@127.0.0.1:-");
        assert_eq!(ports("9000-9001:8000-8001"), "8000/tcp@-:9000 8001/tcp@-:9001");
        assert_eq!(ports("7000-7001"), "7000/tcp@-:- 7001/tcp@-:-");
        assert_eq!(ports("[::1]:8080:80"), "80/tcp@::1:8080");
        assert_eq!(ports("http"), "error: port `http`: `http` is not a port number (1 to 65535)");
        assert_eq!(ports("80/icmp"), "error: port `80/icmp`: protocol `icmp` is not tcp, udp or sctp");
        assert_eq!(ports("90-80"), "error: port `90-80`: the range `90-80` ends before it starts");
        assert_eq!(ports("1-3:1-2"), "error: port `1-3:1-2`: the host range has 3 ports and the container range 2");
        assert!(ports("a:b:c:d").starts_with("error: port `a:b:c:d` is not"));
    }

    #[test]
    fn command_lines_split_as_a_shell_would() {
        assert_eq!(shell_words("sh -c 'echo hi; exit 3'").unwrap(), ["sh", "-c", "echo hi; exit 3"]);
        assert_eq!(shell_words(r#"a "b \"c\"" d\ e"#).unwrap(), ["a", "b \"c\"", "d e"]);
        assert_eq!(shell_words("  ").unwrap(), Vec::<String>::new());
        assert!(shell_words("a 'b").is_err());
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(duration("10").is_err());
        assert!(duration("ten seconds").is_err());
        assert!(duration("99999999999999999999h").is_err(), "too long is an error, not a panic");
        assert_eq!(bytes("64m").unwrap(), 64 << 20);
        assert_eq!(bytes("1G").unwrap(), 1 << 30);
        assert_eq!(bytes("512kb").unwrap(), 512 << 10);
        assert_eq!(bytes("1024").unwrap(), 1024);
        assert!(bytes("lots").is_err());
    }

    #[test]
    fn volumes_and_tmpfs() {
        assert!(matches!(short_volume("data:/var/lib/db:ro"), Ok(ServiceVolume::Named { read_only: true, .. })));
        assert!(matches!(short_volume("./conf:/etc/app"), Ok(ServiceVolume::Bind { read_only: false, .. })));
        assert!(matches!(short_volume("/scratch"), Ok(ServiceVolume::Anonymous { .. })));
        assert!(
            matches!(short_volume("./c:/etc/app/:z"), Ok(ServiceVolume::Bind { target, .. }) if target == "/etc/app")
        );
        assert!(short_volume("data:/x:rx").unwrap_err().contains("mode `rx`"));
        assert_eq!(did_you_mean("enviroment"), " (did you mean `environment`?)");
        assert_eq!(did_you_mean("something"), "");
        assert!(short_volume("data:relative").is_err());
        assert_eq!(tmpfs("/run:size=1m").unwrap(), TmpfsMount { target: "/run".into(), size: Some(1 << 20) });
        assert!(tmpfs("/run:uid=0").is_err());
    }

    #[test]
    fn dotenv_files() {
        let vars = dotenv("# c\nA=1\nexport B = \"two words\"\nC='x # y'\nD=v # note\nE\n").unwrap();
        let get = |k: &str| vars.get(k).cloned().flatten();
        assert_eq!(get("A").as_deref(), Some("1"));
        assert_eq!(get("B").as_deref(), Some("two words"));
        assert_eq!(get("C").as_deref(), Some("x # y"));
        assert_eq!(get("D").as_deref(), Some("v"));
        assert_eq!(vars.get("E"), Some(&None));
        assert!(dotenv("A B=1").is_err());
    }
}
