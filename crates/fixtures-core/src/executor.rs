//! The library's own async runtime: one per process, never shut down.
//!
//! Everything the library makes runs here, whichever runtime the test itself runs on:
//! fixture resolution (containers, their readiness, custom fixtures and whatever their code
//! spawns), teardowns, and under `#[fixtures_core::test]` the test body too. A shared client
//! whose driver spawns a background task (nearly every async database or broker client does)
//! therefore keeps working in every test that uses it: its task lives on this runtime, not on
//! the runtime of the test that happened to ask first, which ends with that test.
//!
//! The runtime is a process-wide static: Rust never drops statics, so it outlives `main` and
//! is still there while the exit hook tears module and session fixtures down.

use std::future::Future;
use std::sync::LazyLock;

use crate::error::{Error, ErrorKind, Result};

static RUNTIME: LazyLock<std::io::Result<tokio::runtime::Runtime>> = LazyLock::new(|| {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
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
    let task = handle()?.spawn(future);
    match task.await {
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
