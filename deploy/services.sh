#!/usr/bin/env bash
# All local services at once. Usage: services.sh up|down|status [kafka|postgres|redis|neo4j ...]
# Without names: postgres, redis and kafka (Neo4j is off by default); 'down' also stops Neo4j.
# 'up' is idempotent: healthy services are left alone. 'down' leaves no process behind.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
here=$(dirname "${BASH_SOURCE[0]}")

cmd=${1:-}; shift || true
names=("$@"); [ ${#names[@]} -gt 0 ] || names=(postgres redis kafka)

case "$cmd" in
  up)     for n in "${names[@]}"; do "$here/$n.sh" start; done ;;
  down)   [ $# -gt 0 ] || names+=(neo4j)
          for n in "${names[@]}"; do "$here/$n.sh" stop; done ;;
  status)
    printf '%-10s %-6s %-8s %s\n' SERVICE PORT PID HEALTH
    rc=0; for n in "${names[@]}"; do "$here/$n.sh" status || rc=1; done; exit $rc ;;
  *) die "usage: deploy/services.sh up|down|status [kafka|postgres|redis|neo4j ...]" ;;
esac
