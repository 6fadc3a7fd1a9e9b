//! Stand-ins for the public images real compose files name (`postgres:16-alpine`,
//! `redis:7-alpine`, ...), which this machine cannot pull: the same name and tag, the same
//! `EXPOSE`d ports, a server listening where the real one listens by default, and the
//! commands real health checks call (`pg_isready`, `redis-cli ping`, `mysqladmin ping`,
//! `curl`, `wget`). Built from busybox and the test-services binary; the compose tests bring
//! real-world files up on them, with this library and with docker-compose.

use crate::Result;

/// One stand-in: its name, its `EXPOSE`d ports, and the shell line that serves (run by its
/// entrypoint whatever the command, as a real image's entrypoint reads its own command).
pub(crate) struct StandIn {
    pub(crate) tag: &'static str,
    expose: &'static [&'static str],
    serve: &'static str,
}

/// The stand-ins, with the ports their real images expose and listen on.
pub(crate) const STAND_INS: &[StandIn] = &[
    StandIn { tag: "postgres:16-alpine", expose: &["5432"], serve: "PORT=5432 exec /test-services echo" },
    StandIn { tag: "redis:7-alpine", expose: &["6379"], serve: "PORT=6379 exec /test-services echo" },
    StandIn { tag: "nginx:1.27-alpine", expose: &["80"], serve: "PORT=80 exec /test-services http" },
    // MySQL exposes its X protocol port, 33060, and opens it only when the plugin is on.
    StandIn { tag: "mysql:8.0", expose: &["3306", "33060"], serve: "PORT=3306 exec /test-services echo" },
    // RabbitMQ's TLS and clustering ports are exposed and closed until configured.
    StandIn {
        tag: "rabbitmq:3-management-alpine",
        expose: &["4369", "5671", "5672", "15671", "15672", "15691", "15692", "25672"],
        serve: "PORT=15672 /test-services http & PORT=5672 exec /test-services echo",
    },
    // Application images: serve HTTP on `$PORT` (3000 by default, as Node apps do).
    StandIn { tag: "node:20-alpine", expose: &[], serve: "PORT=${PORT:-3000} exec /test-services http" },
    StandIn { tag: "python:3.12-slim", expose: &[], serve: "exec /test-services sleep" },
];

/// The commands health checks of real files call, as scripts.
const TOOLS: &[(&str, &str)] = &[
    ("pg_isready", "/test-services probe 127.0.0.1:5432 && echo '127.0.0.1:5432 - accepting connections'"),
    ("redis-cli", "/test-services probe 127.0.0.1:6379 && echo PONG"),
    ("mysqladmin", "/test-services probe 127.0.0.1:3306 && echo 'mysqld is alive'"),
    ("rabbitmq-diagnostics", "/test-services probe 127.0.0.1:5672 && echo 'Ping succeeded'"),
    // `curl -f http://host/path`: the last argument is the address.
    ("curl", "for url; do :; done; exec wget -q -O - \"$url\""),
];

/// Builds every stand-in on `engine`.
pub(crate) fn build(engine: &str) -> Result {
    let busybox = crate::busybox_binary()?;
    let services = crate::services_binary()?;
    for s in STAND_INS {
        let mut dockerfile = String::from(
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
             COPY test-services /test-services\nCOPY bin/ /usr/local/bin/\n",
        );
        for port in s.expose {
            dockerfile.push_str(&format!("EXPOSE {port}\n"));
        }
        dockerfile.push_str("ENTRYPOINT [\"/usr/local/bin/docker-entrypoint.sh\"]\nCMD [\"serve\"]\n");
        let entrypoint = format!("#!/bin/sh\n# A stand-in for {}: serves whatever its command.\n{}\n", s.tag, s.serve);
        let mut files: Vec<(String, Vec<u8>)> = vec![
            ("busybox".to_owned(), busybox.clone()),
            ("test-services".to_owned(), services.clone()),
            ("bin/docker-entrypoint.sh".to_owned(), entrypoint.into_bytes()),
        ];
        for (name, body) in TOOLS {
            files.push((format!("bin/{name}"), format!("#!/bin/sh\n{body}\n").into_bytes()));
        }
        let files: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        crate::build_image(engine, s.tag, &dockerfile, &files)?;
    }
    Ok(())
}
