//! Build contexts as the Engine API takes them: a tar.

use std::path::Path;

use bytes::Bytes;
use fixtures_core::{Error, Result};

/// A tar of the folder `dir` as a build context, leaving out what its `.dockerignore` names.
///
/// `.dockerignore` lines are matched against paths relative to `dir`: a line names a file
/// or a folder (and everything under it), `*` matches within one path component, and a
/// leading `!` is not supported (such lines are skipped).
///
/// # Errors
/// `ErrorKind::Io` when the folder cannot be read.
pub fn context_tar(dir: &Path) -> Result<Bytes> {
    let ignore: Vec<String> = std::fs::read_to_string(dir.join(".dockerignore"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().trim_start_matches("./").trim_end_matches('/').to_owned())
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .collect();
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&folder)
            .map_err(|e| Error::from(e).with_operation(format!("read build context `{}`", folder.display())))?
            .collect::<std::io::Result<_>>()?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            let rel = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().into_owned();
            if ignore.iter().any(|pattern| ignored(pattern, &rel)) {
                continue;
            }
            if entry.file_type()?.is_dir() {
                builder.append_dir(&rel, &path)?;
                stack.push(path);
            } else {
                builder.append_path_with_name(&path, &rel)?;
            }
        }
    }
    Ok(Bytes::from(builder.into_inner()?))
}

fn ignored(pattern: &str, rel: &str) -> bool {
    let pat: Vec<&str> = pattern.split('/').collect();
    let path: Vec<&str> = rel.split('/').collect();
    path.len() >= pat.len() && pat.iter().zip(&path).all(|(p, c)| glob(p, c))
}

/// `*` matches any run of characters, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    match (pattern.chars().next(), text.chars().next()) {
        (None, None) => true,
        (Some('*'), _) => {
            glob(&pattern[1..], text)
                || (!text.is_empty() && glob(pattern, &text[text.chars().next().map_or(0, char::len_utf8)..]))
        }
        (Some('?'), Some(c)) => glob(&pattern[1..], &text[c.len_utf8()..]),
        (Some(p), Some(c)) if p == c => glob(&pattern[p.len_utf8()..], &text[c.len_utf8()..]),
        _ => false,
    }
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

    #[test]
    fn dockerignore_patterns_match() {
        assert!(ignored("target", "target"));
        assert!(ignored("target", "target/debug/x"));
        assert!(!ignored("target", "src/target"));
        assert!(ignored("*.log", "a.log"));
        assert!(ignored("*/tmp", "x/tmp/file"));
        assert!(!ignored("*.log", "logs/a.txt"));
        assert!(glob("a?c", "abc"));
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
