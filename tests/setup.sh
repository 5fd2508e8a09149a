#!/usr/bin/env bash
# Installs what the tests against real third-party components need, if it is missing:
#
#   - Debian's burp 3.1.4 (`burp`, `burp_ca`), openssl, iproute2, procps and hostname
#     (burp_ca calls `ps` and `hostname`), python3 with venv; strace, systemd-analyze and
#     setpriv (the systemd unit's test); rsyslog with its TLS driver (rsyslog-gnutls) and
#     curl; openssh-server, openssh-client and tcpdump (real SSH and TLS traffic captured on
#     loopback, tests/it/traffic.rs);
#   - a Python venv at ${PCAPD_TEST_ENV:-<repo>/target/test-env}/venv with Burp-UI's own
#     code: burp-ui 1.1.1 (the client side, its "parallel" backend) and burp-ui-monitor
#     1.1.1 (the real bui-monitor that pcapd replaces), and communityid 1.5.0 (the Community
#     ID reference implementation that tests/it/udp_logs.rs checks conn.log against);
#   - tcpdump, dnsmasq (dnsmasq-base: the binary, no system service) and busybox (udhcpc,
#     httpd, wget, ping, nc) for the real-traffic tests of tests/it/udp_logs.rs;
#   - a venv at ${PCAPD_TEST_ENV:-<repo>/target/test-env}/traffic-venv with pyftpdlib and
#     aiosmtpd, the FTP and SMTP servers of tests/it/traffic.rs (curl is their client);
#   - a venv at ${PCAPD_TEST_ENV:-<repo>/target/test-env}/api-venv with schemathesis and
#     openapi-spec-validator (the gateway against docs/openapi.json); cargo-deb (cargo
#     install), Debian's prometheus, lintian, man-db and dpkg-dev (metrics and packaging);
#   - for the Python client's tests (contrib/python/tests): Debian's redis-server (celery's
#     broker), and a second venv at ${PCAPD_TEST_ENV:-<repo>/target/test-env}/pyclient-venv
#     with the pins of contrib/python/tests/requirements.txt (pytest, Flask, gunicorn, celery,
#     redis, FastAPI, uvicorn) and the package itself, reinstalled on every run (it is quick,
#     and the tests must test the checkout's code).
#
# Idempotent: apt-get runs only when a package is missing, pip only when the venv lacks a
# pinned package. Prints one line per thing installed, nothing else when all is there.
# Run as root on Debian 12 (CI does, through the README's test command).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
env_dir="${PCAPD_TEST_ENV:-$root/target/test-env}"
venv="$env_dir/venv"
pyclient_venv="$env_dir/pyclient-venv"
pyclient_reqs="$root/contrib/python/tests/requirements.txt"

# Burp-UI 1.1.1 and its monitor, as released. Werkzeug is pinned too: burp-ui pins
# Flask==2.2.3 but not Werkzeug, and Werkzeug 3 breaks `import flask` for Flask 2.2.
PY_PINS=(burp-ui==1.1.1 burp-ui-monitor==1.1.1 Werkzeug==2.2.3 communityid==1.5.0)

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
[ -x /usr/bin/redis-server ] || missing+=(redis-server)
have_cmd curl || missing+=(curl)
# rsyslogd, and its gtls network-stream driver (syslog over TLS) from rsyslog-gnutls.
[ -x /usr/sbin/rsyslogd ] || missing+=(rsyslog)
compgen -G '/usr/lib/*/rsyslog/lmnsd_gtls.so' >/dev/null || missing+=(rsyslog-gnutls)
# tests/it/systemd.rs: the unit's syscall filter against what pcapd calls, as nobody.
have_cmd strace || missing+=(strace)
have_cmd systemd-analyze || missing+=(systemd)
have_cmd setpriv || missing+=(util-linux)
# tests/it/files.rs: tshark's --export-objects cross-checks extraction; yara and ClamAV's
# clamscan are the real detectors (rules and signatures written by the tests).
have_cmd tshark || missing+=(tshark)
have_cmd yara || missing+=(yara)
have_cmd clamscan || missing+=(clamav)
# tests/it/metrics.rs: a real Prometheus scrapes the daemon; promtool lints the exposition.
{ [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ]; } || missing+=(prometheus)
# tests/it/packaging.rs: the .deb is checked by lintian, its man pages found by man-db, its
# dependencies computed by dpkg-shlibdeps (dpkg-dev).
have_cmd lintian || missing+=(lintian)
have_cmd man || missing+=(man-db)
have_cmd dpkg-shlibdeps || missing+=(dpkg-dev)
# tests/it/traffic.rs: real SSH logins (Debian's sshd and ssh) and a TLS 1.2 handshake,
# captured on loopback with tcpdump.
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
{ have_cmd ssh && have_cmd ssh-keygen; } || missing+=(openssh-client)
have_cmd tcpdump || missing+=(tcpdump)
# tests/it/udp_logs.rs: a DHCP server and client, an HTTP server and client, ping, captured
# (with the tcpdump above).
[ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq-base)
have_cmd busybox || missing+=(busybox)

# The venv is made with Debian's python3 (its venv module needs python3-venv for ensurepip).
py=/usr/bin/python3
if [ -n "${PCAPD_TEST_PYTHON:-}" ]; then
    py="$PCAPD_TEST_PYTHON"
elif ! [ -x "$py" ] || ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    if [ -x "$venv/bin/python" ] && [ -x "$pyclient_venv/bin/python" ]; then
        :  # the venvs are already there: no need for a venv-capable python
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
[ -x /usr/sbin/rsyslogd ] && compgen -G '/usr/lib/*/rsyslog/lmnsd_gtls.so' >/dev/null \
    || die "/usr/sbin/rsyslogd or rsyslog's lmnsd_gtls.so missing after install"
burp_version="$(/usr/sbin/burp -V 2>/dev/null || true)"
case "$burp_version" in
    burp-3.*) ;;
    *) die "unexpected burp version '$burp_version' (the tests expect Debian 12's burp 3.1.4)" ;;
esac

# ---- cargo-deb (packaging/build-deb.sh, tests/it/packaging.rs) -------------------------

CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
    log="$(mktemp)"
    if ! cargo install --locked --quiet cargo-deb --version "$CARGO_DEB_VERSION" >"$log" 2>&1; then
        cat "$log" >&2
        die "cargo install cargo-deb $CARGO_DEB_VERSION failed"
    fi
    rm -f "$log"
    echo "installed (cargo): cargo-deb $CARGO_DEB_VERSION"
fi

# ---- Python venvs --------------------------------------------------------------------

# make_venv DIR: a venv at DIR made with $py, unless one is there.
make_venv() {
    [ -x "$1/bin/python" ] && return 0
    [ -x "$py" ] || die "no python3 at $py"
    mkdir -p "$env_dir"
    if ! out="$("$py" -m venv --clear "$1" 2>&1)"; then
        echo "$out" >&2
        rm -rf "$1"
        die "could not create the venv at $1 with $py"
    fi
    echo "installed (venv): $1 ($("$1/bin/python" -V 2>&1))"
}

# unmet_pins DIR PIN...: prints the pins (NAME==VERSION) the venv at DIR does not satisfy,
# from installed metadata only (no network); all of them if the venv cannot tell.
unmet_pins() {
    local dir="$1"
    shift
    "$dir/bin/python" -c '
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
' "$@" || printf '%s\n' "$@"
}

# venv_with_pins DIR LOG PIN...: a venv at DIR holding every pin (NAME==VERSION); pip runs
# only for what is missing, its output in $env_dir/LOG.
venv_with_pins() {
    local dir="$1" log="$env_dir/$2" need pin
    shift 2
    make_venv "$dir"
    mapfile -t need < <(unmet_pins "$dir" "$@")
    [ "${#need[@]}" -gt 0 ] || return 0
    if ! "$dir/bin/python" -m pip install --disable-pip-version-check -q "$@" >"$log" 2>&1; then
        cat "$log" >&2
        die "pip install $* failed (log: $log)"
    fi
    for pin in "${need[@]}"; do
        echo "installed (pip): $pin"
    done
}

venv_with_pins "$venv" pip-install.log "${PY_PINS[@]}"

# The pieces the tests import, checked once so a broken venv fails here and not mid-test.
if ! out="$("$venv/bin/python" -c '
import burpui.misc.backend.parallel, burpui.config, burpui_monitor.engines.monitor
import burpui_monitor.__main__
import communityid
' 2>&1)"; then
    echo "$out" >&2
    die "the venv at $venv cannot import burp-ui / burp-ui-monitor / communityid; remove it and rerun"
fi

# ---- The FTP and SMTP servers' venv (tests/it/traffic.rs) ------------------------------

traffic_venv="$env_dir/traffic-venv"
TRAFFIC_PINS=(pyftpdlib==2.2.0 aiosmtpd==1.4.6)
venv_with_pins "$traffic_venv" traffic-pip-install.log "${TRAFFIC_PINS[@]}"
if ! out="$("$traffic_venv/bin/python" -c 'import pyftpdlib.servers, aiosmtpd.controller' 2>&1)"; then
    echo "$out" >&2
    die "the venv at $traffic_venv cannot import pyftpdlib / aiosmtpd; remove it and rerun"
fi

# ---- The OpenAPI tools' venv (tests/it/openapi.rs) --------------------------------------

api_venv="$env_dir/api-venv"
API_PINS=(schemathesis==4.32.5 openapi-spec-validator==0.9.0)
venv_with_pins "$api_venv" api-pip-install.log "${API_PINS[@]}"
[ -x "$api_venv/bin/schemathesis" ] && [ -x "$api_venv/bin/openapi-spec-validator" ] \
    || die "the venv at $api_venv lacks schemathesis or openapi-spec-validator; remove it and rerun"

# ---- The Python client's venv (contrib/python/tests) ----------------------------------

[ -x /usr/bin/redis-server ] || die "/usr/bin/redis-server missing after install"

make_venv "$pyclient_venv"
mapfile -t pyclient_pins < <(grep -E '^[A-Za-z0-9_.-]+==' "$pyclient_reqs")
mapfile -t pyclient_need < <(unmet_pins "$pyclient_venv" "${pyclient_pins[@]}")
if [ "${#pyclient_need[@]}" -gt 0 ]; then
    log="$env_dir/pyclient-pip-install.log"
    if ! "$pyclient_venv/bin/python" -m pip install --disable-pip-version-check -q -r "$pyclient_reqs" >"$log" 2>&1; then
        cat "$log" >&2
        die "pip install -r $pyclient_reqs failed (log: $log)"
    fi
    echo "installed (pip): ${#pyclient_need[@]} pinned packages for the Python client's tests"
fi

# The package under test, from this checkout, every run (no network: setuptools is pinned
# above, so the build needs no isolated environment). pip's build/ and *.egg-info are
# kept out of the checkout by building from a copy.
pkg_copy="$(mktemp -d)"
cp -r "$root/contrib/python/pyproject.toml" "$root/contrib/python/README.md" "$root/contrib/python/src" "$pkg_copy/"
log="$env_dir/pyclient-pip-install.log"
if ! "$pyclient_venv/bin/python" -m pip install --disable-pip-version-check -q --no-build-isolation \
        --force-reinstall --no-deps "$pkg_copy" >"$log" 2>&1; then
    cat "$log" >&2
    rm -rf "$pkg_copy"
    die "pip install ./contrib/python failed (log: $log)"
fi
rm -rf "$pkg_copy"

if ! out="$("$pyclient_venv/bin/python" -c '
import pcapd_client, pytest, flask, gunicorn, celery, redis, fastapi, uvicorn, python_multipart
' 2>&1)"; then
    echo "$out" >&2
    die "the venv at $pyclient_venv cannot import the Python client or its test tools; remove it and rerun"
fi
