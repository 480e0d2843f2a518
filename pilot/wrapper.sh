#!/bin/bash
# pilot-wms pilot wrapper: the body of the script a computing element runs for one pilot.
#
# The site director (agents/pilot-wrapper.ts) renders one script per pilot: "#!/bin/bash", a
# header of readonly (never exported), shell-quoted parameters, then this body. The queue's
# environment is not here: it is for payloads only and reaches them through the pilot. It runs with bash >= 4 on a bare Linux worker node and needs coreutils (date,
# mktemp, stat, rm), tar with gzip, and curl, wget or node for HTTP.
#
# Parameters (set by the header):
#   WMS_URL            server base URL
#   WMS_TOKEN          the pilot's bearer token
#   WMS_STAMP          the pilot's stamp
#   WMS_BUNDLE_SHA256  SHA-256 (hex) of pilot.tar.gz
#   WMS_NODE_PATH      optional: a node binary, or a directory holding bin/node or node
#   WMS_WORK_DIRS      optional: colon-separated work-dir candidates, tried first
#   WMS_KEEP_WORK_DIR  1 keeps the work dir after the pilot ends (default 0)
#
# Steps:
#   a. a work dir on LOCAL disk: WMS_WORK_DIRS, then $TMPDIR, $SLURM_TMPDIR,
#      $_CONDOR_SCRATCH_DIR, /scratch, /tmp; network, parallel, FUSE and unknown file systems
#      are skipped with the reason logged;
#   b. node >= 20: WMS_NODE_PATH, then node and nodejs on PATH;
#   c. pilot.tar.gz from $WMS_URL/pilot/pilot.tar.gz (curl, else wget, else node), checked
#      against WMS_BUNDLE_SHA256 (sha256sum, else node) and unpacked into the work dir;
#   d. "node pilot.mjs" in the work dir with the WMS_PILOT_* environment; the pilot token is
#      not in it: the wrapper writes it to a 0600 file in the work dir and passes the file's
#      path (WMS_PILOT_TOKEN_FILE); the pilot reads the file and deletes it at once. SIGTERM
#      and SIGINT are passed on to it (the first SIGTERM drains it). Once it ended, for
#      whatever reason (a crash, the OOM killer, a SIGKILL of node alone), the payload sessions
#      it left in <work dir>/payload-sessions are killed (no payload outlives its pilot); the
#      work dir is removed afterwards.
# Every step is logged with a UTC time to stderr and, once the work dir exists, to
# <work dir>/wrapper.log, which the pilot gets as WMS_PILOT_WRAPPER_LOG and forwards.
#
# Exit codes (the pilot's own are listed in pilot/README.md):
#   10        no usable work dir on local disk
#   11        node >= 20 not found
#   12        pilot bundle download failed
#   13        pilot bundle checksum mismatch
#   14        pilot bundle unpack failed (or no pilot.mjs in it)
#   15        wrapper misconfigured (a header parameter missing or malformed, or not bash >= 4)
#   130, 143  stopped by SIGINT, SIGTERM before the pilot started
#   other     the pilot's exit code: the one it wrote to <work dir>/pilot-exit-code after its
#             final report when there is one (node's status can say SIGTERM for a signal that
#             came while it exited), else node's status
# A failure before the pilot starts is reported with POST $WMS_URL/api/pilots/self/status
# ({"status":"Failed","reason":...,"exitCode":...}) before the wrapper exits.
#
# The token never appears on a command line (other users of the node can read those): curl
# reads its header from stdin, wget from a private temporary file, node (a failure report before
# the pilot starts) from its environment. It is never exported, and never in the pilot's
# environment, where a payload might read it. Everything the wrapper and the pilot write is
# private to them (umask 077).
#
# shellcheck disable=SC2154  # WMS_* parameters come from the rendered header.

if [ -z "${BASH_VERSION:-}" ] || [ "${BASH_VERSINFO:-0}" -lt 4 ]; then
  echo "pilot wrapper: needs bash >= 4" >&2
  exit 15
fi

set -u
umask 077

readonly _wms_min_node_major=20
readonly _wms_exit_no_work_dir=10
readonly _wms_exit_no_node=11
readonly _wms_exit_download=12
readonly _wms_exit_checksum=13
readonly _wms_exit_unpack=14
readonly _wms_exit_misconfigured=15

_wms_work_dir=''
_wms_fs_type=''
_wms_node=''
_wms_log_file=''
_wms_log_buffer=()
_wms_token_file=''
_wms_pilot_pid=''
_wms_pilot_starting=0
_wms_pending_signal=''
_wms_signalled=0

# --- logging and helpers -------------------------------------------------------------------

wms_log() {
  local line
  line="$(date -u +%Y-%m-%dT%H:%M:%SZ 2>/dev/null) $*"
  printf '%s\n' "$line" >&2
  if [ -n "$_wms_log_file" ]; then
    printf '%s\n' "$line" >>"$_wms_log_file" 2>/dev/null
  else
    _wms_log_buffer+=("$line")
  fi
}

# Starts the log file; the lines logged so far go first.
wms_open_log() {
  _wms_log_file=$1
  if [ "${#_wms_log_buffer[@]}" -gt 0 ]; then
    printf '%s\n' "${_wms_log_buffer[@]}" >>"$_wms_log_file" 2>/dev/null
  fi
  _wms_log_buffer=()
}

# wms_join SEP ITEM... prints the items joined by SEP.
wms_join() {
  local sep=$1 out='' item first=1
  shift
  for item in "$@"; do
    if [ "$first" = 1 ]; then out=$item; first=0; else out+="$sep$item"; fi
  done
  printf '%s' "$out"
}

# The last non-empty line of a tool's error output, for a one-line reason. (No here-strings
# in this script: bash before 5.1 writes them to $TMPDIR, which may be the broken part.)
wms_last_line() {
  local text=$1 nl=$'\n'
  while [ "${text%"$nl"}" != "$text" ]; do text=${text%"$nl"}; done
  printf '%s' "${text##*"$nl"}"
}

# A JSON string body (without the quotes) for a one-line reason: control characters become
# spaces, backslash and double quote are escaped, and it is cut to 1000 characters (the
# server takes 2000 UTF-16 units).
wms_json_escape() {
  local s=$1
  s=${s//[[:cntrl:]]/ }
  s=${s:0:1000}
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '%s' "$s"
}

# Runs a command with a time limit when coreutils' timeout is there.
wms_timeout() {
  local seconds=$1
  shift
  if command -v timeout >/dev/null 2>&1; then
    timeout "$seconds" "$@"
  else
    "$@"
  fi
}

# Any node to talk HTTP with when curl and wget are missing (reports may come before step b).
wms_any_node() {
  if [ -n "$_wms_node" ]; then
    printf '%s' "$_wms_node"
  else
    command -v node 2>/dev/null || command -v nodejs 2>/dev/null
  fi
}

# --- failure, report, cleanup -------------------------------------------------------------

# wms_report CODE REASON: tells the server that the pilot failed before it started.
wms_report() {
  local code=$1 reason=$2 url body err rc node rcfile token
  if [ -z "${WMS_URL:-}" ] || [ -z "${WMS_TOKEN:-}" ]; then
    wms_log "failure not reported: WMS_URL or WMS_TOKEN is not set"
    return 1
  fi
  url="${WMS_URL%/}/api/pilots/self/status"
  body="{\"status\":\"Failed\",\"reason\":\"$(wms_json_escape "$reason")\",\"exitCode\":$code}"
  if command -v curl >/dev/null 2>&1; then
    token=${WMS_TOKEN//\\/\\\\}
    token=${token//\"/\\\"}
    err=$(printf 'header = "Authorization: Bearer %s"\n' "$token" |
      curl -fsS -K - --connect-timeout 10 --max-time 20 --retry 2 --retry-delay 3 \
        -H 'Content-Type: application/json' --data-binary "$body" -o /dev/null "$url" 2>&1)
    rc=$?
  elif command -v wget >/dev/null 2>&1; then
    rcfile=$(mktemp "${_wms_work_dir:-${TMPDIR:-/tmp}}/wms-wgetrc.XXXXXX" 2>/dev/null ||
      mktemp 2>/dev/null)
    if [ -z "$rcfile" ]; then
      wms_log "failure not reported: no place for wget's private header file"
      return 1
    fi
    printf 'header = Authorization: Bearer %s\n' "$WMS_TOKEN" >"$rcfile"
    err=$(wget --config="$rcfile" -nv -T 20 -t 3 --waitretry=3 \
      --header='Content-Type: application/json' --post-data="$body" -O /dev/null "$url" 2>&1)
    rc=$?
    rm -f -- "$rcfile"
  elif node=$(wms_any_node) && [ -n "$node" ]; then
    err=$(WMS_REPORT_URL=$url WMS_REPORT_TOKEN=$WMS_TOKEN WMS_REPORT_BODY=$body "$node" -e '
      const e = process.env;
      fetch(e.WMS_REPORT_URL, {
        method: "POST",
        headers: { authorization: `Bearer ${e.WMS_REPORT_TOKEN}`, "content-type": "application/json" },
        body: e.WMS_REPORT_BODY,
        signal: AbortSignal.timeout(20000),
      }).then(
        (r) => { if (!r.ok) { process.stderr.write(`HTTP ${r.status}\n`); process.exit(1); } },
        (x) => { process.stderr.write(`${x.message}${x.cause ? `: ${x.cause.message}` : ""}\n`); process.exit(1); },
      );' 2>&1)
    rc=$?
  else
    wms_log "failure not reported: none of curl, wget, node found"
    return 1
  fi
  if [ "$rc" -eq 0 ]; then
    wms_log "failure reported to the server"
  else
    wms_log "failure not reported: $(wms_last_line "$err") (exit $rc)"
  fi
  return "$rc"
}

# wms_fail CODE REASON: logs, reports, exits (the EXIT trap removes the work dir).
wms_fail() {
  local code=$1 reason=$2
  trap '' TERM INT
  wms_log "pilot not started: $reason (exit code $code)"
  wms_report "$code" "$reason"
  exit "$code"
}

# wms_kill_payload_sessions DIR: kills the payload sessions the pilot registered in
# DIR/payload-sessions and did not see end (the pilot died: a crash, the OOM killer, a SIGKILL of
# node alone). Each payload runs in a session of its own whose id is its process group's.
wms_kill_payload_sessions() {
  local file="$1/payload-sessions" sid n=0
  [ -f "$file" ] && [ ! -L "$file" ] || return 0
  while IFS= read -r sid || [ -n "$sid" ]; do
    case $sid in '' | *[!0-9]*) continue ;; esac
    [ "${#sid}" -le 10 ] && [ "$sid" -gt 1 ] || continue
    if kill -KILL -- "-$sid" 2>/dev/null; then
      n=$((n + 1))
    fi
  done <"$file"
  [ "$n" -eq 0 ] || wms_log "killed $n payload session(s) the pilot left running"
}

wms_cleanup() {
  local dir=$_wms_work_dir
  # The pilot deletes the token file as it starts; one it never read goes in any case.
  [ -z "$_wms_token_file" ] || rm -f -- "$_wms_token_file" 2>/dev/null
  [ -n "$dir" ] || return 0
  _wms_work_dir=''
  # No payload outlives its pilot, whatever the pilot died of.
  wms_kill_payload_sessions "$dir"
  if [ "${WMS_KEEP_WORK_DIR:-0}" = 1 ]; then
    wms_log "work dir kept: $dir"
    return 0
  fi
  _wms_log_file=''
  cd / || true
  if ! rm -rf -- "$dir" 2>/dev/null; then
    # Payloads leave read-only directories behind (Go module caches, for one).
    chmod -R u+rwx -- "$dir" 2>/dev/null
    rm -rf -- "$dir" 2>/dev/null
  fi
  if [ -e "$dir" ]; then
    wms_log "work dir not fully removed: $dir"
  else
    wms_log "work dir removed: $dir"
  fi
}

# SIGTERM and SIGINT: passed on to the pilot once it runs; before that, the wrapper stops.
wms_on_signal() {
  local sig=$1 code=143
  [ "$sig" = INT ] && code=130
  if [ -n "$_wms_pilot_pid" ]; then
    _wms_signalled=1
    wms_log "got SIG$sig: passing it on to the pilot (pid $_wms_pilot_pid)"
    kill -s "$sig" "$_wms_pilot_pid" 2>/dev/null
  elif [ "$_wms_pilot_starting" = 1 ]; then
    _wms_pending_signal=$sig
  else
    wms_fail "$code" "stopped by SIG$sig before the pilot started"
  fi
}

trap wms_cleanup EXIT
trap 'wms_on_signal TERM' TERM
trap 'wms_on_signal INT' INT

# --- header -------------------------------------------------------------------------------

wms_check_header() {
  local missing=()
  [ -n "${WMS_URL:-}" ] || missing+=(WMS_URL)
  [ -n "${WMS_TOKEN:-}" ] || missing+=(WMS_TOKEN)
  [ -n "${WMS_BUNDLE_SHA256:-}" ] || missing+=(WMS_BUNDLE_SHA256)
  if [ "${#missing[@]}" -gt 0 ]; then
    wms_fail "$_wms_exit_misconfigured" "wrapper misconfigured: $(wms_join ', ' "${missing[@]}") not set"
  fi
  if ! [[ $WMS_BUNDLE_SHA256 =~ ^[0-9a-fA-F]{64}$ ]]; then
    wms_fail "$_wms_exit_misconfigured" "wrapper misconfigured: WMS_BUNDLE_SHA256 is not a hex SHA-256"
  fi
  case "${WMS_KEEP_WORK_DIR:-0}" in
    0 | 1) ;;
    *) wms_fail "$_wms_exit_misconfigured" "wrapper misconfigured: WMS_KEEP_WORK_DIR must be 0 or 1" ;;
  esac
}

# --- a. work dir on local disk ------------------------------------------------------------

# Prints why a file-system type is no place for a work dir; fails when the type is fine.
wms_fs_rejection() {
  local t=${1,,}
  case "$t" in
    ceph | cephfs | fuse.ceph*) echo "Ceph, a network file system" ;;
    nfs | nfs4) echo "network file system" ;;
    lustre | gpfs | beegfs) echo "parallel network file system" ;;
    cvmfs) echo "CernVM-FS, a read-only software area" ;;
    afs) echo "AFS, a network file system" ;;
    cifs | smb | smb2 | smb3) echo "SMB/CIFS network share" ;;
    glusterfs) echo "GlusterFS, a network file system" ;;
    9p) echo "9p, a host or VM share" ;;
    fuse*) echo "FUSE file system, maybe remote" ;;
    '' | unknown*) echo "unknown file-system type" ;;
    *) return 1 ;;
  esac
}

wms_pick_work_dir() {
  local configured=() candidates=() skipped=() dir type why made err rest
  local -A seen=()
  rest=${WMS_WORK_DIRS:-}
  while [ -n "$rest" ]; do
    configured+=("${rest%%:*}")
    [ "${rest#*:}" != "$rest" ] || break
    rest=${rest#*:}
  done
  if [ "${#configured[@]}" -gt 0 ]; then
    candidates+=("${configured[@]}")
  fi
  candidates+=("${TMPDIR:-}" "${SLURM_TMPDIR:-}" "${_CONDOR_SCRATCH_DIR:-}" /scratch /tmp)

  for dir in "${candidates[@]}"; do
    [ -n "$dir" ] || continue
    while [ "${#dir}" -gt 1 ] && [ "${dir%/}" != "$dir" ]; do dir=${dir%/}; done
    [ -z "${seen[$dir]+x}" ] || continue
    seen[$dir]=1
    if [ ! -d "$dir" ]; then
      wms_log "$dir: does not exist, skipped"
      skipped+=("$dir missing")
      continue
    fi
    if [ ! -w "$dir" ] || [ ! -x "$dir" ]; then
      wms_log "$dir: not writable, skipped"
      skipped+=("$dir not writable")
      continue
    fi
    type=$(stat -f -c %T "$dir" 2>/dev/null)
    [ -n "$type" ] || type=UNKNOWN
    if why=$(wms_fs_rejection "$type"); then
      wms_log "$dir: $type ($why), skipped"
      skipped+=("$dir $type")
      continue
    fi
    if ! made=$(mktemp -d "$dir/wms-pilot.XXXXXX" 2>&1); then
      err=$(wms_last_line "$made")
      wms_log "$dir: $type, cannot create a directory there ($err), skipped"
      skipped+=("$dir cannot create a directory")
      continue
    fi
    _wms_work_dir=$(cd "$made" && pwd -P) || _wms_work_dir=$made
    _wms_fs_type=$type
    wms_open_log "$_wms_work_dir/wrapper.log"
    wms_log "work dir: $_wms_work_dir ($type)"
    return 0
  done
  if [ "${#skipped[@]}" -eq 0 ]; then
    skipped+=("no candidates")
  fi
  wms_fail "$_wms_exit_no_work_dir" "no local work dir: $(wms_join ', ' "${skipped[@]}")"
}

# --- b. node >= 20 ------------------------------------------------------------------------

_wms_node_tried=()
declare -A _wms_node_seen=()

# wms_node_rejected WHAT: notes (and logs) a node candidate that will not do.
wms_node_rejected() {
  _wms_node_tried+=("$1")
  wms_log "node candidate $1, skipped"
}

# wms_try_node PATH: takes PATH as the node when it runs and is recent enough.
wms_try_node() {
  local path=$1 out rc version major
  [ -z "${_wms_node_seen[$path]+x}" ] || return 1
  _wms_node_seen[$path]=1
  if [ ! -f "$path" ] || [ ! -x "$path" ]; then
    wms_node_rejected "$path: not an executable file"
    return 1
  fi
  out=$(wms_timeout 60 "$path" --version 2>&1)
  rc=$?
  version=$(wms_last_line "$out")
  if [ "$rc" -ne 0 ]; then
    wms_node_rejected "$path: does not run (exit $rc${version:+: ${version:0:80}})"
    return 1
  fi
  if ! [[ $version =~ ^v([0-9]+)\. ]]; then
    wms_node_rejected "$path: says '${version:0:40}', not a node version"
    return 1
  fi
  major=${BASH_REMATCH[1]}
  if [ "$major" -lt "$_wms_min_node_major" ]; then
    wms_node_rejected "$path: $version"
    return 1
  fi
  _wms_node=$path
  wms_log "node: $path $version"
  return 0
}

wms_find_node() {
  local base name path
  if [ -n "${WMS_NODE_PATH:-}" ]; then
    base=$WMS_NODE_PATH
    if [ -d "$base" ]; then
      if [ ! -e "$base/bin/node" ] && [ ! -e "$base/node" ]; then
        wms_node_rejected "$base: has no bin/node or node"
      fi
      [ -e "$base/bin/node" ] && wms_try_node "$base/bin/node" && return 0
      [ -e "$base/node" ] && wms_try_node "$base/node" && return 0
    elif [ -e "$base" ]; then
      wms_try_node "$base" && return 0
    else
      wms_node_rejected "$base: not found"
    fi
  fi
  for name in node nodejs; do
    if path=$(command -v "$name" 2>/dev/null) && [ -n "$path" ]; then
      wms_try_node "$path" && return 0
    else
      wms_node_rejected "$name: not on PATH"
    fi
  done
  wms_fail "$_wms_exit_no_node" \
    "node >= $_wms_min_node_major not found (tried $(wms_join '; ' "${_wms_node_tried[@]}"))"
}

# --- c. fetch, verify, unpack -------------------------------------------------------------

# wms_download URL FILE; on failure prints the tool's last error line.
wms_download() {
  local url=$1 file=$2 err rc
  if command -v curl >/dev/null 2>&1; then
    # curl retries transient failures only (timeouts, 5xx, refused), not a 404.
    err=$(curl -fsS -L --connect-timeout 20 --max-time 300 --retry 2 --retry-delay 5 \
      --retry-connrefused -o "$file" "$url" 2>&1)
    rc=$?
    [ "$rc" -eq 0 ] || printf 'curl: %s' "$(wms_last_line "$err")"
  elif command -v wget >/dev/null 2>&1; then
    err=$(wget -nv -T 60 -t 3 --waitretry=5 -O "$file" "$url" 2>&1)
    rc=$?
    [ "$rc" -eq 0 ] || printf 'wget: %s (exit %s)' "$(wms_last_line "$err")" "$rc"
  else
    err=$("$_wms_node" -e '
      const [url, file] = process.argv.slice(1);
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      (async () => {
        let last = "";
        for (let i = 0; i < 3; i++) {
          if (i > 0) await sleep(5000);
          try {
            const r = await fetch(url, { signal: AbortSignal.timeout(300000) });
            if (r.ok) {
              require("node:fs").writeFileSync(file, Buffer.from(await r.arrayBuffer()));
              return;
            }
            last = `HTTP ${r.status} ${r.statusText}`;
            if (r.status < 500 && r.status !== 408 && r.status !== 429) break;
          } catch (x) {
            last = `${x.message}${x.cause ? `: ${x.cause.message}` : ""}`;
          }
        }
        process.stderr.write(`${last}\n`);
        process.exit(1);
      })();' "$url" "$file" 2>&1)
    rc=$?
    [ "$rc" -eq 0 ] || printf 'node fetch: %s' "$(wms_last_line "$err")"
  fi
  return "$rc"
}

# wms_sha256 FILE prints the file's SHA-256 in lower-case hex.
wms_sha256() {
  local out
  if command -v sha256sum >/dev/null 2>&1; then
    out=$(sha256sum -- "$1") || return 1
    printf '%s' "${out%% *}"
  else
    "$_wms_node" -e '
      const h = require("node:crypto").createHash("sha256");
      h.update(require("node:fs").readFileSync(process.argv[1]));
      process.stdout.write(h.digest("hex"));' "$1"
  fi
}

wms_fetch_bundle() {
  local url="${WMS_URL%/}/pilot/pilot.tar.gz" file="$_wms_work_dir/pilot.tar.gz" err sum expected
  wms_log "downloading $url"
  if ! err=$(wms_download "$url" "$file"); then
    wms_fail "$_wms_exit_download" "pilot bundle download failed from $url: $err"
  fi
  expected=${WMS_BUNDLE_SHA256,,}
  if ! sum=$(wms_sha256 "$file") || [ -z "$sum" ]; then
    wms_fail "$_wms_exit_checksum" "pilot bundle checksum could not be computed"
  fi
  if [ "$sum" != "$expected" ]; then
    wms_fail "$_wms_exit_checksum" "pilot bundle checksum mismatch: expected $expected got $sum"
  fi
  wms_log "bundle checksum ok ($sum)"
  if ! err=$(tar -xzf "$file" -C "$_wms_work_dir" --no-same-owner 2>&1); then
    wms_fail "$_wms_exit_unpack" "pilot bundle unpack failed: $(wms_last_line "$err")"
  fi
  rm -f -- "$file"
  if [ ! -f "$_wms_work_dir/pilot.mjs" ]; then
    wms_fail "$_wms_exit_unpack" "pilot bundle unpack failed: no pilot.mjs in it"
  fi
  wms_log "bundle unpacked in $_wms_work_dir"
}

# --- d. run the pilot ---------------------------------------------------------------------

# The pilot token in a private file for the pilot to read and delete (printf is a builtin: the
# token is on no command line).
wms_write_token() {
  _wms_token_file="$_wms_work_dir/.pilot-token"
  if ! (umask 077 && printf '%s' "$WMS_TOKEN" >"$_wms_token_file") 2>/dev/null; then
    wms_fail "$_wms_exit_no_work_dir" "cannot write the pilot token file in the work dir $_wms_work_dir"
  fi
}

wms_run_pilot() {
  local rc
  cd "$_wms_work_dir" || wms_fail "$_wms_exit_unpack" "cannot enter the work dir $_wms_work_dir"
  wms_write_token
  wms_log "starting the pilot: $_wms_node pilot.mjs"
  _wms_pilot_starting=1
  WMS_PILOT_URL=$WMS_URL \
    WMS_PILOT_TOKEN_FILE=$_wms_token_file \
    WMS_PILOT_STAMP=${WMS_STAMP:-} \
    WMS_PILOT_WORK_DIR=$_wms_work_dir \
    WMS_PILOT_FS_TYPE=$_wms_fs_type \
    WMS_PILOT_WRAPPER_LOG=$_wms_log_file \
    "$_wms_node" pilot.mjs &
  _wms_pilot_pid=$!
  _wms_pilot_starting=0
  if [ -n "$_wms_pending_signal" ]; then
    wms_on_signal "$_wms_pending_signal"
  fi
  # A trapped signal interrupts wait (status > 128) while the pilot runs on: wait again.
  while :; do
    wait "$_wms_pilot_pid"
    rc=$?
    if [ "$rc" -gt 128 ] && kill -0 "$_wms_pilot_pid" 2>/dev/null; then
      continue
    fi
    break
  done
  if [ "$_wms_signalled" = 1 ] && [ "$rc" -gt 128 ]; then
    # The pilot may have ended between the interrupted wait and kill -0: bash kept its status.
    local again
    wait "$_wms_pilot_pid" 2>/dev/null
    again=$?
    [ "$again" -eq 127 ] || rc=$again
  fi
  _wms_pilot_pid=''
  trap '' TERM INT
  # The pilot's own word on its exit code, written once its final report is made: node dies of a
  # SIGTERM that comes while it exits, after its handlers are gone (the group's signal and the
  # copy passed on above arrive milliseconds apart, and an idle pilot drains in less: measured,
  # 3 of 60 node processes signalled in their last milliseconds died with 143), and bash's wait
  # can misreport a status after a trap interrupted it (255, from a -1): the pilot ended as it
  # says.
  local file="$_wms_work_dir/pilot-exit-code" said=''
  if [ -f "$file" ] && [ ! -L "$file" ]; then
    IFS= read -r said <"$file" 2>/dev/null || true
    if [[ $said =~ ^[0-9]{1,3}$ ]] && [ "$said" -le 255 ] && [ "$said" != "$rc" ]; then
      wms_log "pilot said exit code $said, its process ended with status $rc: exit code $said"
      rc=$said
    fi
  fi
  wms_log "pilot ended with exit code $rc"
  exit "$rc"
}

# --- main ---------------------------------------------------------------------------------

wms_check_header
wms_log "pilot wrapper for pilot ${WMS_STAMP:-?} on $(uname -n 2>/dev/null) as $(id -un 2>/dev/null), server $WMS_URL, bash $BASH_VERSION"
wms_pick_work_dir
wms_find_node
wms_fetch_bundle
wms_run_pilot
