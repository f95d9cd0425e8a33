#!/usr/bin/env bash
# Shared by provision/<step>.sh. The Vagrantfile prepends this file (and the vendored
# provision/files/*) to each step, so every provisioner is one self-contained script; run by
# hand, a step sources it from beside itself.
#
# Rules every step follows:
#  * nothing here reaches the network: artifacts come from the bundle ($LABKIT_BUNDLE), checked
#    against $LABKIT_BUNDLE/CHECKSUMS before anything is installed;
#  * idempotent: each change is preceded by a check, and a skipped change says why;
#  * a problem the user can fix ends the run with ONE line: "labkit: <what>. Fix: <how>".

# Where the vendored files are: the Vagrantfile writes them to /run/labkit/files first.
: "${labkit_files:=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/files}"
labkit_step="provision"
labkit_started=$SECONDS
# The bundle files bundle_verify accepted (absolute paths), and what CHECKSUMS says of each.
BUNDLE_FILES=()
declare -A BUNDLE_NAME=() BUNDLE_HEX=()

say() { printf 'labkit[%s]: %s\n' "$labkit_step" "$*"; }

# skip WHAT WHY: an idempotent no-op, with the reason.
skip() { printf 'labkit[%s]: skip: %s (%s)\n' "$labkit_step" "$1" "$2"; }

# die MESSAGE FIX: the one line a user sees, then stop.
die() {
  printf 'labkit: %s. Fix: %s\n' "${1%.}" "$2" >&2
  labkit_died=1
  exit 1
}

labkit_init() {
  labkit_step=$1
  local var
  for var in LABKIT_BUNDLE LABKIT_NODE_NAME LABKIT_NODE_IP LABKIT_NODE_ROLE LABKIT_MASTER_IP \
             LABKIT_K8S_VERSION LABKIT_DOCKER_VERSION; do
    [[ -n ${!var:-} ]] || die "$var is not set in the provisioner's environment" \
      "run provisioning through the Vagrantfile (invoke vm.provision), which sets it"
  done
  [[ $EUID -eq 0 ]] || die "provision/$labkit_step.sh must run as root" "run it through invoke vm.provision (or sudo)"
  # The guest's architecture (settings arch): an arm64 guest takes the bundle's arm64/ artifacts.
  local guest_arch
  guest_arch=$(dpkg --print-architecture)
  [[ $guest_arch == "${LABKIT_ARCH:-amd64}" ]] || die "this VM is $guest_arch but settings arch is ${LABKIT_ARCH:-amd64}" \
    "set LABKIT_ARCH=$guest_arch (or arch: auto), then invoke vm.provision"
  # shellcheck disable=SC2034  # read by the steps
  if [[ $guest_arch == amd64 ]]; then ARCH_DIR=""; else ARCH_DIR="$guest_arch/"; fi
  say "node $LABKIT_NODE_NAME ($LABKIT_NODE_ROLE, $LABKIT_NODE_IP, $guest_arch), bundle $LABKIT_BUNDLE"
  trap 'labkit_done $?' EXIT
}

labkit_done() {
  if [[ -n ${labkit_apt_masked:-} ]]; then systemctl unmask --runtime --quiet "${APT_JOBS[@]}" 2>/dev/null || true; fi
  if [[ $1 -eq 0 ]]; then
    say "done in $((SECONDS - labkit_started))s"
  elif [[ -z ${labkit_died:-} ]]; then  # die already said what and how; anything else is a bug
    printf 'labkit: provision step %s failed unexpectedly (exit %s). Fix: read the output above, then invoke vm.provision --step %s\n' \
      "$labkit_step" "$1" "$labkit_step" >&2
  fi
}

fetch_fix() { echo "on the laptop run invoke bundle.fetch --only $1, then invoke vm.provision"; }

# --- the bundle ------------------------------------------------------------------------------

# bundle_verify WHAT PATTERN: every bundle artifact whose path matches PATTERN (a glob relative to
# the bundle, like "${ARCH_DIR}debs/docker/*.deb": arm64 guests' artifacts are under arm64/), checked against CHECKSUMS. Missing, corrupt or unpinned
# stops the run; none at all stops it too (the step needs them). Sets BUNDLE_FILES.
bundle_verify() {
  local what=$1 pattern=$2 sums="$LABKIT_BUNDLE/CHECKSUMS"
  local name algo hex path file got
  local -A listed=()
  BUNDLE_FILES=()
  [[ -f $sums ]] || die "the bundle at $LABKIT_BUNDLE has no CHECKSUMS file" \
    "on the laptop run invoke bundle.fetch, then invoke vm.provision"
  while read -r name algo hex path; do
    [[ -z $name || $name == \#* ]] && continue
    # shellcheck disable=SC2053  # $pattern is a glob on purpose
    [[ $path == $pattern ]] || continue
    file="$LABKIT_BUNDLE/$path"
    listed[$file]=1
    [[ -f $file ]] || die "bundle artifact $name ($path) is missing" "$(fetch_fix "$name")"
    case $algo in
      sha256|sha512) got=$("${algo}sum" <"$file") ;;
      *) die "CHECKSUMS pins $name with '$algo', which this VM cannot check" "$(fetch_fix "$name")" ;;
    esac
    [[ ${got%% *} == "$hex" ]] || die "bundle artifact $name ($path) is corrupt ($algo mismatch)" "$(fetch_fix "$name")"
    BUNDLE_FILES+=("$file")
    # shellcheck disable=SC2034  # read by the steps
    BUNDLE_NAME[$file]=$name
    # shellcheck disable=SC2034
    BUNDLE_HEX[$file]=$hex
  done <"$sums"
  # A file nobody pinned is refused: we cannot know it is the one the lock meant.
  local -a present=()
  mapfile -t present < <(compgen -G "$LABKIT_BUNDLE/$pattern" || true)
  for file in "${present[@]}"; do
    [[ -n ${listed[$file]:-} ]] || die "bundle file ${file#"$LABKIT_BUNDLE"/} has no line in CHECKSUMS (unpinned files are refused)" \
      "pin it in the lock and run invoke bundle.fetch on the laptop, or delete it; then invoke vm.provision"
  done
  [[ ${#BUNDLE_FILES[@]} -gt 0 ]] || die "the bundle has no $what (nothing matches $pattern)" \
    "on the laptop run invoke bundle.fetch, then invoke vm.provision"
  say "verified ${#BUNDLE_FILES[@]} $what against CHECKSUMS"
}

# bundle_verify_one WHAT PATTERN: like bundle_verify, for a step that needs exactly one artifact.
bundle_verify_one() {
  bundle_verify "$1" "$2"
  [[ ${#BUNDLE_FILES[@]} -eq 1 ]] || die "the bundle has ${#BUNDLE_FILES[@]} files matching $2, expected one" \
    "keep only the one the lock pins, then invoke vm.provision"
}

# --- files -----------------------------------------------------------------------------------

# put_file PATH MODE < CONTENT: write PATH atomically if its content or mode differs.
# Returns 0 if it wrote, 1 if PATH was already right (so callers can skip restarts).
put_file() {
  local path=$1 mode=$2 tmp
  mkdir -p "$(dirname "$path")"
  tmp=$(mktemp "$path.XXXXXX.part")
  cat >"$tmp"
  chmod "$mode" "$tmp"
  if [[ -f $path ]] && cmp -s "$tmp" "$path" && [[ $(stat -c %a "$path") == "${mode#0}" ]]; then
    rm -f "$tmp"
    return 1
  fi
  mv -f "$tmp" "$path"
  return 0
}

# install_file SOURCE PATH MODE: put_file with a message either way.
install_file() {
  if put_file "$2" "$3" <"$1"; then say "wrote $2"; return 0; fi
  skip "$2" "already up to date"
  return 1
}

# --- packages --------------------------------------------------------------------------------

# deb_needed FILE: succeeds if FILE's package is not installed at its version or newer.
deb_needed() {
  local pkg version arch want installed
  pkg=$(dpkg-deb -f "$1" Package)
  version=$(dpkg-deb -f "$1" Version)
  arch=$(dpkg-deb -f "$1" Architecture)
  want=$pkg
  [[ $arch == all ]] || want="$pkg:$arch"
  installed=$(dpkg-query -W -f='${db:Status-Abbrev} ${Version}' "$want" 2>/dev/null || true)
  [[ $installed == ii* ]] || return 0
  # Never downgrade what the box already has newer (e.g. from xenial-updates).
  dpkg --compare-versions "${installed##* }" lt "$version"
}

# deb_install WHAT FILE...: install the .debs that are not installed yet, offline, with dpkg.
# apt-get only *simulates* first, with no package sources at all, so a missing dependency stops
# us before dpkg unpacks anything (dpkg alone would leave half-configured packages behind).
deb_install() {
  local what=$1 f
  shift
  local -a todo=()
  dpkg_wait_idle # first: what is installed is only known once a running dpkg has finished
  for f in "$@"; do
    if deb_needed "$f"; then todo+=("$f"); fi
  done
  if [[ ${#todo[@]} -eq 0 ]]; then
    skip "$what" "all $# packages already installed"
    return 0
  fi
  say "installing ${#todo[@]} of $# $what: $(for f in "${todo[@]}"; do printf '%s ' "$(dpkg-deb -f "$f" Package)"; done)"
  deb_simulate "${todo[@]}"
  DEBIAN_FRONTEND=noninteractive dpkg --install --force-confold "${todo[@]}" >/tmp/labkit-dpkg.log 2>&1 || {
    tail -n 20 /tmp/labkit-dpkg.log >&2
    die "dpkg could not install the $what (log above, full log /tmp/labkit-dpkg.log)" \
      "rebuild the bundle's debs for this box (invoke bundle.fetch), then invoke vm.provision"
  }
  say "installed ${#todo[@]} $what"
}

# The box's own package jobs: on a first boot ubuntu/xenial64 runs apt-daily and unattended-upgrades,
# which hold the dpkg lock, and xenial's dpkg then fails at once ("status database is locked").
APT_JOBS=(apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service)
DPKG_WAIT=${LABKIT_DPKG_WAIT:-900} # seconds; a first-boot unattended upgrade can take minutes

# dpkg_holder: what is using the package system now (a running apt job or a dpkg/apt process), if anything.
dpkg_holder() {
  local unit
  for unit in apt-daily.service apt-daily-upgrade.service; do
    if systemctl is-active --quiet "$unit" 2>/dev/null; then echo "$unit"; return 0; fi
  done
  # comm names; "unattended-upgr" is unattended-upgrade cut to the kernel's 15 characters
  pgrep -a -x 'dpkg|apt|apt-get|aptitude|unattended-upgr|apt.systemd.dai' 2>/dev/null | head -n 1 | grep . && return 0
  return 1
}

# dpkg_wait_idle: mask the box's package jobs for this run (a runtime mask: labkit_done lifts it,
# a reboot would too), then wait, bounded and saying so, until whatever already runs lets go.
dpkg_wait_idle() {
  local holder waited=0
  if [[ -z ${labkit_apt_masked:-} ]]; then
    systemctl stop "${APT_JOBS[@]:0:2}" 2>/dev/null || true # the timers: nothing new starts
    systemctl mask --runtime --quiet "${APT_JOBS[@]}" 2>/dev/null || true
    labkit_apt_masked=1
  fi
  while holder=$(dpkg_holder); do
    ((waited < DPKG_WAIT)) || die "the package system is still busy after ${DPKG_WAIT}s ($holder)" \
      "let it finish (invoke vm.ssh, then: systemctl status apt-daily.service), then invoke vm.provision"
    ((waited % 30)) || say "waiting for the box's own package job to finish: $holder (${waited}s)"
    sleep 5
    waited=$((waited + 5))
  done
  ((waited == 0)) || say "the package system is free after ${waited}s"
}

deb_simulate() {
  command -v apt-get >/dev/null || return 0
  local empty out
  empty=$(mktemp -d)
  mkdir -p "$empty/lists/partial"
  : >"$empty/sources.list"
  # No sources, no lists, no cache files: apt can only resolve against what is installed and the
  # files we name, so it can neither download nor change anything.
  if ! out=$(apt-get --simulate --no-download -o Debug::NoLocking=1 \
      -o Dir::Etc::SourceList="$empty/sources.list" -o Dir::Etc::SourceParts="$empty" \
      -o Dir::State::Lists="$empty/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
      install "$@" 2>&1); then
    rm -rf "$empty"
    printf '%s\n' "$out" | grep -E '^ |Depends|Conflicts|Breaks' >&2 || true
    die "the bundle's packages cannot be installed on this box: a dependency is missing from the bundle or conflicts (see above)" \
      "make the lock's debs match the box (invoke bundle.fetch on the laptop), then invoke vm.provision"
  fi
  rm -rf "$empty"
  if grep -q '^Remv ' <<<"$out"; then
    grep '^Remv ' <<<"$out" >&2
    die "installing the bundle's packages would remove packages the box has (see above)" \
      "use a box without a conflicting Docker/Kubernetes install, or rebuild the bundle to match it"
  fi
}

# --- services --------------------------------------------------------------------------------

# ensure_enabled UNIT: enable at boot (no start).
ensure_enabled() {
  if systemctl is-enabled --quiet "$1" 2>/dev/null; then
    skip "enable $1" "already enabled"
  else
    systemctl enable --quiet "$1"
    say "enabled $1 at boot"
  fi
}

# --- pure text filters (tested on the laptop in tests/t1/test_provision_lib.py) --------------

# hosts_filter NAME IP < /etc/hosts: the same file with NAME removed from every other address
# (Vagrant maps the host name to 127.0.1.1, which kubeadm would then advertise) and "IP NAME".
hosts_filter() {
  awk -v name="$1" -v ip="$2" '
    /^[[:space:]]*(#|$)/ { print; next }
    $1 == ip { next }
    {
      line = $1; kept = 0
      for (i = 2; i <= NF; i++) {
        if ($i ~ /^#/) { for (j = i; j <= NF; j++) line = line " " $j; break }
        if ($i == name) continue
        line = line " " $i; kept++
      }
      if (kept > 0) print line
    }
    END { print ip " " name }'
}

# resolv_filter FILE...: nameserver lines for the kubelet: the first FILE with a non-loopback
# nameserver wins (a 127.x/::1 resolver inside a pod is CoreDNS itself: "loop detected").
resolv_filter() {
  local f servers
  for f in "$@"; do
    [[ -r $f ]] || continue
    servers=$(awk '$1 == "nameserver" && $2 !~ /^(127\.|::1$)/ { print "nameserver " $2 }' "$f")
    if [[ -n $servers ]]; then
      printf '# for the kubelet (--resolv-conf): from %s, loopback resolvers removed\n' "$f"
      printf '%s\n' "$servers"
      awk '$1 == "search" || $1 == "options"' "$f"
      return 0
    fi
  done
  return 1
}

# kubelet_resolv ADDRESSES FILE...: resolv_filter's list; failing that, on VirtualBox's NAT network (one of
# the node's ADDRESSES, "a.b.c.d/n" words, is 10.0.2.x) its NAT resolver 10.0.2.3, which still answers
# when VirtualBox 7.2 on a Linux host hands out only the host's 127.0.0.53.
kubelet_resolv() {
  local addrs=$1
  shift
  resolv_filter "$@" && return 0
  grep -qE '(^|[[:space:]])10\.0\.2\.[0-9]+/' <<<"$addrs" || return 1
  printf '# for the kubelet (--resolv-conf): VirtualBox NAT resolver, the node had only loopback ones\nnameserver 10.0.2.3\n'
}

# image_tags ARCHIVE: the RepoTags of a docker-archive (its manifest.json), one per line.
image_tags() {
  tar -xOf "$1" manifest.json 2>/dev/null |
    grep -o '"RepoTags":\[[^]]*\]' | grep -o '"[^"]*"' | grep -v '^"RepoTags"$' | tr -d '"' || true
}

# need_cgroup_v1 WHO: WHO (Docker before 20.10, the kubelet 1.15) knows only cgroup v1, which Ubuntu
# 21.10+ (and Debian 11+) no longer boot by default. The kernel argument systemd.unified_cgroup_hierarchy=0
# brings v1 back after a reboot: written here for GRUB, then the step stops with the fix.
CGROUP_GRUB=/etc/default/grub.d/90-labkit-cgroup-v1.cfg
need_cgroup_v1() {
  local fs
  fs=$(stat -fc %T /sys/fs/cgroup 2>/dev/null || echo "not mounted")
  if [[ $fs != cgroup2fs ]]; then
    skip "cgroup v1 for $1" "/sys/fs/cgroup is $fs"
    return 0
  fi
  command -v update-grub >/dev/null || die "this guest boots cgroup v2 only, which $1 cannot use, and has no GRUB to ask for v1" \
    "use the box settings.yaml names for this architecture (Ubuntu 16.04 and 20.04 boot cgroup v1), then invoke vm.up"
  # shellcheck disable=SC2016  # GRUB's shell expands it
  if put_file "$CGROUP_GRUB" 644 <<<'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX systemd.unified_cgroup_hierarchy=0"'; then
    update-grub >/dev/null 2>&1
    die "this guest booted with cgroup v2, which $1 cannot use; $CGROUP_GRUB now asks for v1" \
      "restart the VM to boot with it (invoke vm.halt, then invoke vm.up), which provisions again"
  fi
  die "this guest still boots cgroup v2 although $CGROUP_GRUB asks for v1 (it may not boot through GRUB)" \
    "use the box settings.yaml names for this architecture, then invoke vm.up"
}
