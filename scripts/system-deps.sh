#!/usr/bin/env bash
# Installs the Debian packages a run needs when they are missing.
#
#   scripts/system-deps.sh test    # what `npm test` needs (run by its pretest step)
#   scripts/system-deps.sh bench   # what `npm run bench` needs
#
# As root on Debian/Ubuntu it runs `apt-get update` + `apt-get install -y` for what is missing. Anywhere
# else it prints the missing packages and the command that installs them, and exits 1, at once.
# PHARE_SKIP_SYSTEM_DEPS=1 skips the check (you then get the failures of the tests that need them).
set -euo pipefail
set_name="${1:-test}"
[ "${PHARE_SKIP_SYSTEM_DEPS:-}" = 1 ] && exit 0
# Where packages that must not be installed system-wide are unpacked (test/helpers/cache.ts reads the same).
export PHARE_CACHE_DIR="${PHARE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/phare}"
# python3-consul2 conflicts with python3-consul (both are the `consul` module): its .deb is fetched with
# `apt-get download` and unpacked under $PHARE_CACHE_DIR/<package>, which the interop test puts on PYTHONPATH.
PRIVATE_DEBS=" python3-consul2 "

# One line per need: "<set> <debian-package> <shell test that succeeds when it is present>".
# Keep this table the only list of system packages (README and .ci/run point here).
needs() {
  cat <<'TABLE'
test python3-consul   /usr/bin/python3 -c 'import consul'
test python3-consul2  test -f "$PHARE_CACHE_DIR/python3-consul2/usr/lib/python3/dist-packages/consul/base.py"
test golang-go        command -v go
test golang-github-armon-consul-api-dev  test -f /usr/share/gocode/src/github.com/armon/consul-api/api.go
test bind9-dnsutils   command -v dig
test curl             command -v curl
test postgresql       ls /usr/lib/postgresql/*/bin/postgres
test patroni          test -x /usr/bin/patroni
test redis-server     command -v redis-server
test chromium         test -x /usr/bin/chromium
test etcd-server      command -v etcd
test etcd-client      command -v etcdctl
test docker.io        command -v dockerd
test iptables         test -x /usr/sbin/iptables
test docker-compose   command -v docker-compose
test debootstrap      command -v debootstrap
bench wrk             command -v wrk
bench dnsperf         command -v dnsperf
bench dnsmasq         command -v dnsmasq
bench etcd-server     command -v etcd
TABLE
}

missing=()
while read -r s pkg check; do
  [ -z "$s" ] && continue
  [ "$s" = "$set_name" ] || [ "$set_name" = all ] || continue
  if ! bash -c "$check" >/dev/null 2>&1; then missing+=("$pkg"); fi
done < <(needs)

[ ${#missing[@]} -eq 0 ] && exit 0

system=()
private=()
for pkg in "${missing[@]}"; do
  if [[ "$PRIVATE_DEBS" == *" $pkg "* ]]; then private+=("$pkg"); else system+=("$pkg"); fi
done

# apt-get download + dpkg-deb -x into the cache: needs the package lists, not root
unpack_private() {
  local pkg="$1" tmp
  tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null 2>&1) || { rm -rf "$tmp"; return 1; }
  rm -rf "${PHARE_CACHE_DIR:?}/$pkg"
  mkdir -p "$PHARE_CACHE_DIR/$pkg"
  dpkg-deb -x "$tmp"/"$pkg"_*.deb "$PHARE_CACHE_DIR/$pkg"
  rm -rf "$tmp"
}

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "phare: installing system packages for '$set_name': ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if [ ${#system[@]} -gt 0 ]; then
    apt-get install -y -qq --no-install-recommends "${system[@]}" >/dev/null
  fi
  for pkg in "${private[@]}"; do
    unpack_private "$pkg" || { echo "phare: apt-get download $pkg failed" >&2; exit 1; }
  done
  # postgresql's package starts a cluster service we do not use; the tests start their own servers
  if command -v service >/dev/null 2>&1; then service postgresql stop >/dev/null 2>&1 || true; fi
  exit 0
fi

if command -v apt-get >/dev/null 2>&1; then
  # not root: the private ones can still be fetched and unpacked
  left=()
  for pkg in "${private[@]}"; do unpack_private "$pkg" || left+=("$pkg"); done
  private=("${left[@]}")
  [ ${#system[@]} -eq 0 ] && [ ${#private[@]} -eq 0 ] && exit 0
fi
echo "phare: '$set_name' needs these system packages, which are missing: ${system[*]} ${private[*]}" >&2
if command -v apt-get >/dev/null 2>&1; then
  [ ${#system[@]} -gt 0 ] && echo "  install them with: sudo apt-get update && sudo apt-get install -y ${system[*]}" >&2
  for pkg in "${private[@]}"; do
    echo "  and unpack $pkg with: (cd /tmp && apt-get download $pkg && dpkg-deb -x ${pkg}_*.deb $PHARE_CACHE_DIR/$pkg)" >&2
  done
else
  echo "  they are Debian package names; install the equivalents with your system's package manager" >&2
fi
echo "  (or set PHARE_SKIP_SYSTEM_DEPS=1 to run anyway; the tests that need them will fail)" >&2
exit 1
