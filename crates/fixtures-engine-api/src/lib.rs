//! What the backends of fixtures-core share about container engines.
//!
//! fixtures-core knows no engine; the backends (`fixtures-docker` over bollard, `fixtures-podman`
//! over libpod) each talk to one. What they have in common lives here, so that it is written
//! once:
//!
//! - [`document`]: the Docker Engine API's JSON documents (which libpod keeps) read into
//!   fixtures-core's types, so no backend maps fields by hand;
//! - [`podman`]: every way Podman answers differently from Docker, through either of its APIs;
//! - [`events`]: the event stream that goes on when the engine ends it;
//! - [`status`]: what an error status (and Podman's texts) means;
//! - [`transport`]: what a report says when the engine gave no answer at all;
//! - [`local`]: what an engine on this machine tells without being asked (rootless);
//! - [`remote`]: reaching an engine on another host (TLS, ssh) through a tunnel of our own;
//! - [`request`], [`archive`]: small pieces of requests, build contexts as tars;
//! - [`backend!`]: a backend crate's entry points (its [`Backend`](fixtures_core::Backend),
//!   offered to every `Env` of a binary that links it, and its watcher hook).

#![warn(missing_docs)]

pub mod archive;
pub mod auth;
pub mod document;
pub mod events;
pub mod local;
pub mod podman;
pub mod remote;
pub mod request;
pub mod status;
pub mod transport;

pub use document::{container_info, container_summary, event, image_info, network_info, volume_info};

#[doc(hidden)]
pub mod __private {
    pub use fixtures_core;
    pub use fixtures_core::__private::inventory;
    pub use tokio;
}

/// A backend crate's entry points, from its name, an `async fn connect() -> Result<R>` (as
/// configured), an `async fn connect_to(host: &str) -> Result<R>` (an engine of a pool, a
/// watcher's) for its [`Runtime`](fixtures_core::Runtime) `R`, and a
/// `fn configured_host() -> Result<String>` (where `connect` goes, for reports):
///
/// - `pub fn backend()`, for `Env::backend`, when a suite lists its backends itself;
/// - the same backend offered to every `Env` of a binary that links the crate (`Env::new()`
///   uses every backend compiled in);
/// - the watcher hook: before `main`, a test binary started as this backend's watcher (see
///   `fixtures_core::cleanup`) becomes the watcher instead of running tests, connected to the
///   engine its test process used.
#[macro_export]
macro_rules! backend {
    (name: $name:literal, connect: $connect:path, connect_to: $connect_to:path, configured_host: $host:path $(,)?) => {
        fn __fixtures_configured_host() -> ::std::option::Option<::std::string::String> {
            $host().ok()
        }

        fn __fixtures_connect() -> ::std::pin::Pin<
            ::std::boxed::Box<
                dyn ::std::future::Future<
                        Output = $crate::__private::fixtures_core::Result<::std::sync::Arc<dyn $crate::__private::fixtures_core::Runtime>>,
                    > + ::std::marker::Send,
            >,
        > {
            ::std::boxed::Box::pin(async {
                ::std::result::Result::Ok(
                    ::std::sync::Arc::new($connect().await?) as ::std::sync::Arc<dyn $crate::__private::fixtures_core::Runtime>
                )
            })
        }

        fn __fixtures_connect_to(host: ::std::string::String) -> ::std::pin::Pin<
            ::std::boxed::Box<
                dyn ::std::future::Future<
                        Output = $crate::__private::fixtures_core::Result<::std::sync::Arc<dyn $crate::__private::fixtures_core::Runtime>>,
                    > + ::std::marker::Send,
            >,
        > {
            ::std::boxed::Box::pin(async move {
                ::std::result::Result::Ok(
                    ::std::sync::Arc::new($connect_to(&host).await?) as ::std::sync::Arc<dyn $crate::__private::fixtures_core::Runtime>
                )
            })
        }

        #[doc = concat!("This backend, for `Env::backend`: `FIXTURE_RUNTIME=", $name, "` picks it. `Env::new()` offers it already.")]
        pub fn backend() -> $crate::__private::fixtures_core::Backend {
            $crate::__private::fixtures_core::Backend::new($name, __fixtures_connect)
                .with_connect_to(__fixtures_connect_to)
                .with_configured_host(__fixtures_configured_host)
        }

        $crate::__private::inventory::submit! {
            $crate::__private::fixtures_core::Backend::new($name, __fixtures_connect)
                .with_connect_to(__fixtures_connect_to)
                .with_configured_host(__fixtures_configured_host)
        }

        #[used]
        #[unsafe(link_section = ".init_array")]
        static __FIXTURES_WATCHER_HOOK: extern "C" fn() = __fixtures_watcher_hook;

        extern "C" fn __fixtures_watcher_hook() {
            if !$crate::__private::fixtures_core::cleanup::watcher_requested($name) {
                return;
            }
            // The engine the test process used (one of a pool, maybe), else as configured.
            let host = ::std::env::var($crate::__private::fixtures_core::cleanup::WATCH_HOST_VAR)
                .ok()
                .filter(|h| !h.is_empty());
            let runtime = $crate::__private::tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()
                .and_then(|rt| {
                    rt.block_on(async {
                        match &host {
                            ::std::option::Option::Some(host) => $connect_to(host).await,
                            ::std::option::Option::None => $connect().await,
                        }
                    })
                    .ok()
                });
            match runtime {
                ::std::option::Option::Some(runtime) => $crate::__private::fixtures_core::cleanup::watch(::std::sync::Arc::new(runtime)),
                // Nothing to watch with; leave without running the binary's main.
                ::std::option::Option::None => ::std::process::exit(1),
            }
        }
    };
}
