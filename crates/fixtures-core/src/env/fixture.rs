//! Made fixtures and reading them: `Fixture`, `Resolved`, and templates rendered with them.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::template::{Part, Reference, Segment, Template};
use crate::error::{Error, ErrorKind, Result};
use crate::handle::{Container, Image, Network, Volume};

/// A fixture, made.
#[derive(Clone)]
#[non_exhaustive]
pub(crate) enum Fixture {
    /// An image.
    Image(Image),
    /// A container, and its wrapper if it has one.
    Container(Container, Option<Arc<dyn Any + Send + Sync>>),
    /// A network.
    Network(Network),
    /// A volume.
    Volume(Volume),
    /// A value.
    Value(Value),
    /// A custom fixture.
    Custom(Arc<dyn Any + Send + Sync>),
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fixture::Image(i) => f.debug_tuple("Image").field(&i.id()).finish(),
            Fixture::Container(c, _) => f.debug_tuple("Container").field(&c.name()).finish(),
            Fixture::Network(n) => f.debug_tuple("Network").field(&n.name()).finish(),
            Fixture::Volume(v) => f.debug_tuple("Volume").field(&v.name()).finish(),
            Fixture::Value(v) => f.debug_tuple("Value").field(v).finish(),
            Fixture::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl Fixture {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Fixture::Image(_) => "an image",
            Fixture::Container(..) => "a container",
            Fixture::Network(_) => "a network",
            Fixture::Volume(_) => "a volume",
            Fixture::Value(_) => "a value",
            Fixture::Custom(_) => "a custom fixture",
        }
    }

    /// The fixture as `T`: a handle type (`Container`, `Image`, `Network`, `Volume`), a
    /// container's wrapper type, a custom fixture's type, or for values `serde_json::Value`,
    /// `String` or any type that deserialises from it.
    pub(crate) fn downcast<T: Any + Clone>(&self) -> Option<T> {
        let any: &dyn Any = match self {
            Fixture::Image(i) => i,
            Fixture::Container(c, wrapper) => {
                if let Some(w) = wrapper.as_ref().and_then(|w| w.downcast_ref::<T>()) {
                    return Some(w.clone());
                }
                c
            }
            Fixture::Network(n) => n,
            Fixture::Volume(v) => v,
            Fixture::Value(v) => {
                if let Some(t) = (v as &dyn Any).downcast_ref::<T>() {
                    return Some(t.clone());
                }
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                return (&text as &dyn Any).downcast_ref::<T>().cloned();
            }
            Fixture::Custom(c) => return c.downcast_ref::<T>().cloned(),
        };
        any.downcast_ref::<T>().cloned()
    }
}

impl Fixture {
    /// The fixture as a shared `T`, for types that need not be `Clone` (taken as `&T`).
    pub(crate) fn shared<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let any: Arc<dyn Any + Send + Sync> = match self {
            Fixture::Custom(c) => c.clone(),
            Fixture::Container(c, wrapper) => match wrapper.clone().map(Arc::downcast::<T>) {
                Some(Ok(w)) => return Some(w),
                _ => Arc::new(c.clone()),
            },
            Fixture::Image(i) => Arc::new(i.clone()),
            Fixture::Network(n) => Arc::new(n.clone()),
            Fixture::Volume(v) => Arc::new(v.clone()),
            Fixture::Value(v) => {
                if let Ok(v) = (Arc::new(v.clone()) as Arc<dyn Any + Send + Sync>).downcast::<T>() {
                    return Some(v);
                }
                Arc::new(match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            }
        };
        any.downcast::<T>().ok()
    }
}

/// The fixtures a closure asked for, made.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub(crate) fixtures: BTreeMap<String, Fixture>,
}

impl Resolved {
    /// The fixture `name`, if it was made for this closure or template.
    pub(crate) fn fixture(&self, name: &str) -> Option<&Fixture> {
        self.fixtures.get(name)
    }

    pub(crate) fn get(&self, name: &str) -> Result<&Fixture> {
        self.fixtures.get(name).ok_or_else(|| {
            Error::graph(name, format!("`{name}` was not declared as needed; add it to the closure's list of needs"))
        })
    }

    fn typed<T: Any + Clone>(&self, name: &str) -> Result<T> {
        let f = self.get(name)?;
        f.downcast::<T>().ok_or_else(|| {
            Error::graph(name, format!("`{name}` is {}, not a `{}`", f.kind(), std::any::type_name::<T>()))
        })
    }

    /// The container `name`.
    ///
    /// # Errors
    /// When it was not declared as needed or is not a container.
    pub fn container(&self, name: &str) -> Result<Container> {
        self.typed(name)
    }

    /// The image `name`.
    ///
    /// # Errors
    /// When it was not declared as needed or is not an image.
    pub fn image(&self, name: &str) -> Result<Image> {
        self.typed(name)
    }

    /// The network `name`.
    ///
    /// # Errors
    /// When it was not declared as needed or is not a network.
    pub fn network(&self, name: &str) -> Result<Network> {
        self.typed(name)
    }

    /// The volume `name`.
    ///
    /// # Errors
    /// When it was not declared as needed or is not a volume.
    pub fn volume(&self, name: &str) -> Result<Volume> {
        self.typed(name)
    }

    /// The value `name`.
    ///
    /// # Errors
    /// When it was not declared as needed or is not a value.
    pub fn value(&self, name: &str) -> Result<Value> {
        self.typed(name)
    }

    /// The fixture `name` as `T` (a handle, a wrapper, a custom fixture's type).
    ///
    /// # Errors
    /// When it was not declared as needed or is not a `T`.
    pub fn get_as<T: Any + Clone>(&self, name: &str) -> Result<T> {
        self.typed(name)
    }

    /// The fixture `name` as a shared `T`, for a custom fixture whose type is not `Clone`.
    ///
    /// # Errors
    /// When it was not declared as needed or is not a `T`.
    pub fn shared<T: Any + Send + Sync>(&self, name: &str) -> Result<Arc<T>> {
        let f = self.get(name)?;
        f.shared::<T>().ok_or_else(|| {
            Error::graph(name, format!("`{name}` is {}, not a `{}`", f.kind(), std::any::type_name::<T>()))
        })
    }
}

/// The text a reference stands for.
pub(crate) fn lookup(fixture: &Fixture, reference: &Reference, all: &Resolved) -> std::result::Result<String, String> {
    let path = reference.path.as_slice();
    let table = match fixture {
        Fixture::Image(_) => crate::env::attributes::IMAGE,
        Fixture::Network(_) => crate::env::attributes::NETWORK,
        Fixture::Volume(_) => crate::env::attributes::VOLUME,
        Fixture::Container(..) => crate::env::attributes::CONTAINER,
        Fixture::Value(v) => {
            let mut at = v;
            for seg in path {
                let key = match seg {
                    Segment::Attr(a) | Segment::Key(a) => a,
                };
                at = match at {
                    Value::Object(m) => m.get(key).ok_or_else(|| format!("the value has no field `{key}`"))?,
                    Value::Array(a) => key
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| a.get(i))
                        .ok_or_else(|| format!("the value has no item `{key}`"))?,
                    _ => return Err(format!("the value has no field `{key}`")),
                };
            }
            return Ok(match at {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
        Fixture::Custom(_) => return Err("a custom fixture cannot be used in a template".to_owned()),
    };
    crate::env::attributes::get(table, fixture, reference, all)
}

/// Renders `text` with `resolved` fixtures.
pub(crate) fn render(text: &str, resolved: &Resolved) -> Result<String> {
    let template = Template::parse(text).map_err(|e| Error::new(ErrorKind::Graph, format!("template {e}")))?;
    let mut out = String::new();
    for part in &template.parts {
        match part {
            Part::Literal(l) => out.push_str(l),
            Part::Ref(r) => {
                let fixture = resolved.get(&r.node)?;
                let text = lookup(fixture, r, resolved)
                    .map_err(|m| Error::new(ErrorKind::Graph, format!("`{{{r}}}`: {m}")))?;
                out.push_str(&text);
            }
        }
    }
    Ok(out)
}
