//! The one public error type.
//!
//! An [`Error`] is a kind (what went wrong, for code to match on) plus a boxed
//! context (what a person needs to act: the fixture, the runtime, the image, the
//! container, what was being done, how long it waited, and the tail of the
//! container's logs). Its `Debug` form is the full report, because that is what
//! `unwrap()` and a test returning `Result` print.

use std::fmt;
use std::time::Duration;

/// Boxed error of a backend or of I/O, kept as the source of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, for code that needs to tell cases apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The engine does not know the object (HTTP 404).
    NotFound,
    /// The object exists already or is in the wrong state (HTTP 409).
    Conflict,
    /// The engine answered with another error, or went away before answering.
    Engine,
    /// Nothing answers where the engine should be (its socket is missing or refuses the
    /// connection): it is down or restarting. The request never reached it.
    Unreachable,
    /// A container or exec did not become ready, or an operation did not finish, in time.
    Timeout,
    /// A container exited (or was OOM-killed) before it was ready.
    Exited,
    /// The environment graph is wrong: unknown reference, cycle, bad template or field.
    Graph,
    /// The configuration (file, environment variables) is wrong.
    Config,
    /// An image build failed.
    Build,
    /// A pull failed.
    Pull,
    /// Input given by the user is invalid (a path, a port, a signal).
    InvalidInput,
    /// A command run with exec failed to run.
    Exec,
    /// Local I/O failed (reading a build context, a socket).
    Io,
    /// The runtime does not support the operation.
    Unsupported,
    /// A fixture's own code (a `fixture`, `value_fn`, `ready_when` or teardown closure)
    /// returned an error or panicked; the cause is its error.
    Fixture,
}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Engine => "engine error",
            ErrorKind::Unreachable => "engine unreachable",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Exited => "container exited",
            ErrorKind::Graph => "invalid environment",
            ErrorKind::Config => "invalid configuration",
            ErrorKind::Build => "image build failed",
            ErrorKind::Pull => "image pull failed",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Exec => "exec failed",
            ErrorKind::Io => "I/O error",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Fixture => "a fixture's own code failed",
        }
    }
}

/// Everything known about where an error happened.
#[derive(Default)]
struct Context {
    /// The error's kind, for the details shown as a cause (see [`Error::source`]).
    kind: Option<ErrorKind>,
    message: String,
    fixture: Option<String>,
    runtime: Option<String>,
    host: Option<String>,
    image: Option<String>,
    container: Option<String>,
    operation: Option<String>,
    waited: Option<Duration>,
    waiting_for: Option<String>,
    exit_code: Option<i64>,
    oom_killed: bool,
    logs_tail: Option<String>,
    hint: Option<String>,
    source: Option<BoxError>,
}

/// The error of every fallible operation of this library.
///
/// Match on [`Error::kind`]; print it with `{}` for one line or `{:?}` for the
/// full report with its cause chain and the container's last log lines.
///
/// ```
/// # use fixtures_core as fixtures;
/// use fixtures::{Error, ErrorKind};
///
/// let e = Error::new(ErrorKind::Timeout, "`api` was not ready within 30 s").with_fixture("api");
/// assert_eq!(e.kind(), ErrorKind::Timeout);
/// assert_eq!(e.fixture(), Some("api"));
/// ```
pub struct Error {
    kind: ErrorKind,
    ctx: Box<Context>,
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a one-line message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, ctx: Box::new(Context { kind: Some(kind), message: message.into(), ..Context::default() }) }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The one-line message, without context.
    pub fn message(&self) -> &str {
        &self.ctx.message
    }

    /// The fixture this error belongs to, if known.
    pub fn fixture(&self) -> Option<&str> {
        self.ctx.fixture.as_deref()
    }

    /// The container (id) this error is about, if any.
    pub fn container(&self) -> Option<&str> {
        self.ctx.container.as_deref()
    }

    /// The exit code of the container, for [`ErrorKind::Exited`].
    pub fn exit_code(&self) -> Option<i64> {
        self.ctx.exit_code
    }

    /// Whether the container was killed for lack of memory.
    pub fn oom_killed(&self) -> bool {
        self.ctx.oom_killed
    }

    /// The advice on what to do, if any.
    pub fn hint(&self) -> Option<&str> {
        self.ctx.hint.as_deref()
    }

    /// The last lines of the container's logs, if they were captured.
    pub fn logs_tail(&self) -> Option<&str> {
        self.ctx.logs_tail.as_deref()
    }

    /// Keeps `source` as the cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.ctx.source = Some(source.into());
        self
    }

    /// Names the fixture, unless one is named already (the innermost wins).
    pub fn with_fixture(mut self, fixture: impl Into<String>) -> Self {
        if self.ctx.fixture.is_none() {
            self.ctx.fixture = Some(fixture.into());
        }
        self
    }

    /// The runtime named, if any (`docker`, `podman`).
    pub fn runtime(&self) -> Option<&str> {
        self.ctx.runtime.as_deref()
    }

    /// Where the engine is, if said (`unix:///var/run/docker.sock`).
    pub fn host(&self) -> Option<&str> {
        self.ctx.host.as_deref()
    }

    /// Names the runtime (`docker`, `podman`), unless named already.
    pub fn with_runtime(mut self, runtime: impl Into<String>) -> Self {
        if self.ctx.runtime.is_none() {
            self.ctx.runtime = Some(runtime.into());
        }
        self
    }

    /// Says where the engine is (`unix:///var/run/docker.sock`), unless said already; an
    /// empty `host` is ignored.
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        let host = host.into();
        if self.ctx.host.is_none() && !host.is_empty() {
            self.ctx.host = Some(host);
        }
        self
    }

    /// Names the image.
    pub fn with_image(mut self, image: impl Into<String>) -> Self {
        self.ctx.image = Some(image.into());
        self
    }

    /// Names the container (id or name).
    pub fn with_container(mut self, container: impl Into<String>) -> Self {
        self.ctx.container = Some(container.into());
        self
    }

    /// Says what was being done (`create container`, `build image`).
    pub fn with_operation(mut self, operation: impl Into<String>) -> Self {
        if self.ctx.operation.is_none() {
            self.ctx.operation = Some(operation.into());
        }
        self
    }

    /// Says what was awaited and for how long.
    pub fn with_wait(mut self, waiting_for: impl Into<String>, waited: Duration) -> Self {
        self.ctx.waiting_for = Some(waiting_for.into());
        self.ctx.waited = Some(waited);
        self
    }

    /// Records how the container ended.
    pub fn with_exit(mut self, exit_code: Option<i64>, oom_killed: bool) -> Self {
        self.ctx.exit_code = exit_code;
        self.ctx.oom_killed = oom_killed;
        self
    }

    /// Keeps the last lines of the container's logs.
    pub fn with_logs_tail(mut self, logs: impl Into<String>) -> Self {
        let logs = logs.into();
        if !logs.trim().is_empty() {
            self.ctx.logs_tail = Some(logs);
        }
        self
    }

    /// Adds advice on what to do.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.ctx.hint = Some(hint.into());
        self
    }

    pub(crate) fn has_container(&self) -> bool {
        self.ctx.container.is_some()
    }

    /// Shorthand for an [`ErrorKind::InvalidInput`] error.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// The error a fixture's own code returned, as this crate's error: kept as it is when it
    /// is one already (a handle's error inside a fixture), else [`ErrorKind::Fixture`] with
    /// `what` as the message and the error as its cause.
    pub fn from_fixture_code(error: BoxError, what: impl Into<String>) -> Self {
        match error.downcast::<Error>() {
            Ok(ours) => *ours,
            Err(theirs) => Error::new(ErrorKind::Fixture, what).with_source(theirs),
        }
    }

    /// Shorthand for an [`ErrorKind::Graph`] error about `fixture`.
    pub fn graph(fixture: impl Into<String>, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Graph, message).with_fixture(fixture)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(fixture) = &self.ctx.fixture {
            write!(f, "fixture `{fixture}`: ")?;
        }
        if let Some(op) = &self.ctx.operation {
            write!(f, "{op}: ")?;
        }
        write!(f, "{}", self.ctx.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.ctx;
        writeln!(f, "{self}")?;
        writeln!(f, "  kind: {}", self.kind.describe())?;
        let fields: [(&str, Option<String>); 4] = [
            (
                "runtime",
                match (&c.runtime, &c.host) {
                    (Some(runtime), Some(host)) => Some(format!("{runtime} at {host}")),
                    (runtime, host) => runtime.clone().or_else(|| host.clone()),
                },
            ),
            ("image", c.image.clone()),
            ("container", c.container.clone()),
            ("waiting for", c.waiting_for.clone()),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                writeln!(f, "  {name}: {value}")?;
            }
        }
        if let Some(waited) = c.waited {
            writeln!(f, "  waited: {:.1}s", waited.as_secs_f64())?;
        }
        if c.exit_code.is_some() || c.oom_killed {
            let code = c.exit_code.map_or_else(|| "unknown".to_owned(), |c| c.to_string());
            writeln!(f, "  exit code: {code}{}", if c.oom_killed { " (OOM-killed)" } else { "" })?;
        }
        let mut source = c.source.as_deref().map(|s| s as &(dyn std::error::Error + 'static));
        if source.is_some() {
            writeln!(f, "caused by:")?;
        }
        let mut depth = 0;
        while let Some(err) = source {
            // An error of this library among the causes: its one line here; its details (the
            // next link of the chain) are for reporters that show only the chain.
            if !err.is::<Context>() {
                writeln!(f, "  {depth}: {err}")?;
                depth += 1;
            }
            source = err.source();
        }
        if let Some(hint) = &c.hint {
            writeln!(f, "hint: {hint}")?;
        }
        if let Some(logs) = &c.logs_tail {
            writeln!(f, "last log lines:")?;
            for line in logs.lines() {
                writeln!(f, "  | {line}")?;
            }
        }
        Ok(())
    }
}

/// An error's details as the first of its causes: what reporters that print an error's
/// `Display` and then its chain of causes (`anyhow`, `eyre`) show of it. Its own cause is the
/// error's cause.
impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines: Vec<String> = Vec::new();
        if let Some(kind) = self.kind {
            lines.push(format!("kind: {}", kind.describe()));
        }
        let runtime = match (&self.runtime, &self.host) {
            (Some(runtime), Some(host)) => Some(format!("{runtime} at {host}")),
            (runtime, host) => runtime.clone().or_else(|| host.clone()),
        };
        for (name, value) in [
            ("runtime", runtime),
            ("image", self.image.clone()),
            ("container", self.container.clone()),
            ("waiting for", self.waiting_for.clone()),
        ] {
            if let Some(value) = value {
                lines.push(format!("{name}: {value}"));
            }
        }
        if let Some(waited) = self.waited {
            lines.push(format!("waited: {:.1}s", waited.as_secs_f64()));
        }
        if self.exit_code.is_some() || self.oom_killed {
            let code = self.exit_code.map_or_else(|| "unknown".to_owned(), |c| c.to_string());
            lines.push(format!("exit code: {code}{}", if self.oom_killed { " (OOM-killed)" } else { "" }));
        }
        if let Some(hint) = &self.hint {
            lines.push(format!("hint: {hint}"));
        }
        if let Some(logs) = &self.logs_tail {
            lines.push("last log lines:".to_owned());
            lines.extend(logs.lines().map(|l| format!("  | {l}")));
        }
        f.write_str(&lines.join("\n"))
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Context {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl std::error::Error for Error {
    /// The error's details (kind, runtime, container, hint, the container's last log lines),
    /// whose own cause is the error's cause: so a reporter that prints only `Display` and the
    /// causes, as `anyhow` does, still shows them. This library's own `{:?}` shows them in
    /// place.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.ctx)
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, "I/O failed").with_source(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_the_full_report() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = Error::new(ErrorKind::Exited, "exited before it was ready")
            .with_fixture("apiserver")
            .with_runtime("docker")
            .with_image("sha256:abc")
            .with_container("c0ffee")
            .with_wait("port 8080/tcp listening", Duration::from_millis(1500))
            .with_exit(Some(3), false)
            .with_logs_tail("starting\nfatal: no config")
            .with_source(io);
        insta::assert_snapshot!(format!("{err:?}"), @r"
        fixture `apiserver`: exited before it was ready
          kind: container exited
          runtime: docker
          image: sha256:abc
          container: c0ffee
          waiting for: port 8080/tcp listening
          waited: 1.5s
          exit code: 3
        caused by:
          0: refused
        last log lines:
          | starting
          | fatal: no config
        ");
    }

    #[test]
    fn display_is_one_line_and_never_repeats_the_cause() {
        let err = Error::new(ErrorKind::Engine, "create container failed")
            .with_fixture("db")
            .with_source(std::io::Error::other("boom"));
        assert_eq!(err.to_string(), "fixture `db`: create container failed");
    }

    #[test]
    fn errors_are_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Error>();
    }
}
