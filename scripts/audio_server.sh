#!/usr/bin/env bash
# Start or stop a loopback audio server on a machine without a sound card, for the audio tests
# and for running the chirp emitter without hardware.
#
#   audio_server.sh start pulse [--rate HZ] [--dir DIR]
#   audio_server.sh start jack  [--rate HZ] [--period FRAMES] [--dir DIR]
#   audio_server.sh stop  pulse|jack [--dir DIR]
#   audio_server.sh status pulse|jack [--dir DIR]
#
# pulse: a private PulseAudio daemon with one null sink ("avs_loop") at --rate (default 44100;
#   a stream whose rate differs from the sink's aborts after 1-2 s) whose monitor is the default
#   source, so what is played is what is recorded. It has only the unix-socket protocol (no
#   TCP), anonymous auth, and no idle exit or suspend.
# jack: jackd with the dummy driver (no hardware, no realtime privileges), 2 in / 2 out, period
#   --period (default 256 frames; a self-wired loopback lags exactly one period).
#
# State (pid file, sockets, logs) lives in --dir (default $AUDIO_SERVER_DIR or
# /tmp/avs_audio_$UID), so several servers can run side by side. "start" is idempotent: if the
# server of that dir is already up it prints the same lines again. It prints shell lines for the
# client's environment, e.g.
#   AUDIO_SERVER_PID=1234
#   export XDG_RUNTIME_DIR='/tmp/avs_audio_0/pulse-runtime'
#   export PULSE_LATENCY_MSEC=100
# so `eval "$(scripts/audio_server.sh start pulse)"` sets up the current shell. "stop" stops only
# the process recorded in the dir's pid file (checking it is the expected program) and waits for
# it to exit.
set -euo pipefail

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 2 ] || usage
ACTION=$1; KIND=$2; shift 2
RATE=44100; PERIOD=256; DIR=${AUDIO_SERVER_DIR:-/tmp/avs_audio_$(id -u)}
while [ $# -gt 0 ]; do
  case $1 in
    --rate) RATE=$2; shift 2 ;;
    --period) PERIOD=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    *) echo "audio_server.sh: unknown option $1" >&2; usage ;;
  esac
done
case $KIND in pulse|jack) ;; *) echo "audio_server.sh: kind must be pulse or jack" >&2; usage ;; esac
case $ACTION in start|stop|status) ;; *) usage ;; esac

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
PIDFILE=$DIR/$KIND.pid
PROG=$([ "$KIND" = pulse ] && echo pulseaudio || echo jackd)
# One JACK server name per state dir, so parallel test runs do not meet.
JACK_NAME=avs_$(printf '%s' "$DIR" | cksum | cut -d' ' -f1)
PULSE_RUNTIME=$DIR/pulse-runtime

# PID from the pid file if that process is alive and is the expected program, else empty.
running_pid() {
  [ -f "$PIDFILE" ] || return 0
  local pid; pid=$(cat "$PIDFILE")
  if [ -n "$pid" ] && alive "$pid" && [ "$(cat "/proc/$pid/comm")" = "$PROG" ]; then
    echo "$pid"
  fi
}

print_env() {
  echo "AUDIO_SERVER_PID=$1"
  if [ "$KIND" = pulse ]; then
    echo "export XDG_RUNTIME_DIR='$PULSE_RUNTIME'"
    echo "export PULSE_SERVER='unix:$PULSE_RUNTIME/pulse/native'"
    echo "export PULSE_SINK='avs_loop'"
    echo "export PULSE_SOURCE='avs_loop.monitor'"
    # 100 ms client buffers: with PulseAudio's small default buffers a loaded machine makes
    # the server stretch and slip the stream by a few percent. Never set this low (10 ms made
    # a duplex stream hang forever).
    echo "export PULSE_LATENCY_MSEC=100"
  else
    echo "export JACK_DEFAULT_SERVER='$JACK_NAME'"
    echo "export JACK_NO_AUDIO_RESERVATION=1"
    echo "export JACK_NO_START_SERVER=1"
  fi
}

# Alive and not a zombie (an exited child nobody has reaped yet counts as gone).
alive() {
  [ -r "/proc/$1/stat" ] || return 1
  local state; state=$(sed 's/^.*) //' "/proc/$1/stat" | cut -d' ' -f1)
  [ "$state" != Z ] && [ "$state" != X ]
}

wait_gone() {
  for _ in $(seq 100); do alive "$1" || return 0; sleep 0.05; done
  return 1
}

live_jackd() {
  ps -eo stat=,comm= | awk '$2 == "jackd" && $1 !~ /^[ZX]/ {found=1} END {exit !found}'
}

start_pulse() {
  mkdir -p "$PULSE_RUNTIME" "$DIR/home" && chmod 700 "$PULSE_RUNTIME"
  # HOME and XDG_RUNTIME_DIR private to this dir: cookie, sockets and pid file stay inside.
  HOME=$DIR/home XDG_RUNTIME_DIR=$PULSE_RUNTIME pulseaudio --daemonize=yes -n \
    --exit-idle-time=-1 --use-pid-file=yes --disable-shm=no \
    --load="module-native-protocol-unix auth-anonymous=1" \
    --load="module-null-sink sink_name=avs_loop rate=$RATE channels=2 format=float32le \
sink_properties=device.description=avs_loop" \
    --log-target=file:"$DIR/pulse.log" 2>>"$DIR/pulse.stderr"
  local pid=''
  for _ in $(seq 100); do
    if [ -s "$PULSE_RUNTIME/pulse/pid" ] && \
       XDG_RUNTIME_DIR=$PULSE_RUNTIME HOME=$DIR/home pactl info >/dev/null 2>&1; then
      pid=$(tr -d ' \n' < "$PULSE_RUNTIME/pulse/pid"); break
    fi
    sleep 0.05
  done
  [ -n "$pid" ] || { echo "audio_server.sh: pulseaudio did not come up (see $DIR/pulse.log)" >&2
                     exit 1; }
  echo "$pid" > "$PIDFILE"
  XDG_RUNTIME_DIR=$PULSE_RUNTIME HOME=$DIR/home pactl set-default-sink avs_loop
  XDG_RUNTIME_DIR=$PULSE_RUNTIME HOME=$DIR/home pactl set-default-source avs_loop.monitor
}

start_jack() {
  JACK_NO_AUDIO_RESERVATION=1 setsid jackd --no-realtime -n "$JACK_NAME" \
    -d dummy -r "$RATE" -p "$PERIOD" -C 2 -P 2 >"$DIR/jack.log" 2>&1 < /dev/null &
  local pid=$!
  echo "$pid" > "$PIDFILE"
  for _ in $(seq 100); do
    if ! alive "$pid"; then
      echo "audio_server.sh: jackd exited at start (see $DIR/jack.log)" >&2; exit 1
    fi
    JACK_DEFAULT_SERVER=$JACK_NAME JACK_NO_START_SERVER=1 jack_lsp >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "audio_server.sh: jackd did not answer in 5 s (see $DIR/jack.log)" >&2
  kill "$pid" 2>/dev/null || true
  exit 1
}

case $ACTION in
  start)
    pid=$(running_pid)
    if [ -z "$pid" ]; then
      rm -f "$PIDFILE"
      if [ "$KIND" = pulse ]; then start_pulse; else start_jack; fi
      pid=$(cat "$PIDFILE")
    fi
    print_env "$pid"
    ;;
  status)
    pid=$(running_pid)
    if [ -n "$pid" ]; then print_env "$pid"; else echo "$KIND: not running" >&2; exit 1; fi
    ;;
  stop)
    pid=$(running_pid)
    if [ -n "$pid" ]; then
      kill -TERM "$pid"
      if ! wait_gone "$pid"; then kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" || true; fi
      echo "stopped $KIND (pid $pid)"
    else
      echo "$KIND: not running"
    fi
    rm -f "$PIDFILE"
    if [ "$KIND" = jack ]; then
      # Semaphores of clients of this server (left behind by clients that crashed).
      rm -f /dev/shm/jack_sem.*_"${JACK_NAME}"_* 2>/dev/null || true
      # jackd leaves its registry behind; remove it only when no jackd at all is left.
      if ! live_jackd; then
        rm -rf /dev/shm/jack-shm-registry "/dev/shm/jack_db-$(id -u)"
      fi
    fi
    ;;
esac
