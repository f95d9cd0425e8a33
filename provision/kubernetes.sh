#!/usr/bin/env bash
# kubeadm, kubelet and kubectl installed with apt from the VM's local repository (provision/aptrepo.sh
# builds it from the bundle: no package repository serves 1.15 any more), exactly as sections 1-2
# of the lab do, and the kubelet's per-node flags. kubeadm init is cluster.init's job, from the laptop.
set -euo pipefail
if ! declare -F labkit_init >/dev/null; then
  # shellcheck source=provision/lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
labkit_init kubernetes

KUBELET_RESOLV=/etc/labkit/resolv.conf # written by provision/base.sh

# The host-only address must belong to an interface: its name differs between boxes (enp0s8 on
# ubuntu/xenial64, eth1 on others), so we look it up by the address, never by the name.
iface=$(ip -o -4 addr show | awk -v ip="$LABKIT_NODE_IP" '{ split($4, a, "/"); if (a[1] == ip) { print $2; exit } }')
[[ -n $iface ]] || die "no interface on this VM has the node address $LABKIT_NODE_IP" \
  "check nodes[].ip in settings and the VM's private network, then invoke vm.halt and invoke vm.up"
say "node address $LABKIT_NODE_IP is on $iface"
[[ -f $KUBELET_RESOLV ]] || die "$KUBELET_RESOLV is missing (provision/base.sh writes it)" \
  "run the base step first: invoke vm.provision --step base"
# The packages come from the local repository provision/aptrepo.sh builds (see sections 1-2 below).
read -r _ _ apt_uri suite _ <"$labkit_files/kubernetes.list"
[[ -f ${apt_uri#file:}/dists/$suite/Release ]] || die "the local package repository ${apt_uri#file:} is missing" \
  "build it first: invoke vm.provision --step aptrepo"

need_cgroup_v1 "the kubelet ${LABKIT_K8S_VERSION}" # 1.15 predates cgroup v2 support (kubelet 1.25: GA)

# --- the kubelet's per-node flags, in place before the package starts it ----------------------
# --node-ip: without it the kubelet reports the NAT address (10.0.2.15 on every VirtualBox VM),
# and kubectl logs/exec break. --resolv-conf: see provision/base.sh.
units_changed=0
args="KUBELET_EXTRA_ARGS=--node-ip=$LABKIT_NODE_IP --resolv-conf=$KUBELET_RESOLV"
install_file /dev/stdin /etc/default/kubelet 644 <<<"$args" && units_changed=1
install_file "$labkit_files/crictl.yaml" /etc/crictl.yaml 644 || true
# A unit the kit wrote before Kubernetes came as packages would hide the package's own.
if [[ -f /etc/systemd/system/kubelet.service ]] && ! dpkg -S /etc/systemd/system/kubelet.service >/dev/null 2>&1; then
  rm -f /etc/systemd/system/kubelet.service
  units_changed=1
  say "removed /etc/systemd/system/kubelet.service (the kubelet package's unit replaces it)"
fi

# --- sections 1 and 2 of the lab, as a student types them (one way in) -----------------------
# 1: the local package source (the repository provision/aptrepo.sh built from the bundle);
# 2: apt-get install of the three packages at the pinned version, which pulls kubernetes-cni,
#    cri-tools and the kubelet's unit and kubeadm's drop-in with them.
install_file "$labkit_files/kubernetes.list" /etc/apt/sources.list.d/kubernetes.list 644 || true

# local_packages ARGS...: apt-get reading only that source (the box's others are unreachable offline),
# once the box's own package jobs let go of the lock (after a reboot apt-daily runs again).
local_packages() {
  local empty rc=0
  dpkg_wait_idle
  empty=$(mktemp -d)
  DEBIAN_FRONTEND=noninteractive apt-get -q -o Dir::Etc::SourceList=/etc/apt/sources.list.d/kubernetes.list \
    -o Dir::Etc::SourceParts="$empty" -o APT::Get::List-Cleanup=0 "$@" >>/tmp/labkit-apt.log 2>&1 || rc=$?
  rmdir "$empty"
  return "$rc"
}
version=${LABKIT_K8S_VERSION#v}-00
want=(kubeadm="$version" kubectl="$version" kubelet="$version")
have=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}=${Version}\n' kubeadm kubectl kubelet 2>/dev/null | awk '$1 == "ii" { print $2 }' | sort | xargs || true)
if [[ $have == "${want[*]}" ]]; then
  skip "kubeadm kubectl kubelet" "already $version"
else
  : >/tmp/labkit-apt.log
  local_packages update || { tail -n 20 /tmp/labkit-apt.log >&2
    die "the local package repository cannot be read (log above)" "rebuild it: invoke vm.provision --step aptrepo"; }
  local_packages install -y --allow-downgrades -o Dpkg::Options::=--force-confold "${want[@]}" || {
    tail -n 20 /tmp/labkit-apt.log >&2
    die "${want[*]} could not be installed from the local package repository (log above, full log /tmp/labkit-apt.log)" \
      "rebuild the repository (invoke vm.provision --step aptrepo), then invoke vm.provision"; }
  say "installed ${want[*]} from the local package repository"
fi
if [[ $units_changed -eq 1 ]]; then
  systemctl daemon-reload
  say "reloaded systemd units"
fi
ensure_enabled kubelet
# Before kubeadm init the kubelet has no configuration and restarts every 10 s, as designed.
if [[ $units_changed -eq 1 && -f /var/lib/kubelet/config.yaml ]] && systemctl is-active --quiet kubelet; then
  systemctl restart kubelet
  say "restarted the kubelet (its unit or flags changed)"
fi
