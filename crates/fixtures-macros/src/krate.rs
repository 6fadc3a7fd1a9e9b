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
    let find = |package: &str| deps.iter().find(|d| package_of(d) == package).map(|d| d.key.replace('-', "_"));
    find("fixtures").or_else(|| find("fixtures-core"))
}

#[derive(Debug, PartialEq)]
struct Dep {
    key: String,
    package: Option<String>,
    workspace: bool,
}

fn package_name(text: &str) -> Option<String> {
    let mut in_package = false;
    for line in lines(text) {
        if let Some(header) = header(line) {
            in_package = header == "package";
        } else if in_package {
            if let Some(("name", value)) = key_value(line) {
                return string(value);
            }
        }
    }
    None
}

/// The dependencies of a manifest, from every dependency table.
fn dependencies(text: &str) -> Vec<Dep> {
    read_tables(text, |header| {
        let last = header.rsplit('.').next().unwrap_or(header);
        let table = ["dependencies", "dev-dependencies", "build-dependencies"];
        if table.contains(&last) && !header.starts_with("workspace") {
            return Some(None);
        }
        // `[dependencies.name]`, `[target.'cfg(..)'.dev-dependencies.name]`
        let (rest, name) = header.rsplit_once('.')?;
        let parent = rest.rsplit('.').next().unwrap_or(rest);
        (table.contains(&parent) && !header.starts_with("workspace")).then(|| Some(unquote(name)))
    })
}

/// `[workspace.dependencies]` of the workspace root's manifest.
fn workspace_dependencies(text: &str) -> Vec<Dep> {
    read_tables(text, |header| match header.strip_prefix("workspace.dependencies") {
        Some("") => Some(None),
        Some(rest) => rest.strip_prefix('.').map(|name| Some(unquote(name))),
        None => None,
    })
}

/// Reads `name = ..` lines of the tables `kind` calls dependency tables (`Some(None)`) and the
/// `package` and `workspace` keys of one dependency's own table (`Some(Some(name))`).
fn read_tables(text: &str, kind: impl Fn(&str) -> Option<Option<String>>) -> Vec<Dep> {
    let mut deps: Vec<Dep> = Vec::new();
    let mut table: Option<Option<String>> = None;
    for line in lines(text) {
        if let Some(header) = header(line) {
            table = kind(header);
            if let Some(Some(name)) = &table {
                deps.push(Dep { key: name.clone(), package: None, workspace: false });
            }
            continue;
        }
        let Some((key, value)) = key_value(line) else { continue };
        match &table {
            Some(None) => {
                let (key, dotted) = match key.split_once('.') {
                    Some((k, rest)) => (unquote(k), Some(rest.trim())),
                    None => (unquote(key), None),
                };
                let workspace = dotted == Some("workspace") && value.trim() == "true"
                    || inline(value, "workspace").as_deref() == Some("true");
                let package = inline(value, "package").and_then(|v| string(&v));
                deps.push(Dep { key, package, workspace });
            }
            Some(Some(_)) => {
                let dep = deps.last_mut().expect("pushed at its header");
                match key {
                    "package" => dep.package = string(value),
                    "workspace" => dep.workspace = value.trim() == "true",
                    _ => {}
                }
            }
            None => {}
        }
    }
    deps
}

/// The manifest of the workspace `dir` is in: the nearest one above with `[workspace]`.
fn workspace_manifest(dir: &Path) -> Option<String> {
    dir.ancestors().skip(1).map(|d| d.join("Cargo.toml")).find_map(|p| {
        let text = std::fs::read_to_string(p).ok()?;
        let is_root = lines(&text).any(|l| header(l) == Some("workspace"));
        is_root.then_some(text)
    })
}

fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(|l| l.trim()).filter(|l| !l.is_empty() && !l.starts_with('#'))
}

fn header(line: &str) -> Option<&str> {
    let inner = line.strip_prefix('[')?;
    let inner = inner.strip_prefix('[').unwrap_or(inner);
    let end = inner.find(']')?;
    Some(inner[..end].trim())
}

fn key_value(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once('=')?;
    Some((key.trim(), value.trim()))
}

/// The value of `key` in an inline table `{ key = value, .. }`.
fn inline(value: &str, key: &str) -> Option<String> {
    let body = value.trim().strip_prefix('{')?.rsplit_once('}')?.0;
    body.split(',').filter_map(key_value).find(|(k, _)| *k == key).map(|(_, v)| v.to_owned())
}

fn string(value: &str) -> Option<String> {
    let v = value.trim();
    let v = v.split_once('#').map_or(v, |(before, _)| before).trim();
    v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).map(str::to_owned)
}

fn unquote(name: &str) -> String {
    name.trim().trim_matches('"').trim_matches('\'').to_owned()
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
    fn a_rename_in_the_workspace_is_followed() {
        let member = "[package]\nname = \"app\"\n[dev-dependencies]\nfx.workspace = true\n";
        let root = "[workspace]\nmembers = [\"member\"]\n\n[workspace.dependencies]\nfx = { package = \"fixtures\", version = \"0.1\" }\n";
        assert_eq!(crate_name(&dir_with(member, Some(root))).as_deref(), Some("fx"));
        let inline =
            "[package]\nname = \"app\"\n[dev-dependencies]\nfx = { workspace = true, features = [\"podman\"] }\n";
        assert_eq!(crate_name(&dir_with(inline, Some(root))).as_deref(), Some("fx"));
    }
}
