#!/usr/bin/env bash
# What the tests need on this machine, installed or started only when missing; each step says
# what it does. `docker`: Docker and static busybox (for `cargo xtask demo` and a plain
# `cargo test`). `all`: those, Podman and its API service (and what rootless Podman needs),
# Debian's docker-registry, docker-compose, and openssl, socat and openssh for remote engines on loopback (for
# `cargo xtask test`). The ssh server is only installed: tests start their own.
# Run by xtask; Debian's packages (apt-get, as root).
set -euo pipefail
mode="${1:-all}"

log() { printf '\n== %s\n' "$*"; }

export DEBIAN_FRONTEND=noninteractive
missing=()
command -v docker >/dev/null 2>&1 || missing+=(docker.io)
# The test images' busybox (`cargo xtask images`; a plain `cargo test` builds them on demand).
if ! { [ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked'; }; then
  missing+=(busybox-static)
fi
command -v file >/dev/null 2>&1 || missing+=(file)
if [ "$mode" = all ]; then
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  # Podman's init process for `init: true` (Docker brings its own).
  [ -x /usr/libexec/podman/catatonit ] || missing+=(catatonit)
  # Rootless Podman (the podman-rootless row): subordinate id helpers and user networking.
  command -v newuidmap >/dev/null 2>&1 || missing+=(uidmap)
  command -v slirp4netns >/dev/null 2>&1 || missing+=(slirp4netns)
  command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
  # A private registry's password file (tests/registry_login.rs).
  command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
  # Compose files are brought up with it too, to compare with the library's reading of them.
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  # `cargo xtask test --under-load`: a CPU hog per core beside the suite.
  command -v stress-ng >/dev/null 2>&1 || missing+=(stress-ng)
  # Remote engines on loopback (tests/remote.rs): certificates, a TLS front, an ssh server.
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v socat >/dev/null 2>&1 || missing+=(socat)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v ssh-agent >/dev/null 2>&1 || missing+=(openssh-client)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]} (Debian's packages)"
  if [ "$(id -u)" != 0 ]; then
    echo "installing needs root: run as root, or install ${missing[*]} yourself" >&2
    exit 1
  fi
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  (setsid dockerd >/var/log/fixtures-dockerd.log 2>&1 &)
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { tail -n 50 /var/log/fixtures-dockerd.log; echo "dockerd did not start" >&2; exit 1; }
fi
docker version --format 'docker engine {{.Server.Version}} (API {{.Server.APIVersion}})'
[ "$mode" = docker ] && exit 0

# Podman. Some machines (this project's sandbox among them) refuse Podman's default
# rlimits (nofile 1048576) when a container starts. Probe with a throwaway root filesystem
# holding only busybox (no image needed); only if that fails is containers.conf given
# lower default ulimits, and then the probe must pass.
podman_probe() {
  local rootfs status
  rootfs="$(mktemp -d)"
  mkdir -p "$rootfs/bin" && cp /bin/busybox "$rootfs/bin/busybox"
  podman run --rm --network none --rootfs "$rootfs" /bin/busybox true >/dev/null 2>&1
  status=$?
  rm -rf "$rootfs"
  return "$status"
}
if ! podman_probe; then
  conf=/etc/containers/containers.conf
  ulimits='default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]'
  if [ -f "$conf" ] && grep -q '^[[:space:]]*default_ulimits' "$conf"; then
    echo "podman cannot start containers, and $conf already sets default_ulimits" >&2
    exit 1
  fi
  log "podman cannot start containers with its default rlimits: setting default_ulimits in $conf"
  mkdir -p /etc/containers
  if [ -f "$conf" ] && grep -q '^\[containers\]' "$conf"; then
    sed -i "/^\[containers\]/a $ulimits" "$conf"
  else
    printf '\n[containers]\n%s\n' "$ulimits" >>"$conf"
  fi
  podman_probe || { echo "podman still cannot start a container" >&2; exit 1; }
fi

# The local registry (127.0.0.1:5000, started by `cargo xtask images`) and the private one of
# tests/registry_login.rs (127.0.0.1:5001) speak plain HTTP.
mkdir -p /etc/containers/registries.conf.d
printf '%s\n' '# Written by xtask/setup.sh: the test registries on loopback speak plain HTTP.' \
  '[[registry]]' 'location = "127.0.0.1:5000"' 'insecure = true' \
  '[[registry]]' 'location = "127.0.0.1:5001"' 'insecure = true' \
  >/etc/containers/registries.conf.d/50-fixtures-local-registry.conf

# The API service the tests talk to (the rootful socket, where PodmanRuntime::connect looks).
podman_sock=/run/podman/podman.sock
podman_answers() { podman --remote --url "unix://$podman_sock" version >/dev/null 2>&1; }
if ! podman_answers; then
  log "starting the Podman API service on $podman_sock"
  mkdir -p /run/podman
  # From /: conmon (2.1.6) drops a file named `oom` into the service's working folder.
  # Its process id written down, for `cargo xtask clean --all` to stop this service and no other.
  mkdir -p /run/fixtures-xtask
  (cd / && setsid podman system service --time=0 "unix://$podman_sock" >/var/log/fixtures-podman-service.log 2>&1 </dev/null &
    echo $! >/run/fixtures-xtask/podman-service.pid)
  for _ in $(seq 1 60); do
    podman_answers && break
    sleep 1
  done
  podman_answers || { tail -n 50 /var/log/fixtures-podman-service.log; echo "the Podman service did not start" >&2; exit 1; }
fi
podman --remote --url "unix://$podman_sock" version --format 'podman engine {{.Server.Version}} (API {{.Server.APIVersion}})'

