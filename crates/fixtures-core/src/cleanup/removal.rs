//! Removing what a process or a run owns, and the start-up sweep of what dead ones left.

use super::*;

/// Removes what `filter` selects: containers first, then networks and volumes, all at once.
/// Returns how many objects it found.
pub(crate) async fn remove_selected(
    runtime: &dyn Runtime,
    filter: &LabelFilter,
    keep: impl Fn(&Labels) -> bool,
) -> usize {
    let filter = filter.clone().and_eq(labels::MANAGED, "true");
    let mut found = 0;
    if let Ok(list) = runtime.list_containers(&filter).await {
        let list: Vec<_> = list.iter().filter(|c| !keep(&c.labels)).collect();
        found += list.len();
        join_all(list.iter().map(|c| runtime.remove_container(&c.id, true))).await;
    }
    let networks = async {
        let Ok(list) = runtime.list_networks(&filter).await else { return 0 };
        let list: Vec<_> = list.iter().filter(|n| !keep(&n.labels)).collect();
        join_all(list.iter().map(|n| runtime.remove_network(&n.id))).await;
        list.len()
    };
    let volumes = async {
        let Ok(list) = runtime.list_volumes(&filter).await else { return 0 };
        let list: Vec<_> = list.iter().filter(|v| !keep(&v.labels)).collect();
        join_all(list.iter().map(|v| runtime.remove_volume(&v.name, true))).await;
        list.len()
    };
    let (n, v) = tokio::join!(networks, volumes);
    found + n + v
}

pub(super) fn reused(labels: &Labels) -> bool {
    labels.get(labels::REUSE).is_some_and(|v| v == "true")
}

/// Removes everything `owner` made (except reused objects); returns how many it found.
pub(crate) async fn remove_owned(runtime: &dyn Runtime, owner: &str) -> usize {
    remove_selected(runtime, &LabelFilter::eq(labels::OWNER, owner.to_owned()), reused).await
}

/// At exit (or from a watcher): if no process of `run` remains on `engine` (the key of
/// `runtime`), remove the run's session objects there.
pub(crate) async fn remove_run_if_last(runtime: &dyn Runtime, run: &str, engine: &str) {
    if let Some(_exclusive) = last_one_out(run, engine) {
        remove_selected(runtime, &LabelFilter::eq(labels::OWNER, format!("run:{run}")), reused).await;
        let _ = std::fs::remove_file(lock_path(run, engine));
        if !run_alive_anywhere(run) {
            let _ = std::fs::remove_file(turn_path(run));
        }
    }
}

/// Removes objects on `runtime` whose owner process is gone (and runs nobody holds).
pub(crate) async fn sweep(runtime: &dyn Runtime) {
    let dead = |labels: &Labels| labels.get(labels::OWNER).is_some_and(|o| !owner_alive(o)) && !reused(labels);
    let filter = LabelFilter::has(labels::MANAGED);
    let mut owners: Vec<String> = Vec::new();
    if let Ok(list) = runtime.list_containers(&filter).await {
        owners.extend(list.iter().filter(|c| dead(&c.labels)).filter_map(|c| c.labels.get(labels::OWNER).cloned()));
    }
    if let Ok(list) = runtime.list_networks(&filter).await {
        owners.extend(list.iter().filter(|n| dead(&n.labels)).filter_map(|n| n.labels.get(labels::OWNER).cloned()));
    }
    if let Ok(list) = runtime.list_volumes(&filter).await {
        owners.extend(list.iter().filter(|v| dead(&v.labels)).filter_map(|v| v.labels.get(labels::OWNER).cloned()));
    }
    owners.sort();
    owners.dedup();
    for owner in owners {
        tracing::info!(owner = %owner, "removing what a process that is gone left behind");
        remove_owned(runtime, &owner).await;
    }
}

/// Removes what `owner` made, again and again until two rounds in a row find nothing:
/// requests sent just before an interruption or a kill may still create objects after a
/// listing. Gives up after 5 s.
pub(super) async fn remove_owned_until_quiet(runtimes: &[Arc<dyn Runtime>], owner: &str) {
    let mut quiet = 0;
    for _ in 0..50 {
        let found: usize = join_all(runtimes.iter().map(|r| remove_owned(r.as_ref(), owner))).await.into_iter().sum();
        quiet = if found == 0 { quiet + 1 } else { 0 };
        if quiet == 2 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
