# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this
# Sourced by scripts/build-image and scripts/test-image: the podman command for this host, with
# the workarounds some hosts need (docs/operations.md, "Container image"). Sets:
#   podman_args  podman's global options: ([--runtime runc] $PODMAN_OPTS)
#   podman       the command: ($SUDO podman "${podman_args[@]}")
#   limit_opts   options for `podman build` and `podman run` (--ulimit ..., or nothing)
# Needs SUDO set ("" as root, "sudo" otherwise).

podman_args=()
limit_opts=()

# crun (Debian 12's default runtime, 1.8) refuses every container on a host whose cgroups are in
# "hybrid" mode with a controller on the cgroup v2 hierarchy ("cgroups in hybrid mode not
# supported, drop all controllers from cgroupv2"); runc runs them.
if [[ " ${PODMAN_OPTS:-} " != *" --runtime "* ]] && [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ] \
   && [ "$($SUDO podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null)" = crun ]; then
  if command -v runc >/dev/null || [ -x /usr/sbin/runc ]; then
    echo "podman: cgroups v1/v2 hybrid with controllers on v2 ($(cat /sys/fs/cgroup/unified/cgroup.controllers)):" \
         "using --runtime runc (crun refuses this layout)" >&2
    podman_args+=(--runtime runc)
  else
    echo "podman: cgroups v1/v2 hybrid with controllers on v2: crun cannot run containers here;" \
         "install runc (scripts/install-deps --image)" >&2
    exit 1
  fi
fi
# shellcheck disable=SC2206  # word splitting of the option string is intended
podman_args+=(${PODMAN_OPTS:-})
# shellcheck disable=SC2206  # SUDO is "" or "sudo"
podman=($SUDO podman "${podman_args[@]}")

# Without CAP_SYS_RESOURCE (some sandboxes withhold it even from root) the runtime cannot raise a
# container's open-files and processes limits to podman's defaults (1048576); keep the host's.
# shellcheck disable=SC2016  # an awk program
cap_eff=$($SUDO awk '/^CapEff:/ { print $2 }' /proc/self/status)
if (( (16#$cap_eff >> 24 & 1) == 0 )); then
  nofile=$($SUDO sh -c 'ulimit -Hn')
  nproc=$($SUDO bash -c 'ulimit -Hu')
  # podman lowers its own process limit to 32768 (this host's pid_max) before it starts the
  # runtime, which then cannot give the container more.
  pid_max=$(cat /proc/sys/kernel/pid_max)
  if [ "$pid_max" -gt 32768 ]; then pid_max=32768; fi
  if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; then nproc=$pid_max; fi
  if [ "$nofile" = unlimited ]; then nofile=1048576; fi
  echo "podman: no CAP_SYS_RESOURCE: containers get the host's limits" \
       "(--ulimit nofile=$nofile:$nofile --ulimit nproc=$nproc:$nproc)" >&2
  limit_opts=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
fi
