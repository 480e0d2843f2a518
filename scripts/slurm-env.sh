#!/usr/bin/env bash
# Brings up a real single-node SLURM cluster on this Debian machine (we are root, there is no
# init system):
#   munged (as munge) -> /etc/slurm/slurm.conf for this node -> slurmctld -> slurmd -> node idle.
# Also installs openssh-server (tests start their own sshd on a spare port; none is started here).
#
# Safe to run again: every step checks first, so on a machine where the cluster is already up it
# only looks (about a second). Environment:
#   SLURM_ENV_TIMEOUT  seconds to wait for the node to become usable (default 60)
set -euo pipefail

log() { printf 'slurm-env: %s\n' "$*"; }
die() { printf 'slurm-env: ERROR: %s\n' "$*" >&2; exit 1; }

TIMEOUT=${SLURM_ENV_TIMEOUT:-60}
CONF=/etc/slurm/slurm.conf
LOGDIR=/var/log/slurm
started=$(date +%s)

# --- packages -----------------------------------------------------------------------------
missing=()
for pair in slurmctld:slurm-wlm slurmd:slurm-wlm sbatch:slurm-wlm munged:munge sshd:openssh-server; do
  bin=${pair%%:*}
  pkg=${pair#*:}
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
    [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} from Debian's packages"
  # Keep the packages' init scripts from starting daemons: this script starts what it needs.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

# --- munge --------------------------------------------------------------------------------
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if munge_ok; then
  log "munged is up"
else
  install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
  install -d -o munge -g munge -m 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating the munge key"
    if command -v mungekey >/dev/null 2>&1; then
      mungekey --create --keyfile=/etc/munge/munge.key
    else
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  # A socket left by a munged that died would make the new one refuse to start.
  if ! pgrep -x munged >/dev/null; then rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock; fi
  log "starting munged"
  pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 1 50); do munge_ok && break; sleep 0.1; done
  munge_ok || die "munged did not answer (see /var/log/munge/munged.log)"
fi

# --- slurm.conf ---------------------------------------------------------------------------
node=$(hostname -s)
# What slurmd detects on this node; CPUs/RealMemory above the hardware would leave it DOWN/DRAIN.
detected=$(slurmd -C 2>/dev/null | head -n 1 || true)
cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$detected")
mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$detected")
[ -n "$cpus" ] || cpus=$(nproc)
[ -n "$mem" ] || mem=$(free -m | awk '/^Mem:/ { print $2 }')
# Leave room for the system: 90% of the memory, and never more than slurmd saw.
mem=$((mem * 90 / 100))
[ "$mem" -ge 256 ] || mem=256

desired=$(cat <<EOF
# Written by pilot-wms scripts/slurm-env.sh: a single-node test cluster.
ClusterName=local
SlurmctldHost=$node
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=3600
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
MpiDefault=none
SwitchType=switch/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGDIR/jobcomp.log
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
NodeName=$node CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
)
install -d -m 0755 /etc/slurm /var/spool/slurmctld /var/spool/slurmd "$LOGDIR"
conf_changed=0
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$desired" ]; then
  log "writing $CONF (node $node, CPUs=$cpus, RealMemory=${mem}M)"
  printf '%s\n' "$desired" >"$CONF.tmp"
  mv "$CONF.tmp" "$CONF"
  conf_changed=1
fi

# --- daemons ------------------------------------------------------------------------------
ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
if pgrep -x slurmctld >/dev/null; then
  if [ "$conf_changed" = 1 ]; then
    log "slurmctld runs with an older configuration: reconfiguring"
    scontrol reconfigure || true
  fi
else
  log "starting slurmctld"
  slurmctld
fi
for _ in $(seq 1 100); do ctld_up && break; sleep 0.2; done
ctld_up || die "slurmctld did not come up: $(tail -n 5 "$LOGDIR/slurmctld.log" 2>/dev/null | tr '\n' ' ')"

if ! pgrep -x slurmd >/dev/null; then
  log "starting slurmd"
  slurmd
fi

# --- node ---------------------------------------------------------------------------------
node_state() { sinfo -h -N -n "$node" -o '%T' 2>/dev/null | head -n 1; }
resumed=0
deadline=$(($(date +%s) + TIMEOUT))
while :; do
  state=$(node_state)
  case "$state" in
    idle | mixed | allocated | completing) break ;;
    down* | drain* | drained* | fail*)
      if [ "$resumed" = 0 ]; then
        log "node $node is $state: resuming it"
        scontrol update nodename="$node" state=resume || true
        resumed=1
      fi
      ;;
  esac
  if [ "$(date +%s)" -ge "$deadline" ]; then
    reason=$(sinfo -h -N -n "$node" -o '%E' 2>/dev/null | head -n 1)
    die "node $node is '${state:-absent}' (${reason:-no reason}) after ${TIMEOUT}s, not idle; see $LOGDIR/slurmd.log and $LOGDIR/slurmctld.log"
  fi
  sleep 0.5
done
log "SLURM is up: partition debug, node $node $state ($(($(date +%s) - started))s)"
