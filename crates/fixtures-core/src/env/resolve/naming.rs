//! Names and labels of what is created: unique per process, shared per run, signatures.

use super::*;

/// Identifies this process's objects: names made here are unique across processes.
pub(super) static PROCESS_ID: LazyLock<String> = LazyLock::new(|| {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{:x}{:04x}", std::process::id(), (nanos & 0xffff) as u16)
});
pub(super) static COUNTER: AtomicU64 = AtomicU64::new(0);

pub(super) fn unique_name(node: &str) -> String {
    let node: String =
        node.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')).take(40).collect();
    format!("fx-{node}-{}-{}", *PROCESS_ID, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Whether reuse mode is on.
pub(super) fn reuse_mode() -> bool {
    crate::config::current().is_ok_and(|c| c.reuse)
}

/// The name of a session object: the same in every process of the run, so that they share it.
pub(super) fn shared_name(node: &str, sig: &str) -> String {
    let node: String =
        node.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')).take(40).collect();
    format!("fx-{node}-{}-{}", *crate::cleanup::RUN, &sig[..sig.len().min(10)])
}

/// A private IPv6 /64 derived from a (unique) network name, so that networks do not overlap.
pub(super) fn ula_subnet(name: &str) -> String {
    let h = signature("subnet", &name);
    format!("fd{}:{}:{}::/64", &h[0..2], &h[2..6], &h[6..10])
}

/// FNV-1a of a spec's debug form: equal specs, equal signatures.
pub(super) fn signature(kind: &str, spec: &impl std::fmt::Debug) -> String {
    let text = format!("{kind}:{spec:?}");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

pub(super) fn our_labels(node: &str, scope: Scope, sig: &str) -> Labels {
    let mut l = Labels::new();
    l.insert(labels::MANAGED.to_owned(), "true".to_owned());
    l.insert(labels::RUN.to_owned(), crate::cleanup::RUN.clone());
    l.insert(labels::NODE.to_owned(), node.to_owned());
    l.insert(labels::SCOPE.to_owned(), scope.as_str().to_owned());
    l.insert(labels::SIGNATURE.to_owned(), sig.to_owned());
    let owner = if scope == Scope::Session { crate::cleanup::run_owner() } else { crate::cleanup::OWNER.clone() };
    l.insert(labels::OWNER.to_owned(), owner);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    l.insert(labels::CREATED.to_owned(), now.to_string());
    l
}
