#!/usr/bin/env bash
# The node prerequisites kubeadm 1.15 checks or silently depends on: the kubelet's helper packages,
# no swap, bridged traffic visible to iptables, IP forwarding, the node name resolving to its
# host-only address, and a resolver list without loopback servers (CoreDNS would loop).
set -euo pipefail
if ! declare -F labkit_init >/dev/null; then
  # shellcheck source=provision/lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
labkit_init base

KUBELET_RESOLV=/etc/labkit/resolv.conf
MODULES_FILE=/etc/modules-load.d/labkit-kubernetes.conf
SYSCTL_FILE=/etc/sysctl.d/90-labkit-kubernetes.conf

# Everything this step installs is checked first.
bundle_verify "base packages" "${ARCH_DIR}debs/base/*.deb"
base_debs=("${BUNDLE_FILES[@]}")

# socat, conntrack, ebtables, ethtool: kubelet's package dependencies (port-forward, kube-proxy).
deb_install "base packages" "${base_debs[@]}"

# --- swap: the kubelet 1.15 refuses to start with swap on ------------------------------------
if awk 'NR > 1 { found = 1 } END { exit !found }' /proc/swaps; then
  swapoff -a
  say "turned swap off"
else
  skip "swapoff" "no swap in use"
fi
if put_file /etc/fstab 644 < <(awk '!/^[[:space:]]*#/ && $3 == "swap" { print "# labkit: kubelet refuses swap: " $0; next } { print }' /etc/fstab); then
  say "commented out the swap entries in /etc/fstab (swap stays off after a reboot)"
else
  skip "/etc/fstab" "no active swap entry"
fi

# --- kernel: bridged pod traffic must pass iptables (kube-proxy), and the node must forward ----
if put_file "$MODULES_FILE" 644 <<<"br_netfilter"; then say "wrote $MODULES_FILE (br_netfilter at boot)"; else skip "$MODULES_FILE" "already up to date"; fi
if [[ -d /sys/module/br_netfilter ]]; then
  skip "modprobe br_netfilter" "already loaded"
else
  modprobe br_netfilter
  say "loaded br_netfilter"
fi
sysctls=(net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1 net.ipv4.ip_forward=1)
if put_file "$SYSCTL_FILE" 644 < <(printf '%s\n' "${sysctls[@]}"); then say "wrote $SYSCTL_FILE"; else skip "$SYSCTL_FILE" "already up to date"; fi
stale=()
for kv in "${sysctls[@]}"; do
  [[ $(sysctl -n "${kv%%=*}") == "${kv#*=}" ]] || stale+=("$kv")
done
if [[ ${#stale[@]} -gt 0 ]]; then
  sysctl -q -p "$SYSCTL_FILE"
  say "applied ${stale[*]}"
else
  skip "sysctl" "${sysctls[*]} already set"
fi

# --- newer guests (Ubuntu 20.04 on arm64, docs/apple-silicon.md): the iptables backend -----------
# iptables: kube-proxy 1.15 and Weave write rules with the legacy iptables in their images; a host whose
# iptables is the nftables backend (Ubuntu 20.10+, Debian 10+) keeps a second, separate rule set they
# never see. Use the legacy binaries, as kubeadm's docs of that time said.
if iptables --version 2>/dev/null | grep -q nf_tables; then
  for tool in iptables ip6tables arptables ebtables; do
    legacy=$(command -v "$tool-legacy" || true)
    [[ -n $legacy ]] && update-alternatives --set "$tool" "$legacy" >/dev/null
  done
  say "applied the legacy iptables backend (kube-proxy 1.15 and Weave write legacy rules)"
else
  skip "iptables backend" "$(iptables --version 2>/dev/null || echo 'no iptables')"
fi

# --- names: kubeadm advertises whatever the node name resolves to ------------------------------
if put_file /etc/hosts 644 < <(hosts_filter "$LABKIT_NODE_NAME" "$LABKIT_NODE_IP" </etc/hosts); then
  say "/etc/hosts: $LABKIT_NODE_NAME -> $LABKIT_NODE_IP (and no longer a loopback address)"
else
  skip "/etc/hosts" "$LABKIT_NODE_NAME already resolves to $LABKIT_NODE_IP"
fi
resolved=$(getent hosts "$LABKIT_NODE_NAME" | awk '{ print $1; exit }')
[[ $resolved == "$LABKIT_NODE_IP" ]] || die "$LABKIT_NODE_NAME resolves to '$resolved', not $LABKIT_NODE_IP, even after fixing /etc/hosts" \
  "check /etc/nsswitch.conf on the node (hosts: files first), then invoke vm.provision --step base"

# --- machine-id: each VM its own ------------------------------------------------------------------
# A box that ships a filled /etc/machine-id gives every VM made from it the same one, and Weave Net derives
# its peer name from the machine's identity (two nodes, one peer name: "peer names collision"). A box that
# ships it empty gets a new one at first boot; from inside the two cannot be told apart, so each VM gets a
# new one once, before it is part of a cluster (a stamp records which). A node already in a cluster keeps
# its own: cluster.join checks that no two nodes share one (labkit/cluster/nodeset.py).
MACHINE_ID_STAMP=/var/lib/labkit/machine-id
if [[ -s $MACHINE_ID_STAMP && $(cat "$MACHINE_ID_STAMP") == "$(cat /etc/machine-id 2>/dev/null)" ]]; then
  skip "machine-id" "this VM's own already"
elif [[ -e /etc/kubernetes/kubelet.conf || -e /etc/kubernetes/admin.conf ]]; then
  skip "machine-id" "the node is in a cluster: kept (cluster.join checks that no two nodes share one)"
else
  rm -f /etc/machine-id
  systemd-machine-id-setup >/dev/null 2>&1 || die "systemd-machine-id-setup could not make a machine-id" \
    "check the VM's systemd (journalctl -b), then invoke vm.provision --step base"
  if [[ -f /var/lib/dbus/machine-id && ! -L /var/lib/dbus/machine-id ]]; then
    ln -sf /etc/machine-id /var/lib/dbus/machine-id  # D-Bus's copy, where the box has one of its own
  fi
  mkdir -p "${MACHINE_ID_STAMP%/*}"
  cp /etc/machine-id "$MACHINE_ID_STAMP"
  say "gave this VM its own machine-id (a box's may be shared by every VM made from it)"
fi

# --- a default route: Service IPs (10.96.0.1, the API for weave-net) need one -------------------
# The kernel routes a connection before kube-proxy's DNAT rewrites its address, so a node without
# any default route (vm.libvirt_management_network: none) cannot reach a Service at all. A dummy
# interface with a last-resort default route fixes that and reaches nothing: dummy drops packets.
other_default=$(ip -4 route show default | grep -v ' dev labkit0 ' || true)
if [[ -n $other_default ]]; then
  skip "default route" "the node has one: ${other_default%% proto *}"
else
  [[ -d /sys/module/dummy ]] || modprobe -q dummy ||
    die "the node has no default route and its kernel has no dummy network module to give it one" \
      "set vm.libvirt_management_network to nat (the guest then gets its default route from DHCP), then invoke vm.up"
  if install_file "$labkit_files/labkit-default-route.service" /etc/systemd/system/labkit-default-route.service 644; then
    systemctl daemon-reload
  fi
  ensure_enabled labkit-default-route
  if ip -4 route show default | grep -q ' dev labkit0 '; then
    skip "start labkit-default-route" "default route via labkit0 already there"
  else
    systemctl restart labkit-default-route
    say "added a last-resort default route via the dummy interface labkit0 (the node has no other)"
  fi
fi

# --- the kubelet's resolver list (passed as --resolv-conf by provision/kubernetes.sh) ----------
resolv=$(kubelet_resolv "$(ip -4 -o addr show | awk '{ print $4 }')" /etc/resolv.conf /run/systemd/resolve/resolv.conf) ||
  die "the node has no DNS server other than a loopback one (CoreDNS would detect a loop)" \
    "give the VM's NAT network a DNS server (VirtualBox's NAT does: 10.0.2.3), then invoke vm.provision --step base"
if grep -q 'VirtualBox NAT resolver' <<<"$resolv"; then
  say "the node's only DNS servers are loopback ones (VirtualBox 7.2's NAT does this): the kubelet uses VirtualBox's NAT resolver 10.0.2.3"
fi
if put_file "$KUBELET_RESOLV" 644 <<<"$resolv"; then
  say "wrote $KUBELET_RESOLV: $(grep -c '^nameserver' <<<"$resolv") non-loopback nameserver(s)"
else
  skip "$KUBELET_RESOLV" "already up to date"
fi
