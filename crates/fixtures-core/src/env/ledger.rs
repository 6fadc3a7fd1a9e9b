//! Who removes what: every object is written in a ledger the moment it exists.
//!
//! A test's ledger holds its function-scoped objects and is emptied when the
//! test ends. Each shared fixture's group (see `lifetime`) has a ledger of its
//! own, emptied when the group ends, or when the process exits (an `atexit`
//! hook), whatever way it exits normally. Writing an object down before
//! anything else can fail is what makes a leak on an error path impossible.

use std::sync::{Arc, Condvar, LazyLock, Mutex, Once};

use futures_util::future::join_all;

use crate::runtime::Runtime;

/// An object to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Owned {
    Container(String),
    Network(String),
    Volume(String),
}

/// Objects to remove, with the runtime each lives on.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    items: Mutex<Vec<(Arc<dyn Runtime>, Owned)>>,
}

impl Ledger {
    pub(crate) fn push(&self, runtime: &Arc<dyn Runtime>, item: Owned) {
        self.items.lock().unwrap_or_else(|p| p.into_inner()).push((runtime.clone(), item));
    }

    /// Removes `item` now, and from the ledger once the engine has.
    pub(crate) async fn remove_now(&self, runtime: &Arc<dyn Runtime>, item: &Owned) -> crate::Result<()> {
        match item {
            Owned::Container(id) => runtime.remove_container(id, true).await?,
            Owned::Network(id) => runtime.remove_network(id).await?,
            Owned::Volume(name) => runtime.remove_volume(name, true).await?,
        }
        self.items.lock().unwrap_or_else(|p| p.into_inner()).retain(|(_, owned)| owned != item);
        Ok(())
    }

    fn take(&self) -> Vec<(Arc<dyn Runtime>, Owned)> {
        std::mem::take(&mut *self.items.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Hands everything to the background remover and returns at once: the test's time
    /// does not include removal. The process waits for the remover before it exits.
    pub(crate) fn teardown_in_background(&self) {
        let items = self.take();
        if !items.is_empty() {
            REMOVER.submit(items);
        }
    }

    /// Removes everything: containers first (force, all at once), then networks and volumes.
    /// Failures are logged, never raised: teardown must not fail a test that passed.
    pub(crate) async fn teardown(&self) {
        remove(self.take()).await;
    }

    /// Removes what all of `ledgers` hold, as one: every container before any network.
    pub(crate) async fn remove_all(ledgers: &[Arc<Ledger>]) {
        remove(ledgers.iter().flat_map(|l| l.take()).collect()).await;
    }

    /// [`Ledger::teardown`] from synchronous code, on a thread of its own so that it
    /// works inside or outside an async runtime.
    pub(crate) fn teardown_blocking(self: &Arc<Self>) {
        if self.items.lock().map(|i| i.is_empty()).unwrap_or(false) {
            return;
        }
        let ledger = self.clone();
        let worker =
            std::thread::spawn(move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(ledger.teardown()),
                Err(e) => tracing::warn!(error = %e, "no runtime to remove fixtures with"),
            });
        if worker.join().is_err() {
            tracing::warn!("fixture teardown panicked");
        }
    }
}

/// Removes `items`: containers first (force, all at once), then networks and volumes.
async fn remove(items: Vec<(Arc<dyn Runtime>, Owned)>) {
    if items.is_empty() {
        return;
    }
    {
        let containers = items.iter().filter_map(|(rt, o)| match o {
            Owned::Container(id) => Some(async move {
                match rt.remove_container(id, true).await {
                    Ok(()) => tracing::info!(container_id = %crate::short_id(id), "removed container"),
                    Err(e) if e.kind() == crate::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(container_id = %crate::short_id(id), error = %e, "could not remove container")
                    }
                }
            }),
            _ => None,
        });
        join_all(containers).await;
        let rest = items.iter().filter_map(|(rt, o)| match o {
            Owned::Container(_) => None,
            Owned::Network(id) => Some(Box::pin(async move {
                match rt.remove_network(id).await {
                    Ok(()) => tracing::info!(network = %id, "removed network"),
                    Err(e) if e.kind() == crate::ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!(network = %id, error = %e, "could not remove network"),
                }
            })
                as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>),
            Owned::Volume(name) => Some(Box::pin(async move {
                match rt.remove_volume(name, true).await {
                    Ok(()) => tracing::info!(volume = %name, "removed volume"),
                    Err(e) if e.kind() == crate::ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!(volume = %name, error = %e, "could not remove volume"),
                }
            })),
        });
        join_all(rest).await;
    }
}

/// Registers, once, what runs when the process exits: end the shared fixtures that are left
/// (teardowns, then their objects), wait for the background remover, leave the run.
fn ensure_exit_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        extern "C" fn at_exit() {
            crate::cleanup::wait_for_signal_cleanup();
            // Interrupted: the signal's clean-up removed everything; no teardown runs then.
            super::lifetime::end_all_at_exit(!crate::cleanup::stopping());
            REMOVER.wait_idle();
            crate::cleanup::leave_run_blocking();
        }
        // SAFETY: registering a plain `extern "C" fn()` with no captured state.
        unsafe {
            libc::atexit(at_exit);
        }
    });
}

/// Makes sure the exit hook is registered (the run's session objects rely on it).
pub(crate) fn exit_hook() {
    ensure_exit_hook();
}

type Batch = Vec<(Arc<dyn Runtime>, Owned)>;

/// A thread with its own async runtime that removes what finished tests leave.
struct Remover {
    tx: tokio::sync::mpsc::UnboundedSender<Batch>,
    in_flight: Arc<(Mutex<usize>, Condvar)>,
}

impl Remover {
    fn start() -> Remover {
        ensure_exit_hook();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Batch>();
        let in_flight: Arc<(Mutex<usize>, Condvar)> = Arc::default();
        let counter = in_flight.clone();
        let spawned = std::thread::Builder::new().name("fixtures-remover".to_owned()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::warn!(error = %e, "no runtime for the fixture remover");
                    return;
                }
            };
            rt.block_on(async move {
                while let Some(batch) = rx.recv().await {
                    let counter = counter.clone();
                    tokio::spawn(async move {
                        remove(batch).await;
                        let (count, done) = &*counter;
                        let mut n = count.lock().unwrap_or_else(|p| p.into_inner());
                        *n -= 1;
                        done.notify_all();
                    });
                }
            });
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the fixture remover thread");
        }
        Remover { tx, in_flight }
    }

    fn submit(&self, batch: Batch) {
        *self.in_flight.0.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        if let Err(unsent) = self.tx.send(batch) {
            // No remover thread: remove here and now.
            *self.in_flight.0.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
            let ledger = Arc::new(Ledger { items: Mutex::new(unsent.0) });
            ledger.teardown_blocking();
        }
    }

    /// Blocks until every submitted batch is removed.
    fn wait_idle(&self) {
        let (count, done) = &*self.in_flight;
        let mut n = count.lock().unwrap_or_else(|p| p.into_inner());
        while *n > 0 {
            n = done.wait(n).unwrap_or_else(|p| p.into_inner());
        }
    }
}

static REMOVER: LazyLock<Remover> = LazyLock::new(Remover::start);

/// Waits, off the async threads, until the background remover has nothing in hand.
pub(crate) async fn background_removals_done() {
    if let Err(e) = tokio::task::spawn_blocking(|| REMOVER.wait_idle()).await {
        tracing::warn!(error = %e, "could not wait for the background remover");
    }
}
