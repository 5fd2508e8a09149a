#!/usr/bin/env python3
"""A real burp server (Debian's burp 3.1.4) in a temporary directory, for tests.

    with burp_server() as srv:
        srv.bconfcli   # client config for `burp -c ... -a m` (what bui-monitor/pcapd need)
        srv.client     # the client name that config authenticates as ("testclient")
        srv.pid        # pid of the foreground `burp -c server.conf -F`

or, by hand:

    python3 burp_server.py up DIR     # stands it up in DIR (created; removed on exit), Ctrl-C stops

What it does, in order:

- writes a CA config, a server config, a client config and a clientconfdir, all under the
  directory, on free 127.0.0.1 ports (the backup port and the status port);
- builds the CA and the server certificate with `burp_ca` (init, key + request, sign, CRL,
  DH params). burp_ca serializes itself with the lock directory /tmp/burp_ca.lockdir, but its
  stale-lock recovery re-executes itself *without its arguments*, so we never let it see a
  stale lock: a lock of our own (flock, released by the kernel when we die) serializes every
  burp_ca run started from here, and a dead holder's lockdir is removed before each run;
- starts `burp -c server.conf -F` (foreground; stdout line-buffered into server.log);
- primes the client certificate: the first `burp -a m` sends a CSR, the server signs it (another
  burp_ca run, under our lock too), the client reconnects (burp waits ~5 s) and logs
  "in monitor";
- makes two small real backups (`burp -a b`) of a tree it creates, changing it in between,
  and waits until the server has finished them (phase 3/4 run after the client disconnects);
- on exit: SIGTERM to the server, then SIGKILL to the server and anything left in its process
  group (burp forks a child per connection), then removes the directory.

Nothing outside the directory is touched except /tmp/burp_ca.lockdir (burp_ca's own lock),
burp_ca's mktemp files in /tmp (it removes them) and our lock file /tmp/pcapd-burp_ca.lock.

Python 3.9+, stdlib only.
"""

import contextlib
import errno
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BURP = os.environ.get("PCAPD_BURP_BIN", "/usr/sbin/burp")
BURP_CA = os.environ.get("PCAPD_BURP_CA_BIN", "/usr/sbin/burp_ca")

BURP_CA_LOCKDIR = "/tmp/burp_ca.lockdir"  # hard-coded in burp_ca
OUR_LOCK = "/tmp/pcapd-burp_ca.lock"

CLIENT = "testclient"
CLIENT_PASSWORD = "abcdefgh"
# A second client that never backs up: `c:` lists it (testclient is its restore_client, so
# testclient's monitor may see it), which exercises Burp-UI's "never" paths.
OTHER_CLIENT = "neverclient"
OTHER_PASSWORD = "ijklmnop"

CA_NAME = "burpCA"
SERVER_CN = "burpserver"


class BurpSetupError(RuntimeError):
    pass


def _log(verbose, msg):
    if verbose:
        print(f"[burp_server] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# processes


def _pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def _stop_pid(proc, term_wait=5.0):
    """SIGTERM then SIGKILL one process we started (a Popen), and reap it."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(term_wait)
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def _kill_group(pgid):
    """SIGKILL what is left of a process group we created (start_new_session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _run(cmd, timeout, cwd=None, env=None):
    """Run a command to completion; its own session so a timeout kills all of it."""
    p = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(p.pid)
        out, _ = p.communicate()
        raise BurpSetupError(
            f"timed out after {timeout}s: {' '.join(cmd)}\n{out.decode(errors='replace')}"
        )
    finally:
        _kill_group(p.pid)
    return p.returncode, out.decode(errors="replace")


def _check(cmd, timeout, what, **kw):
    rc, out = _run(cmd, timeout, **kw)
    if rc != 0:
        raise BurpSetupError(f"{what} failed (exit {rc}): {' '.join(cmd)}\n{out}")
    return out


# --------------------------------------------------------------------------------------
# burp_ca locking


@contextlib.contextmanager
def burp_ca_lock(timeout=120.0, verbose=False):
    """Hold our own lock for as long as burp_ca may run on our behalf.

    flock(2) is released by the kernel whatever way the holder dies, so it is never stale.
    Inside it, burp_ca's own lockdir can only be held by a burp_ca started by someone else
    (a system burp server, say) or left behind by a dead one; the latter is removed.
    """
    fd = os.open(OUR_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    raise BurpSetupError(f"could not take {OUR_LOCK} in {timeout:.0f}s")
                time.sleep(0.2)
        _clear_burp_ca_lockdir(deadline, verbose)
        yield
    finally:
        os.close(fd)  # releases the flock


def _clear_burp_ca_lockdir(deadline, verbose=False):
    """Wait for burp_ca's lockdir to be free; remove it if its holder is dead.

    burp_ca does `mkdir LOCKDIR` then `echo $$ > LOCKDIR/pid`, so a lockdir without a pid file
    may be a live burp_ca between the two steps: only one that stays pid-less for 10 s is
    treated as stale.
    """
    pidfile = os.path.join(BURP_CA_LOCKDIR, "pid")
    while True:
        try:
            st = os.stat(BURP_CA_LOCKDIR)
        except FileNotFoundError:
            return
        try:
            with open(pidfile) as f:
                text = f.read().strip()
        except FileNotFoundError:
            text = None
        stale = False
        if text is None or text == "":
            stale = time.time() - st.st_mtime > 10
            why = "no pid in it for 10 s"
        else:
            try:
                pid = int(text)
            except ValueError:
                stale, why = True, f"garbage pid {text!r}"
            else:
                stale, why = not _pid_alive(pid), f"its holder pid {pid} is gone"
        if stale:
            _log(verbose, f"removing stale {BURP_CA_LOCKDIR} ({why})")
            shutil.rmtree(BURP_CA_LOCKDIR, ignore_errors=True)
            continue
        if time.monotonic() > deadline:
            raise BurpSetupError(
                f"{BURP_CA_LOCKDIR} is held by a live burp_ca (pid {text}) for too long"
            )
        time.sleep(0.2)


# --------------------------------------------------------------------------------------
# configs


def _listening_ports():
    """TCP ports in LISTEN state on this host (from /proc/net/tcp: no connection made, so the
    server logs no failed handshake)."""
    ports = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    if len(fields) > 3 and fields[3] == "0A":
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def free_ports(n, host="127.0.0.1"):
    """n distinct free TCP ports on host (held open together while picking)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


CA_CNF = """\
# simple config for burp_ca (as Debian's /etc/burp/CA.cnf, CA_DIR moved)
CA_DIR                  = {ca_dir}

[ ca ]
dir                     = $ENV::CA_DIR
database                = $dir/index.txt
serial                  = $dir/serial.txt
certs                   = $dir/certs
new_certs_dir           = $dir/newcerts
crlnumber               = $dir/crlnumber.txt

unique_subject          = no

default_md              = sha256
default_days            = 7300
default_crl_days        = 7300

name_opt                = ca_default
cert_opt                = ca_default

x509_extensions         = usr_cert
copy_extensions         = copy
policy                  = policy_anything

[ usr_cert ]
basicConstraints        = CA:FALSE

[ policy_anything ]
commonName              = supplied
"""

# Debian's /etc/burp/burp-server.conf with every path under {d}, loopback only, a status
# listener (commented out in Debian's file), no syslog, log to stdout.
SERVER_CONF = """\
mode = server
listen = 127.0.0.1:{port}
max_children = 5
listen_status = 127.0.0.1:{status_port}
max_status_children = 16
directory = {d}/spool
dedup_group = global
clientconfdir = {d}/clientconfdir
pidfile = {d}/run/burp.server.pid
hardlinked_archive = 0
working_dir_recovery_method = delete
umask = 0022
syslog = 0
stdout = 1
client_can_delete = 1
client_can_diff = 1
client_can_force_backup = 1
client_can_list = 1
client_can_monitor = 1
client_can_restore = 1
client_can_verify = 1
version_warn = 1
keep = 7
ca_conf = {d}/CA.cnf
ca_name = {ca_name}
ca_server_name = {server_cn}
ca_burp_ca = {burp_ca}
ca_crl_check = 1
ssl_cert_ca = {d}/ssl_cert_ca.pem
ssl_cert = {d}/ssl_cert-server.pem
ssl_key = {d}/ssl_cert-server.key
ssl_dhfile = {d}/dhfile.pem
"""

# Debian's /etc/burp/burp.conf with every path under {d}.
CLIENT_CONF = """\
mode = client
server = 127.0.0.1:{port}
status_port = {status_port}
password = {password}
cname = {client}
pidfile = {d}/run/burp.client.pid
syslog = 0
stdout = 1
progress_counter = 0
server_can_restore = 0
ca_burp_ca = {burp_ca}
ca_csr_dir = {d}/client/CA-client
ssl_cert_ca = {d}/client/ssl_cert_ca.pem
ssl_cert = {d}/client/ssl_cert-client.pem
ssl_key = {d}/client/ssl_cert-client.key
ssl_peer_cn = {server_cn}
include = {d}/data
nobackup = .nobackup
"""


class BurpServer:
    """See the module docstring. Use as a context manager, or start()/stop()."""

    def __init__(self, directory=None, verbose=False, keep_dir=False):
        self._given_dir = directory
        self.verbose = verbose
        self.keep_dir = keep_dir
        self.dir = None
        self.proc = None
        self.pid = None
        self.port = None
        self.status_port = None
        self.server_conf = None
        self.bconfcli = None
        self.client = CLIENT
        self.clients = sorted([CLIENT, OTHER_CLIENT])
        self.data_dir = None
        self.log_path = None
        self.timings = {}

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        t0 = time.monotonic()
        for b in (BURP, BURP_CA):
            if not os.access(b, os.X_OK):
                raise BurpSetupError(
                    f"{b} not found: install Debian's burp (run tests/setup.sh)"
                )
        if self._given_dir:
            os.makedirs(self._given_dir, exist_ok=True)
            if os.listdir(self._given_dir):
                raise BurpSetupError(f"{self._given_dir} is not empty")
            self.dir = os.path.abspath(self._given_dir)
        else:
            self.dir = tempfile.mkdtemp(prefix="pcapd-burp-")
        d = self.dir
        self.port, self.status_port = free_ports(2)
        _log(self.verbose, f"dir {d}, port {self.port}, status port {self.status_port}")
        self._write_configs()
        with burp_ca_lock(verbose=self.verbose):
            t = time.monotonic()
            self._build_ca()
            self.timings["ca"] = time.monotonic() - t
            t = time.monotonic()
            for attempt in range(1, 4):
                try:
                    self._start_server()
                    break
                except BurpSetupError:
                    # the free ports were picked, then released: someone may have taken one
                    if attempt == 3 or "unable to bind" not in self.server_log():
                        raise
                    self.proc = None
                    self.port, self.status_port = free_ports(2)
                    _log(self.verbose, f"port taken, retrying on {self.port}, {self.status_port}")
                    self._write_configs()
            self.timings["server"] = time.monotonic() - t
            t = time.monotonic()
            # the first monitor run generates the client key + CSR (burp_ca on the client
            # side) and has the server sign it (burp_ca on the server side): still locked
            self.monitor_lines = self.prime()
            self.timings["prime"] = time.monotonic() - t
        t = time.monotonic()
        self._backup(1)
        with open(os.path.join(d, "data", "second.txt"), "w") as f:
            f.write("added before the second backup\n")
        with open(os.path.join(d, "data", "a.txt"), "a") as f:
            f.write("changed before the second backup\n")
        self._backup(2)
        self.timings["backups"] = time.monotonic() - t
        self.timings["total"] = time.monotonic() - t0
        _log(self.verbose, "ready: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()))
        return self

    def stop(self):
        if self.proc is not None:
            _stop_pid(self.proc)
            _kill_group(self.proc.pid)  # forked status/backup children, if any are left
            self.proc = None
        if self._log_file is not None:
            with contextlib.suppress(OSError):
                self._log_file.close()
            self._log_file = None
        if self.dir and not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    _log_file = None

    # -- steps -------------------------------------------------------------------------

    def _write_configs(self):
        d = self.dir
        for sub in ("spool", "clientconfdir", "run", "client/CA-client", "data/sub/deeper"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        files = {
            "data/a.txt": "hello\n",
            "data/sub/b.txt": "world\n" * 100,
            "data/sub/deeper/c.bin": "".join(chr(65 + i % 26) for i in range(5000)),
        }
        for rel, text in files.items():
            with open(os.path.join(d, rel), "w") as f:
                f.write(text)
        link = os.path.join(d, "data", "link-to-a")
        if not os.path.lexists(link):
            os.symlink("a.txt", link)
        fmt = dict(
            d=d,
            port=self.port,
            status_port=self.status_port,
            ca_name=CA_NAME,
            server_cn=SERVER_CN,
            burp_ca=BURP_CA,
            client=CLIENT,
            password=CLIENT_PASSWORD,
        )
        self.server_conf = os.path.join(d, "server.conf")
        self.bconfcli = os.path.join(d, "client", "burp.conf")
        self.data_dir = os.path.join(d, "data")
        with open(os.path.join(d, "CA.cnf"), "w") as f:
            f.write(CA_CNF.format(ca_dir=os.path.join(d, "CA")))
        with open(self.server_conf, "w") as f:
            f.write(SERVER_CONF.format(**fmt))
        with open(self.bconfcli, "w") as f:
            f.write(CLIENT_CONF.format(**fmt))
        with open(os.path.join(d, "clientconfdir", CLIENT), "w") as f:
            f.write(f"password = {CLIENT_PASSWORD}\n")
        with open(os.path.join(d, "clientconfdir", OTHER_CLIENT), "w") as f:
            f.write(
                f"password = {OTHER_PASSWORD}\n"
                f"restore_client = {CLIENT}\n"
                "label = os: Debian GNU/Linux\n"
                "label = role: test\n"
            )

    def _build_ca(self):
        """What burp's server does itself when ca_conf is set and CA_DIR is missing
        (see burp_ca.txt), done here step by step so each failure is reported."""
        d = self.dir
        ca_dir = os.path.join(d, "CA")
        cnf = os.path.join(d, "CA.cnf")
        steps = [
            ("DH params", [BURP_CA, "--dhfile", os.path.join(d, "dhfile.pem"), "--dir", ca_dir]),
            ("CA init", [BURP_CA, "--init", "--ca", CA_NAME, "--dir", ca_dir, "--config", cnf]),
            (
                "server key and request",
                [BURP_CA, "--key", "--request", "--name", SERVER_CN, "--dir", ca_dir, "--config", cnf],
            ),
            (
                "server certificate",
                [
                    BURP_CA, "--sign", "--ca", CA_NAME, "--name", SERVER_CN, "--batch",
                    "--dir", ca_dir, "--config", cnf,
                ],
            ),
            ("CRL", [BURP_CA, "--name", CA_NAME, "--config", cnf, "--dir", ca_dir, "--crl"]),
        ]
        env = dict(os.environ, LC_ALL="C")
        for what, cmd in steps:
            _check(cmd, 60, f"burp_ca: {what}", cwd=d, env=env)
        for link, target in (
            ("ssl_cert_ca.pem", f"CA_{CA_NAME}.crt"),
            ("ssl_cert-server.pem", f"{SERVER_CN}.crt"),
            ("ssl_cert-server.key", f"{SERVER_CN}.key"),
        ):
            src = os.path.join(ca_dir, target)
            if not os.path.exists(src):
                raise BurpSetupError(f"burp_ca did not produce {src}")
            os.symlink(src, os.path.join(d, link))

    def _start_server(self):
        d = self.dir
        self.log_path = os.path.join(d, "server.log")
        if self._log_file is not None:
            self._log_file.close()
        self._log_file = open(self.log_path, "wb")
        cmd = [BURP, "-c", self.server_conf, "-F"]
        # burp's stdout to a file is block-buffered and inherited by the children it forks,
        # which then repeat each other's lines; stdbuf makes it line-buffered (same pid: it
        # execs burp)
        stdbuf = shutil.which("stdbuf")
        if stdbuf:
            cmd = [stdbuf, "-oL", "-eL"] + cmd
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=d,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        deadline = time.monotonic() + 20
        pending = {self.port, self.status_port}
        while pending:
            if self.proc.poll() is not None:
                raise BurpSetupError(
                    f"burp server exited with {self.proc.returncode}:\n{self.server_log()}"
                )
            pending -= _listening_ports()
            if pending and time.monotonic() > deadline:
                raise BurpSetupError(
                    f"burp server not listening on {sorted(pending)} after 20 s:\n"
                    + self.server_log()
                )
            if pending:
                time.sleep(0.05)
        _log(self.verbose, f"server pid {self.pid} listening")

    def server_log(self, tail=60):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-tail:])
        except (OSError, TypeError):
            return "(no server log)"

    def monitor(self, timeout=30.0):
        """Start a `burp -a m` (its own session); returns the Popen."""
        return subprocess.Popen(
            [BURP, "-c", self.bconfcli, "-a", "m"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            cwd=self.dir,
            start_new_session=True,
        )

    def prime(self, timeout=40.0):
        """Run one `burp -a m` until it logs "in monitor" (getting its certificate signed on
        the first run), then close its stdin; returns the JSON lines it printed."""
        p = self.monitor()
        lines = []
        try:
            lines = _read_until(p, lambda j: "in monitor" in j.get("logline", ""), timeout)
            if lines is None:
                raise BurpSetupError("burp -a m did not reach 'in monitor'")
        except BurpSetupError as e:
            _stop_pid(p)
            _kill_group(p.pid)
            out = (p.stdout.read() or b"").decode(errors="replace") if p.stdout else ""
            raise BurpSetupError(f"{e}\nmonitor output:\n{out}\nserver log:\n{self.server_log()}")
        finally:
            with contextlib.suppress(OSError):
                p.stdin.close()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                _stop_pid(p)
            _kill_group(p.pid)
            for f in (p.stdout, p.stderr):
                with contextlib.suppress(OSError):
                    f.close()
        return lines

    def _backup(self, number):
        """`burp -a b`, retried while the server is still finishing the previous one."""
        for attempt in range(1, 6):
            rc, out = _run([BURP, "-c", self.bconfcli, "-a", "b"], 60, cwd=self.dir)
            if rc == 0:
                break
            _log(self.verbose, f"backup {number} attempt {attempt} exit {rc}:\n{out}")
            time.sleep(1)
        else:
            raise BurpSetupError(f"backup {number} failed:\n{out}\n{self.server_log()}")
        # the server merges and shuffles after the client has gone: wait until the backup
        # is in place and nothing is being worked on
        cdir = os.path.join(self.dir, "spool", CLIENT)
        deadline = time.monotonic() + 30
        while True:
            names = os.listdir(cdir) if os.path.isdir(cdir) else []
            done = [n for n in names if n[:7].isdigit() and int(n[:7]) == number]
            if done and "current" in names and "working" not in names and "finishing" not in names:
                return
            if time.monotonic() > deadline:
                raise BurpSetupError(
                    f"backup {number} not finished after 30 s ({names}):\n{self.server_log()}"
                )
            time.sleep(0.05)


def _read_until(p, pred, timeout):
    """Read JSON lines from a monitor's stdout until pred(obj); returns all lines read, or
    None at EOF. Raises BurpSetupError on timeout."""
    lines = []
    buf = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BurpSetupError(f"no answer in {timeout:.0f}s; got {lines}")
        r, _, _ = select.select([p.stdout], [], [], left)
        if not r:
            continue
        chunk = os.read(p.stdout.fileno(), 65536)
        if not chunk:
            return None
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            text = line.decode(errors="replace")
            lines.append(text)
            try:
                obj = json.loads(text)
            except ValueError:
                continue
            if isinstance(obj, dict) and pred(obj):
                return lines


@contextlib.contextmanager
def burp_server(directory=None, verbose=False):
    """Context manager: yields a started BurpServer (bconfcli, client, pid, ...)."""
    srv = BurpServer(directory, verbose=verbose)
    with srv:
        yield srv


def main(argv):
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="stand a burp server up in DIR until Ctrl-C / SIGTERM")
    up.add_argument("dir")
    up.add_argument("--keep", action="store_true", help="keep DIR on exit")
    args = ap.parse_args(argv)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    srv = BurpServer(args.dir, verbose=True, keep_dir=args.keep)
    try:
        srv.start()
        print(
            json.dumps(
                {
                    "dir": srv.dir,
                    "bconfcli": srv.bconfcli,
                    "server_conf": srv.server_conf,
                    "client": srv.client,
                    "clients": srv.clients,
                    "pid": srv.pid,
                    "port": srv.port,
                    "status_port": srv.status_port,
                    "timings": {k: round(v, 2) for k, v in srv.timings.items()},
                }
            ),
            flush=True,
        )
        print(f"try: {BURP} -c {srv.bconfcli} -a m   (Ctrl-C here stops the server)", flush=True)
        while not stop:
            if srv.proc.poll() is not None:
                print(f"burp server exited with {srv.proc.returncode}", file=sys.stderr)
                return 1
            time.sleep(0.3)
    except KeyboardInterrupt:
        pass
    except BurpSetupError as e:
        print(f"burp_server: {e}", file=sys.stderr)
        return 1
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
