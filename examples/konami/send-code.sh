#!/usr/bin/env bash
# Sends the Konami code from the stock gobgpd router (gRPC on :50052) to
# edbgpd, then resets the session. Show what the router gets with:
#   gobgp -p 50052 neighbor 127.0.0.1 adj-in
set -euo pipefail
gobgp() { command gobgp -p "${ROUTER_API_PORT:-50052}" "$@"; sleep "${STEP_DELAY:-0.5}"; }
add() { echo "announce 10.0.0.0/8 community 65000:$1"; gobgp global rib add 10.0.0.0/8 community "65000:$1"; }
del() { echo "withdraw 10.0.0.0/8"; gobgp global rib del 10.0.0.0/8; }

add 38; del; add 38         # up up
add 40; del; add 40         # down down
add 37; add 39; add 37; add 39 # left right left right
add 66; add 65              # B A
del
echo "reset the session"
gobgp neighbor 127.0.0.1 reset
