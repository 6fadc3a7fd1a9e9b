//! Who owns an object: this process (host, pid, start time), or a run shared by processes.

use super::*;

/// This host's name, as the kernel knows it.
pub(super) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// A process's start time (clock ticks since boot), which tells a pid's reuse apart.
pub(super) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after the closing paren are plain.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// `<host>:<pid>:<start time>` of this process.
pub(crate) static OWNER: LazyLock<String> = LazyLock::new(|| {
    let pid = std::process::id();
    format!("{}:{pid}:{}", hostname(), start_time(pid).unwrap_or(0))
});

/// The run this process belongs to: `FIXTURE_RUN_ID` if set, else `NEXTEST_RUN_ID` (shared
/// by a nextest run's processes), else one of its own.
pub(crate) static RUN: LazyLock<String> = LazyLock::new(|| {
    for var in ["FIXTURE_RUN_ID", "NEXTEST_RUN_ID"] {
        if let Ok(id) = std::env::var(var) {
            let id: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
            if !id.is_empty() {
                return id.chars().take(32).collect();
            }
        }
    }
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("p{:x}{:04x}", std::process::id(), (nanos & 0xffff) as u16)
});

/// Whether the run is shared with other processes (its id came from the environment).
pub(crate) fn shared_run() -> bool {
    ["FIXTURE_RUN_ID", "NEXTEST_RUN_ID"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|id| id.chars().any(|c| c.is_ascii_alphanumeric())))
}

/// How long a shared run must be held by no process before its session objects are removed:
/// the next process of the run (nextest starts one per test) joins within it.
pub(super) const SHARED_RUN_GRACE: std::time::Duration = std::time::Duration::from_secs(4);

/// The owner label of session objects: the run, not a process.
pub(crate) fn run_owner() -> String {
    format!("run:{}", *RUN)
}

/// Whether the owner named by a label is a live process (unknown hosts count as alive).
pub(super) fn owner_alive(owner: &str) -> bool {
    if let Some(run) = owner.strip_prefix("run:") {
        return run_alive_anywhere(run);
    }
    let mut parts = owner.rsplitn(3, ':');
    let (Some(start), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else { return true };
    if host != hostname() {
        return true;
    }
    match (pid.parse::<u32>(), start.parse::<u64>()) {
        (Ok(pid), Ok(start)) => start_time(pid) == Some(start),
        _ => true,
    }
}
