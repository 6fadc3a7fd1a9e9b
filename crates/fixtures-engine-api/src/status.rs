//! What an engine's error status means, in this library's kinds.

use fixtures_core::ErrorKind;

use crate::podman;

/// The kind of an engine's error answer: 404 not found, 409 (and 304, nothing to do)
/// conflict, 400 invalid input. Podman answers many failures with 500, told apart by their
/// text: a race with an exiting process or a changing host stays an engine error (asked
/// again by the `podman::*_retrying_*` helpers), libpod's not-found and conflict texts are
/// what they say. (A build's "no such file or directory" is no missing object: the Docker
/// backend's wider reading of 500s stays its own.)
pub fn kind(status: u16, text: &str) -> ErrorKind {
    match status {
        404 => ErrorKind::NotFound,
        409 | 304 => ErrorKind::Conflict,
        400 => ErrorKind::InvalidInput,
        _ => {
            let lower = text.to_ascii_lowercase();
            if podman::exit_race(&lower) || podman::network_race(&lower) {
                ErrorKind::Engine
            } else if lower.contains("rootless containers with cgroup v1") {
                // "can not pause containers on rootless containers with cgroup V1"
                ErrorKind::Unsupported
            } else if podman::NOT_FOUND_CAUSES.iter().any(|c| lower.contains(c)) {
                ErrorKind::NotFound
            } else if podman::CONFLICT_CAUSES.iter().any(|c| lower.contains(c)) {
                ErrorKind::Conflict
            } else {
                ErrorKind::Engine
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_podman_texts_have_kinds() {
        assert_eq!(kind(404, ""), ErrorKind::NotFound);
        assert_eq!(kind(409, ""), ErrorKind::Conflict);
        assert_eq!(kind(500, "fx-api: image not known"), ErrorKind::NotFound);
        assert_eq!(kind(500, "the container name \"fx\" is already in use by abc"), ErrorKind::Conflict);
        assert_eq!(kind(500, "read /proc/42/cgroup: no such process"), ErrorKind::Engine);
        assert_eq!(kind(500, "route ip+net: no such network interface"), ErrorKind::Engine);
        assert_eq!(kind(500, "something broke"), ErrorKind::Engine);
        assert_eq!(kind(500, "COPY missing.txt: stat: no such file or directory"), ErrorKind::Engine);
    }
}
