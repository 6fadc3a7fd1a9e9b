//! File helpers for exercising exec and volumes in scratch images:
//! - `write <path> <content>`: write `content` (creating parent directories)
//! - `cat <path>`: copy the file to stdout
//! - `ls <dir>`: print entry names, sorted, one per line
//!
//! Each exits 0 on success, or prints an error to stderr and exits 1.

use std::io::{self, Write};
use std::path::Path;

use crate::common::die;

pub(crate) fn run(command: &str, args: &[String]) -> ! {
    let result = match (command, args) {
        ("write", [path, content]) => write(Path::new(path), content),
        ("cat", [path]) => cat(Path::new(path)),
        ("ls", [dir]) => ls(Path::new(dir)),
        ("write", _) => die(2, "usage: write <path> <content>"),
        _ => die(2, format_args!("usage: {command} <path>")),
    };
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => die(1, format_args!("{command} {}: {e}", args[0])),
    }
}

fn write(path: &Path, content: &str) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, content)
}

fn cat(path: &Path) -> io::Result<()> {
    let data = std::fs::read(path)?;
    let mut out = io::stdout().lock();
    out.write_all(&data)?;
    out.flush()
}

fn ls(dir: &Path) -> io::Result<()> {
    let mut names = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<Vec<_>>>()?;
    names.sort();
    let mut out = io::stdout().lock();
    for name in names {
        writeln!(out, "{name}")?;
    }
    out.flush()
}
