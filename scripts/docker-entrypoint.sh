#!/bin/sh
# The container's entry point. Arguments pass through:
#   docker run veille                          -> veille db upgrade, then veille run
#   docker run veille --log-level debug        -> the same, with `veille run --log-level debug` (any run option)
#   docker run veille hits --client resto      -> veille hits --client resto (any other command, no upgrade)
# `exec` makes veille PID 1, so it receives SIGTERM directly and drains within 8 s (Docker waits 10 s).
set -eu
case "${1:-}" in
  "" | -*)
    veille db upgrade
    exec veille run "$@"
    ;;
  *)
    exec veille "$@"
    ;;
esac
