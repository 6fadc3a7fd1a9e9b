//! The library's own async runtime: one per process, never shut down.
//!
//! Everything the library makes runs here, whichever runtime the test itself runs on:
//! fixture resolution (containers, their readiness, custom fixtures and whatever their code
//! spawns), teardowns, and under `#[fixtures::test]` the test body too. A shared client
//! whose driver spawns a background task (nearly every async database or broker client does)
//! therefore keeps working in every test that uses it: its task lives on this runtime, not on
//! the runtime of the test that happened to ask first, which ends with that test.
//!
//! The runtime is a process-wide static: Rust never drops statics, so it outlives `main` and
//! is still there while the exit hook tears module and session fixtures down.

use std::future::Future;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::error::{Error, ErrorKind, Result};
use crate::runtime::{
    ContainerInfo, ContainerSummary, Event, ExecOutput, ImageInfo, LogChunk, NetworkInfo, Progress, ProgressSink,
    Runtime, VersionInfo, VolumeInfo,
};
use crate::spec::{BuildSpec, ContainerSpec, ExecSpec, LabelFilter, LogsSpec, NetworkSpec, PullSpec, VolumeSpec};

static RUNTIME: LazyLock<std::io::Result<tokio::runtime::Runtime>> = LazyLock::new(|| {
    // At least four: the work is waiting on engines, and fixture code that blocks a worker
    // for a while (a synchronous client) must not stall every test of the process.
    let workers = std::thread::available_parallelism().map_or(4, |n| n.get()).max(4);
    tokio::runtime::Builder::new_multi_thread().worker_threads(workers).thread_name("fixtures-rt").enable_all().build()
});

/// The library's runtime.
///
/// # Errors
/// [`ErrorKind::Io`] when the operating system refused its threads.
pub fn handle() -> Result<&'static tokio::runtime::Handle> {
    match &*RUNTIME {
        Ok(rt) => Ok(rt.handle()),
        Err(e) => Err(Error::new(ErrorKind::Io, "cannot start the library's async runtime")
            .with_source(std::io::Error::new(e.kind(), e.to_string()))),
    }
}

/// Whether the calling code runs on the library's runtime.
pub fn is_current() -> bool {
    match (tokio::runtime::Handle::try_current(), handle()) {
        (Ok(current), Ok(ours)) => current.id() == ours.id(),
        _ => false,
    }
}

/// Runs `future` on the library's runtime and waits for it from any async context: a test's
/// own runtime (`#[tokio::test]`), another runtime, or the library's. What it spawns lives on
/// the library's runtime. A panic in `future` is resumed in the caller.
///
/// # Errors
/// Those of `future`, and [`ErrorKind::Io`] as [`handle`].
pub async fn run<T, F>(future: F) -> Result<T>
where
    F: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    joined(handle()?.spawn(future).await)
}

/// A spawned task's outcome: its panic resumed in the caller, a cancellation as an error.
fn joined<T>(outcome: std::result::Result<Result<T>, tokio::task::JoinError>) -> Result<T> {
    match outcome {
        Ok(out) => out,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Error::new(ErrorKind::Io, "the library's runtime cancelled a task").with_source(e)),
    }
}

/// Blocks the calling thread, which runs no async runtime, on `future`: it is driven on that
/// thread with the library's runtime entered, so what it spawns goes to the library's workers.
///
/// # Errors
/// [`ErrorKind::Config`] when called inside an async runtime, where a thread must not block
/// (use [`run`] there); [`ErrorKind::Io`] as [`handle`].
pub fn block_on<F: Future>(future: F) -> Result<F::Output> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::new(ErrorKind::Config, "a blocking call was made inside an async runtime")
            .with_hint("in `#[tokio::test]` or other async code, use the async API (`env.start(..).await`)"));
    }
    Ok(handle()?.block_on(future))
}

/// Blocks on `future` from anywhere, inside an async runtime too (from a thread of its own
/// then): for destructors and the exit hook, which cannot choose where they run.
pub(crate) fn block_on_anywhere<F>(future: F) -> Result<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return block_on(future);
    }
    std::thread::scope(|s| match s.spawn(|| block_on(future)).join() {
        Ok(out) => out,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// A [`Runtime`] whose engine calls all run on the library's runtime, whoever makes them.
///
/// A backend's HTTP client keeps a pool of connections, each driven by a task on the runtime
/// that opened it. Called from a test's own runtime (`#[tokio::test]`), a handle's request would
/// open a connection whose task dies with that test, and the pool would hand the dead
/// connection to the next caller. Every runtime `backend::select` gives out is wrapped in this,
/// so no connection is ever driven by a runtime that may end. Calls already on the library's
/// runtime go straight through.
pub(crate) struct OnLibraryRuntime(pub(crate) Arc<dyn Runtime>);

impl std::fmt::Debug for OnLibraryRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Calls `$call` on the inner runtime, on the library's runtime. `$owned` are clones of the
/// arguments the call borrows, made before it moves to another thread.
macro_rules! hop {
    ($self:ident, |$rt:ident $(, $owned:ident)*| $call:expr) => {{
        let result = if is_current() {
            let $rt = &*$self.0;
            patiently!($rt, $call)
        } else {
            let $rt = $self.0.clone();
            $(let $owned = $owned.to_owned();)*
            run(async move {
                let $rt = &*$rt;
                patiently!($rt, $call)
            })
            .await
        };
        result.map_err(|e| e.with_host($self.0.host()))
    }};
}

/// `$call`, asked again while its engine is unreachable, within [`outage`]'s patience.
macro_rules! patiently {
    ($rt:ident, $call:expr) => {{
        loop {
            match $call.await {
                Err(e) if e.kind() == ErrorKind::Unreachable => match outage::wait($rt.host()).await {
                    Ok(()) => continue,
                    Err(waited) => break Err(e.with_wait("the engine to answer again", waited)),
                },
                answered => {
                    outage::answered($rt.host());
                    break answered;
                }
            }
        }
    }};
}

/// An engine that stops answering mid-run (restarted by an update, a crash, socket activation)
/// is waited for: a request that could not reach it is asked again until it answers, for
/// up to [`outage::PATIENCE`] from the first request that found it gone. The wait is shared
/// by every request to that engine, so an engine that stays down costs a process that much
/// once, and every later request fails at once. A request the engine had taken when it went
/// away is never asked again: it may have been done.
mod outage {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    use std::time::{Duration, Instant};

    pub(super) const PATIENCE: Duration = Duration::from_secs(15);
    const PAUSE: Duration = Duration::from_millis(200);

    /// Since when each engine (by host) has not answered.
    static DOWN: LazyLock<Mutex<HashMap<String, Instant>>> = LazyLock::new(Default::default);

    /// After a request found `host` unreachable: pauses and says to ask again, or how long it
    /// has been unreachable once that is past [`PATIENCE`].
    pub(super) async fn wait(host: &str) -> Result<(), Duration> {
        let since = *DOWN.lock().unwrap_or_else(|p| p.into_inner()).entry(host.to_owned()).or_insert_with(Instant::now);
        let waited = since.elapsed();
        if waited >= PATIENCE {
            return Err(waited);
        }
        tracing::debug!(host, waited_ms = waited.as_millis() as u64, "the engine does not answer; asking again");
        tokio::time::sleep(PAUSE).await;
        Ok(())
    }

    /// `host` answered (with anything): it is up.
    pub(super) fn answered(host: &str) {
        let mut down = DOWN.lock().unwrap_or_else(|p| p.into_inner());
        if !down.is_empty() {
            down.remove(host);
        }
    }
}

impl OnLibraryRuntime {
    /// A build or a pull on the library's runtime, its progress brought back to `progress`.
    async fn with_progress<F, Fut>(&self, progress: ProgressSink<'_>, call: F) -> Result<String>
    where
        F: FnOnce(Arc<dyn Runtime>, tokio::sync::mpsc::UnboundedSender<Progress>) -> Fut,
        Fut: Future<Output = Result<String>> + Send + 'static,
    {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = handle()?.spawn(call(self.0.clone(), tx));
        // The sender goes with the call: when it is done, the channel ends.
        while let Some(p) = rx.recv().await {
            progress(p);
        }
        joined(task.await)
    }

    /// A stream read on the library's runtime and handed over through a channel; it ends
    /// when the caller drops it.
    fn forwarded<T: Send + 'static>(stream: BoxStream<'static, Result<T>>) -> BoxStream<'static, Result<T>> {
        let handle = match handle() {
            Ok(h) => h,
            Err(e) => return futures_util::stream::once(async move { Err(e) }).boxed(),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        handle.spawn(async move {
            let mut stream = stream;
            loop {
                tokio::select! {
                    () = tx.closed() => break,
                    item = stream.next() => match item {
                        Some(item) => if tx.send(item).await.is_err() { break },
                        None => break,
                    },
                }
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }).boxed()
    }
}

// `hop!` borrows the same argument names in both of its branches: a borrowed `&str` there, an
// owned `String` in the other.
#[allow(clippy::needless_borrow)]
#[async_trait::async_trait]
impl Runtime for OnLibraryRuntime {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self.0.as_any()
    }
    fn is_local(&self) -> bool {
        self.0.is_local()
    }
    fn host(&self) -> &str {
        self.0.host()
    }
    fn rootless(&self) -> bool {
        self.0.rootless()
    }
    fn remote(&self) -> Option<std::net::IpAddr> {
        self.0.remote()
    }
    async fn ping(&self) -> Result<()> {
        hop!(self, |rt| rt.ping())
    }
    async fn version(&self) -> Result<VersionInfo> {
        hop!(self, |rt| rt.version())
    }
    async fn build_image(&self, spec: &BuildSpec, progress: ProgressSink<'_>) -> Result<String> {
        if is_current() {
            return self.0.build_image(spec, progress).await;
        }
        let spec = spec.clone();
        self.with_progress(progress, |rt, tx| async move { rt.build_image(&spec, &move |p| drop(tx.send(p))).await })
            .await
    }
    async fn pull_image(&self, spec: &PullSpec, progress: ProgressSink<'_>) -> Result<String> {
        if is_current() {
            return self.0.pull_image(spec, progress).await;
        }
        let spec = spec.clone();
        self.with_progress(progress, |rt, tx| async move { rt.pull_image(&spec, &move |p| drop(tx.send(p))).await })
            .await
    }
    async fn inspect_image(&self, reference: &str) -> Result<ImageInfo> {
        hop!(self, |rt, reference| rt.inspect_image(&reference))
    }
    async fn list_images(&self, filter: &LabelFilter) -> Result<Vec<ImageInfo>> {
        hop!(self, |rt, filter| rt.list_images(&filter))
    }
    async fn tag_image(&self, reference: &str, repository: &str, tag: &str) -> Result<()> {
        hop!(self, |rt, reference, repository, tag| rt.tag_image(&reference, &repository, &tag))
    }
    async fn remove_image(&self, reference: &str, force: bool) -> Result<()> {
        hop!(self, |rt, reference| rt.remove_image(&reference, force))
    }
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        hop!(self, |rt, spec| rt.create_container(&spec))
    }
    async fn start_container(&self, id: &str) -> Result<()> {
        hop!(self, |rt, id| rt.start_container(&id))
    }
    async fn inspect_container(&self, id: &str) -> Result<ContainerInfo> {
        hop!(self, |rt, id| rt.inspect_container(&id))
    }
    async fn list_containers(&self, filter: &LabelFilter) -> Result<Vec<ContainerSummary>> {
        hop!(self, |rt, filter| rt.list_containers(&filter))
    }
    async fn stop_container(&self, id: &str, timeout_secs: i64) -> Result<()> {
        hop!(self, |rt, id| rt.stop_container(&id, timeout_secs))
    }
    async fn kill_container(&self, id: &str, signal: &str) -> Result<()> {
        hop!(self, |rt, id, signal| rt.kill_container(&id, &signal))
    }
    async fn restart_container(&self, id: &str, timeout_secs: i64) -> Result<()> {
        hop!(self, |rt, id| rt.restart_container(&id, timeout_secs))
    }
    async fn pause_container(&self, id: &str) -> Result<()> {
        hop!(self, |rt, id| rt.pause_container(&id))
    }
    async fn unpause_container(&self, id: &str) -> Result<()> {
        hop!(self, |rt, id| rt.unpause_container(&id))
    }
    async fn wait_container(&self, id: &str) -> Result<i64> {
        hop!(self, |rt, id| rt.wait_container(&id))
    }
    async fn remove_container(&self, id: &str, force: bool) -> Result<()> {
        hop!(self, |rt, id| rt.remove_container(&id, force))
    }
    fn logs(&self, id: &str, spec: &LogsSpec) -> BoxStream<'static, Result<LogChunk>> {
        let stream = self.0.logs(id, spec);
        if is_current() { stream } else { Self::forwarded(stream) }
    }
    async fn exec(&self, id: &str, spec: &ExecSpec) -> Result<ExecOutput> {
        hop!(self, |rt, id, spec| rt.exec(&id, &spec))
    }
    async fn put_archive(&self, id: &str, path: &str, tar: Bytes) -> Result<()> {
        hop!(self, |rt, id, path| rt.put_archive(&id, &path, tar.clone()))
    }
    async fn get_archive(&self, id: &str, path: &str) -> Result<Bytes> {
        hop!(self, |rt, id, path| rt.get_archive(&id, &path))
    }
    async fn create_network(&self, spec: &NetworkSpec) -> Result<String> {
        hop!(self, |rt, spec| rt.create_network(&spec))
    }
    async fn inspect_network(&self, id_or_name: &str) -> Result<NetworkInfo> {
        hop!(self, |rt, id_or_name| rt.inspect_network(&id_or_name))
    }
    async fn list_networks(&self, filter: &LabelFilter) -> Result<Vec<NetworkInfo>> {
        hop!(self, |rt, filter| rt.list_networks(&filter))
    }
    async fn remove_network(&self, id_or_name: &str) -> Result<()> {
        hop!(self, |rt, id_or_name| rt.remove_network(&id_or_name))
    }
    async fn connect_network(&self, network: &str, container: &str, aliases: &[String]) -> Result<()> {
        hop!(self, |rt, network, container, aliases| rt.connect_network(&network, &container, &aliases))
    }
    async fn disconnect_network(&self, network: &str, container: &str, force: bool) -> Result<()> {
        hop!(self, |rt, network, container| rt.disconnect_network(&network, &container, force))
    }
    async fn create_volume(&self, spec: &VolumeSpec) -> Result<VolumeInfo> {
        hop!(self, |rt, spec| rt.create_volume(&spec))
    }
    async fn inspect_volume(&self, name: &str) -> Result<VolumeInfo> {
        hop!(self, |rt, name| rt.inspect_volume(&name))
    }
    async fn list_volumes(&self, filter: &LabelFilter) -> Result<Vec<VolumeInfo>> {
        hop!(self, |rt, filter| rt.list_volumes(&filter))
    }
    async fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        hop!(self, |rt, name| rt.remove_volume(&name, force))
    }
    fn events(&self, filter: &LabelFilter) -> BoxStream<'static, Result<Event>> {
        let stream = self.0.events(filter);
        if is_current() { stream } else { Self::forwarded(stream) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_tasks_outlive_the_runtime_that_asked() {
        // A "client" made from a test's own runtime keeps its background task after that
        // runtime is gone.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<tokio::sync::oneshot::Sender<u32>>();
        let made = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        made.block_on(run(async move {
            tokio::spawn(async move {
                while let Some(reply) = rx.recv().await {
                    let _ = reply.send(7);
                }
            });
            Ok(())
        }))
        .expect("made");
        drop(made);
        let other = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        let answer = other.block_on(async {
            let (reply, answer) = tokio::sync::oneshot::channel();
            tx.send(reply).expect("the task is alive");
            answer.await
        });
        assert_eq!(answer.expect("answered"), 7);
    }

    #[test]
    fn blocking_is_refused_inside_a_runtime_unless_from_a_thread_of_its_own() {
        assert!(block_on(async { is_current() }).expect("ran"), "driven with the library's runtime entered");
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("rt");
        let refused = rt.block_on(async { block_on(async { 5 }) }).expect_err("refused");
        assert_eq!(refused.kind(), ErrorKind::Config);
        let inside = rt.block_on(async { block_on_anywhere(async { 5 }) });
        assert_eq!(inside.expect("ran"), 5);
    }

    #[test]
    fn panics_reach_the_caller() {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("rt");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(run::<(), _>(async { panic!("boom in a fixture") }))
        }));
        let payload = caught.expect_err("the panic is resumed");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in a fixture"));
    }
}
