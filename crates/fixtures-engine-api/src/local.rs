//! What an engine on this machine tells without being asked: read from its socket and from
//! this machine's kernel, at no cost to the engine (Podman's `/info` takes about 200 ms).

use std::os::unix::fs::MetadataExt;

/// Whether the engine behind the unix socket at `path` runs rootless: its socket belongs to
/// the user the engine runs as, root's or another's. `None` when the socket cannot be read.
pub fn runs_rootless(path: &str) -> Option<bool> {
    std::fs::metadata(path).ok().map(|m| m.uid() != 0)
}

/// Whether this machine's cgroups are v2 (one hierarchy mounted at `/sys/fs/cgroup`).
pub fn cgroups_v2() -> bool {
    std::fs::read_to_string("/proc/self/mounts").is_ok_and(|m| {
        m.lines().any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/cgroup") && l.contains("cgroup2"))
    })
}
