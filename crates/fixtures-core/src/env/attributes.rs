//! What a template may reference on each kind of fixture: one table per kind, used by
//! validation (is `{db.ips.primary}` an attribute of a container?), by its error message
//! (what a container has) and by rendering (the text it stands for). A new attribute is one
//! line here.

use super::resolve::{Fixture, Resolved};
use super::template::{Reference, Segment};

/// How an attribute is written after the fixture's name.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `{node}`.
    Bare,
    /// `{node.attr}`.
    Field(&'static str),
    /// `{node.attr.sub}`.
    Sub(&'static str, &'static str),
    /// `{node.attr[key]}`.
    Keyed(&'static str),
}

type Get = fn(&Fixture, Option<&str>, &Resolved) -> Result<String, String>;
type CheckKey = fn(&str) -> Result<(), String>;

/// One attribute of a kind of fixture.
pub(crate) struct Attribute {
    shape: Shape,
    /// How the error message lists it (the bare form is not listed).
    shown: &'static str,
    /// Checks a key before anything exists (`ports[8080/tcp]` must be a port).
    check_key: Option<CheckKey>,
    /// The text it stands for, once the fixture is made.
    get: Get,
}

const fn attr(shape: Shape, shown: &'static str, get: Get) -> Attribute {
    Attribute { shape, shown, check_key: None, get }
}

fn not(kind: &str) -> String {
    format!("not {kind}")
}

fn image(f: &Fixture) -> Result<&crate::handle::Image, String> {
    match f {
        Fixture::Image(i) => Ok(i),
        _ => Err(not("an image")),
    }
}

fn network(f: &Fixture) -> Result<&crate::handle::Network, String> {
    match f {
        Fixture::Network(n) => Ok(n),
        _ => Err(not("a network")),
    }
}

fn container(f: &Fixture) -> Result<&crate::handle::Container, String> {
    match f {
        Fixture::Container(c, _) => Ok(c),
        _ => Err(not("a container")),
    }
}

fn image_id(f: &Fixture, _: Option<&str>, _: &Resolved) -> Result<String, String> {
    Ok(image(f)?.id().to_owned())
}

fn image_name(f: &Fixture, _: Option<&str>, _: &Resolved) -> Result<String, String> {
    let i = image(f)?;
    Ok(i.tags().first().cloned().unwrap_or_else(|| i.id().to_owned()))
}

fn network_id(f: &Fixture, _: Option<&str>, _: &Resolved) -> Result<String, String> {
    Ok(network(f)?.id().to_owned())
}

fn network_name(f: &Fixture, _: Option<&str>, _: &Resolved) -> Result<String, String> {
    Ok(network(f)?.name().to_owned())
}

fn volume_name(f: &Fixture, _: Option<&str>, _: &Resolved) -> Result<String, String> {
    match f {
        Fixture::Volume(v) => Ok(v.name().to_owned()),
        _ => Err(not("a volume")),
    }
}

fn container_id(f: &Fixture, _: Option<&str>, _: &Resolved) -> Result<String, String> {
    Ok(container(f)?.id().to_owned())
}

fn container_name(f: &Fixture, _: Option<&str>, _: &Resolved) -> Result<String, String> {
    Ok(container(f)?.name().to_owned())
}

fn primary_ip(f: &Fixture, _: Option<&str>, _: &Resolved) -> Result<String, String> {
    let c = container(f)?;
    c.ips().primary().map(|ip| ip.to_string()).ok_or_else(|| format!("container `{}` has no IP address", c.name()))
}

fn ip_on(f: &Fixture, key: Option<&str>, all: &Resolved) -> Result<String, String> {
    let c = container(f)?;
    let key = key.unwrap_or_default();
    // The key is a network's name, or the name of a network fixture.
    let network = match all.fixture(key) {
        Some(Fixture::Network(n)) => n.name().to_owned(),
        _ => key.to_owned(),
    };
    c.ips()
        .get(&network)
        .map(|ip| ip.to_string())
        .ok_or_else(|| format!("container `{}` is not on network `{network}`", c.name()))
}

fn host_port(f: &Fixture, key: Option<&str>, _: &Resolved) -> Result<String, String> {
    let c = container(f)?;
    c.ports().host_port(key.unwrap_or_default()).map(|p| p.to_string()).map_err(|e| e.message().to_owned())
}

fn env_var(f: &Fixture, key: Option<&str>, _: &Resolved) -> Result<String, String> {
    let c = container(f)?;
    let key = key.unwrap_or_default();
    c.env().get(key).cloned().ok_or_else(|| format!("container `{}` has no variable `{key}`", c.name()))
}

fn a_port(key: &str) -> Result<(), String> {
    crate::spec::Port::parse(key).map(drop).map_err(|e| format!("`ports[{key}]`: {}", e.message()))
}

/// An image: `{img}` and `{img.id}` are its id, `{img.name}` its first tag.
pub(crate) const IMAGE: &[Attribute] = &[
    attr(Shape::Bare, "", image_id),
    attr(Shape::Field("id"), "`id`", image_id),
    attr(Shape::Field("name"), "`name`", image_name),
];

/// A network: `{net}` and `{net.name}` are its name.
pub(crate) const NETWORK: &[Attribute] = &[
    attr(Shape::Bare, "", network_name),
    attr(Shape::Field("id"), "`id`", network_id),
    attr(Shape::Field("name"), "`name`", network_name),
];

/// A volume: `{vol}` and `{vol.name}` are its name.
pub(crate) const VOLUME: &[Attribute] =
    &[attr(Shape::Bare, "", volume_name), attr(Shape::Field("name"), "`name`", volume_name)];

/// A container: `{c}` and `{c.name}` are its name.
pub(crate) const CONTAINER: &[Attribute] = &[
    attr(Shape::Bare, "", container_name),
    attr(Shape::Field("id"), "`id`", container_id),
    attr(Shape::Field("name"), "`name`", container_name),
    attr(Shape::Sub("ips", "primary"), "`ips.primary`", primary_ip),
    attr(Shape::Keyed("ips"), "`ips[<network>]`", ip_on),
    Attribute {
        shape: Shape::Keyed("ports"),
        shown: "`ports[<port>/<proto>]`",
        check_key: Some(a_port),
        get: host_port,
    },
    attr(Shape::Keyed("env"), "`env[<VAR>]`", env_var),
];

/// The attribute of `table` that `path` names.
fn find<'t>(table: &'t [Attribute], path: &[Segment]) -> Option<&'t Attribute> {
    table.iter().find(|a| match (a.shape, path) {
        (Shape::Bare, []) => true,
        (Shape::Field(f), [Segment::Attr(x)]) => x == f,
        (Shape::Sub(f, s), [Segment::Attr(x), Segment::Attr(y)]) => x == f && y == s,
        (Shape::Keyed(f), [Segment::Attr(x), Segment::Key(_)]) => x == f,
        _ => false,
    })
}

fn key(path: &[Segment]) -> Option<&str> {
    match path.last() {
        Some(Segment::Key(k)) => Some(k.as_str()),
        _ => None,
    }
}

/// Checks that `reference` names an attribute of a `kind` described by `table`.
pub(crate) fn check(table: &[Attribute], kind: &str, reference: &Reference) -> Result<(), String> {
    let path = reference.path.as_slice();
    match find(table, path) {
        Some(a) => match (a.check_key, key(path)) {
            (Some(check), Some(k)) => check(k),
            _ => Ok(()),
        },
        None => {
            let have: Vec<&str> = table.iter().map(|a| a.shown).filter(|s| !s.is_empty()).collect();
            Err(format!(
                "a {kind} has no attribute `{}`; it has {}",
                path.iter().map(ToString::to_string).collect::<String>(),
                have.join(", ")
            ))
        }
    }
}

/// The text `reference` stands for on `fixture`, by `table`.
pub(crate) fn get(
    table: &[Attribute],
    fixture: &Fixture,
    reference: &Reference,
    all: &Resolved,
) -> Result<String, String> {
    let path = reference.path.as_slice();
    match find(table, path) {
        Some(a) => (a.get)(fixture, key(path), all),
        None => Err("no such attribute".to_owned()),
    }
}
