//! The path the rendered code names the library by: `::fixtures` as users depend on it, under
//! whatever name their Cargo.toml gives it (`fx = { package = "fixtures", .. }`), or
//! `fixtures-core` for a crate that depends on that alone. Read from the manifest of the crate
//! being compiled (cargo sets `CARGO_MANIFEST_DIR`); `crate = path` in the attribute wins.
//!
//! A small reader of the dependency tables, not a TOML parser: it knows `name = ..` lines in
//! `[dependencies]`, `[dev-dependencies]`, `[build-dependencies]` (also under `[target.*]`),
//! `[dependencies.name]` tables, `package = ".."`, and `name.workspace = true` /
//! `{ workspace = true }` resolved in the workspace root's `[workspace.dependencies]`.

use std::path::Path;

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

/// The library's path: `::fixtures`, `::<rename>`, or `::fixtures_core`.
pub(crate) fn path() -> TokenStream {
    let name = std::env::var("CARGO_MANIFEST_DIR").ok().and_then(|dir| crate_name(Path::new(&dir)));
    let ident = Ident::new(name.as_deref().unwrap_or("fixtures"), Span::call_site());
    quote! { ::#ident }
}

/// The name the crate in `dir` gives the library, if its manifest says.
fn crate_name(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
    if package_name(&text).as_deref() == Some("fixtures") {
        // The package's own tests, examples and doc tests.
        return Some("fixtures".to_owned());
    }
    let deps = dependencies(&text);
    let workspace = || workspace_manifest(dir).map(|t| workspace_dependencies(&t)).unwrap_or_default();
    let package_of = |dep: &Dep| match (&dep.package, dep.workspace) {
        (Some(p), _) => p.clone(),
        (None, true) => {
            workspace().into_iter().find(|w| w.key == dep.key).and_then(|w| w.package).unwrap_or(dep.key.clone())
        }
        (None, false) => dep.key.clone(),
    };
    // A test sees `[dependencies]` and `[dev-dependencies]`; a build script's are a last resort.
    let find = |package: &str| {
        let mut matching: Vec<&Dep> = deps.iter().filter(|d| package_of(d) == package).collect();
        matching.sort_by_key(|d| d.build);
        matching.first().map(|d| d.key.replace('-', "_"))
    };
    find("fixtures").or_else(|| find("fixtures-core"))
}

#[derive(Debug, PartialEq)]
struct Dep {
    key: String,
    package: Option<String>,
    workspace: bool,
    /// From `[build-dependencies]`.
    build: bool,
}

fn package_name(text: &str) -> Option<String> {
    let mut in_package = false;
    for line in lines(text) {
        if let Some(header) = header(&line) {
            in_package = header == "package";
        } else if in_package {
            if let Some(("name", value)) = key_value(&line) {
                return string(value);
            }
        }
    }
    None
}

const TABLES: [&str; 3] = ["dependencies", "dev-dependencies", "build-dependencies"];

/// Which dependency table a header opens: `Some((None, build))` for a table of dependencies
/// (`[dev-dependencies]`, `[target.'cfg(unix)'.dependencies]`), `Some((Some(name), build))` for
/// one dependency's own table (`[dependencies.name]`).
fn dependency_table(header: &str) -> Option<(Option<String>, bool)> {
    let parts = segments(header);
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let (table, name) = match parts.as_slice() {
        [t] => (*t, None),
        [t, name] if TABLES.contains(t) => (*t, Some((*name).to_owned())),
        ["target", _, t] => (*t, None),
        ["target", _, t, name] => (*t, Some((*name).to_owned())),
        _ => return None,
    };
    TABLES.contains(&table).then(|| (name, table == "build-dependencies"))
}

/// The dependencies of a manifest, from every dependency table.
fn dependencies(text: &str) -> Vec<Dep> {
    read_tables(text, dependency_table)
}

/// `[workspace.dependencies]` of the workspace root's manifest.
fn workspace_dependencies(text: &str) -> Vec<Dep> {
    read_tables(text, |header| {
        let parts = segments(header);
        match parts.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["workspace", "dependencies"] => Some((None, false)),
            ["workspace", "dependencies", name] => Some((Some((*name).to_owned()), false)),
            _ => None,
        }
    })
}

/// Reads `name = ..` lines (and `name.package = ..`, `name.workspace = ..`) of the tables
/// `kind` calls dependency tables, and the `package` and `workspace` keys of one dependency's
/// own table.
fn read_tables(text: &str, kind: impl Fn(&str) -> Option<(Option<String>, bool)>) -> Vec<Dep> {
    let mut deps: Vec<Dep> = Vec::new();
    let mut table: Option<(Option<String>, bool)> = None;
    for line in lines(text) {
        if let Some(header) = header(&line) {
            table = kind(header);
            if let Some((Some(name), build)) = &table {
                deps.push(Dep { key: name.clone(), package: None, workspace: false, build: *build });
            }
            continue;
        }
        let Some((key, value)) = key_value(&line) else { continue };
        let Some((own, build)) = &table else { continue };
        let (name, sub) = match own {
            Some(name) => (name.clone(), Some(key.to_owned())),
            None => {
                let parts = segments(key);
                match parts.as_slice() {
                    [name] => (name.clone(), None),
                    [name, sub] => (name.clone(), Some(sub.clone())),
                    _ => continue,
                }
            }
        };
        let at = match deps.iter().position(|d| d.key == name && d.build == *build) {
            Some(at) => at,
            None => {
                deps.push(Dep { key: name, package: None, workspace: false, build: *build });
                deps.len() - 1
            }
        };
        let dep = &mut deps[at];
        match sub.as_deref() {
            None => {
                if let Some(package) = inline(value, "package").and_then(|v| string(&v)) {
                    dep.package = Some(package);
                }
                if inline(value, "workspace").as_deref() == Some("true") {
                    dep.workspace = true;
                }
            }
            Some("package") => dep.package = string(value),
            Some("workspace") => dep.workspace = value == "true",
            Some(_) => {}
        }
    }
    deps
}

/// The manifest of the workspace `dir` is in: the nearest one at or above it with
/// `[workspace]` (a crate may be its own workspace's root).
fn workspace_manifest(dir: &Path) -> Option<String> {
    dir.ancestors().map(|d| d.join("Cargo.toml")).find_map(|p| {
        let text = std::fs::read_to_string(p).ok()?;
        let is_root = lines(&text).any(|l| header(&l) == Some("workspace"));
        is_root.then_some(text)
    })
}

/// The manifest's logical lines: comments cut off (outside strings), blank lines left out, and
/// a value whose brackets or braces span several lines joined into one.
fn lines(text: &str) -> impl Iterator<Item = String> + '_ {
    let mut pending = String::new();
    let mut depth = 0i32;
    let mut out = Vec::new();
    for raw in text.lines() {
        let mut kept = String::new();
        for (_, c, inside) in scan(raw) {
            match c {
                '#' if !inside => break,
                '[' | '{' if !inside => depth += 1,
                ']' | '}' if !inside => depth -= 1,
                _ => {}
            }
            kept.push(c);
        }
        if !pending.is_empty() {
            pending.push(' ');
        }
        pending.push_str(kept.trim());
        // A header `[x]` or `[[x]]` is balanced on its own line; a value may not be.
        if depth <= 0 {
            depth = 0;
            let line = std::mem::take(&mut pending);
            if !line.trim().is_empty() {
                out.push(line.trim().to_owned());
            }
        }
    }
    if !pending.trim().is_empty() {
        out.push(pending.trim().to_owned());
    }
    out.into_iter()
}

/// Each character of a line with its index and whether it stands in a string (its quotes
/// included): `"basic"` with `\` escapes, or `'literal'`.
fn scan(text: &str) -> impl Iterator<Item = (usize, char, bool)> + '_ {
    let (mut quote, mut escaped) = (None::<char>, false);
    text.char_indices().map(move |(i, c)| {
        let inside = match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
                true
            }
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                true
            }
            None => false,
        };
        (i, c, inside)
    })
}

fn header(line: &str) -> Option<&str> {
    let inner = line.strip_prefix('[')?;
    let inner = inner.strip_prefix('[').unwrap_or(inner);
    let end = inner.rfind(']')?;
    Some(inner[..end].trim_end_matches(']').trim())
}

fn key_value(line: &str) -> Option<(&str, &str)> {
    if line.starts_with('[') {
        return None;
    }
    let at = top_level(line, '=').into_iter().next()?;
    Some((line[..at].trim(), line[at + 1..].trim()))
}

/// Where `sep` stands outside strings, brackets and braces.
fn top_level(text: &str, sep: char) -> Vec<usize> {
    let mut depth = 0i32;
    let mut at = Vec::new();
    for (i, c, inside) in scan(text) {
        match c {
            _ if inside => {}
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            c if c == sep && depth == 0 => at.push(i),
            _ => {}
        }
    }
    at
}

/// A dotted key's or header's parts, quotes taken off: `target.'cfg(unix)'.dependencies`.
fn segments(text: &str) -> Vec<String> {
    let mut cuts = top_level(text, '.');
    cuts.push(text.len());
    let mut start = 0;
    cuts.into_iter()
        .map(|end| {
            let part = unquote(&text[start..end]);
            start = end + 1;
            part
        })
        .collect()
}

/// The value of `key` in an inline table `{ key = value, .. }`.
fn inline(value: &str, key: &str) -> Option<String> {
    let body = value.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut start = 0;
    let mut cuts = top_level(body, ',');
    cuts.push(body.len());
    cuts.into_iter().find_map(|end| {
        let item = &body[start..end];
        start = (end + 1).min(body.len());
        let (k, v) = key_value(item.trim())?;
        (unquote(k) == key).then(|| v.to_owned())
    })
}

/// A TOML string's text: `"basic"` or `'literal'`.
fn string(value: &str) -> Option<String> {
    let v = value.trim();
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .map(str::to_owned)
}

fn unquote(name: &str) -> String {
    let name = name.trim();
    string(name).unwrap_or_else(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn dir_with(manifest: &str, workspace: Option<&str>) -> PathBuf {
        let root = std::env::temp_dir().join(format!("fixtures-macros-{}-{}", std::process::id(), rand()));
        let member = root.join("member");
        std::fs::create_dir_all(&member).expect("dir");
        std::fs::write(member.join("Cargo.toml"), manifest).expect("write");
        if let Some(w) = workspace {
            std::fs::write(root.join("Cargo.toml"), w).expect("write");
        }
        member
    }

    fn rand() -> u128 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    }

    #[test]
    fn the_library_is_found_under_its_name() {
        let plain =
            "[package]\nname = \"app\"\n\n[dev-dependencies]\nfixtures = \"0.1\"\ntokio = { version = \"1\" }\n";
        assert_eq!(crate_name(&dir_with(plain, None)).as_deref(), Some("fixtures"));
        let renamed =
            "[package]\nname = \"app\"\n[dev-dependencies]\nfx = { package = \"fixtures\", version = \"0.1\" }\n";
        assert_eq!(crate_name(&dir_with(renamed, None)).as_deref(), Some("fx"));
        let table = "[package]\nname = \"app\"\n\n[target.'cfg(unix)'.dev-dependencies.my-fx]\npackage = \"fixtures\"\nversion = \"0.1\"\n";
        assert_eq!(crate_name(&dir_with(table, None)).as_deref(), Some("my_fx"));
        let core = "[package]\nname = \"app\"\n[dependencies]\nfixtures-core = { path = \"../core\" }\n";
        assert_eq!(crate_name(&dir_with(core, None)).as_deref(), Some("fixtures_core"));
        let own = "[package]\nname = \"fixtures\"\n[dependencies]\nfixtures-core = \"0.1\"\n";
        assert_eq!(crate_name(&dir_with(own, None)).as_deref(), Some("fixtures"));
        let none = "[package]\nname = \"app\"\n[dependencies]\nserde = \"1\"\n";
        assert_eq!(crate_name(&dir_with(none, None)), None);
    }

    #[test]
    fn manifests_as_people_write_them() {
        let commented =
            "[package]\nname = \"app\" # the app\n[dev-dependencies]\nfx.workspace = true  # from the root\n";
        let root = "[workspace]\n[workspace.dependencies]\nfx = { package = \"fixtures\" } # renamed\n";
        assert_eq!(crate_name(&dir_with(commented, Some(root))).as_deref(), Some("fx"));
        let single =
            "[package]\nname = \"app\"\n[dev-dependencies]\nfx = { package = 'fixtures', version = \"0.1\" }\n";
        assert_eq!(crate_name(&dir_with(single, None)).as_deref(), Some("fx"));
        let dotted = "[package]\nname = \"app\"\n[dev-dependencies]\nfx.package = \"fixtures\"\nfx.version = \"0.1\"\n";
        assert_eq!(crate_name(&dir_with(dotted, None)).as_deref(), Some("fx"));
        let multiline = "[package]\nname = \"app\"\n[dev-dependencies]\nfx = { package = \"fixtures\", features = [\n    \"podman\", # both\n] }\nserde = \"1\"\n";
        assert_eq!(crate_name(&dir_with(multiline, None)).as_deref(), Some("fx"));
        let build_first = "[package]\nname = \"app\"\n[build-dependencies]\nfxb = { package = \"fixtures\" }\n[dev-dependencies]\nfx = { package = \"fixtures\" }\n";
        assert_eq!(crate_name(&dir_with(build_first, None)).as_deref(), Some("fx"));
        let metadata =
            "[package]\nname = \"app\"\n[package.metadata.x.dependencies]\nfx = { package = \"fixtures\" }\n";
        assert_eq!(crate_name(&dir_with(metadata, None)), None);
        let own_root = "[package]\nname = \"app\"\n[workspace]\n[workspace.dependencies]\nfx = { package = \"fixtures\" }\n[dev-dependencies]\nfx.workspace = true\n";
        assert_eq!(crate_name(&dir_with(own_root, None)).as_deref(), Some("fx"));
    }

    #[test]
    fn a_rename_in_the_workspace_is_followed() {
        let member = "[package]\nname = \"app\"\n[dev-dependencies]\nfx.workspace = true\n";
        let root = "[workspace]\nmembers = [\"member\"]\n\n[workspace.dependencies]\nfx = { package = \"fixtures\", version = \"0.1\" }\n";
        assert_eq!(crate_name(&dir_with(member, Some(root))).as_deref(), Some("fx"));
        let inline =
            "[package]\nname = \"app\"\n[dev-dependencies]\nfx = { workspace = true, features = [\"podman\"] }\n";
        assert_eq!(crate_name(&dir_with(inline, Some(root))).as_deref(), Some("fx"));
    }
}
