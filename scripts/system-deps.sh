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

# One line per need: "<set> <debian-package> <shell test that succeeds when it is present>".
# Keep this table the only list of system packages (README and .ci/run point here).
needs() {
  cat <<'TABLE'
test python3-consul   /usr/bin/python3 -c 'import consul'
test bind9-dnsutils   command -v dig
test curl             command -v curl
test postgresql       ls /usr/lib/postgresql/*/bin/postgres
test redis-server     command -v redis-server
test chromium         test -x /usr/bin/chromium
test etcd-server      command -v etcd
test etcd-client      command -v etcdctl
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

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "phare: installing system packages for '$set_name': ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # postgresql's package starts a cluster service we do not use; the tests start their own servers
  if command -v service >/dev/null 2>&1; then service postgresql stop >/dev/null 2>&1 || true; fi
  exit 0
fi

echo "phare: '$set_name' needs these system packages, which are missing: ${missing[*]}" >&2
if command -v apt-get >/dev/null 2>&1; then
  echo "  install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
else
  echo "  they are Debian package names; install the equivalents with your system's package manager" >&2
fi
echo "  (or set PHARE_SKIP_SYSTEM_DEPS=1 to run anyway; the tests that need them will fail)" >&2
exit 1
