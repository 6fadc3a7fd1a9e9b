//! Templates: strings that reference other fixtures.
//!
//! `"{fakedns.ips.primary}"`, `"{db.ports[5432/tcp]}"`, `"{cfg}"`; `{{` and `}}`
//! stand for literal braces. A reference is a fixture name followed by
//! attributes (`.attr`) and keys (`[key]`). Parsing does no I/O and reports
//! the position of a syntax error.

use std::fmt;

/// One step of a reference's path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Segment {
    /// `.name`
    Attr(String),
    /// `[key]`
    Key(String),
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Attr(a) => write!(f, ".{a}"),
            Segment::Key(k) => write!(f, "[{k}]"),
        }
    }
}

/// A reference to a fixture and a path into it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Reference {
    /// The fixture's name.
    pub node: String,
    /// The path into it.
    pub path: Vec<Segment>,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.node)?;
        self.path.iter().try_for_each(|s| write!(f, "{s}"))
    }
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Text as it is.
    Literal(String),
    /// `{reference}`
    Ref(Reference),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    /// Its pieces, in order.
    pub parts: Vec<Part>,
}

/// A syntax error in a template, with the byte position it was found at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    /// The template's text.
    pub text: String,
    /// Byte offset of the error.
    pub at: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let column = self.text[..self.at.min(self.text.len())].chars().count();
        write!(f, "{} at column {}\n    {}\n    {}^", self.message, column + 1, self.text, " ".repeat(column))
    }
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

impl Template {
    /// Parses `text`.
    ///
    /// # Errors
    /// A [`SyntaxError`] naming the position: an unclosed `{`, a lone `}`, an empty
    /// reference, a bad name or an unclosed `[`.
    pub(crate) fn parse(text: &str) -> Result<Template, SyntaxError> {
        let err = |at: usize, message: &str| SyntaxError { text: text.to_owned(), at, message: message.to_owned() };
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(err(i, "`}` without a matching `{` (write `}}` for a literal brace)")),
                '{' => {
                    let close = text[i..]
                        .find('}')
                        .map(|j| i + j)
                        .ok_or_else(|| err(i, "`{` is never closed (write `{{` for a literal brace)"))?;
                    let inner = &text[i + 1..close];
                    let reference = parse_reference(inner, i + 1).map_err(|(at, m)| err(at, &m))?;
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Ref(reference));
                    while chars.peek().is_some_and(|(j, _)| *j <= close) {
                        chars.next();
                    }
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    /// The references in this template.
    pub(crate) fn references(&self) -> impl Iterator<Item = &Reference> {
        self.parts.iter().filter_map(|p| match p {
            Part::Ref(r) => Some(r),
            Part::Literal(_) => None,
        })
    }
}

fn parse_reference(inner: &str, offset: usize) -> Result<Reference, (usize, String)> {
    if inner.trim().is_empty() {
        return Err((offset, "empty reference `{}`: name a fixture, like `{db.id}`".to_owned()));
    }
    let mut chars = inner.char_indices().peekable();
    let mut name_end = 0;
    while let Some((i, c)) = chars.peek().copied() {
        if is_name_char(c) {
            name_end = i + c.len_utf8();
            chars.next();
        } else {
            break;
        }
    }
    if name_end == 0 {
        return Err((offset, format!("`{inner}` does not start with a fixture name")));
    }
    let node = inner[..name_end].to_owned();
    let mut path = Vec::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '.' => {
                let start = i + 1;
                let mut end = start;
                while let Some((j, c)) = chars.peek().copied() {
                    if is_name_char(c) {
                        end = j + c.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                if end == start {
                    return Err((offset + start, "expected an attribute name after `.`".to_owned()));
                }
                path.push(Segment::Attr(inner[start..end].to_owned()));
            }
            '[' => {
                let close = inner[i..]
                    .find(']')
                    .map(|j| i + j)
                    .ok_or_else(|| (offset + i, "`[` is never closed".to_owned()))?;
                let key = inner[i + 1..close].trim().trim_matches(|c| c == '"' || c == '\'');
                if key.is_empty() {
                    return Err((offset + i, "empty key `[]`".to_owned()));
                }
                path.push(Segment::Key(key.to_owned()));
                while chars.peek().is_some_and(|(j, _)| *j <= close) {
                    chars.next();
                }
            }
            c => {
                return Err((offset + i, format!("unexpected `{c}` in a reference: use `.attr` or `[key]`")));
            }
        }
    }
    Ok(Reference { node, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, expect: &str) {
        let got = match Template::parse(text) {
            Ok(t) => t
                .parts
                .iter()
                .map(|p| match p {
                    Part::Literal(l) => format!("'{l}'"),
                    Part::Ref(r) => format!("<{r}>"),
                })
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expect, "parsing {text:?}");
    }

    #[test]
    fn templates_parse() {
        check("plain", "'plain'");
        check("", "");
        check("{fakedns_image.id}", "<fakedns_image.id>");
        check("{fakedns.ips.primary}", "<fakedns.ips.primary>");
        check("{db.ports[5432/tcp]}", "<db.ports[5432/tcp]>");
        check("{db.env['PG_USER']}", "<db.env[PG_USER]>");
        check("{redis.ips[backend-network]}", "<redis.ips[backend-network]>");
        check("http://{api.ips.primary}:{port}/x", "'http://' <api.ips.primary> ':' <port> '/x'");
        check("{{literal}} {a}", "'{literal} ' <a>");
        check("{a}{b}", "<a> <b>");
        check("ünï{cödé}", "'ünï' <cödé>");
    }

    #[test]
    fn malformed_templates_say_where() {
        insta::assert_snapshot!(
            [
                "{unclosed",
                "lone } brace",
                "{}",
                "{ .id}",
                "{db.}",
                "{db.ports[8080}",
                "{db.ports[]}",
                "{db id}",
                "{db!}",
            ]
            .iter()
            .map(|t| format!("{t:?}:\n  {}", Template::parse(t).expect_err(t).to_string().replace('\n', "\n  ")))
            .collect::<Vec<_>>()
            .join("\n")
        );
    }
}
