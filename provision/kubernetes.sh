#!/usr/bin/env bash
# kubeadm, kubelet and kubectl from the bundle's release tarball (no package repository serves
# 1.15 any more), the kubelet's systemd unit and kubeadm drop-in, the CNI plugins and crictl, and
# the kubelet's per-node flags. kubeadm init itself is cluster.init's job, run from the laptop.
set -euo pipefail
if ! declare -F labkit_init >/dev/null; then
  # shellcheck source=provision/lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
labkit_init kubernetes

KUBELET_RESOLV=/etc/labkit/resolv.conf # written by provision/base.sh
STAMPS=/var/lib/labkit/installed        # which artifact (by hash) a directory was filled from
CNI_DIR=/opt/cni/bin

# Everything this step installs is checked first.
bundle_verify_one "Kubernetes node binaries" 'k8s/kubernetes-node-linux-*.tar.gz'
node_tarball=${BUNDLE_FILES[0]}
bundle_verify_one "CNI plugins" 'cni/cni-plugins-*.tgz'
cni_tarball=${BUNDLE_FILES[0]}
bundle_verify_one "crictl" 'k8s/crictl-*.tar.gz'
crictl_tarball=${BUNDLE_FILES[0]}

# The host-only address must belong to an interface: its name differs between boxes (enp0s8 on
# ubuntu/xenial64, eth1 on others), so we look it up by the address, never by the name.
iface=$(ip -o -4 addr show | awk -v ip="$LABKIT_NODE_IP" '{ split($4, a, "/"); if (a[1] == ip) { print $2; exit } }')
[[ -n $iface ]] || die "no interface on this VM has the node address $LABKIT_NODE_IP" \
  "check nodes[].ip in settings and the VM's private network, then invoke vm.reload or vm.up"
say "node address $LABKIT_NODE_IP is on $iface"
[[ -f $KUBELET_RESOLV ]] || die "$KUBELET_RESOLV is missing (provision/base.sh writes it)" \
  "run the base step first: invoke vm.provision --step base"

# --- kubeadm, kubelet, kubectl: the release's own binaries, at the pinned version ------------
binary_version() {
  case $1 in
    kubeadm) "$2" version -o short 2>/dev/null ;;
    kubelet) "$2" --version 2>/dev/null | awk '{ print $2 }' ;;
    kubectl) "$2" version --client --short 2>/dev/null | awk '{ print $3 }' ;;
  esac
}
outdated=()
for bin in kubeadm kubelet kubectl; do
  [[ $(binary_version "$bin" "/usr/bin/$bin") == "$LABKIT_K8S_VERSION" ]] || outdated+=("$bin")
done
if [[ ${#outdated[@]} -eq 0 ]]; then
  skip "kubeadm kubelet kubectl" "already $LABKIT_K8S_VERSION"
else
  work=$(mktemp -d)
  tar -xzf "$node_tarball" -C "$work" "${outdated[@]/#/kubernetes/node/bin/}"
  for bin in "${outdated[@]}"; do
    got=$(binary_version "$bin" "$work/kubernetes/node/bin/$bin")
    [[ $got == "$LABKIT_K8S_VERSION" ]] || die "the bundle's $bin is ${got:-unreadable}, settings want $LABKIT_K8S_VERSION" \
      "make versions.kubernetes and the lock's kubernetes-node tarball agree, then invoke vm.provision"
    install -m 0755 "$work/kubernetes/node/bin/$bin" "/usr/bin/$bin"
  done
  rm -rf "$work"
  say "installed ${outdated[*]} $LABKIT_K8S_VERSION into /usr/bin"
fi

# --- CNI plugins and crictl: stamped with the artifact hash they came from --------------------
# extract_stamped TARBALL DIR CHECK_FILE: unpack TARBALL into DIR unless DIR already holds it.
extract_stamped() {
  local tarball=$1 dir=$2 check=$3 name=${BUNDLE_NAME[$1]} stamp
  stamp="$STAMPS/$name"
  if [[ -x $dir/$check && -f $stamp && $(cat "$stamp") == "${BUNDLE_HEX[$tarball]}" ]]; then
    skip "$name" "already unpacked into $dir"
    return
  fi
  mkdir -p "$dir" "$STAMPS"
  tar -xzf "$tarball" -C "$dir" --no-same-owner
  [[ -x $dir/$check ]] || die "the bundle's $name has no $check" "$(fetch_fix "$name")"
  put_file "$stamp" 644 <<<"${BUNDLE_HEX[$tarball]}" || true
  say "unpacked $name into $dir"
}
extract_stamped "$cni_tarball" "$CNI_DIR" loopback
[[ -x $CNI_DIR/portmap ]] || die "the CNI plugins lack portmap (Weave Net's CNI config needs it)" "$(fetch_fix "${BUNDLE_NAME[$cni_tarball]}")"
extract_stamped "$crictl_tarball" /usr/local/bin crictl
install_file "$labkit_files/crictl.yaml" /etc/crictl.yaml 644 || true

# --- the kubelet: unit, kubeadm drop-in, per-node flags --------------------------------------
units_changed=0
install_file "$labkit_files/kubelet.service" /etc/systemd/system/kubelet.service 644 && units_changed=1
install_file "$labkit_files/10-kubeadm.conf" /etc/systemd/system/kubelet.service.d/10-kubeadm.conf 644 && units_changed=1
# --node-ip: without it the kubelet reports the NAT address (10.0.2.15 on every VirtualBox VM),
# and kubectl logs/exec break. --resolv-conf: see provision/base.sh.
args="KUBELET_EXTRA_ARGS=--node-ip=$LABKIT_NODE_IP --resolv-conf=$KUBELET_RESOLV"
install_file /dev/stdin /etc/default/kubelet 644 <<<"$args" && units_changed=1
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
