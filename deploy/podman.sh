#!/usr/bin/env bash
# podman, set up for hosts like the one wsandbox is developed on (cgroups
# v1 with a v2 hierarchy, no systemd; Debian's podman 4.3): runc as the
# runtime, cgroupfs, events in a file, and ulimits a container may have
# (crun's default tries to raise RLIMIT_NOFILE and fails). A
# CONTAINERS_CONF of the caller's is used as is.
#
# Usage: deploy/podman.sh PODMAN-ARGS...
set -euo pipefail
if [ -z "${CONTAINERS_CONF:-}" ]; then
    conf="${TMPDIR:-/tmp}/wsandbox-containers-$(id -u).conf"
    hard=$(ulimit -Hn)
    cat > "$conf" <<CONF
[containers]
default_ulimits = ["nofile=$hard:$hard", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
    export CONTAINERS_CONF="$conf"
fi
exec podman "$@"
