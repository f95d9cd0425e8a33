#!/usr/bin/env bash
# The VM's local Kubernetes apt repository, built from the bundle: apt.kubernetes.io is gone and the
# VM is offline, so the lab's own `apt-get install kubelet kubeadm kubectl` installs from here.
#
#   $APT_DIR/pool/main/*.deb                         kubelet, kubeadm, kubectl (1.15.12-00),
#                                                    kubernetes-cni (0.7.5-00), cri-tools (1.13.0-00),
#                                                    and the bundle's debs/base packages they depend on
#   $APT_DIR/dists/kubernetes-xenial/main/binary-<arch>/Packages(.gz), dists/kubernetes-xenial/Release
#   (<arch>: the guest's, amd64 or arm64; the suite keeps the 2019 name the lab's sources line uses)
#
# The packages carry what the official 2019 ones did (docs/student.md lists the sources): the release
# binaries, /lib/systemd/system/kubelet.service, kubeadm's drop-in as a conffile, the CNI plugins in
# /opt/cni/bin, crictl in /usr/bin; the same Depends; kubelet enabled and started when installed.
# This step only builds the repository; section 1 of the lab adds it as a package source and
# section 2 installs from it (provision/kubernetes.sh does both for `invoke lab`).
set -euo pipefail
if ! declare -F labkit_init >/dev/null; then
  # shellcheck source=provision/lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
labkit_init aptrepo

# Where the repository goes and its suite: from the package source line sections 1 and 2 use.
read -r _ _ APT_URI SUITE _ <"$labkit_files/kubernetes.list"
APT_DIR=${LABKIT_APT_DIR:-${APT_URI#file:}}
FORMAT=1 # bump when the packages' layout below changes: a new format rebuilds the repository
DEB_ARCH=$(dpkg --print-architecture)

# Everything the packages are made of is checked first.
bundle_verify_one "Kubernetes node binaries" "${ARCH_DIR}k8s/kubernetes-node-linux-*.tar.gz"
node_tarball=${BUNDLE_FILES[0]}
bundle_verify_one "CNI plugins" "${ARCH_DIR}cni/cni-plugins-*.tgz"
cni_tarball=${BUNDLE_FILES[0]}
bundle_verify_one "crictl" "${ARCH_DIR}k8s/crictl-*.tar.gz"
crictl_tarball=${BUNDLE_FILES[0]}
bundle_verify "base packages" "${ARCH_DIR}debs/base/*.deb"
base_debs=("${BUNDLE_FILES[@]}")

k8s_version=${LABKIT_K8S_VERSION#v}
cni_version=$(basename "$cni_tarball" | sed -n 's/^cni-plugins-.*v\([0-9.]*\)\.tgz$/\1/p')
crictl_version=$(basename "$crictl_tarball" | sed -n 's/^crictl-v\([0-9.]*\)-linux-.*$/\1/p')
[[ -n $cni_version && -n $crictl_version ]] || die "cannot read the CNI or crictl version from the bundle's file names" \
  "keep the lock's paths (${ARCH_DIR}cni/cni-plugins-$DEB_ARCH-vX.Y.Z.tgz, ${ARCH_DIR}k8s/crictl-vX.Y.Z-linux-$DEB_ARCH.tar.gz), then invoke vm.provision"

# The repository is rebuilt only when what it is made of changed.
stamp=$({
  echo "format $FORMAT $k8s_version"
  for f in "$node_tarball" "$cni_tarball" "$crictl_tarball" "${base_debs[@]}"; do echo "${BUNDLE_HEX[$f]}"; done
  cat "$labkit_files/kubelet.service" "$labkit_files/10-kubeadm.conf"
} | sha256sum | cut -d' ' -f1)
if [[ -f $APT_DIR/.labkit-stamp && $(cat "$APT_DIR/.labkit-stamp") == "$stamp" ]]; then
  skip "local package repository $APT_DIR" "already built from these bundle files"
  exit 0
fi

binary_version() {
  case $1 in
    kubeadm) "$2" version -o short 2>/dev/null ;;
    kubelet) "$2" --version 2>/dev/null | awk '{ print $2 }' ;;
    kubectl) "$2" version --client --short 2>/dev/null | awk '{ print $3 }' ;;
  esac
}

mkdir -p "$(dirname "$APT_DIR")"
work=$(mktemp -d "$(dirname "$APT_DIR")/.labkit-apt.XXXXXX")
cleanup() {
  local rc=$?
  rm -rf "$work"
  labkit_done "$rc"
}
trap cleanup EXIT
mkdir -p "$work/src" "$work/repo/pool/main"
tar -xzf "$node_tarball" -C "$work/src" kubernetes/node/bin/kubeadm kubernetes/node/bin/kubelet kubernetes/node/bin/kubectl
for bin in kubeadm kubelet kubectl; do
  got=$(binary_version "$bin" "$work/src/kubernetes/node/bin/$bin")
  [[ $got == "$LABKIT_K8S_VERSION" ]] || die "the bundle's $bin is ${got:-unreadable}, settings want $LABKIT_K8S_VERSION" \
    "make versions.kubernetes and the lock's kubernetes-node tarball agree, then invoke vm.provision"
done

# deb NAME VERSION DEPENDS DESCRIPTION: build $work/NAME (a root tree, DEBIAN/ added here) into the pool.
deb() {
  local name=$1 version=$2 depends=$3 description=$4 root="$work/$1" size
  mkdir -p "$root/DEBIAN"
  size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
  {
    echo "Package: $name"
    echo "Version: $version"
    echo "Architecture: $DEB_ARCH"
    echo "Maintainer: labkit (repackaged Kubernetes release files) <root@localhost>"
    echo "Installed-Size: $size"
    [[ -z $depends ]] || echo "Depends: $depends"
    echo "Section: misc"
    echo "Priority: optional"
    echo "Homepage: https://kubernetes.io"
    echo "Description: $description"
    echo " Rebuilt offline by labkit from the Kubernetes release files in its bundle (provision/aptrepo.sh)."
  } >"$root/DEBIAN/control"
  chmod -R go-w "$root"
  dpkg-deb -Znone --build "$root" "$work/repo/pool/main/${name}_${version}_$DEB_ARCH.deb" >/dev/null
}

mkdir -p "$work/kubelet/usr/bin" "$work/kubelet/lib/systemd/system" "$work/kubelet/etc/kubernetes/manifests" \
         "$work/kubeadm/usr/bin" "$work/kubeadm/etc/systemd/system/kubelet.service.d" "$work/kubeadm/DEBIAN" \
         "$work/kubectl/usr/bin" "$work/kubernetes-cni/opt/cni/bin" "$work/cri-tools/usr/bin" "$work/kubelet/DEBIAN"
for bin in kubeadm kubelet kubectl; do
  install -m 0755 "$work/src/kubernetes/node/bin/$bin" "$work/$bin/usr/bin/$bin"
done
install -m 0644 "$labkit_files/kubelet.service" "$work/kubelet/lib/systemd/system/kubelet.service"
install -m 0644 "$labkit_files/10-kubeadm.conf" "$work/kubeadm/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
echo /etc/systemd/system/kubelet.service.d/10-kubeadm.conf >"$work/kubeadm/DEBIAN/conffiles"
tar -xzf "$cni_tarball" -C "$work/kubernetes-cni/opt/cni/bin" --no-same-owner
tar -xzf "$crictl_tarball" -C "$work/cri-tools/usr/bin" --no-same-owner crictl
# As the official packages did: the kubelet enabled and started at install (it restarts every 10 s
# until kubeadm init writes its configuration); kubeadm's drop-in takes effect at once.
cat >"$work/kubelet/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  systemctl enable kubelet >/dev/null 2>&1 || true
  systemctl start kubelet >/dev/null 2>&1 || true
fi
EOF
cat >"$work/kubeadm/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
  systemctl restart kubelet >/dev/null 2>&1 || true
fi
EOF
chmod 0755 "$work/kubelet/DEBIAN/postinst" "$work/kubeadm/DEBIAN/postinst"

deb kubernetes-cni "$cni_version-00" "" "Kubernetes CNI"
deb cri-tools "$crictl_version-00" "" "Container Runtime Interface tools (crictl)"
deb kubectl "$k8s_version-00" "" "Kubernetes Command Line Tool"
deb kubelet "$k8s_version-00" \
  "iptables (>= 1.4.21), kubernetes-cni (>= $cni_version), iproute2, socat, util-linux, mount, ebtables, ethtool, conntrack" \
  "Kubernetes Node Agent"
deb kubeadm "$k8s_version-00" \
  "kubelet (>= 1.13.0), kubectl (>= 1.13.0), kubernetes-cni (>= $cni_version), cri-tools (>= $crictl_version)" \
  "Kubernetes Cluster Bootstrapping Tool"
cp "${base_debs[@]}" "$work/repo/pool/main/"

# The index apt reads: each package's control fields plus where it is and its hashes.
index="$work/repo/dists/$SUITE/main/binary-$DEB_ARCH"
mkdir -p "$index"
for f in "$work"/repo/pool/main/*.deb; do
  dpkg-deb --field "$f"
  echo "Filename: pool/main/$(basename "$f")"
  echo "Size: $(stat -c %s "$f")"
  echo "MD5sum: $(md5sum <"$f" | cut -d' ' -f1)"
  echo "SHA256: $(sha256sum <"$f" | cut -d' ' -f1)"
  echo
done >"$index/Packages"
gzip -9n <"$index/Packages" >"$index/Packages.gz"
{
  echo "Origin: labkit"
  echo "Label: labkit local Kubernetes packages"
  echo "Suite: $SUITE"
  echo "Codename: $SUITE"
  echo "Date: $(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S UTC')"
  echo "Architectures: $DEB_ARCH"
  echo "Components: main"
  for algo in MD5Sum SHA256; do
    echo "$algo:"
    for f in "main/binary-$DEB_ARCH/Packages" "main/binary-$DEB_ARCH/Packages.gz"; do
      if [[ $algo == MD5Sum ]]; then sum=$(md5sum <"$work/repo/dists/$SUITE/$f"); else sum=$(sha256sum <"$work/repo/dists/$SUITE/$f"); fi
      printf ' %s %s %s\n' "${sum%% *}" "$(stat -c %s "$work/repo/dists/$SUITE/$f")" "$f"
    done
  done
} >"$work/repo/dists/$SUITE/Release"
echo "$stamp" >"$work/repo/.labkit-stamp"
chmod -R a+rX "$work/repo"

# Swap the finished repository in: an interrupted build leaves the old one (or none), never half of one.
if [[ -d $APT_DIR ]]; then mv "$APT_DIR" "$work/old"; fi
mv "$work/repo" "$APT_DIR"
say "built the local package repository $APT_DIR ($SUITE main): kubelet kubeadm kubectl $k8s_version-00, kubernetes-cni $cni_version-00, cri-tools $crictl_version-00, ${#base_debs[@]} base package(s)"
