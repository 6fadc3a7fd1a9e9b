//! Tar archives in and out of containers and volumes.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use bytes::Bytes;

use crate::error::{Error, ErrorKind, Result};

/// Files by relative path: `Some(bytes)` for a file, `None` for a folder.
pub type Files = BTreeMap<String, Option<Vec<u8>>>;

/// Checks that `path` is relative and stays inside its root.
pub(crate) fn check_relative(path: &str) -> Result<()> {
    let p = Path::new(path);
    if path.is_empty() {
        return Err(Error::invalid_input("an empty path cannot be written"));
    }
    for component in p.components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(Error::invalid_input(format!(
                    "path `{path}` contains `..`: paths must stay inside the target folder"
                )));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(Error::invalid_input(format!(
                    "path `{path}` is absolute: give it relative to the target folder"
                )));
            }
        }
    }
    Ok(())
}

/// A tar of `files`, with the folders that lead to each file made too.
pub(crate) fn build_tar(files: &Files) -> Result<Bytes> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut made_dirs = std::collections::BTreeSet::new();
    for (path, content) in files {
        check_relative(path)?;
        let clean = path.trim_end_matches('/');
        let mut parents: Vec<&str> = Vec::new();
        let mut at = clean;
        while let Some((parent, _)) = at.rsplit_once('/') {
            parents.push(parent);
            at = parent;
        }
        if content.is_none() {
            parents.insert(0, clean);
        }
        for dir in parents.into_iter().rev() {
            if made_dirs.insert(dir.to_owned()) {
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                header.set_mtime(0);
                builder.append_data(&mut header, format!("{dir}/"), std::io::empty())?;
            }
        }
        if let Some(bytes) = content {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(bytes.len() as u64);
            header.set_mtime(0);
            builder.append_data(&mut header, clean, bytes.as_slice())?;
        }
    }
    Ok(Bytes::from(builder.into_inner()?))
}

/// The entries of a tar archive, folders as `None`.
pub(crate) fn read_tar(bytes: &[u8]) -> Result<Files> {
    let mut archive = tar::Archive::new(bytes);
    let mut files = Files::new();
    let entries = archive
        .entries()
        .map_err(|e| Error::new(ErrorKind::Engine, "the engine sent an archive that cannot be read").with_source(e))?;
    for entry in entries {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().trim_end_matches('/').to_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            files.insert(path, None);
        } else if kind.is_file() {
            let mut content = Vec::with_capacity(entry.size() as usize);
            std::io::Read::read_to_end(&mut entry, &mut content)?;
            files.insert(path, Some(content));
        } else if kind.is_symlink() {
            let target = entry.link_name()?.map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
            files.insert(path, Some(target.into_bytes()));
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_makes_parent_folders() {
        let mut files = Files::new();
        files.insert("bucket-1".into(), None);
        files.insert("bucket-2/example.txt".into(), Some(b"Test file 1".to_vec()));
        let tar = build_tar(&files).expect("tar");
        let back = read_tar(&tar).expect("read");
        let keys: Vec<_> = back.keys().cloned().collect();
        assert_eq!(keys, ["bucket-1", "bucket-2", "bucket-2/example.txt"]);
        assert_eq!(back["bucket-2/example.txt"].as_deref(), Some(&b"Test file 1"[..]));
        assert_eq!(back["bucket-1"], None);
    }

    #[test]
    fn escaping_paths_are_refused() {
        for (path, expect) in [
            ("../etc/passwd", "path `../etc/passwd` contains `..`: paths must stay inside the target folder"),
            ("/etc/passwd", "path `/etc/passwd` is absolute: give it relative to the target folder"),
            ("a/../../b", "path `a/../../b` contains `..`: paths must stay inside the target folder"),
        ] {
            let mut files = Files::new();
            files.insert(path.into(), Some(vec![]));
            let err = build_tar(&files).expect_err(path);
            assert_eq!(err.message(), expect);
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
        }
    }
}
