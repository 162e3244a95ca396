#!/usr/bin/env bash
# Installs what the real-node tier needs from Debian's packages, when missing: the Docker engine that
# builds the images, containerd and runc under the kubelet, the CNI loopback plugin, debootstrap for
# the local base image. Needs root (CI and these machines run as root); elsewhere it says what to install.
set -euo pipefail
need=()
for pair in /usr/sbin/dockerd:docker.io /usr/bin/containerd:containerd /usr/sbin/runc:runc \
            /usr/lib/cni/loopback:containernetworking-plugins /usr/sbin/debootstrap:debootstrap; do
  [ -e "${pair%%:*}" ] || need+=("${pair##*:}")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "tests/node/install.sh: the node tier needs ${need[*]} (apt-get install as root)" >&2
  exit 0
fi
echo "==> installing ${need[*]} from Debian's packages (once per machine)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
