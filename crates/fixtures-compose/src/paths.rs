//! Relative paths of a file made absolute against the folder they are read from: the first
//! file's folder for it and its override files, its own folder for a file that is `include`d
//! or `extends`ed from. Once absolute, a service keeps its meaning wherever it is merged.

use std::path::{Path, PathBuf};

use crate::model::{File, ServiceVolume};

/// `dir` joined with a relative path, without its `.` steps (`./context` is `dir/context`); an
/// absolute path stays as it is.
pub(crate) fn under(dir: &Path, relative: &str) -> PathBuf {
    let mut path = dir.to_owned();
    for part in Path::new(relative).components() {
        match part {
            std::path::Component::CurDir => {}
            other => path.push(other),
        }
    }
    path
}

fn made_absolute(dir: &Path, path: &mut String) {
    *path = under(dir, path).to_string_lossy().into_owned();
}

/// A build context that is a URL (a Git repository, an archive) is not a folder.
fn is_url(context: &str) -> bool {
    context.contains("://") || context.starts_with("git@") || context.starts_with("github.com/")
}

/// Every relative path of `file` read from `dir`.
pub(crate) fn absolute(file: &mut File, dir: &Path) {
    for service in file.services.values_mut() {
        if let Some(build) = &mut service.build {
            let context = build.context.get_or_insert_with(|| ".".to_owned());
            if !is_url(context) {
                made_absolute(dir, context);
            }
        }
        for env_file in &mut service.env_file {
            made_absolute(dir, &mut env_file.path);
        }
        for volume in &mut service.volumes {
            // `~` is the user's home, read when the container is made.
            if let ServiceVolume::Bind { source, .. } = volume
                && !source.starts_with('~')
            {
                made_absolute(dir, source);
            }
        }
        if let Some(ext) = &mut service.extends
            && let Some(other) = &mut ext.file
        {
            made_absolute(dir, other);
        }
    }
    for def in file.secrets.values_mut().chain(file.configs.values_mut()) {
        if let Some(path) = &mut def.file {
            made_absolute(dir, path);
        }
    }
    for inc in &mut file.include {
        for path in &mut inc.path {
            made_absolute(dir, path);
        }
        if let Some(d) = &mut inc.project_directory {
            made_absolute(dir, d);
        }
        for env_file in &mut inc.env_file {
            made_absolute(dir, env_file);
        }
    }
}
