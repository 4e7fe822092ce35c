#!/usr/bin/env bash
# calcmesh on seven "hosts" of one machine: a network namespace per host (gateway, redis, add,
# subtract, multiply, divide, evaluate), joined by a bridge in the root namespace, each component
# started inside its own as its systemd unit starts it (deploy/systemd/: the unit's ExecStart and
# Environment=, and calcmesh.env as its EnvironmentFile with this cluster's addresses), and
# waited for with `calcmesh probe`, as README's "Five hosts with systemd" says. Needs root,
# iproute2 (ip, tc), redis-server, /usr/bin/node (the units' ExecStart) and a built dist/.
#
#   deploy/netns-cluster.sh up | down | status
#   deploy/netns-cluster.sh cut <host> [loss|link]    partition one host (default: loss)
#   deploy/netns-cluster.sh heal <host>               reconnect it
#
# Environment (all optional):
#   CALC_NETNS_PREFIX   names of namespaces, veths and bridge (default calc; a-z0-9, <= 10 chars)
#   CALC_NETNS_SUBNET   first three octets of the private /24 (default 10.231.7)
#   CALC_NETNS_RUN      pids, logs, Redis data (default /tmp/calcmesh-netns-<prefix>)
#   CALC_NETNS_START_TIMEOUT_S   bound of each wait while starting (default 30)
#   CALC_* (CALC_DEADLINE_MS, CALC_BREAKER_*, …), LOG_LEVEL, GRPC_TRACE and GRPC_VERBOSITY
#   (grpc-js diagnostics) are added to every component's EnvironmentFile ($RUN/calcmesh.env);
#   the addresses are this script's.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=${CALC_NETNS_PREFIX:-calc}
SUBNET=${CALC_NETNS_SUBNET:-10.231.7}
RUN=${CALC_NETNS_RUN:-/tmp/calcmesh-netns-$PREFIX}
START_TIMEOUT_S=${CALC_NETNS_START_TIMEOUT_S:-30}
BRIDGE=${PREFIX}br0
MARKER=.calcmesh-netns # only a run dir holding it is ever removed

HOSTS=(gateway redis add subtract multiply divide evaluate)
SERVICES=(add subtract multiply divide evaluate)
declare -A OCTET=([gateway]=10 [redis]=11 [add]=12 [subtract]=13 [multiply]=14 [divide]=15 [evaluate]=16)
# Interface names are limited to 15 characters: "<prefix>-<short>" with a prefix of at most 10.
declare -A SHORT=([gateway]=gw [redis]=rds [add]=add [subtract]=sub [multiply]=mul [divide]=div [evaluate]=evl)
declare -A PORT=([gateway]=8000 [redis]=6379 [add]=50051 [subtract]=50052 [multiply]=50053 [divide]=50054 [evaluate]=50055)

die() { echo "netns-cluster: $*" >&2; exit 1; }
say() { echo "netns-cluster: $*"; }
ns_of() { echo "$PREFIX-$1"; }
veth_of() { echo "$PREFIX-${SHORT[$1]}"; } # root side; inside its namespace the peer is eth0
addr_of() { echo "$SUBNET.${OCTET[$1]}"; }
pidfile_of() { echo "$RUN/pids/$1.pid"; }
is_host() { [[ -n ${OCTET[$1]+set} ]]; }
ns_exists() { [[ -e /run/netns/$1 ]]; }
link_exists() { ip link show dev "$1" &>/dev/null; }

check_settings() {
  [[ $PREFIX =~ ^[a-z][a-z0-9]{0,9}$ ]] || die "CALC_NETNS_PREFIX must be 1-10 of a-z0-9 starting with a letter (interface names are limited to 15 characters), got '$PREFIX'"
  [[ $SUBNET =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || die "CALC_NETNS_SUBNET must be three octets like 10.231.7, got '$SUBNET'"
  local octet
  for octet in "${BASH_REMATCH[@]:1}"; do ((10#$octet <= 255)) || die "CALC_NETNS_SUBNET: $octet is not an octet"; done
  [[ $START_TIMEOUT_S =~ ^[0-9]+$ ]] || die "CALC_NETNS_START_TIMEOUT_S must be a whole number of seconds"
}

check_tools() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces, veths and a bridge)"
  command -v ip >/dev/null || die "ip (iproute2) is not on PATH: apt-get install iproute2"
  ip netns list >/dev/null 2>&1 || die "'ip netns' does not work here (no network namespace support?)"
}

# --- pids -------------------------------------------------------------------------------------

# Alive and not a zombie (an orphan's zombie may linger where nothing reaps, e.g. a container).
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# The pid of a component we started, if it still runs inside its own namespace (a reused pid
# elsewhere does not count).
live_pid() {
  local host=$1 pid
  pid=$(cat "$(pidfile_of "$host")" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && running "$pid" || return 1
  [[ $(ip netns identify "$pid" 2>/dev/null) == "$(ns_of "$host")" ]] || return 1
  echo "$pid"
}

# --- network ----------------------------------------------------------------------------------

check_subnet_free() {
  local taken
  taken=$(ip -4 -o addr show | awk -v bridge="$BRIDGE" -v net="$SUBNET." '$2 != bridge && index($4, net) == 1 { print $2 " " $4 }')
  [[ -z $taken ]] || die "subnet $SUBNET.0/24 is already used here ($taken); choose another with CALC_NETNS_SUBNET"
}

network_up() {
  if ! link_exists "$BRIDGE"; then
    check_subnet_free
    ip link add name "$BRIDGE" type bridge
  elif ! ip -4 -o addr show dev "$BRIDGE" | grep -q " $SUBNET\.1/24 "; then
    die "$BRIDGE exists with another subnet ($(ip -4 -o addr show dev "$BRIDGE" | awk '{print $4}')); run '$0 down' with its settings first"
  fi
  ip addr replace "$SUBNET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  local host ns veth
  for host in "${HOSTS[@]}"; do
    ns=$(ns_of "$host") veth=$(veth_of "$host")
    ns_exists "$ns" || ip netns add "$ns"
    link_exists "$veth" || ip link add "$veth" type veth peer name eth0 netns "$ns"
    ip link set "$veth" master "$BRIDGE" up
    ip -n "$ns" addr replace "$(addr_of "$host")/24" dev eth0
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
  done
}

# --- components -------------------------------------------------------------------------------

# Every calcmesh host runs what its systemd unit (deploy/systemd/) runs: the unit's ExecStart
# command line, its Environment= lines and WorkingDirectory=, and the EnvironmentFile rendered
# from the unit directory's calcmesh.env with this cluster's addresses, as an operator writes
# /etc/calcmesh/calcmesh.env. Specifiers are resolved as systemd does for the host: %i the
# instance (the operation), %S the state root (here $RUN/state/<host>, where StateDirectory= is
# made). The units' install directory /opt/calcmesh is this checkout. What systemd adds around
# the command (DynamicUser, the sandbox, restarts) is not reproduced: components run as root.
UNITS=$ROOT/deploy/systemd

unit_file_of() { if [[ $1 == gateway ]]; then echo "$UNITS/calcmesh-gateway.service"; else echo "$UNITS/calcmesh-service@.service"; fi; }

# unit_setting <unit file> <key>: the values of its `key=` lines, in order.
unit_setting() { sed -n "s/^$2=//p" "$1"; }

# Resolves a unit line's specifiers for a host.
resolve() {
  local line=$1 host=$2
  line=${line//%i/$host}
  line=${line//%S/$RUN/state/$host}
  echo "${line//\/opt\/calcmesh/$ROOT}"
}

# The EnvironmentFile of this cluster: calcmesh.env's lines with its addresses replaced by this
# cluster's; CALC_*, LOG_LEVEL and GRPC_TRACE/GRPC_VERBOSITY from the caller are appended (the
# last line of a name wins, as in systemd).
render_env_file() {
  local password name line
  password=$(cat "$RUN/redis/password")
  local -A topology=([CALC_REDIS_URL]="redis://:$password@$(addr_of redis):${PORT[redis]}")
  for name in "${SERVICES[@]}"; do topology["CALC_${name^^}_TARGETS"]="$(addr_of "$name"):${PORT[$name]}"; done
  (
    umask 077
    while IFS= read -r line; do
      name=${line%%=*}
      if [[ $line =~ ^[A-Z_][A-Z0-9_]*= && -n ${topology[$name]+set} ]]; then line="$name=${topology[$name]}"; fi
      echo "$line"
    done <"$UNITS/calcmesh.env"
    echo "# added by netns-cluster.sh from its caller's environment"
    for name in $(compgen -e); do
      case $name in
        CALC_NETNS_* | CALC_REDIS_URL | CALC_*_TARGETS) ;;
        CALC_* | LOG_LEVEL | GRPC_TRACE | GRPC_VERBOSITY) echo "$name=${!name}" ;;
      esac
    done
  ) >"$RUN/calcmesh.env"
  [[ $(grep -c -e '^CALC_REDIS_URL=' -e '^CALC_[A-Z]*_TARGETS=' "$RUN/calcmesh.env") -eq 6 ]] || die "$UNITS/calcmesh.env must set CALC_REDIS_URL and the five CALC_<OP>_TARGETS"
}

# unit_env <host>: ENV for the host's component, built as systemd builds it: a PATH, the unit's
# Environment= assignments, then the EnvironmentFile's NAME=value lines (which override them).
unit_env() {
  local host=$1 file word line
  file=$(unit_file_of "$host")
  ENV=(PATH="$PATH" HOME="$RUN")
  while IFS= read -r line; do
    for word in $(resolve "$line" "$host"); do ENV+=("$word"); done
  done < <(unit_setting "$file" Environment)
  [[ $(unit_setting "$file" EnvironmentFile) == /etc/calcmesh/calcmesh.env ]] || die "$file: expected EnvironmentFile=/etc/calcmesh/calcmesh.env"
  while IFS= read -r line; do
    if [[ $line =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then ENV+=("$line"); fi
  done <"$RUN/calcmesh.env"
}

# unit_exec <host>: EXEC is the unit's ExecStart, WORKDIR its WorkingDirectory (made, as
# StateDirectory= makes it).
unit_exec() {
  local host=$1 file
  file=$(unit_file_of "$host")
  read -r -a EXEC <<<"$(resolve "$(unit_setting "$file" ExecStart)" "$host")"
  ((${#EXEC[@]} > 0)) || die "$file has no ExecStart"
  [[ -x ${EXEC[0]} ]] || die "$file runs ${EXEC[0]}, which is not an executable here (install Node 20 there, or link it)"
  WORKDIR=$(resolve "$(unit_setting "$file" WorkingDirectory)" "$host")
  mkdir -p "$RUN/state/$host/$(unit_setting "$file" StateDirectory)" "$WORKDIR"
}

# Starts a command as a session leader inside the host's namespace, cwd $2, output to its log.
# `ip netns exec` and `setsid` both exec (no fork here), so $! is the component's pid.
launch() {
  local host=$1 cwd=$2
  shift 2
  (cd "$cwd" && exec ip netns exec "$(ns_of "$host")" setsid "$@" </dev/null >"$RUN/logs/$host.log" 2>&1) &
  local pid=$! until=$((SECONDS + 5))
  echo "$pid" >"$(pidfile_of "$host")"
  # Until the subshell has exec'd into the namespace, live_pid would take it for a dead component.
  while running "$pid" && [[ $(ip netns identify "$pid" 2>/dev/null) != "$(ns_of "$host")" ]] && ((SECONDS < until)); do sleep 0.02; done
}

start_redis() {
  live_pid redis >/dev/null && return 0
  # The guide's Redis: AOF on, no RDB snapshots, a password, bound to its host's address only.
  # The password is in a 0600 file, not on a command line.
  (
    umask 077
    cat >"$RUN/redis/redis.conf" <<EOF
bind $(addr_of redis)
port ${PORT[redis]}
dir $RUN/redis
appendonly yes
appendfsync everysec
save ""
daemonize no
requirepass $(cat "$RUN/redis/password")
EOF
  )
  launch redis "$RUN" redis-server "$RUN/redis/redis.conf"
}

start_calcmesh() {
  local host=$1
  live_pid "$host" >/dev/null && return 0
  unit_env "$host"
  unit_exec "$host"
  launch "$host" "$WORKDIR" env -i "${ENV[@]}" "${EXEC[@]}"
}

# Ready, as the containers' healthcheck sees it: `calcmesh probe` inside the host's namespace
# with the host's unit environment (the gateway's /readyz, a service's grpc.health).
probe_ready() {
  local host=$1
  local -a role=(service "$host")
  [[ $host == gateway ]] && role=(gateway)
  unit_env "$host"
  unit_exec "$host"
  ip netns exec "$(ns_of "$host")" env -i "${ENV[@]}" "${EXEC[0]}" "$ROOT/bin/calcmesh.js" probe "${role[@]}" --quiet --timeout-ms 1000 2>/dev/null
}

# Can `host`'s port be reached from the gateway's namespace (across the bridge)?
reachable() {
  local host=$1
  ip netns exec "$(ns_of gateway)" timeout 1 bash -c "exec 3<>/dev/tcp/$(addr_of "$host")/${PORT[$host]}" 2>/dev/null
}

wait_until_reachable() {
  local until=$((SECONDS + START_TIMEOUT_S)) host
  local -a hosts=("$@") pending
  while :; do
    pending=()
    for host in "${hosts[@]}"; do
      if ! live_pid "$host" >/dev/null; then
        tail -n 20 "$RUN/logs/$host.log" >&2 || true
        die "$host exited while starting (log: $RUN/logs/$host.log); run '$0 down' to clean up"
      fi
      if [[ $host == redis ]]; then reachable "$host" || pending+=("$host"); else probe_ready "$host" || pending+=("$host"); fi
    done
    ((${#pending[@]} == 0)) && return 0
    ((SECONDS < until)) || die "not reachable after ${START_TIMEOUT_S}s: ${pending[*]} (logs under $RUN/logs)"
    hosts=("${pending[@]}")
    sleep 0.2
  done
}

cmd_up() {
  check_tools
  [[ -f $ROOT/dist/cli/main.js ]] || die "$ROOT/dist is missing: run 'npm run build' first"
  command -v redis-server >/dev/null || die "redis-server is not on PATH: apt-get install redis-server"
  if [[ -e $RUN && ! -e $RUN/$MARKER ]]; then die "$RUN exists and is not a netns-cluster run dir; set CALC_NETNS_RUN"; fi
  mkdir -p "$RUN"/{pids,logs,redis,state}
  touch "$RUN/$MARKER"
  [[ -s $RUN/redis/password ]] || (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$RUN/redis/password")

  network_up
  start_redis
  wait_until_reachable redis
  render_env_file
  local host
  for host in add subtract multiply divide evaluate; do start_calcmesh "$host"; done
  wait_until_reachable "${SERVICES[@]}"
  start_calcmesh gateway
  wait_until_reachable gateway
  say "up: gateway http://$(addr_of gateway):${PORT[gateway]} (bridge $BRIDGE $SUBNET.1/24, run dir $RUN)"
}

# SIGTERM, in the order that lets each one finish cleanly (callers before the services they call,
# Redis last, so that services can still acknowledge what they finish), SIGKILL after 5 s; then
# anything else still inside the namespaces.
stop_components() {
  local group host pid until
  local -a pids
  for group in gateway evaluate "add subtract multiply divide" redis; do
    pids=()
    for host in $group; do
      if pid=$(live_pid "$host"); then
        kill -TERM -- "-$pid" 2>/dev/null || true
        pids+=("$pid")
      fi
    done
    until=$((SECONDS + 5))
    for pid in "${pids[@]}"; do
      while running "$pid" && ((SECONDS < until)); do sleep 0.05; done
      kill -KILL -- "-$pid" 2>/dev/null || true
    done
  done
  local ns left
  for host in "${HOSTS[@]}"; do
    ns=$(ns_of "$host")
    ns_exists "$ns" || continue
    until=$((SECONDS + 5))
    while left=$(ip netns pids "$ns" 2>/dev/null) && [[ -n $left ]]; do
      ((SECONDS < until)) || die "processes still running in $ns: $(echo $left)"
      # shellcheck disable=SC2086 # one pid per word
      kill -KILL $left 2>/dev/null || true
      sleep 0.1
    done
  done
}

cmd_down() {
  check_tools
  stop_components
  local host ns veth
  for host in "${HOSTS[@]}"; do
    ns=$(ns_of "$host") veth=$(veth_of "$host")
    ! ns_exists "$ns" || ip netns del "$ns"
    # Deleting the namespace deletes the veth pair; a half-made one may be left in the root.
    ! link_exists "$veth" || ip link del "$veth" 2>/dev/null || true
  done
  ! link_exists "$BRIDGE" || ip link del "$BRIDGE"
  if [[ -e $RUN/$MARKER ]]; then
    rm -rf -- "$RUN"
  elif [[ -e $RUN ]]; then
    say "left $RUN in place: it is not a netns-cluster run dir"
  fi
  say "down: prefix $PREFIX"
}

cmd_status() {
  check_tools
  local host ns state pid
  printf '%-9s %-18s %-20s %-8s %s\n' host namespace address pid state
  for host in "${HOSTS[@]}"; do
    ns=$(ns_of "$host") pid=- state=absent
    if ns_exists "$ns"; then
      state=stopped
      if pid=$(live_pid "$host"); then state=running; else pid=-; fi
      if [[ $(ip -n "$ns" -o link show dev eth0 2>/dev/null) != *"state UP"* ]]; then state+=", link down"; fi
      if tc -n "$ns" qdisc show dev eth0 2>/dev/null | grep -Eq 'netem|blackhole'; then state+=", cut (packets dropped)"; fi
    fi
    printf '%-9s %-18s %-20s %-8s %s\n' "$host" "$ns" "$(addr_of "$host"):${PORT[$host]}" "$pid" "$state"
  done
  if ns_exists "$(ns_of gateway)" && command -v curl >/dev/null; then
    echo
    curl -sS -m 2 "http://$(addr_of gateway):${PORT[gateway]}/readyz" || true
    echo
  fi
}

# A partition. `loss` (the default) drops every packet both ways at both ends of the host's veth
# while every interface stays up: peers see silence, a hung peer, as behind a broken switch or a
# dropping firewall. `link` sets the host's own interface down: the others see the same silence
# (the bridge stops forwarding to it), but the host itself knows at once, unlike in a partition.
cmd_cut() {
  check_tools
  local host=${1:?usage: cut <host> [loss|link]} method=${2:-loss}
  is_host "$host" || die "unknown host '$host' (one of: ${HOSTS[*]})"
  local ns veth
  ns=$(ns_of "$host") veth=$(veth_of "$host")
  ns_exists "$ns" || die "$ns does not exist; run '$0 up' first"
  case $method in
    loss)
      # netem where the kernel has it; else the blackhole qdisc, which drops every packet the same way.
      local qdisc=(netem loss 100%)
      tc qdisc replace dev "$veth" root "${qdisc[@]}" 2>/dev/null || qdisc=(blackhole)
      tc qdisc replace dev "$veth" root "${qdisc[@]}"
      tc -n "$ns" qdisc replace dev eth0 root "${qdisc[@]}"
      method+=" (${qdisc[0]})"
      ;;
    link) ip -n "$ns" link set eth0 down ;;
    *) die "unknown partition method '$method' (loss or link)" ;;
  esac
  say "cut: $host ($method)"
}

cmd_heal() {
  check_tools
  local host=${1:?usage: heal <host>}
  is_host "$host" || die "unknown host '$host' (one of: ${HOSTS[*]})"
  local ns veth
  ns=$(ns_of "$host") veth=$(veth_of "$host")
  ns_exists "$ns" || die "$ns does not exist; run '$0 up' first"
  tc qdisc del dev "$veth" root 2>/dev/null || true
  tc -n "$ns" qdisc del dev eth0 root 2>/dev/null || true
  ip -n "$ns" link set eth0 up
  say "healed: $host"
}

check_settings
case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  cut) shift && cmd_cut "$@" ;;
  heal) shift && cmd_heal "$@" ;;
  *) die "usage: $0 up | down | status | cut <host> [loss|link] | heal <host>" ;;
esac
