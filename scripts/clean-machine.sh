#!/usr/bin/env bash
# Removes every trace the project's runs and tests leave outside the checkout, so that the
# next `make test` or `make run` starts as on a fresh machine:
#   - daemons started with pid files (nodes, influxd, chronyd, lab sshd), stopped by pid file;
#   - the lab's and molecule's network namespaces (hb*), their veths (vhb*) and bridges (hb-*);
#   - installed venvs and wheelhouses (/opt/hongbao, /var/tmp/hongbao-molecule);
#   - /var/lib/hongbao (run directories, the lab's InfluxDB data, chrony and Grafana files);
#   - /var/tmp/hongbao-* (lab state, molecule and playbook test installs, the saved CPU
#     scheduler setting, which is put back first);
#   - the pytest temporary directories (per-test InfluxDB data among them) and molecule's cache.
# It lists what it removed and is idempotent: a second run removes nothing.
# Usage: bash scripts/clean-machine.sh   (as root; also `make clean-machine`)
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "clean-machine: needs root (namespaces, /opt, /var/lib)" >&2
  exit 2
fi

DIRS=(/opt/hongbao /var/lib/hongbao /var/tmp/hongbao-* /tmp/pytest-of-root "$HOME/.cache/molecule")
DAEMONS='hongbao|influxd|chronyd|sshd|grafana'
removed=0

say() { echo "removed: $*"; removed=$((removed + 1)); }

stop_pid() {  # stop_pid PID WHAT: TERM, then KILL after 10 s
  local pid=$1 what=$2
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { say "process $pid ($what)"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  say "process $pid ($what, killed)"
}

# 1. Daemons, through their pid files. A pid is only signalled while its command line is
#    one of the project's daemons: a stale pid file must not kill an unrelated process.
for dir in "${DIRS[@]}"; do
  [ -d "$dir" ] || continue
  while IFS= read -r -d '' pid_file; do
    pid=$(tr -dc '0-9' < "$pid_file" || true)
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || continue
    if tr '\0' ' ' < "/proc/$pid/cmdline" | grep -Eq "$DAEMONS"; then
      stop_pid "$pid" "$pid_file"
    fi
  done < <(find "$dir" -xdev -name '*.pid' -type f -print0 2>/dev/null)
done

# 2. Namespaces: whatever still runs inside one of ours belongs to the lab or molecule.
for namespace in $(ip netns list 2>/dev/null | awk '$1 ~ /^hb/ {print $1}'); do
  for pid in $(ip netns pids "$namespace" 2>/dev/null); do
    stop_pid "$pid" "in namespace $namespace"
  done
  ip netns delete "$namespace" && say "namespace $namespace"
done

# 3. Links: veths whose namespace end is gone, then the bridges.
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print $2}' \
              | grep -E '^(vhb|hb-)' || true); do
  ip link delete "$link" 2>/dev/null && say "link $link"
done

# 4. The CPU scheduler setting a lab turned off (hongbao/lab/autogroup.py): the file's
#    first line is the machine's own value, put back before the file goes with the rest.
held=/var/tmp/hongbao-sched-autogroup
setting=/proc/sys/kernel/sched_autogroup_enabled
if [ -f "$held" ] && [ -w "$setting" ]; then
  original=$(head -n 1 "$held" | tr -dc '0-9')
  if [ -n "$original" ] && [ "$(cat "$setting")" != "$original" ]; then
    echo "$original" > "$setting" && say "CFS autogroup turned off by a lab (set back to $original)"
  fi
fi

# 5. Installs, data and state.
for dir in "${DIRS[@]}"; do
  [ -e "$dir" ] || continue
  # Overlay mounts of molecule instances (/etc) may remain under their state directory.
  while read -r mount_point; do
    umount -l "$mount_point" 2>/dev/null && say "mount $mount_point"
  done < <(awk -v d="$dir" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r)
  rm -rf "$dir" && say "$dir"
done

echo "clean-machine: $removed item(s) removed"
