//! Remote engines on loopback, made for a test: a TLS front (socat, requiring a client
//! certificate) and an ssh server (sshd, a key in an agent), both in front of this machine's
//! engine socket, on addresses of their own (127.0.0.2, 127.0.0.3) so that a test can tell
//! an engine's host from this machine's 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the TLS front listens.
pub const TLS_IP: &str = "127.0.0.2";
/// Where the ssh server listens.
pub const SSH_IP: &str = "127.0.0.3";

/// The fronts of one engine socket, stopped (and their files removed) when dropped.
#[derive(Debug)]
pub struct Fronts {
    dir: PathBuf,
    children: Vec<Child>,
    /// `tcp://127.0.0.2:<port>`.
    pub tls_host: String,
    /// `ssh://root@127.0.0.3:<port><socket>`.
    pub ssh_host: String,
}

fn run(what: &str, cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e} (xtask/setup.sh installs it)"));
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0)).and_then(|l| l.local_addr()).expect("a free port").port()
}

fn wait_listening(ip: &str, port: u16, child: &mut Child, what: &str) {
    let start = Instant::now();
    while std::net::TcpStream::connect((ip, port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} ended at start ({status})");
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{what} does not listen on {ip}:{port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A CA (`<name>/ca.pem`), and a certificate it signs for `use_` (`serverAuth` for the
/// engine's address, `clientAuth`) at `<name>/cert.pem` + `key.pem`.
fn certificates(dir: &Path, ca: &str, leaf: &str, usage: &str) {
    let d = dir.join(leaf);
    std::fs::create_dir_all(&d).expect("dir");
    let ca_dir = dir.join(ca);
    let ext = d.join("ext.cnf");
    let san = if usage == "serverAuth" { format!("subjectAltName=IP:{TLS_IP},DNS:localhost\n") } else { String::new() };
    std::fs::write(&ext, format!("{san}extendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n")).expect("ext");
    run(
        "openssl key",
        Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                "/CN=fixtures",
            ])
            .arg("-keyout")
            .arg(d.join("key.pem"))
            .arg("-out")
            .arg(d.join("req.csr")),
    );
    run(
        "openssl sign",
        Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(d.join("req.csr"))
            .arg("-CA")
            .arg(ca_dir.join("ca.pem"))
            .arg("-CAkey")
            .arg(ca_dir.join("ca-key.pem"))
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(d.join("cert.pem")),
    );
    std::fs::copy(ca_dir.join("ca.pem"), d.join("ca.pem")).expect("ca");
}

fn authority(dir: &Path, name: &str) {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).expect("dir");
    run(
        "openssl CA",
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
            .args(["-subj", &format!("/CN={name}")])
            .args(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(d.join("ca-key.pem"))
            .arg("-out")
            .arg(d.join("ca.pem")),
    );
}

impl Fronts {
    /// Makes the certificates and keys and starts both fronts before `socket` (an engine's unix
    /// socket path). `remote_socket` is what the ssh URL names.
    pub fn start(socket: &str) -> Fronts {
        let dir = std::env::temp_dir().join(format!("fixtures-fronts-{}-{}", std::process::id(), free_port(TLS_IP)));
        std::fs::create_dir_all(&dir).expect("dir");
        // Made first, so that a panic on the way stops what was started and removes the files.
        let mut fronts =
            Fronts { dir: dir.clone(), children: Vec::new(), tls_host: String::new(), ssh_host: String::new() };
        // Certificates: the engine's CA, a client CA the engine trusts, and a stranger CA.
        authority(&dir, "engine-ca");
        authority(&dir, "client-ca");
        authority(&dir, "stranger-ca");
        certificates(&dir, "engine-ca", "server", "serverAuth");
        certificates(&dir, "client-ca", "client", "clientAuth");
        certificates(&dir, "stranger-ca", "stranger", "clientAuth");
        // What a client uses: the engine's CA, its own certificate and key.
        std::fs::copy(dir.join("engine-ca/ca.pem"), dir.join("client/ca.pem")).expect("ca");
        std::fs::copy(dir.join("engine-ca/ca.pem"), dir.join("stranger/ca.pem")).expect("ca");

        let tls_port = free_port(TLS_IP);
        let server = dir.join("server");
        let listen = format!(
            "OPENSSL-LISTEN:{tls_port},bind={TLS_IP},reuseaddr,fork,cert={},key={},cafile={},verify=1",
            server.join("cert.pem").display(),
            server.join("key.pem").display(),
            dir.join("client-ca/ca.pem").display(),
        );
        let socat = Command::new("socat")
            .args([listen.as_str(), &format!("UNIX-CONNECT:{socket}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat (xtask/setup.sh installs it)");
        fronts.children.push(socat);
        let socat = fronts.children.last_mut().expect("socat");
        wait_listening(TLS_IP, tls_port, socat, "socat's TLS front");

        // ssh: a host key, a client key in an agent of its own, sshd on 127.0.0.3.
        let ssh = dir.join("ssh");
        std::fs::create_dir_all(&ssh).expect("dir");
        for key in ["host", "client"] {
            run(
                "ssh-keygen",
                Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(ssh.join(key)),
            );
        }
        std::fs::copy(ssh.join("client.pub"), ssh.join("authorized_keys")).expect("authorized");
        let ssh_port = free_port(SSH_IP);
        std::fs::write(
            ssh.join("sshd_config"),
            format!(
                "ListenAddress {SSH_IP}:{ssh_port}\nHostKey {host}\nPidFile none\nAuthorizedKeysFile {keys}\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nAllowStreamLocalForwarding yes\nLogLevel ERROR\n",
                host = ssh.join("host").display(),
                keys = ssh.join("authorized_keys").display(),
            ),
        )
        .expect("sshd_config");
        let _ = std::fs::create_dir_all("/run/sshd");
        let sshd = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(ssh.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd (xtask/setup.sh installs openssh-server)");
        fronts.children.push(sshd);
        let sshd = fronts.children.last_mut().expect("sshd");
        wait_listening(SSH_IP, ssh_port, sshd, "sshd");
        let host_key = std::fs::read_to_string(ssh.join("host.pub")).expect("host key");
        std::fs::write(ssh.join("known_hosts"), format!("[{SSH_IP}]:{ssh_port} {host_key}")).expect("known_hosts");
        std::fs::write(
            ssh.join("ssh_config"),
            format!(
                "Host {SSH_IP}\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  IdentitiesOnly no\n",
                ssh.join("known_hosts").display()
            ),
        )
        .expect("ssh_config");
        let agent = Command::new("ssh-agent")
            .args(["-D", "-a"])
            .arg(ssh.join("agent.sock"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent");
        fronts.children.push(agent);
        let start = Instant::now();
        while !ssh.join("agent.sock").exists() {
            assert!(start.elapsed() < Duration::from_secs(5), "ssh-agent made no socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        // The socket is there a moment before the agent listens on it.
        let start = Instant::now();
        loop {
            let added = Command::new("ssh-add")
                .arg(ssh.join("client"))
                .env("SSH_AUTH_SOCK", ssh.join("agent.sock"))
                .output()
                .expect("ssh-add");
            if added.status.success() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "ssh-add failed: {}",
                String::from_utf8_lossy(&added.stderr)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        fronts.tls_host = format!("tcp://{TLS_IP}:{tls_port}");
        fronts.ssh_host = format!("ssh://root@{SSH_IP}:{ssh_port}{socket}");
        fronts
    }

    /// The folder of the certificates a client uses: `client` (the one the engine trusts),
    /// `stranger` (signed by a CA it does not).
    pub fn certs(&self, which: &str) -> PathBuf {
        self.dir.join(which)
    }

    /// A scratch folder of this front's, removed with it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The environment that reaches the engine through the TLS front with the client's
    /// certificates, for `runtime`'s host variable.
    pub fn tls_env(&self, runtime: &str) -> Vec<(String, String)> {
        vec![
            (host_key(runtime), self.tls_host.clone()),
            ("FIXTURE_TLS_VERIFY".to_owned(), "1".to_owned()),
            ("FIXTURE_CERT_PATH".to_owned(), self.certs("client").display().to_string()),
        ]
    }

    /// The environment that reaches the engine over ssh: the agent holds the key, and the ssh
    /// client's options name the server's host key.
    pub fn ssh_env(&self, runtime: &str) -> Vec<(String, String)> {
        let ssh = self.dir.join("ssh");
        vec![
            (host_key(runtime), self.ssh_host.clone()),
            ("SSH_AUTH_SOCK".to_owned(), ssh.join("agent.sock").display().to_string()),
            ("FIXTURE_SSH_COMMAND".to_owned(), format!("ssh -F {}", ssh.join("ssh_config").display())),
        ]
    }
}

/// The configuration variable of `runtime`'s host.
fn host_key(runtime: &str) -> String {
    if runtime == "podman" { "FIXTURE_PODMAN_HOST" } else { "FIXTURE_DOCKER_HOST" }.to_owned()
}

impl Drop for Fronts {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
