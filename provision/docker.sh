#!/usr/bin/env bash
# Docker from the bundle's .deb files (offline, dpkg), configured with the cgroup driver the
# kubelet is given (provision/files/docker-daemon.json, read by labkit/cluster/kubeadm.py too),
# usable by the vagrant user, the bundle's images loaded (never pulled), and served to Docker as a
# registry mirror for the lab's untagged pulls (labkit-mirror).
set -euo pipefail
if ! declare -F labkit_init >/dev/null; then
  # shellcheck source=provision/lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
labkit_init docker

DAEMON_JSON=/etc/docker/daemon.json
DOCKER_USER=vagrant

# Everything this step installs or loads is checked first.
bundle_verify "Docker packages" "${ARCH_DIR}debs/docker/*.deb"
docker_debs=("${BUNDLE_FILES[@]}")
bundle_verify "container images" "${ARCH_DIR}images/*.tar"
image_files=("${BUNDLE_FILES[@]}")

# Docker 20.10 brought cgroup v2 support (moby 20.10.0 release notes); 18.09 needs v1.
if [[ $(printf '%s\n' "$LABKIT_DOCKER_VERSION" 20.10 | sort -V | head -1) != 20.10 ]]; then
  need_cgroup_v1 "Docker $LABKIT_DOCKER_VERSION"
else
  skip "cgroup v1 for Docker" "Docker $LABKIT_DOCKER_VERSION supports cgroup v2"
fi

# The daemon's configuration goes in before the packages, so the daemon's first start uses it.
config_changed=0
if install_file "$labkit_files/docker-daemon.json" "$DAEMON_JSON" 644; then config_changed=1; fi
was_active=0
if systemctl is-active --quiet docker 2>/dev/null; then was_active=1; fi

deb_install "Docker packages" "${docker_debs[@]}"
command -v docker >/dev/null || die "the bundle's Docker packages installed no docker command" \
  "check the debs/docker/ files in the lock (docker-ce, docker-ce-cli, containerd.io), then invoke vm.provision"

ensure_enabled docker
if ! systemctl is-active --quiet docker; then
  systemctl start docker
  say "started docker"
elif [[ $was_active -eq 1 && $config_changed -eq 1 ]]; then
  systemctl restart docker
  say "restarted docker ($DAEMON_JSON changed)"
else
  skip "start docker" "already running"
fi
for _ in $(seq 60); do
  docker info >/dev/null 2>&1 && break
  sleep 1
done
docker info >/dev/null 2>&1 || die "dockerd does not answer after 60s" \
  "look at journalctl -u docker on the node (invoke vm.ssh), then invoke vm.provision --step docker"

# --- the checks kubeadm's preflight would otherwise only warn about ---------------------------
want_driver=$(grep -o 'native.cgroupdriver=[a-z]*' "$labkit_files/docker-daemon.json" | cut -d= -f2)
driver=$(docker info --format '{{.CgroupDriver}}')
[[ $driver == "$want_driver" ]] || die "dockerd uses the $driver cgroup driver, the kubelet will use $want_driver" \
  "make sure nothing else overrides $DAEMON_JSON (e.g. a systemd drop-in with --exec-opt), then invoke vm.provision --step docker"
version=$(docker version --format '{{.Server.Version}}')
[[ $version == "$LABKIT_DOCKER_VERSION" || $version == "$LABKIT_DOCKER_VERSION"[^0-9]* ]] ||
  die "the node runs Docker $version but settings versions.docker is $LABKIT_DOCKER_VERSION" \
    "make the bundle's debs/docker/ packages and versions.docker agree, then invoke vm.provision --step docker"
say "Docker $version, cgroup driver $driver"

# --- the vagrant user talks to the Docker socket (app.build does, over SSH) ------------------
if ! id "$DOCKER_USER" >/dev/null 2>&1; then
  skip "docker group" "this box has no $DOCKER_USER user"
elif id -nG "$DOCKER_USER" | tr ' ' '\n' | grep -qx docker; then
  skip "docker group" "$DOCKER_USER is already in it"
else
  usermod -aG docker "$DOCKER_USER"
  say "added $DOCKER_USER to the docker group (effective from its next login)"
fi

# --- images: docker load what is not there yet ----------------------------------------------
for file in "${image_files[@]}"; do
  rel=${file#"$LABKIT_BUNDLE"/}
  mapfile -t tags < <(image_tags "$file")
  [[ ${#tags[@]} -gt 0 ]] || die "image archive $rel has no RepoTags, so nothing could refer to it" \
    "$(fetch_fix "${BUNDLE_NAME[$file]}")"
  missing=()
  for tag in "${tags[@]}"; do
    docker image inspect "$tag" >/dev/null 2>&1 || missing+=("$tag")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    skip "load $rel" "${tags[*]} already present"
    continue
  fi
  docker load --quiet --input "$file" >/dev/null
  for tag in "${missing[@]}"; do
    docker image inspect "$tag" >/dev/null 2>&1 || die "docker load of $rel did not create $tag" "$(fetch_fix "${BUNDLE_NAME[$file]}")"
  done
  say "loaded ${missing[*]} from $rel"
done

# --- the lab's untagged pulls: `kubectl run web --image nginx` ---------------------------------
# Untagged means :latest, which Kubernetes pulls on every start, and the VM is offline. Docker asks
# its registry mirror first (docker-daemon.json): labkit-mirror serves the bundle's Docker Hub images
# there, read-only, on 127.0.0.1 only, each also as :latest when the bundle has one tag of it.
MIRROR_SCRIPT=/usr/local/lib/labkit/labkit-mirror.py
MIRROR_UNIT=/etc/systemd/system/labkit-mirror.service
if ! command -v python3 >/dev/null 2>&1; then
  skip "registry mirror" "this box has no python3: the lab's untagged images need the tags section.show names"
else
  mirror_changed=0
  if install_file "$labkit_files/labkit-mirror.py" "$MIRROR_SCRIPT" 644; then mirror_changed=1; fi
  # the guest architecture's images: an arm64 guest's are under arm64/ of the bundle
  if sed "s|@IMAGES@|$LABKIT_BUNDLE/${ARCH_DIR}images|g" "$labkit_files/labkit-mirror.service" | put_file "$MIRROR_UNIT" 644; then
    say "wrote $MIRROR_UNIT"
    systemctl daemon-reload
    mirror_changed=1
  else
    skip "$MIRROR_UNIT" "already up to date"
  fi
  ensure_enabled labkit-mirror
  if [[ $mirror_changed -eq 1 ]] || ! systemctl is-active --quiet labkit-mirror; then
    systemctl restart labkit-mirror
    say "started labkit-mirror (the bundle's Docker Hub images on 127.0.0.1:5000)"
  else
    skip "start labkit-mirror" "already running"
  fi
fi
