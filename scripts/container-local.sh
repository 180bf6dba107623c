#!/usr/bin/env bash
# Build and run the project's Dockerfile for real on a Debian bookworm machine with no Docker engine and no
# image registry, using Debian's podman/buildah. The base image cannot be pulled, so a stand-in
# python:3.11-slim (Debian bookworm minbase + Debian's python3/pip/venv) is built with mmdebstrap.
# Usage: container-local.sh install | base | env | service-start | service-stop | clean
#   eval "$(scripts/container-local.sh env)"   -> podman/buildah use the configs below; `docker` talks to podman
# Everything (configs, image storage, socket) lives under $CONTAINER_LOCAL_DIR; nothing in /etc is changed.
set -euo pipefail
D="${CONTAINER_LOCAL_DIR:-${TMPDIR:-/tmp}/container-local}"
BASE_TAG="${BASE_TAG:-docker.io/library/python:3.11-slim}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

write_conf() {
  mkdir -p "$D"
  cat >"$D/containers.conf" <<'EOF'
[containers]
# a machine whose egress uses its own CA: give every container and RUN step the host bundle (pip/apt over TLS)
volumes = ["/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro"]
# root without CAP_SYS_RESOURCE cannot raise nofile to podman's default 1048576
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
# crun refuses hybrid cgroup v1/v2 hosts ("cgroups in hybrid mode not supported"); runc works
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  # the driver is fixed once per store: podman refuses a store created with another driver
  [ -s "$D/storage.conf" ] || cat >"$D/storage.conf" <<EOF
[storage]
driver = "$(storage_driver)"
runroot = "$D/run"
graphroot = "$D/storage"
EOF
}
storage_driver() {   # overlay where the kernel lets us mount it; else vfs (a full copy per layer and container)
  local t; t="$(mktemp -d)"; mkdir "$t"/{l,u,w,m}
  if mount -t overlay overlay -o "lowerdir=$t/l,upperdir=$t/u,workdir=$t/w" "$t/m" 2>/dev/null; then
    umount "$t/m"; echo overlay
  else
    echo vfs
  fi
  rm -rf "$t"
}
envs() {
  echo "export CONTAINERS_CONF=$D/containers.conf CONTAINERS_STORAGE_CONF=$D/storage.conf" \
       "DOCKER_HOST=unix://$D/podman.sock"
}
case "${1:-}" in
  install)   # Debian packages; a no-op where they are already there
    if ! command -v podman >/dev/null || ! command -v buildah >/dev/null || ! command -v mmdebstrap >/dev/null \
        || ! command -v runc >/dev/null; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        podman buildah runc mmdebstrap uidmap >/dev/null
    fi
    write_conf ;;
  base)   # ~1 min; a no-op where the stand-in already exists
    write_conf; eval "$(envs)"
    podman image exists "$BASE_TAG" && { echo "$BASE_TAG already present"; exit 0; }
    # minbase = Essential + Priority required, as Debian's -slim images (so useradd is there)
    mmdebstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
      --customize-hook='rm -f "$1"/usr/lib/python3.11/EXTERNALLY-MANAGED; ln -sf /usr/bin/python3 "$1"/usr/local/bin/python; ln -sf /usr/bin/pip3 "$1"/usr/local/bin/pip' \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      bookworm "$D/base.tar" "$MIRROR" </dev/null
    podman import "$D/base.tar" "$BASE_TAG"
    rm -f "$D/base.tar" ;;
  env) envs ;;
  service-start)   # a Docker-API socket, so the stock `docker` CLI works against podman
    write_conf; eval "$(envs)"
    nohup podman system service --time=0 "unix://$D/podman.sock" >"$D/service.log" 2>&1 &
    echo $! >"$D/service.pid"
    for _ in $(seq 1 40); do [ -S "$D/podman.sock" ] && break; sleep 0.25; done
    echo "podman API on $D/podman.sock (pid $(cat "$D/service.pid"))" ;;
  service-stop)
    if [ -s "$D/service.pid" ]; then kill "$(cat "$D/service.pid")" 2>/dev/null || true; fi
    rm -f "$D/service.pid" ;;
  clean)   # every image, container and build cache of this store (frees the disk vfs uses)
    write_conf; eval "$(envs)"
    podman system reset --force >/dev/null 2>&1 || true
    rm -rf "$D" ;;
  *) echo "usage: $0 install|base|env|service-start|service-stop|clean" >&2; exit 2 ;;
esac
