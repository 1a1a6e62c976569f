#!/bin/sh
# tether keeper: the tiny per-agent parent that outlives the daemon (POSIX sh; about 1 MB resident).
#
# usage: keeper.sh RUN_DIR LOG_DIR INSTANCE CGROUP_DIRS COMMAND [ARG...]
#
#   RUN_DIR      receives keeper.pid and agent.pid ("PID START BOOT_ID") and, when the agent has ended,
#                exit (its wait status as the shell reports it: 128+N when killed by signal N)
#   LOG_DIR      stdout.log and stderr.log, opened here with O_APPEND; the agent writes to them directly,
#                so no line passes through (or is lost with) the daemon
#   INSTANCE     exported to the agent only, as TETHER_INSTANCE; every descendant inherits it
#   CGROUP_DIRS  colon-separated cgroup directories of this run, removed here once empty (may be "")
#   COMMAND      tether's launcher followed by the agent's argv. The launcher puts itself in its own
#                process group, joins the cgroup, drops to the run_as user, resets signals and execs the
#                agent, so the agent keeps the PID recorded in agent.pid.
#
# The daemon starts this script in a new session with stdin from /dev/null and stdout/stderr on
# RUN_DIR/keeper.log (no pipe to the daemon), so the daemon may be SIGKILLed without harming it. It
# ignores HUP, INT, QUIT, TERM and PIPE: signalling the agent's process group never reaches it, and only
# SIGKILL stops it before the agent has ended.

set -f
run=$1 logs=$2 instance=$3 cgroups=$4
shift 4
trap '' HUP INT QUIT TERM PIPE

# ident PID: print "PID START BOOT_ID" (START = field 22 of /proc/PID/stat; "-" where there is no /proc)
ident() {
  _b=- _s=-
  [ -r /proc/sys/kernel/random/boot_id ] && read -r _b </proc/sys/kernel/random/boot_id
  if [ -r "/proc/$1/stat" ] && read -r _st <"/proc/$1/stat"; then
    _st=${_st##*) }
    set -- "$1" $_st
    _s=${21}
  fi
  printf '%s %s %s\n' "$1" "$_s" "$_b"
}

# put FILE TEXT: replace FILE atomically
put() {
  printf '%s\n' "$2" >"$1.tmp" && mv -f "$1.tmp" "$1"
}

put "$run/keeper.pid" "$(ident $$)"

TETHER_INSTANCE=$instance "$@" </dev/null >>"$logs/stdout.log" 2>>"$logs/stderr.log" &
agent=$!
put "$run/agent.pid" "$(ident "$agent")"

wait "$agent"
code=$?
put "$run/exit" "$code"

# Remove the run's cgroup once it is empty. A descendant that escaped the agent keeps it populated, so
# the rmdir fails and `tether kill` can still find that descendant through it.
IFS=:
for dir in $cgroups; do
  [ -n "$dir" ] && rmdir "$dir" 2>/dev/null
done
exit 0
