#!/usr/bin/env bash
# Stops what scripts/containers-env.sh started, by the PIDs it wrote: the podman API socket
# and the healthcheck pump. Bring compose projects down first (`docker-compose -p NAME down -v`).
# Images stay (rebuilding takes minutes); `podman system reset -f` frees them (~1.3 GB).
set -uo pipefail
STATE=${WMS_CONTAINERS_STATE:-/tmp/wms-containers}
for name in healthcheck service; do
  pidfile="$STATE/$name.pid"
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
done
if [ -L /var/run/docker.sock ] && [ "$(readlink /var/run/docker.sock)" = /run/podman/podman.sock ]; then
  rm -f /var/run/docker.sock
fi
rm -f "$STATE/env.sh"
echo "containers-teardown: stopped the podman API socket and the healthcheck pump"
