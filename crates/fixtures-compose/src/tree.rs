//! A compose file as a YAML tree with the place of every node, read in three steps as Compose
//! reads it: parse (anchors and `<<` merges applied), interpolate the variables in every
//! string value, then read the model out of the tree. Because the model is read from the
//! tree by this module's own deserializer, every mistake is reported at its own key and line,
//! wherever variables appear, and a value that came from a variable is typed by where it is
//! used (`cpus: ${CPUS}` is a number), as Compose types it.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};
use serde_saphyr::Spanned;

/// A line and a column, counted from 1; `(0, 0)` when unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Place {
    pub(crate) line: u64,
    pub(crate) column: u64,
}

impl Place {
    fn of(location: &serde_saphyr::Location) -> Place {
        Place { line: location.line(), column: location.column() }
    }
    fn known(self) -> bool {
        self.line > 0
    }
}

/// One node of the tree and where it is.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) at: Place,
    pub(crate) value: Value,
}

/// A mapping's key and where it is.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub(crate) name: String,
    pub(crate) at: Place,
}

#[derive(Debug, Clone)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

impl Node {
    /// A scalar as text (`None` for null, sequences and mappings).
    pub(crate) fn text(&self) -> Option<String> {
        Some(match &self.value {
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::UInt(u) => u.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(s) => s.clone(),
            Value::Null | Value::Seq(_) | Value::Map(_) => return None,
        })
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(d)?;
        Ok(Node { at: Place::of(&spanned.referenced), value: spanned.value })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
                Value::deserialize(d)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(Value::UInt(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
                Ok(Value::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut out = Vec::new();
                while let Some(node) = seq.next_element::<Node>()? {
                    out.push(node);
                }
                Ok(Value::Seq(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Spanned<KeyText>>()? {
                    let node = map.next_value::<Node>()?;
                    out.push((Key { name: key.value.0, at: Place::of(&key.referenced) }, node));
                }
                Ok(Value::Map(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A mapping key as text, whatever its YAML type (`8080:` is a number).
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let node = Value::deserialize(d)?;
        let text = Node { at: Place::default(), value: node }.text();
        text.map(KeyText).ok_or_else(|| de::Error::custom("a mapping key must be a string"))
    }
}

/// An error while reading the model from the tree: what, where, and under which keys.
#[derive(Debug, Clone)]
pub(crate) struct Error {
    pub(crate) message: String,
    pub(crate) at: Place,
    /// The keys from the file's top down to the value (`services`, `web`, `ports`, `0`).
    pub(crate) path: Vec<String>,
}

impl Error {
    pub(crate) fn new(message: impl Into<String>, at: Place) -> Error {
        Error { message: message.into(), at, path: Vec::new() }
    }

    fn placed(mut self, at: Place) -> Error {
        if !self.at.known() {
            self.at = at;
        }
        self
    }

    fn under(mut self, key: &str) -> Error {
        self.path.insert(0, key.to_owned());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::new(msg.to_string(), Place::default())
    }
}

/// Reads `T` out of `node`.
pub(crate) fn read<'a, T: Deserialize<'a>>(node: &'a Node) -> Result<T, Error> {
    T::deserialize(node)
}

fn parse_bool(text: &str) -> Option<bool> {
    // Compose's own files are YAML 1.1 to docker-compose 1.x: `yes` and `on` are true too.
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "y" => Some(true),
        "false" | "no" | "off" | "n" => Some(false),
        _ => None,
    }
}

impl<'de> Deserializer<'de> for &'de Node {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let out = match &self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::UInt(u) => visitor.visit_u64(*u),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(Items { items: items.iter(), index: 0 }),
            Value::Map(entries) => {
                let mut access = Entries { entries, next: 0, value: None };
                let result = visitor.visit_map(&mut access);
                // An error of the mapping's own (an unknown key, a check after a value was
                // read) is about the key read last.
                return result.map_err(|e| match access.last() {
                    Some(key) if !e.at.known() => e.placed(key.at).under(&key.name),
                    _ => e.placed(self.at),
                });
            }
        };
        out.map_err(|e: Error| e.placed(self.at))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.value {
            Value::Str(s) => match parse_bool(s) {
                Some(b) => visitor.visit_bool(b),
                None => Err(Error::new(format!("`{s}` is not true or false"), self.at)),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.value {
            Value::Str(s) => match s.trim().parse::<i64>() {
                Ok(n) => visitor.visit_i64(n).map_err(|e: Error| e.placed(self.at)),
                Err(_) => Err(Error::new(format!("`{s}` is not a whole number"), self.at)),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.value {
            Value::Str(s) => match s.trim().parse::<u64>() {
                Ok(n) => visitor.visit_u64(n).map_err(|e: Error| e.placed(self.at)),
                Err(_) => Err(Error::new(format!("`{s}` is not a whole number"), self.at)),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.value {
            Value::Str(s) => match s.trim().parse::<f64>() {
                Ok(n) => visitor.visit_f64(n).map_err(|e: Error| e.placed(self.at)),
                Err(_) => Err(Error::new(format!("`{s}` is not a number"), self.at)),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // A number or a boolean where text is wanted is its text (`image: 5`, `user: 1000`).
        match (&self.value, self.text()) {
            (Value::Str(_) | Value::Seq(_) | Value::Map(_) | Value::Null, _) | (_, None) => {
                self.deserialize_any(visitor)
            }
            (_, Some(text)) => visitor.visit_string(text).map_err(|e: Error| e.placed(self.at)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.value {
            Value::Str(s) => {
                let access: de::value::StrDeserializer<'_, Error> = s.as_str().into_deserializer();
                visitor.visit_enum(access).map_err(|e: Error| e.placed(self.at))
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

struct Items<'a> {
    items: std::slice::Iter<'a, Node>,
    index: usize,
}

impl<'de> SeqAccess<'de> for Items<'de> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        let Some(node) = self.items.next() else { return Ok(None) };
        let index = self.index;
        self.index += 1;
        seed.deserialize(node).map(Some).map_err(|e| e.placed(node.at).under(&index.to_string()))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Entries<'a> {
    entries: &'a [(Key, Node)],
    next: usize,
    value: Option<&'a Node>,
}

impl<'a> Entries<'a> {
    fn last(&self) -> Option<&'a Key> {
        self.next.checked_sub(1).map(|i| &self.entries[i].0)
    }
}

impl<'de> MapAccess<'de> for &mut Entries<'de> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some((key, node)) = self.entries.get(self.next) else { return Ok(None) };
        self.next += 1;
        self.value = Some(node);
        let name: de::value::StrDeserializer<'_, Error> = key.name.as_str().into_deserializer();
        seed.deserialize(name).map(Some).map_err(|e| e.placed(key.at).under(&key.name))
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let node = self.value.take().ok_or_else(|| de::Error::custom("a value was read before its key"))?;
        let key = self.last().map(|k| k.name.as_str()).unwrap_or_default();
        seed.deserialize(node).map_err(|e| e.placed(node.at).under(key))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len() - self.next)
    }
}

/// Where the variables of interpolation come from.
pub(crate) type Vars = BTreeMap<String, String>;

/// Interpolates every string value of the tree (not keys), as Compose does: `$$`, `$VAR`,
/// `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`,
/// `${VAR:+other}`, `${VAR+other}`, defaults and others themselves interpolated. `x-`
/// extensions at the top are left as written (they are templates for anchors, already copied).
pub(crate) fn interpolate(node: &mut Node, vars: &Vars) -> Result<(), Error> {
    walk(node, vars, &mut Vec::new())
}

fn walk(node: &mut Node, vars: &Vars, path: &mut Vec<String>) -> Result<(), Error> {
    match &mut node.value {
        Value::Str(text) if text.contains('$') => {
            *text = substitute(text, vars).map_err(|m| Error { message: m, at: node.at, path: path.clone() })?;
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                walk(item, vars, path)?;
                path.pop();
            }
        }
        Value::Map(entries) => {
            for (key, value) in entries.iter_mut() {
                if path.is_empty() && key.name.starts_with("x-") {
                    continue;
                }
                path.push(key.name.clone());
                walk(value, vars, path)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

/// `text` with its variables replaced.
pub(crate) fn substitute(text: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = closing(inner)
                .ok_or_else(|| format!("`{text}` has a `${{` without its `}}` (write `$$` for a literal `$`)"))?;
            out.push_str(&braced(&inner[..end], text, vars)?);
            rest = &inner[end + 1..];
        } else {
            let len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            if len == 0 || after.starts_with(|c: char| c.is_ascii_digit()) {
                // A lone `$` stands for itself, as in Compose.
                out.push('$');
                rest = after;
            } else {
                out.push_str(vars.get(&after[..len]).map(String::as_str).unwrap_or_default());
                rest = &after[len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` that closes a `${` whose inside starts `inner`, nested ones skipped.
fn closing(inner: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = inner.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The value of `${inside}`.
fn braced(inside: &str, text: &str, vars: &Vars) -> Result<String, String> {
    let len = inside.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(inside.len());
    let (name, op) = inside.split_at(len);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("`{text}`: `${{{inside}}}` does not name a variable (write `$$` for a literal `$`)"));
    }
    let value = vars.get(name);
    let set = value.is_some();
    let non_empty = value.is_some_and(|v| !v.is_empty());
    let own = || value.cloned().unwrap_or_default();
    let word = |w: &str| substitute(w, vars);
    Ok(match op {
        "" => own(),
        _ if op.starts_with(":-") => {
            if non_empty {
                own()
            } else {
                word(&op[2..])?
            }
        }
        _ if op.starts_with('-') => {
            if set {
                own()
            } else {
                word(&op[1..])?
            }
        }
        _ if op.starts_with(":+") => {
            if non_empty {
                word(&op[2..])?
            } else {
                String::new()
            }
        }
        _ if op.starts_with('+') => {
            if set {
                word(&op[1..])?
            } else {
                String::new()
            }
        }
        _ if op.starts_with(":?") || op.starts_with('?') => {
            let ok = if op.starts_with(':') { non_empty } else { set };
            if ok {
                own()
            } else {
                let why = word(op.trim_start_matches(':').trim_start_matches('?'))?;
                let why = if why.is_empty() { String::new() } else { format!(": {why}") };
                return Err(format!("required variable `{name}` is not set{why}"));
            }
        }
        _ => {
            return Err(format!(
                "`{text}`: `${{{inside}}}` is not a variable reference Compose knows (`${{VAR}}`, `${{VAR:-default}}`, \
                 `${{VAR:?error}}`, `${{VAR:+other}}`)"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [("A", "a"), ("EMPTY", "")].into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
    }

    fn sub(text: &str) -> String {
        substitute(text, &vars()).unwrap_or_else(|e| format!("error: {e}"))
    }

    fn parsed(text: &str) -> String {
        format!("{:?}", crate::parse_tree(text).expect("parses").map(|n| n.value))
    }

    #[test]
    fn scalars_read_as_compose_reads_them() {
        // YAML 1.2: `no` and `n` are text (an environment value, a key), a leading zero is
        // kept as written (a file mode is octal), `true` is a boolean.
        let tree = parsed(
            "n: no
mode: 0440
flag: true
port: 8080
",
        );
        for part in ["name: \"n\"", "Str(\"no\")", "Str(\"0440\")", "Bool(true)", "Int(8080)"] {
            assert!(tree.contains(part) || tree.contains(&part.replace("Int", "UInt")), "{part} in {tree}");
        }
    }

    #[test]
    fn interpolation_as_compose_does_it() {
        assert_eq!(sub("x${A}y $A $$A $$$A"), "xay a $A $a");
        assert_eq!(sub("${MISSING}|${MISSING:-d}|${EMPTY:-d}|${EMPTY-d}|${MISSING-d}"), "|d|d||d");
        assert_eq!(sub("${A:+set}|${EMPTY:+set}|${EMPTY+set}|${MISSING+set}"), "set||set|");
        assert_eq!(sub("${MISSING:-${A}-x}"), "a-x");
        assert_eq!(sub("costs $5 and $"), "costs $5 and $");
        assert_eq!(sub("${MISSING:?give it}"), "error: required variable `MISSING` is not set: give it");
        assert_eq!(sub("${EMPTY?}"), "");
        assert!(sub("${A").starts_with("error: `${A` has a `${` without its `}`"));
        assert!(sub("${A:x}").contains("is not a variable reference"));
        assert!(sub("${}").contains("does not name a variable"));
    }
}
