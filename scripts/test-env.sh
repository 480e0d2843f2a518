#!/usr/bin/env bash
# Brings up the real parts the test suites use, on a Debian machine where we are root:
#   - PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth): started if installed but
#     stopped, installed from Debian's packages if missing.
#   - a single-node SLURM cluster (munge, slurmctld, slurmd; partition debug): scripts/slurm-env.sh.
#   - Debian's chromium at /usr/bin/chromium for the browser tests (driven by playwright-core;
#     no browser download).
#   - Debian's bubblewrap (bwrap), the payload sandbox of the job wrapper.
#   - Debian's prometheus (promtool and prometheus): the metrics tests check /metrics with
#     `promtool check metrics` and run every PromQL of the Grafana dashboard on a real Prometheus.
#   - Debian's haproxy: the failover tests (tests/faults/replica-failover.test.ts) put it in front
#     of two server replicas; the tests start their own, so the package's service is stopped.
# Safe to run again: each step checks first.
set -euo pipefail

log() { printf 'test-env: %s\n' "$*"; }

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  if command -v pg_isready >/dev/null && pg_ready; then
    log "PostgreSQL is up at 127.0.0.1:5432"
    return
  fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "installing PostgreSQL from Debian's packages"
    apt_install postgresql
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  local conf="/etc/postgresql/$version/main"
  # Trust local TCP connections for the test user, as on the development machines.
  if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$conf/pg_hba.conf"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf/pg_hba.conf"
  fi
  log "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
  pg_ready || { log "PostgreSQL did not come up at 127.0.0.1:5432"; exit 1; }
  log "PostgreSQL is up at 127.0.0.1:5432"
}

ensure_chromium() {
  if [ -x /usr/bin/chromium ]; then
    log "chromium is at /usr/bin/chromium"
    return
  fi
  log "installing chromium from Debian's packages"
  apt_install chromium
  [ -x /usr/bin/chromium ] || { log "chromium did not install at /usr/bin/chromium"; exit 1; }
  log "chromium is at /usr/bin/chromium"
}

ensure_bubblewrap() {
  if command -v bwrap >/dev/null; then
    log "bubblewrap is at $(command -v bwrap)"
    return
  fi
  log "installing bubblewrap from Debian's packages"
  apt_install bubblewrap
  command -v bwrap >/dev/null || { log "bubblewrap did not install"; exit 1; }
  log "bubblewrap is at $(command -v bwrap)"
}

ensure_prometheus() {
  if command -v promtool >/dev/null && command -v prometheus >/dev/null; then
    log "prometheus is at $(command -v prometheus)"
    return
  fi
  log "installing prometheus (promtool) from Debian's packages"
  apt_install --no-install-recommends prometheus
  # The package starts a system-wide Prometheus on :9090; the tests start their own.
  if command -v service >/dev/null; then service prometheus stop >/dev/null 2>&1 || true; fi
  command -v promtool >/dev/null && command -v prometheus >/dev/null || { log "prometheus did not install"; exit 1; }
  log "prometheus is at $(command -v prometheus)"
}

ensure_haproxy() {
  if command -v haproxy >/dev/null; then
    log "haproxy is at $(command -v haproxy)"
    return
  fi
  log "installing haproxy from Debian's packages"
  apt_install haproxy
  if command -v service >/dev/null; then service haproxy stop >/dev/null 2>&1 || true; fi
  command -v haproxy >/dev/null || { log "haproxy did not install"; exit 1; }
  log "haproxy is at $(command -v haproxy)"
}

ensure_postgres
ensure_chromium
ensure_bubblewrap
ensure_prometheus
ensure_haproxy
bash "$(dirname "$0")/slurm-env.sh"

# Pilot jobs (named wms-*) that an earlier run left on this test cluster would hold its cores
# and keep the SLURM suites' pilots pending: the tests start from an empty queue.
leftover=$(squeue -h -o '%i %j' 2>/dev/null | awk '$2 ~ /^wms-/ { print $1 }' | tr '\n' ' ')
if [ -n "${leftover// /}" ]; then
  log "cancelling pilot jobs an earlier run left on the SLURM test cluster: $leftover"
  # shellcheck disable=SC2086
  scancel $leftover || true
fi
