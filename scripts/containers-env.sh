#!/usr/bin/env bash
# Makes `docker-compose` run real containers on a Debian 12 machine that has no Docker engine
# and no container registry, only the apt mirror (the CI and development machines): rootful
# podman with runc, podman's Docker-compatible API socket, docker-compose 1.29 (Debian's), a
# Debian base image built with debootstrap from the host's own apt mirror, and stand-ins for the
# images docker-compose.yml names (postgres:15, node:20, haproxy:2.6, prom/prometheus) built from
# scripts/containers/. Without systemd podman never runs HEALTHCHECKs, so a small loop (the
# "healthcheck pump") runs them; `depends_on: condition: service_healthy` relies on it.
#
# Safe to run again: each step checks first (~8 min on a fresh machine, seconds once built).
# Must run as root. Afterwards: `export DOCKER_HOST=unix:///run/podman/podman.sock` (also
# written to $WMS_CONTAINERS_STATE/env.sh). Undo the processes with scripts/containers-teardown.sh.
# Environment:
#   WMS_CONTAINERS_STATE  where logs and PIDs go (default /tmp/wms-containers)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DEFS="$HERE/containers"
STATE=${WMS_CONTAINERS_STATE:-/tmp/wms-containers}
SOCKET=/run/podman/podman.sock
BASE=local/debian:bookworm
export DEBIAN_FRONTEND=noninteractive
started=$(date +%s)

log() { printf 'containers-env +%ss: %s\n' "$(($(date +%s) - started))" "$*"; }
die() { printf 'containers-env: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (podman is used rootful)"
mkdir -p "$STATE"

install_packages() {
  local missing=()
  local bin
  for bin in podman runc docker-compose debootstrap; do
    command -v "$bin" >/dev/null || missing+=("$bin")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "podman, runc, docker-compose and debootstrap are installed"
    return
  fi
  log "installing ${missing[*]} from Debian's packages"
  apt-get update -qq
  apt-get install -y -qq podman runc docker-compose debootstrap >/dev/null
}

# This VM has no CAP_SYS_RESOURCE, so podman's default rlimits (1048576) cannot be set: cap them
# at what we have (podman lowers its own nproc to 32768). crun refuses this host's hybrid
# cgroups (hugetlb on the v2 side); runc works.
configure_podman() {
  local nofile nproc
  nofile=$(ulimit -Hn)
  nproc=$(ulimit -Hu)
  [ "$nofile" = unlimited ] && nofile=1048576
  if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
  mkdir -p /etc/containers
  cat >/etc/containers/containers.conf <<CONF
# written by pilot-wms scripts/containers-env.sh
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]
[engine]
runtime = "runc"
CONF
}

apt_mirror() {
  local mirror=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '/^deb / { print $2; exit }' /etc/apt/sources.list)
  fi
  [ -n "$mirror" ] || die "no apt mirror found in /etc/apt/sources.list*"
  printf '%s\n' "$mirror"
}

# The base image: a minimal Debian 12 with the host's apt sources (so images install from the
# same mirror) and the host's extra CA certificates (HTTPS leaving this machine is re-signed).
build_base_image() {
  if podman image exists "$BASE"; then
    log "base image $BASE exists"
    return
  fi
  local mirror rootfs
  mirror=$(apt_mirror)
  rootfs=$(mktemp -d /var/tmp/wms-rootfs.XXXXXX)
  log "building $BASE with debootstrap from $mirror (1-5 min; log in $STATE/debootstrap.log)"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" \
    >"$STATE/debootstrap.log" 2>&1 || die "debootstrap failed, see $STATE/debootstrap.log"
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    rm -f "$rootfs/etc/apt/sources.list"
    cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/"
  fi
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$rootfs/etc/apt/apt.conf.d/99norecommends"
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
  chroot "$rootfs" update-ca-certificates >/dev/null 2>&1 || true
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import -q \
    --change 'ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD=/bin/bash' - "$BASE" >/dev/null
  rm -rf "$rootfs"
}

# What an image is built from: its definition files (and, for node, the host's node version).
definition_hash() {
  local name=$1
  {
    (cd "$DEFS/$name" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    if [ "$name" = node ]; then node --version; fi
  } | sha256sum | cut -c1-16
}

# build_image <definition folder> <tag> [more tags...]: built in a scratch copy of the folder
# (the node image also gets the host's node and npm there; nothing is written into the repo);
# built again when its definition changed (the label wms.definition says from what).
build_image() {
  local name=$1 tag=$2
  shift 2
  local want have
  want=$(definition_hash "$name")
  have=$(podman image inspect --format '{{ index .Labels "wms.definition" }}' "$tag" 2>/dev/null || true)
  if [ "$have" != "$want" ]; then
    log "building $tag from scripts/containers/$name"
    local ctx
    ctx=$(mktemp -d /var/tmp/wms-image.XXXXXX)
    cp -a "$DEFS/$name/." "$ctx/"
    if [ "$name" = node ]; then
      cp "$(readlink -f "$(command -v node)")" "$ctx/node"
      cp -a "$(dirname "$(readlink -f "$(command -v npm)")")/.." "$ctx/npm"
    fi
    podman build -q --label "wms.definition=$want" -f "$ctx/Containerfile" -t "$tag" "$ctx" >"$STATE/build-$name.log" 2>&1 ||
      { rm -rf "$ctx"; die "building $tag failed, see $STATE/build-$name.log"; }
    rm -rf "$ctx"
  fi
  local more
  for more in "$@"; do podman tag "$tag" "$more"; done
}

# The tags say what is really inside (Debian 12's versions); the docker.io names are what the
# project's Dockerfile and docker-compose.yml ask for.
build_stand_ins() {
  build_image node local/node:20 docker.io/library/node:20
  build_image postgres local/postgres:15 docker.io/library/postgres:15
  build_image haproxy local/haproxy:2.6 docker.io/library/haproxy:2.6
  build_image prometheus local/prometheus:2.42 docker.io/prom/prometheus:v2.42.0 docker.io/prom/prometheus:latest
  log "stand-in images: node:20 postgres:15 haproxy:2.6 prom/prometheus"
}

socket_up() { curl -sf --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; }

start_api_socket() {
  if ! socket_up; then
    log "starting podman's Docker-compatible API at $SOCKET"
    mkdir -p "$(dirname "$SOCKET")"
    nohup podman system service --time=0 "unix://$SOCKET" >"$STATE/service.log" 2>&1 &
    echo $! >"$STATE/service.pid"
    local _
    for _ in $(seq 100); do socket_up && break; sleep 0.1; done
    socket_up || die "podman system service did not answer, see $STATE/service.log"
  fi
  [ -e /var/run/docker.sock ] || ln -s "$SOCKET" /var/run/docker.sock
  echo "export DOCKER_HOST=unix://$SOCKET" >"$STATE/env.sh"
}

# `docker compose ...` (v2 syntax) for a docker CLI, if one is installed: Debian 12 has only v1.
install_compose_shim() {
  command -v docker >/dev/null || return 0
  local dir=/usr/local/lib/docker/cli-plugins
  mkdir -p "$dir"
  cat >"$dir/docker-compose" <<'SHIM'
#!/bin/sh
# docker CLI plugin: `docker compose ...` -> docker-compose 1.29 (written by containers-env.sh)
if [ "$1" = docker-cli-plugin-metadata ]; then
  echo '{"SchemaVersion":"0.1.0","Vendor":"pilot-wms","Version":"1.29.2","ShortDescription":"docker-compose v1"}'
  exit 0
fi
shift
exec /usr/bin/docker-compose "$@"
SHIM
  chmod +x "$dir/docker-compose"
}

start_healthcheck_pump() {
  if [ -f "$STATE/healthcheck.pid" ] && kill -0 "$(cat "$STATE/healthcheck.pid")" 2>/dev/null; then
    return
  fi
  log "starting the healthcheck pump (podman runs no HEALTHCHECK without systemd)"
  nohup sh -c 'while :; do
    for c in $(podman ps -q --filter health=starting --filter health=healthy --filter health=unhealthy 2>/dev/null); do
      podman healthcheck run "$c" >/dev/null 2>&1 &
    done
    wait; sleep 1
  done' >/dev/null 2>&1 &
  echo $! >"$STATE/healthcheck.pid"
}

install_packages
configure_podman
build_base_image
build_stand_ins
start_api_socket
install_compose_shim
start_healthcheck_pump
log "ready: $(podman --version), $(docker-compose version --short 2>/dev/null || echo docker-compose), DOCKER_HOST=unix://$SOCKET"
