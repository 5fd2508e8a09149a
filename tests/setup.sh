#!/usr/bin/env bash
# Installs what the tests against real third-party components need, if it is missing:
#
#   - Debian's burp 3.1.4 (`burp`, `burp_ca`), openssl, iproute2, procps and hostname
#     (burp_ca calls `ps` and `hostname`), python3 with venv; strace, systemd-analyze and
#     setpriv (the systemd unit's test);
#   - a Python venv at ${PCAPD_TEST_ENV:-<repo>/target/test-env}/venv with Burp-UI's own
#     code: burp-ui 1.1.1 (the client side, its "parallel" backend) and burp-ui-monitor
#     1.1.1 (the real bui-monitor that pcapd replaces).
#
# Idempotent: apt-get runs only when a package is missing, pip only when the venv lacks a
# pinned package. Prints one line per thing installed, nothing else when all is there.
# Run as root on Debian 12 (CI does, through the README's test command).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
env_dir="${PCAPD_TEST_ENV:-$root/target/test-env}"
venv="$env_dir/venv"

# Burp-UI 1.1.1 and its monitor, as released. Werkzeug is pinned too: burp-ui pins
# Flask==2.2.3 but not Werkzeug, and Werkzeug 3 breaks `import flask` for Flask 2.2.
PY_PINS=(burp-ui==1.1.1 burp-ui-monitor==1.1.1 Werkzeug==2.2.3)

die() {
    echo "tests/setup.sh: error: $*" >&2
    exit 1
}

# ---- Debian packages -----------------------------------------------------------------

missing=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }

{ [ -x /usr/sbin/burp ] && [ -x /usr/sbin/burp_ca ]; } || missing+=(burp)
have_cmd openssl || missing+=(openssl)
have_cmd ss || missing+=(iproute2)
have_cmd ps || missing+=(procps)
have_cmd hostname || missing+=(hostname)
have_cmd stdbuf || missing+=(coreutils)
# tests/it/systemd.rs: the unit's syscall filter against what pcapd calls, as nobody.
have_cmd strace || missing+=(strace)
have_cmd systemd-analyze || missing+=(systemd)
have_cmd setpriv || missing+=(util-linux)

# The venv is made with Debian's python3 (its venv module needs python3-venv for ensurepip).
py=/usr/bin/python3
if [ -n "${PCAPD_TEST_PYTHON:-}" ]; then
    py="$PCAPD_TEST_PYTHON"
elif ! [ -x "$py" ] || ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    if [ -x "$venv/bin/python" ]; then
        :  # a venv is already there: no need for a venv-capable python
    else
        missing+=(python3 python3-venv)
    fi
fi

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        die "missing Debian packages (${missing[*]}) and not root: run as root, or install them: apt-get install ${missing[*]}"
    fi
    have_cmd apt-get || die "missing ${missing[*]} and no apt-get: this script expects Debian 12"
    export DEBIAN_FRONTEND=noninteractive
    aptlog="$(mktemp)"
    if ! apt-get update -qq >"$aptlog" 2>&1; then
        cat "$aptlog" >&2
        die "apt-get update failed"
    fi
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$aptlog" 2>&1; then
        cat "$aptlog" >&2
        die "apt-get install ${missing[*]} failed"
    fi
    rm -f "$aptlog"
    for p in "${missing[@]}"; do
        echo "installed (apt): $p $(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)"
    done
fi

[ -x /usr/sbin/burp ] && [ -x /usr/sbin/burp_ca ] || die "/usr/sbin/burp or /usr/sbin/burp_ca missing after install"
burp_version="$(/usr/sbin/burp -V 2>/dev/null || true)"
case "$burp_version" in
    burp-3.*) ;;
    *) die "unexpected burp version '$burp_version' (the tests expect Debian 12's burp 3.1.4)" ;;
esac

# ---- Python venv ---------------------------------------------------------------------

if ! [ -x "$venv/bin/python" ]; then
    [ -x "$py" ] || die "no python3 at $py"
    mkdir -p "$env_dir"
    if ! out="$("$py" -m venv --clear "$venv" 2>&1)"; then
        echo "$out" >&2
        rm -rf "$venv"
        die "could not create the venv at $venv with $py"
    fi
    echo "installed (venv): $venv ($("$venv/bin/python" -V 2>&1))"
fi

# Which pins are not satisfied? (installed metadata only, no network)
need=()
while IFS= read -r pin; do
    [ -n "$pin" ] && need+=("$pin")
done < <("$venv/bin/python" -c '
import sys
from importlib.metadata import PackageNotFoundError, version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        ok = version(name) == want
    except PackageNotFoundError:
        ok = False
    if not ok:
        print(pin)
' "${PY_PINS[@]}" || echo "${PY_PINS[0]}")

if [ "${#need[@]}" -gt 0 ]; then
    log="$env_dir/pip-install.log"
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check -q "${PY_PINS[@]}" >"$log" 2>&1; then
        cat "$log" >&2
        die "pip install ${PY_PINS[*]} failed (log: $log)"
    fi
    for pin in "${need[@]}"; do
        echo "installed (pip): $pin"
    done
fi

# The pieces the tests import, checked once so a broken venv fails here and not mid-test.
if ! out="$("$venv/bin/python" -c '
import burpui.misc.backend.parallel, burpui.config, burpui_monitor.engines.monitor
import burpui_monitor.__main__
' 2>&1)"; then
    echo "$out" >&2
    die "the venv at $venv cannot import burp-ui / burp-ui-monitor; remove it and rerun"
fi
