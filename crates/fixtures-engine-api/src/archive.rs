//! Build contexts as the Engine API takes them: a tar.

use std::path::Path;

use bytes::Bytes;
use fixtures_core::{Error, Result};

/// A tar of the folder `dir` as a build context, leaving out what its `.dockerignore` names, as
/// the docker CLI does: each line a pattern relative to `dir` (a leading `/` or `./` changes
/// nothing), `*` and `?` within a path component, `[a-z]` classes, `\\` escapes, `**` any
/// number of components; a pattern that matches a folder leaves out everything under it; a
/// line starting with `!` takes back what earlier lines left out, and the last line that
/// matches a path decides. The Dockerfile (`dockerfile`, relative to `dir`) and
/// `.dockerignore` are always sent: the engine needs them.
///
/// # Errors
/// `ErrorKind::Io` when the folder cannot be read.
pub fn context_tar(dir: &Path, dockerfile: &str) -> Result<Bytes> {
    let patterns = Ignore::parse(&std::fs::read_to_string(dir.join(".dockerignore")).unwrap_or_default());
    let always = [clean(dockerfile), ".dockerignore".to_owned()];
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    // Folders are written when something in them is, or when they are sent themselves.
    let mut written = std::collections::BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&folder)
            .map_err(|e| Error::from(e).with_operation(format!("read build context `{}`", folder.display())))?
            .collect::<std::io::Result<_>>()?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries.into_iter().rev() {
            let path = entry.path();
            let rel = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().into_owned();
            let left_out = patterns.excluded(&rel) && !always.contains(&rel);
            if entry.file_type()?.is_dir() {
                // A folder left out is still searched when a `!` line may take something
                // under it back.
                if !left_out || patterns.has_exceptions() {
                    if !left_out {
                        write_parents(&mut builder, &mut written, dir, &rel)?;
                    }
                    stack.push(path);
                }
            } else if !left_out {
                if let Some((parent, _)) = rel.rsplit_once('/') {
                    write_parents(&mut builder, &mut written, dir, parent)?;
                }
                builder.append_path_with_name(&path, &rel)?;
            }
        }
    }
    Ok(Bytes::from(builder.into_inner()?))
}

/// Whether the `.dockerignore` of `dir` leaves out the Dockerfile (`dockerfile`, relative to
/// `dir`) or itself. They are sent all the same (the engine reads them); the classic builder
/// then takes them out of what `COPY` sees, as it does for `docker build`, and BuildKit fed a
/// context archive does not, so such a context is built with the classic builder.
pub fn ignores_build_files(dir: &Path, dockerfile: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join(".dockerignore")) else { return false };
    let patterns = Ignore::parse(&text);
    patterns.excluded(&clean(dockerfile)) || patterns.excluded(".dockerignore")
}

/// Writes the folder `rel` and the folders above it, once each.
fn write_parents(
    builder: &mut tar::Builder<Vec<u8>>,
    written: &mut std::collections::BTreeSet<String>,
    dir: &Path,
    rel: &str,
) -> Result<()> {
    let mut at = String::new();
    for part in rel.split('/') {
        if !at.is_empty() {
            at.push('/');
        }
        at.push_str(part);
        if written.insert(at.clone()) {
            builder.append_dir(&at, dir.join(&at))?;
        }
    }
    Ok(())
}

/// A path as the docker CLI cleans it: no `.` or empty components, no leading `/`, `..`
/// taken back.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// The patterns of a `.dockerignore`.
struct Ignore(Vec<(bool, Vec<String>)>);

impl Ignore {
    fn parse(text: &str) -> Ignore {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pattern = clean(pattern);
            if pattern.is_empty() {
                continue;
            }
            patterns.push((exception, pattern.split('/').map(str::to_owned).collect()));
        }
        Ignore(patterns)
    }

    fn has_exceptions(&self) -> bool {
        self.0.iter().any(|(exception, _)| *exception)
    }

    /// Whether `rel` is left out: the last pattern that matches it or a folder above it decides.
    fn excluded(&self, rel: &str) -> bool {
        let parts: Vec<&str> = rel.split('/').collect();
        let mut out = false;
        for (exception, pattern) in &self.0 {
            if (1..=parts.len()).any(|n| components(pattern, &parts[..n])) {
                out = !exception;
            }
        }
        out
    }
}

/// Whether the path components `path` match the pattern components `pattern` (`**` any number
/// of components).
fn components(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => (0..=path.len()).any(|skip| components(rest, &path[skip..])),
        Some((first, rest)) => {
            path.split_first().is_some_and(|(head, tail)| glob(first, head) && components(rest, tail))
        }
    }
}

/// One component against one pattern: `*` any run of characters, `?` one, `[...]` one of a
/// class (`[!...]` or `[^...]` none of it, `a-z` ranges), `\\` the next character itself.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|skip| go(&p[1..], &t[skip..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some('[') => {
                let Some(&c) = t.first() else { return false };
                let Some(end) = p.iter().skip(1).position(|x| *x == ']').map(|i| i + 1) else {
                    return c == '[' && go(&p[1..], &t[1..]);
                };
                let class = &p[1..end];
                let (negated, class) = match class.first() {
                    Some('!' | '^') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut found = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        found |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        found |= class[i] == c;
                        i += 1;
                    }
                }
                found != negated && go(&p[end + 1..], &t[1..])
            }
            Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && go(&p[2..], &t[1..]),
            Some(&c) => t.first() == Some(&c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

/// A tar holding one file, `Dockerfile`, as the whole build context.
///
/// # Errors
/// Never in practice; the tar is built in memory.
pub fn dockerfile_tar(dockerfile: &str) -> Result<Bytes> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    builder.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())?;
    Ok(Bytes::from(builder.into_inner()?))
}

/// A context compressed with gzip, for an engine on another host: the Engine API reads a
/// gzip-compressed tar as well as a plain one, and a remote link is slower than the CPU.
/// Fast compression (level 1): most of the saving at a fraction of the time.
///
/// # Errors
/// [`fixtures_core::ErrorKind::Io`] if compressing fails (it does not, in memory).
pub fn gzip(tar: &[u8]) -> Result<Bytes> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(tar.len() / 3), flate2::Compression::fast());
    encoder.write_all(tar).map_err(|e| Error::from(e).with_operation("compress the build context"))?;
    let out = encoder.finish().map_err(|e| Error::from(e).with_operation("compress the build context"))?;
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn left_out(ignore: &str, rel: &str) -> bool {
        Ignore::parse(ignore).excluded(rel)
    }

    #[test]
    fn dockerignore_patterns_match_as_docker_matches_them() {
        assert!(left_out("target", "target"));
        assert!(left_out("target", "target/debug/x"));
        assert!(left_out("/target/", "target/debug/x"));
        assert!(!left_out("target", "src/target"));
        assert!(left_out("*.log", "a.log"));
        assert!(!left_out("*.log", "logs/a.log"), "`*` stays within the top folder");
        assert!(left_out("**/*.log", "logs/deep/a.log"));
        assert!(left_out("**/*.log", "a.log"), "`**` is zero folders too");
        assert!(left_out("docs/**/draft-?.md", "docs/a/b/draft-1.md"));
        assert!(left_out("*/tmp", "x/tmp/file"));
        assert!(left_out("[a-c]at", "bat") && !left_out("[!a-c]at", "bat"));
        assert!(left_out("\\*star", "*star") && !left_out("\\*star", "xstar"));
        // Exceptions: the last line that matches decides.
        let ignore = "*.md\n!README.md\nbuild\n!build/keep\nsecret*\n# comment\n";
        assert!(left_out(ignore, "notes.md") && !left_out(ignore, "README.md"));
        assert!(left_out(ignore, "build/out.o") && !left_out(ignore, "build/keep/x"));
        assert!(left_out("!a\na", "a"), "an exception before the rule it excepts does nothing");
        assert_eq!(clean("./a/../b//c/"), "b/c");
    }

    #[test]
    fn the_dockerfile_and_dockerignore_are_always_sent() {
        let dir = std::env::temp_dir().join(format!("fixtures-ctx-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("docker")).expect("dir");
        for (path, text) in
            [("docker/Dockerfile.test", "FROM scratch\n"), (".dockerignore", "*\n!app\n"), ("app", "x"), ("other", "y")]
        {
            std::fs::write(dir.join(path), text).expect("write");
        }
        let tar = context_tar(&dir, "./docker/Dockerfile.test").expect("tar");
        let mut archive = tar::Archive::new(&tar[..]);
        let mut names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| e.expect("entry").path().expect("path").to_string_lossy().trim_end_matches('/').to_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".dockerignore", "app", "docker", "docker/Dockerfile.test"]);
        std::fs::remove_dir_all(&dir).expect("clean");
    }

    #[test]
    fn a_lone_dockerfile_is_a_context() {
        let tar = dockerfile_tar("FROM scratch\n").expect("tar");
        let mut archive = tar::Archive::new(&tar[..]);
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| e.expect("entry").path().expect("path").to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["Dockerfile"]);
    }

    #[test]
    fn contexts_compress_and_read_back() {
        use std::io::Read;
        let tar = dockerfile_tar(&"FROM scratch\n".repeat(1000)).expect("tar");
        let gz = gzip(&tar).expect("gzip");
        assert!(gz.len() * 10 < tar.len(), "{} of {}", gz.len(), tar.len());
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(gz.as_ref()).read_to_end(&mut back).expect("gunzip");
        assert_eq!(back, tar.as_ref());
    }
}
