//! A compose file as read: the keys this crate supports, each in the shapes Compose accepts
//! (a string or a list, a map or a list of `KEY=value`, short or long syntax), already
//! interpolated. Every other key is an error at its line, naming the service; `x-` keys are
//! extensions and skipped.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::values;

thread_local! {
    /// The service being read, for error messages (parsing is synchronous and one file at a time).
    static SERVICE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The service whose text was being read when an error came.
pub(crate) fn failing_service() -> Option<String> {
    SERVICE.with(|s| s.borrow().clone())
}

pub(crate) fn reset_failing_service() {
    SERVICE.with(|s| *s.borrow_mut() = None);
}

/// What brackets a key's place at the start of a custom error's message.
pub(crate) const MARK: &str = "@@";

/// Marks a custom error with the exact place of the key it is about (the parser's own place
/// is the value read last); [`crate::error`] reads it back.
pub(crate) fn at<E: de::Error>(key: &Spanned<String>, message: impl fmt::Display) -> E {
    E::custom(format!("{MARK}{}:{}{MARK}{message}", key.referenced.line(), key.referenced.column()))
}

/// One compose file.
#[derive(Debug, Default)]
pub(crate) struct File {
    pub(crate) name: Option<String>,
    pub(crate) services: BTreeMap<String, Service>,
    pub(crate) networks: BTreeMap<String, NetworkDef>,
    pub(crate) volumes: BTreeMap<String, VolumeDef>,
}

impl<'de> Deserialize<'de> for File {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = File;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a compose file: a mapping with `services`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<File, A::Error> {
                let mut file = File::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    match key.value.as_str() {
                        "version" => {
                            map.next_value::<IgnoredAny>()?;
                        }
                        "name" => file.name = Some(map.next_value()?),
                        "services" => file.services = map.next_value_seed(Services)?,
                        "networks" => {
                            file.networks = map
                                .next_value::<Option<BTreeMap<String, Option<NetworkDef>>>>()?
                                .unwrap_or_default()
                                .into_iter()
                                .map(|(k, v)| (k, v.unwrap_or_default()))
                                .collect();
                        }
                        "volumes" => {
                            file.volumes = map
                                .next_value::<Option<BTreeMap<String, Option<VolumeDef>>>>()?
                                .unwrap_or_default()
                                .into_iter()
                                .map(|(k, v)| (k, v.unwrap_or_default()))
                                .collect();
                        }
                        k if k.starts_with("x-") => {
                            map.next_value::<IgnoredAny>()?;
                        }
                        other => {
                            return Err(at(
                                &key,
                                format!(
                                    "unsupported top-level key `{other}` (supported: services, networks, volumes, \
                                     name, version, and `x-` extensions)"
                                ),
                            ));
                        }
                    }
                }
                Ok(file)
            }
        }
        d.deserialize_map(V)
    }
}

struct Services;

impl<'de> DeserializeSeed<'de> for Services {
    type Value = BTreeMap<String, Service>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Services {
    type Value = BTreeMap<String, Service>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of service names to services")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut services = BTreeMap::new();
        while let Some(name) = map.next_key::<Spanned<String>>()? {
            if let Some(problem) = values::bad_service_name(&name.value) {
                return Err(at(&name, problem));
            }
            SERVICE.with(|s| *s.borrow_mut() = Some(name.value.clone()));
            let service: Service = map.next_value::<Option<Service>>()?.unwrap_or_default();
            SERVICE.with(|s| *s.borrow_mut() = None);
            services.insert(name.value, service);
        }
        Ok(services)
    }
}

/// A service, every supported key optional (so that an override file can set a few).
#[derive(Debug, Default, Clone)]
pub(crate) struct Service {
    pub(crate) image: Option<String>,
    pub(crate) build: Option<Build>,
    pub(crate) command: Option<Vec<String>>,
    pub(crate) entrypoint: Option<Vec<String>>,
    pub(crate) environment: BTreeMap<String, Option<String>>,
    pub(crate) env_file: Vec<String>,
    pub(crate) ports: Vec<values::PortMapping>,
    pub(crate) expose: Vec<fixtures_core::spec::Port>,
    pub(crate) volumes: Vec<ServiceVolume>,
    pub(crate) tmpfs: Vec<values::TmpfsMount>,
    pub(crate) networks: Option<BTreeMap<String, Attachment>>,
    pub(crate) network_mode: Option<String>,
    pub(crate) depends_on: BTreeMap<String, Condition>,
    pub(crate) healthcheck: Option<Healthcheck>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) user: Option<String>,
    pub(crate) working_dir: Option<String>,
    pub(crate) hostname: Option<String>,
    pub(crate) dns: Vec<String>,
    pub(crate) extra_hosts: BTreeMap<String, String>,
    pub(crate) cap_add: Vec<String>,
    pub(crate) cap_drop: Vec<String>,
    pub(crate) privileged: Option<bool>,
    pub(crate) read_only: Option<bool>,
    pub(crate) init: Option<bool>,
    pub(crate) stop_signal: Option<String>,
    pub(crate) stop_grace_period: Option<Duration>,
    pub(crate) shm_size: Option<i64>,
    pub(crate) mem_limit: Option<i64>,
    pub(crate) cpus: Option<f64>,
    pub(crate) ulimits: BTreeMap<String, (i64, i64)>,
    pub(crate) sysctls: BTreeMap<String, String>,
    pub(crate) profiles: Option<Vec<String>>,
}

/// What a service key that this crate does not take means, for the error: why it is left out.
fn unsupported_reason(key: &str) -> Option<&'static str> {
    Some(match key {
        "container_name" => {
            "a fixed container name cannot be shared by tests running in parallel; each test's \
             container gets a unique name, and services reach it by its service name"
        }
        "restart" => "a restart policy would bring back a container a test stops on purpose",
        "deploy" => "it is for swarm; use mem_limit and cpus",
        "links" | "external_links" => "services reach each other by service name on their networks",
        "secrets" | "configs" => "mount the files with `volumes` instead",
        "extends" => "merge the files with `Compose::file` (an override file) instead",
        _ => return None,
    })
}

impl<'de> Deserialize<'de> for Service {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Service;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a service: a mapping of keys such as `image`, `build`, `ports`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Service, A::Error> {
                let mut s = Service::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    match key.value.as_str() {
                        "image" => s.image = Some(map.next_value()?),
                        "build" => s.build = Some(map.next_value::<BuildKey>()?.0),
                        "command" => s.command = map.next_value::<Option<CommandLine>>()?.map(|c| c.0),
                        "entrypoint" => s.entrypoint = map.next_value::<Option<CommandLine>>()?.map(|c| c.0),
                        "environment" => s.environment = map.next_value::<KeyValues>()?.0,
                        "env_file" => s.env_file = map.next_value::<OneOrMany>()?.0,
                        "ports" => {
                            s.ports =
                                map.next_value::<Vec<values::PortEntries>>()?.into_iter().flat_map(|e| e.0).collect();
                        }
                        "expose" => {
                            for text in map.next_value::<Vec<String>>()? {
                                s.expose.extend(values::expose(&text).map_err(|e| at::<A::Error>(&key, e))?);
                            }
                        }
                        "volumes" => s.volumes = map.next_value()?,
                        "tmpfs" => {
                            for text in map.next_value::<OneOrMany>()?.0 {
                                s.tmpfs.push(values::tmpfs(&text).map_err(|e| at::<A::Error>(&key, e))?);
                            }
                        }
                        "networks" => s.networks = Some(map.next_value::<Attachments>()?.0),
                        "network_mode" => s.network_mode = Some(map.next_value()?),
                        "depends_on" => s.depends_on = map.next_value::<DependsOn>()?.0,
                        "healthcheck" => s.healthcheck = Some(map.next_value()?),
                        "labels" => s.labels = map.next_value::<KeyValues>()?.strings(),
                        "user" => s.user = Some(map.next_value()?),
                        "working_dir" => s.working_dir = Some(map.next_value()?),
                        "hostname" => s.hostname = Some(map.next_value()?),
                        "dns" => s.dns = map.next_value::<OneOrMany>()?.0,
                        "extra_hosts" => s.extra_hosts = map.next_value::<Hosts>()?.0,
                        "cap_add" => s.cap_add = map.next_value()?,
                        "cap_drop" => s.cap_drop = map.next_value()?,
                        "privileged" => s.privileged = Some(map.next_value()?),
                        "read_only" => s.read_only = Some(map.next_value()?),
                        "init" => s.init = Some(map.next_value()?),
                        "stop_signal" => s.stop_signal = Some(map.next_value()?),
                        "stop_grace_period" => {
                            let text: String = map.next_value()?;
                            s.stop_grace_period = Some(values::duration(&text).map_err(|e| at::<A::Error>(&key, e))?);
                        }
                        "shm_size" => s.shm_size = Some(map.next_value::<Bytes>()?.0),
                        "mem_limit" => s.mem_limit = Some(map.next_value::<Bytes>()?.0),
                        "cpus" => {
                            let text: String = map.next_value()?;
                            s.cpus = Some(
                                text.trim().parse::<f64>().ok().filter(|c| c.is_finite() && *c > 0.0).ok_or_else(
                                    || at::<A::Error>(&key, format!("`cpus: {text}` is not a positive number")),
                                )?,
                            );
                        }
                        "ulimits" => s.ulimits = map.next_value::<Ulimits>()?.0,
                        "sysctls" => s.sysctls = map.next_value::<KeyValues>()?.strings(),
                        "profiles" => s.profiles = Some(map.next_value()?),
                        k if k.starts_with("x-") => {
                            map.next_value::<IgnoredAny>()?;
                        }
                        other => {
                            let why = unsupported_reason(other).map(|w| format!(": {w}")).unwrap_or_default();
                            return Err(at(&key, format!("unsupported key `{other}`{why}")));
                        }
                    }
                }
                Ok(s)
            }
        }
        d.deserialize_map(V)
    }
}

/// `build: ./dir` or `build: {context, dockerfile, args, target}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Build {
    pub(crate) context: Option<String>,
    pub(crate) dockerfile: Option<String>,
    #[serde(default)]
    pub(crate) args: KeyValues,
    pub(crate) target: Option<String>,
}

/// `build:` in either of its forms.
pub(crate) struct BuildKey(pub(crate) Build);

impl<'de> Deserialize<'de> for BuildKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BuildKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a build context folder, or a mapping with context, dockerfile, args and target")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<BuildKey, E> {
                Ok(BuildKey(Build { context: Some(text.to_owned()), ..Build::default() }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<BuildKey, A::Error> {
                Build::deserialize(de::value::MapAccessDeserializer::new(map)).map(BuildKey)
            }
        }
        d.deserialize_any(V)
    }
}

/// A service's `volumes:` entry: `name:/path[:ro]`, `./dir:/path`, `/path`, or the long syntax.
#[derive(Debug, Clone)]
pub(crate) enum ServiceVolume {
    Named { name: String, target: String, read_only: bool },
    Bind { source: String, target: String, read_only: bool },
    Anonymous { target: String },
    Tmpfs(values::TmpfsMount),
}

impl ServiceVolume {
    pub(crate) fn target(&self) -> &str {
        match self {
            ServiceVolume::Named { target, .. }
            | ServiceVolume::Bind { target, .. }
            | ServiceVolume::Anonymous { target } => target,
            ServiceVolume::Tmpfs(t) => &t.target,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongVolume {
    #[serde(rename = "type")]
    kind: String,
    source: Option<String>,
    target: String,
    #[serde(default)]
    read_only: bool,
    volume: Option<LongVolumeOptions>,
    bind: Option<LongBindOptions>,
    tmpfs: Option<LongTmpfsOptions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongVolumeOptions {
    #[serde(default)]
    nocopy: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongBindOptions {
    #[serde(default = "yes")]
    create_host_path: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongTmpfsOptions {
    size: Option<Bytes>,
}

impl<'de> Deserialize<'de> for ServiceVolume {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ServiceVolume;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a volume: `source:target[:ro]` or a mapping with type, source and target")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<ServiceVolume, E> {
                values::short_volume(text).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ServiceVolume, A::Error> {
                let long = LongVolume::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let _ = (long.volume.map(|v| v.nocopy), long.bind.map(|b| b.create_host_path));
                let source = || {
                    long.source.clone().ok_or_else(|| {
                        de::Error::custom(format!("a `{}` volume needs a `source` (at `{}`)", long.kind, long.target))
                    })
                };
                Ok(match long.kind.as_str() {
                    "volume" => match &long.source {
                        Some(name) => {
                            ServiceVolume::Named { name: name.clone(), target: long.target, read_only: long.read_only }
                        }
                        None => ServiceVolume::Anonymous { target: long.target },
                    },
                    "bind" => ServiceVolume::Bind { source: source()?, target: long.target, read_only: long.read_only },
                    "tmpfs" => ServiceVolume::Tmpfs(values::TmpfsMount {
                        target: long.target,
                        size: long.tmpfs.and_then(|t| t.size).map(|b| b.0 as u64),
                    }),
                    other => {
                        return Err(de::Error::custom(format!(
                            "volume type `{other}` is not supported (volume, bind or tmpfs)"
                        )));
                    }
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A service's place on a network.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Attachment {
    #[serde(default)]
    pub(crate) aliases: Vec<String>,
}

struct Attachments(BTreeMap<String, Attachment>);

impl<'de> Deserialize<'de> for Attachments {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Attachments;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of network names, or a mapping of names to `aliases`")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Attachments, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(name) = seq.next_element::<String>()? {
                    out.insert(name, Attachment::default());
                }
                Ok(Attachments(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attachments, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((name, attachment)) = map.next_entry::<String, Option<Attachment>>()? {
                    out.insert(name, attachment.unwrap_or_default());
                }
                Ok(Attachments(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// What a service waits for in a dependency before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::enum_variant_names)] // Compose's own words: `service_started`, ...
pub(crate) enum Condition {
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongDependency {
    condition: Option<Condition>,
    #[serde(default = "yes")]
    required: bool,
    #[serde(default)]
    restart: bool,
}

struct DependsOn(BTreeMap<String, Condition>);

impl<'de> Deserialize<'de> for DependsOn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DependsOn;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of services, or a mapping of services to a `condition`")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DependsOn, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(name) = seq.next_element::<String>()? {
                    out.insert(name, Condition::ServiceStarted);
                }
                Ok(DependsOn(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DependsOn, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((name, long)) = map.next_entry::<String, LongDependency>()? {
                    if !long.required {
                        return Err(de::Error::custom(format!(
                            "`required: false` on `{name}` is not supported: a test gets every service it needs"
                        )));
                    }
                    let _ = long.restart;
                    out.insert(name, long.condition.unwrap_or(Condition::ServiceStarted));
                }
                Ok(DependsOn(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `healthcheck:` of a service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Healthcheck {
    pub(crate) test: Option<HealthTest>,
    pub(crate) interval: Option<String>,
    pub(crate) timeout: Option<String>,
    pub(crate) retries: Option<u32>,
    pub(crate) start_period: Option<String>,
    #[serde(default)]
    pub(crate) disable: bool,
}

/// A top-level network.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NetworkDef {
    pub(crate) driver: Option<String>,
    #[serde(default)]
    pub(crate) driver_opts: KeyValues,
    #[serde(default)]
    pub(crate) internal: bool,
    #[serde(default)]
    pub(crate) enable_ipv6: bool,
    #[serde(default)]
    pub(crate) attachable: bool,
    #[serde(default)]
    pub(crate) labels: KeyValues,
    #[serde(default)]
    pub(crate) external: bool,
    pub(crate) name: Option<String>,
}

/// A top-level volume.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VolumeDef {
    pub(crate) driver: Option<String>,
    #[serde(default)]
    pub(crate) driver_opts: KeyValues,
    #[serde(default)]
    pub(crate) labels: KeyValues,
    #[serde(default)]
    pub(crate) external: bool,
    pub(crate) name: Option<String>,
}

/// A health check's test: a string for the container's shell, or `[CMD, ...]`,
/// `[CMD-SHELL, ...]`, `[NONE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HealthTest {
    Shell(String),
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for HealthTest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HealthTest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command string, or a list starting with CMD, CMD-SHELL or NONE")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<HealthTest, E> {
                Ok(HealthTest::Shell(text.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<HealthTest, A::Error> {
                let mut out: Vec<String> = Vec::new();
                while let Some(word) = seq.next_element::<String>()? {
                    out.push(word);
                }
                match out.first().map(String::as_str) {
                    Some("CMD" | "CMD-SHELL" | "NONE") => Ok(HealthTest::List(out)),
                    _ => Err(de::Error::custom(format!(
                        "a health check test list starts with CMD, CMD-SHELL or NONE, not {:?}",
                        out.first().map(String::as_str).unwrap_or("nothing")
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A command as a list; a string is split as a shell would split words (no shell runs it).
#[derive(Debug, Clone)]
pub(crate) struct CommandLine(pub(crate) Vec<String>);

impl<'de> Deserialize<'de> for CommandLine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CommandLine;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command: a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<CommandLine, E> {
                values::shell_words(text).map(CommandLine).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CommandLine, A::Error> {
                let mut out = Vec::new();
                while let Some(word) = seq.next_element::<String>()? {
                    out.push(word);
                }
                Ok(CommandLine(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string or a list of strings.
struct OneOrMany(Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![text.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    out.push(item);
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `KEY: value` pairs given as a mapping or as a list of `KEY=value` (a bare `KEY`, or a
/// `null` value, has no value of its own).
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyValues(pub(crate) BTreeMap<String, Option<String>>);

impl KeyValues {
    /// The pairs with a missing value as an empty string (labels, sysctls, options).
    pub(crate) fn strings(self) -> BTreeMap<String, String> {
        self.0.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect()
    }
}

/// A scalar of any type, as text.
struct Scalar(Option<String>);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_owned())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for KeyValues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyValues;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping, or a list of `KEY=value`")
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyValues, E> {
                Ok(KeyValues::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyValues, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(item) = seq.next_element::<String>()? {
                    match item.split_once('=') {
                        Some((k, v)) => out.insert(k.to_owned(), Some(v.to_owned())),
                        None => out.insert(item, None),
                    };
                }
                Ok(KeyValues(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyValues, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, Scalar>()? {
                    out.insert(k, v.0);
                }
                Ok(KeyValues(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `extra_hosts`: `["name:ip"]`, `["name=ip"]` or `{name: ip}`.
struct Hosts(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Hosts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Hosts;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of `name:ip`, or a mapping of names to addresses")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Hosts, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(item) = seq.next_element::<String>()? {
                    let (name, ip) = item
                        .split_once('=')
                        .or_else(|| item.split_once(':'))
                        .ok_or_else(|| de::Error::custom(format!("extra host `{item}` is not `name:ip`")))?;
                    out.insert(name.to_owned(), ip.to_owned());
                }
                Ok(Hosts(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Hosts, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((name, ip)) = map.next_entry::<String, String>()? {
                    out.insert(name, ip);
                }
                Ok(Hosts(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A size in bytes: a number, or `64m`, `1g`, `512kb`, `1.5g`.
pub(crate) struct Bytes(pub(crate) i64);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Scalar::deserialize(d)?.0.unwrap_or_default();
        values::bytes(&text).map(Bytes).map_err(de::Error::custom)
    }
}

/// `ulimits: {nofile: {soft: 1024, hard: 4096}, nproc: 512}`.
struct Ulimits(BTreeMap<String, (i64, i64)>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SoftHard {
    soft: i64,
    hard: i64,
}

impl<'de> Deserialize<'de> for Ulimits {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ulimits;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of limit names to a number or `{soft, hard}`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ulimits, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(name) = map.next_key::<String>()? {
                    let limit = map.next_value::<Limit>()?;
                    out.insert(name, (limit.0, limit.1));
                }
                Ok(Ulimits(out))
            }
        }
        struct Limit(i64, i64);
        impl<'de> Deserialize<'de> for Limit {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct L;
                impl<'de> Visitor<'de> for L {
                    type Value = Limit;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a number or `{soft, hard}`")
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Limit, E> {
                        Ok(Limit(v, v))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Limit, E> {
                        let v = i64::try_from(v).map_err(|_| E::custom("limit too large"))?;
                        Ok(Limit(v, v))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Limit, A::Error> {
                        let sh = SoftHard::deserialize(de::value::MapAccessDeserializer::new(map))?;
                        Ok(Limit(sh.soft, sh.hard))
                    }
                }
                d.deserialize_any(L)
            }
        }
        d.deserialize_map(V)
    }
}
