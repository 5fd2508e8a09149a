#!/usr/bin/env python3
"""Burp-UI 1.1.1's own client code against the real bui-monitor 1.1.1 and against pcapd.

    <venv>/bin/python tests/burp/burpui_compare.py --pcapd target/debug/pcapd [--json]
    <venv>/bin/python tests/burp/burpui_compare.py --self-test [--json]   # bui-monitor twice

Stands up a real burp server (burp_server.py), then two monitors over it, both with pool 2,
the same client config (bconfcli) and TLS with burp's own server certificate (as
bui-monitor's documentation sets it up; Burp-UI's [Parallel] ssl = true):

  A: the real bui-monitor (burp-ui-monitor 1.1.1's console entry point);
  B: `pcapd serve -c CFG` with backend = burp (or, with --self-test, a second bui-monitor).

For each, a fresh Python process builds Burp-UI's "parallel" backend
(burpui.misc.backend.parallel.Burp, which talks to a monitor through its Connector over the
bui-monitor protocol) and calls what Burp-UI's UI and API call; the answers are compared call
by call. Exit 0 only if every call gave the same answer on both sides and the reference side
(A) gave the answers a healthy setup gives.

Normalised before comparing (the only fields that may legitimately differ between two runs):
  - lists of clients (get_all_clients, get_clients_report): Burp-UI builds them in a trio
    nursery and appends in completion order, so they are sorted by name;
  - exception messages: the monitor's port number is replaced by <PORT> (the two monitors
    listen on different ports);
  - statistics(): pcapd's answer carries an extra "pcapd" key (its own counters, uptime,
    child pids: documented in docs/protocol.md). No Burp-UI code reads it (parallel.Burp
    and engines/agent.py read only "alive"), and its values change from run to run, so that
    one key is dropped from side B before comparing; every key bui-monitor answers is
    compared, and the table says that it was dropped.
Nothing else: timestamps come from the burp server's backups, the same for both sides.
"""

# (call, key) pairs that only side B (pcapd) answers, dropped before comparing: see above.
B_ONLY_KEYS = {("statistics()", "pcapd")}

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import burp_server  # noqa: E402

PASSWORD = "compare-secret-1"
STARTUP_TIMEOUT = 60.0
COLLECT_TIMEOUT = 180.0

# burp-ui-monitor 1.1.1's console script `bui-monitor` (entry point
# burpui_monitor.__main__:monitor). burp-ui 1.1.1 installs a `bui-monitor` of its own into
# the same bin/ (burpui.__main__:monitor, the same engine code); which file wins depends on
# install order, so the entry point is called directly.
BUI_MONITOR_MAIN = (
    "import sys; sys.argv[0] = 'bui-monitor'; "
    "from burpui_monitor.__main__ import monitor; sys.exit(monitor())"
)


class CompareError(RuntimeError):
    pass


# ======================================================================================
# collector: runs in its own Python process per side (Burp-UI keeps class-level caches,
# e.g. parallel.Burp._os_cache, that would otherwise leak from one side to the other)


def collect(params):
    import trio

    from burpui.config import BUIConfig
    from burpui.misc.backend import parallel

    tmp = params["tmp"]
    client = params["client"]
    other = params["other_client"]
    port = params["port"]

    def write_conf(path, password):
        with open(path, "w") as f:
            f.write(
                "[Global]\n"
                "backend = parallel\n"
                "\n"
                "[Parallel]\n"
                f"host = 127.0.0.1\n"
                f"port = {port}\n"
                "ssl = true\n"
                f"password = {password}\n"
                "timeout = 15\n"
                "concurrency = 2\n"
                "init_wait = 15\n"
                "\n"
                "[Burp]\n"
                f"burpbin = {burp_server.BURP}\n"
                f"bconfcli = {params['bconfcli']}\n"
                f"bconfsrv = {params['server_conf']}\n"
                f"tmpdir = {tmp}/bui-tmp\n"
            )
        return path

    conf_path = write_conf(os.path.join(tmp, "burpui.cfg"), params["password"])
    bad_path = write_conf(os.path.join(tmp, "burpui-badpw.cfg"), "not-the-password")

    class App:
        """What the backend reads off Burp-UI's server object outside a Flask app."""

        strict = True
        config = {"BUI_CLI": True, "WITH_CELERY": False}

    results = []

    def record(name, fn, norm=None):
        t = time.monotonic()
        try:
            value = {"ok": fn()}
        except Exception as e:  # compared too: both sides should fail alike
            msg = str(e).replace(str(port), "<PORT>")
            value = {"exception": type(e).__name__, "message": msg}
        took = time.monotonic() - t
        value = json.loads(json.dumps(value, default=repr, sort_keys=True))
        if norm and "ok" in value:
            value["ok"] = norm(value["ok"])
        results.append({"call": name, "value": value, "seconds": round(took, 3)})
        return value.get("ok")

    def by_name(items):
        return sorted(items, key=lambda x: json.dumps(x, sort_keys=True)) if isinstance(items, list) else items

    def report_norm(rep):
        if isinstance(rep, dict):
            rep = {k: by_name(v) for k, v in rep.items()}
        return rep

    conf = BUIConfig(conf_path, defaults={})
    t0 = time.monotonic()
    backend = None

    def make():
        nonlocal backend
        backend = parallel.Burp(App(), conf=conf)
        return {"_ready": backend._ready}

    record("Burp(...) then _ready", make)
    ready_seconds = time.monotonic() - t0
    if backend is None:
        return {"results": results, "ready_seconds": ready_seconds}
    b = backend

    record("statistics()", b.statistics)
    record("get_client_version()", b.get_client_version)
    record("get_server_version()", b.get_server_version)
    record("batch_list_supported", lambda: b.batch_list_supported)
    clients = record("get_all_clients()", b.get_all_clients, by_name)
    record(f"get_all_clients(last_attempt=False)", lambda: b.get_all_clients(last_attempt=False), by_name)
    record(f"get_client({client})", lambda: b.get_client(client))
    record(f"get_client({other})", lambda: b.get_client(other))
    record(f"get_client_filtered({client}, limit=1)", lambda: b.get_client_filtered(client, limit=1))
    record(f"get_client_status({client})", lambda: b.get_client_status(client))
    record(f"get_client_status({other})", lambda: b.get_client_status(other))
    record(f"get_counters({client})", lambda: b.get_counters(client))
    record(f"get_backup_logs(1, {client})", lambda: b.get_backup_logs(1, client))
    record(f"get_backup_logs(2, {client})", lambda: b.get_backup_logs(2, client))
    record(f"get_backup_logs(2, {client}, deep=True)", lambda: b.get_backup_logs(2, client, deep=True))
    record(f"get_backup_logs(-1, {client})", lambda: b.get_backup_logs(-1, client))
    record(f"get_backup_logs(7, {client}) (no such backup)", lambda: b.get_backup_logs(7, client))
    record(f"get_tree({client}, 2)", lambda: b.get_tree(client, 2))
    record(f"get_tree({client}, 2, <data dir>)", lambda: b.get_tree(client, 2, params["data_dir"]))
    record(f"get_tree({client}, 1, '*')", lambda: b.get_tree(client, 1, "*"))
    record(f"is_backup_deletable({client}, 1)", lambda: b.is_backup_deletable(client, 1))
    record(f"is_backup_deletable({client}, 2)", lambda: b.is_backup_deletable(client, 2))
    record(
        "get_clients_report(get_all_clients())",
        lambda: b.get_clients_report(clients if isinstance(clients, list) else []),
        report_norm,
    )
    record(f"get_client_labels({other})", lambda: b.get_client_labels(other))
    record(f"is_backup_running({client})", lambda: b.is_backup_running(client))
    record("is_one_backup_running()", b.is_one_backup_running)
    record(f"_get_last_backup({client})", lambda: b._get_last_backup(client))
    record("get_client(nosuch)", lambda: b.get_client("nosuch"))
    record("get_client_status(nosuch)", lambda: b.get_client_status("nosuch"))
    record("get_counters(nosuch)", lambda: b.get_counters("nosuch"))
    record("get_backup_logs(1, nosuch)", lambda: b.get_backup_logs(1, "nosuch"))
    record("get_tree(nosuch, 1)", lambda: b.get_tree("nosuch", 1))
    record("is_backup_deletable(nosuch, 1)", lambda: b.is_backup_deletable("nosuch", 1))
    # the raw status answers the backend parses (the monitor's JSON, through json.loads)
    for q in (
        "c:\n",
        f"c:{client}\n",
        f"c:{client}:b:2\n",
        f"c:{client}:b:2:l:backup_stats\n",
        f"c:{client}:b:2:l:backup\n",
        f"c:{client}:b:1:p:\n",
        "c:nosuch\n",
    ):
        record(f"status({q!r})", lambda q=q: b.status(q))
    record(f"status('c:{client}\\n', cache=False)", lambda: b.status(f"c:{client}\n", cache=False))

    # eight at once through a pool of two: every one must get the same, right, answer
    async def burst():
        out = [None] * 8

        async def one(i):
            out[i] = await b._async_status(f"c:{client}:b:{1 + i % 2}\n", cache=False)

        async with trio.open_nursery() as n:
            for i in range(8):
                n.start_soon(one, i)
        return out

    record("8 concurrent status(c:CLIENT:b:N, cache=False)", lambda: trio.run(burst))

    # a wrong password: bui-monitor answers KO, the Connector turns that into "[]"
    bad = BUIConfig(bad_path, defaults={})
    record("wrong password: status('c:\\n')", lambda: trio.run(parallel.Connector(bad).status, "c:\n"))
    record(
        "wrong password: request('statistics')",
        lambda: trio.run(parallel.Connector(bad).request, "statistics"),
    )
    return {"results": results, "ready_seconds": round(ready_seconds, 3)}


# ======================================================================================
# orchestration


def _listens_on(pid, port):
    """True if process pid itself holds a listening TCP socket on port (not just anyone)."""
    inodes = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f, None)
                for line in f:
                    x = line.split()
                    if len(x) > 9 and x[3] == "0A" and int(x[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(x[9])
        except OSError:
            pass
    if not inodes:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def _group_members(pgid):
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            if int(rest[2]) == pgid and rest[0] != "Z":
                pids.append(int(name))
        except (OSError, IndexError, ValueError):
            pass
    return pids


class Daemon:
    """A monitor we started: bui-monitor or pcapd, in its own session (process group)."""

    def __init__(self, label, kind, cmd, port, workdir, ready_line=None):
        self.label = label
        self.kind = kind
        self.cmd = cmd
        self.port = port
        self.workdir = workdir
        self.ready_line = ready_line
        self.proc = None
        self.stdout_path = os.path.join(workdir, "stdout.log")
        self.stderr_path = os.path.join(workdir, "stderr.log")
        self._out = None
        self._err = None
        self._pump = None
        self.leftovers = []
        self.exit_code = None

    def start(self):
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            self.cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._err,
            cwd=self.workdir,
            start_new_session=True,
        )
        ready = threading.Event()
        self._out = open(self.stdout_path, "wb")

        def pump():
            for line in iter(self.proc.stdout.readline, b""):
                self._out.write(line)
                self._out.flush()
                if self.ready_line and self.ready_line in line.decode(errors="replace"):
                    ready.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise CompareError(f"{self.label} exited with {self.proc.returncode} at start\n{self.logs()}")
            if self.ready_line:
                if ready.is_set():
                    return
            elif _listens_on(self.proc.pid, self.port):
                return
            if time.monotonic() > deadline:
                raise CompareError(f"{self.label} not ready after {STARTUP_TIMEOUT:.0f}s\n{self.logs()}")
            time.sleep(0.05)

    def stop(self):
        if self.proc is None:
            return
        pgid = self.proc.pid
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
                self.leftovers.append(f"{self.label} did not exit within 10 s of SIGTERM")
        self.exit_code = self.proc.returncode
        # what the daemon left of its process group (its burp children) after it exited
        deadline = time.monotonic() + 3
        left = _group_members(pgid)
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = _group_members(pgid)
        if left:
            self.leftovers.append(f"{self.label} left processes {left} running after it exited")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        if self._pump:
            self._pump.join(2)
        for f in (self._out, self._err):
            if f:
                with contextlib.suppress(OSError):
                    f.close()
        self.proc = None

    def logs(self, tail=40):
        out = []
        for p in (self.stdout_path, self.stderr_path):
            try:
                with open(p, errors="replace") as f:
                    lines = f.readlines()[-tail:]
                out.append(f"--- {self.label} {os.path.basename(p)} (last {len(lines)} lines)\n" + "".join(lines))
            except OSError:
                pass
        return "\n".join(out)


def write_monitor_conf(path, port, srv, kind, state_dir=None):
    with open(path, "w") as f:
        f.write("[Global]\n")
        # TLS with burp's own server certificate, as bui-monitor's documented setup has it.
        f.write(f"port = {port}\nbind = 127.0.0.1\npool = 2\nssl = true\npassword = {PASSWORD}\n")
        f.write(f"sslcert = {srv.dir}/ssl_cert-server.pem\nsslkey = {srv.dir}/ssl_cert-server.key\n")
        if kind == "pcapd":
            f.write(f"backend = burp\nstate_dir = {state_dir}\n")
        f.write(f"\n[Burp]\nburpbin = {burp_server.BURP}\nbconfcli = {srv.bconfcli}\ntimeout = 15\n")
    os.chmod(path, 0o600)


def make_daemon(label, kind, srv, tmp, pcapd_bin=None, attempt=1):
    work = os.path.join(tmp, label if attempt == 1 else f"{label}-try{attempt}")
    os.makedirs(work)
    (port,) = burp_server.free_ports(1)
    cfg = os.path.join(work, "monitor.cfg")
    if kind == "pcapd":
        write_monitor_conf(cfg, port, srv, kind, os.path.join(work, "pcapd-state"))
        return Daemon(label, kind, [pcapd_bin, "serve", "-c", cfg], port, work, ready_line="listening on")
    write_monitor_conf(cfg, port, srv, kind)
    return Daemon(label, kind, [sys.executable, "-c", BUI_MONITOR_MAIN, "-c", cfg], port, work)


def run_collector(daemon, srv, tmp):
    work = os.path.join(tmp, f"collect-{daemon.label}")
    os.makedirs(work)
    params = {
        "tmp": work,
        "port": daemon.port,
        "password": PASSWORD,
        "client": srv.client,
        "other_client": burp_server.OTHER_CLIENT,
        "bconfcli": srv.bconfcli,
        "server_conf": srv.server_conf,
        "data_dir": srv.data_dir,
    }
    err_path = os.path.join(work, "stderr.log")
    with open(err_path, "wb") as err:
        p = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--collect", json.dumps(params)],
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=work,
            start_new_session=True,
        )
        try:
            out, _ = p.communicate(timeout=COLLECT_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            raise CompareError(
                f"Burp-UI calls against {daemon.label} did not finish in {COLLECT_TIMEOUT:.0f}s\n"
                + _tail(err_path) + "\n" + daemon.logs()
            )
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
    lines = [l for l in out.decode(errors="replace").splitlines() if l.startswith("COLLECT ")]
    if p.returncode != 0 or not lines:
        raise CompareError(
            f"Burp-UI calls against {daemon.label} failed (exit {p.returncode})\n"
            + _tail(err_path) + "\n" + daemon.logs()
        )
    return json.loads(lines[-1][len("COLLECT "):])


def _tail(path, n=60):
    try:
        with open(path, errors="replace") as f:
            lines = f.readlines()[-n:]
        return f"--- {path} (last {len(lines)} lines)\n" + "".join(lines)
    except OSError:
        return ""


def expectations(results, srv):
    """What a healthy reference side answers; a broken setup must not pass as 'equal'."""
    v = {r["call"]: r["value"] for r in results}
    c = srv.client
    problems = []

    def ok(call):
        return v.get(call, {}).get("ok")

    def expect(cond, what):
        if not cond:
            problems.append(what)

    stats = ok("statistics()") or {}
    expect(ok("Burp(...) then _ready") == {"_ready": True}, "backend not _ready")
    expect(isinstance(stats, dict) and stats.get("alive") is True, "statistics() not alive")
    expect(ok("get_server_version()") == "3.1.4" or str(ok("get_server_version()")).startswith("3."), "server version not 3.x")
    names = sorted(x.get("name") for x in (ok("get_all_clients()") or []) if isinstance(x, dict))
    expect(names == srv.clients, f"get_all_clients() names {names} != {srv.clients}")
    backups = ok(f"get_client({c})") or []
    expect(len(backups) == 2, f"get_client({c}) has {len(backups)} backups, not 2")
    expect(ok(f"is_backup_deletable({c}, 1)") is True, "backup 1 not deletable")
    logs = ok(f"get_backup_logs(2, {c})") or {}
    expect(isinstance(logs, dict) and logs.get("number") == 2, "get_backup_logs(2) has no stats")
    expect(ok("get_client(nosuch)") == [], "get_client(nosuch) not []")
    for r in results:
        if "exception" in r["value"]:
            problems.append(f"{r['call']} raised {r['value']['exception']}: {r['value']['message'][:200]}")
    return problems


def excerpt(value, width=58):
    text = json.dumps(value.get("ok"), sort_keys=True) if "ok" in value else f"!{value['exception']}: {value['message']}"
    return text if len(text) <= width else text[: width - 3] + "..."


def compare(a, b, label_a, label_b, as_json):
    ra = {r["call"]: r for r in a["results"]}
    rb = {r["call"]: r for r in b["results"]}
    calls = [r["call"] for r in a["results"]] + [r["call"] for r in b["results"] if r["call"] not in ra]
    different = []
    rows = []
    notes = []
    for call in calls:
        va = ra.get(call, {}).get("value")
        vb = rb.get(call, {}).get("value")
        for c, key in B_ONLY_KEYS:
            okb = (vb or {}).get("ok")
            if c == call and isinstance(okb, dict) and key in okb:
                vb = dict(vb, ok={k: v for k, v in okb.items() if k != key})
                notes.append(f"{call}: {label_b}'s extra key {key!r} dropped before comparing")
        same = va is not None and va == vb
        if not same:
            different.append(call)
        secs = "%6.2f %6.2f" % (ra.get(call, {}).get("seconds", -1), rb.get(call, {}).get("seconds", -1))
        rows.append((call, same, secs, excerpt(va) if va is not None else "(not called)"))
    w = max(len(r[0]) for r in rows)
    print(f"{'call':<{w}}  equal  {'A s':>6} {'B s':>6}  A = {label_a}, B = {label_b}; A's answer (excerpt)")
    for call, same, secs, ex in rows:
        print(f"{call:<{w}}  {'yes' if same else 'NO ':<5}  {secs}  {ex}")
    for n in notes:
        print(f"normalised: {n}")
    for call in different:
        print(f"\nDIFFERENT: {call}")
        for label, r in ((label_a, ra.get(call)), (label_b, rb.get(call))):
            print(f"  {label}: {json.dumps(r['value'], sort_keys=True) if r else '(not called)'}")
    print(
        f"\n{label_a} ready in {a.get('ready_seconds')}s, {label_b} ready in {b.get('ready_seconds')}s; "
        f"calls took {sum(r['seconds'] for r in a['results']):.2f}s vs {sum(r['seconds'] for r in b['results']):.2f}s"
    )
    return calls, different


def main(argv):
    ap = argparse.ArgumentParser(description="Burp-UI's parallel backend: bui-monitor vs pcapd")
    ap.add_argument("--pcapd", help="pcapd binary (side B)")
    ap.add_argument("--self-test", action="store_true", help="side B is a second bui-monitor")
    ap.add_argument("--json", action="store_true", help="end with a JSON summary line")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs) on exit")
    ap.add_argument("--collect", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.collect:
        res = collect(json.loads(args.collect))
        print("COLLECT " + json.dumps(res, sort_keys=True), flush=True)
        return 0
    if not args.self_test and not args.pcapd:
        ap.error("--pcapd PATH (or --self-test) is required")
    if args.pcapd:
        args.pcapd = os.path.abspath(args.pcapd)  # the daemons run in their own work dirs
        if not os.access(args.pcapd, os.X_OK):
            ap.error(f"{args.pcapd} is not an executable")

    summary = {"calls": 0, "equal": 0, "different": [], "failed": []}

    def on_term(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="pcapd-burpui-compare-")
    daemons = []
    rc = 1
    try:
        try:
            import burpui.misc.backend.parallel  # noqa: F401
            import burpui_monitor.engines.monitor  # noqa: F401
        except ImportError as e:
            raise CompareError(f"run with the test venv's python (tests/setup.sh makes it): {e}")
        with contextlib.ExitStack() as stack:
            # unwound in reverse: the monitors stop before the burp server they talk to
            srv = stack.enter_context(burp_server.BurpServer())
            t_srv = time.monotonic() - t0
            label_a = "bui-monitor"
            label_b = "bui-monitor-2" if args.self_test else "pcapd"
            sides = [(label_a, "bui-monitor"), (label_b, "bui-monitor" if args.self_test else "pcapd")]
            # one side after the other, each from a cold start: Burp-UI's first calls then
            # meet the monitor while its burp children are still warming up, on both sides
            results = []
            for label, kind in sides:
                for attempt in range(1, 4):
                    d = make_daemon(label, kind, srv, tmp, args.pcapd, attempt)
                    daemons.append(d)
                    stack.callback(d.stop)
                    try:
                        d.start()
                        break
                    except CompareError:
                        # its free port was picked, then released: someone may have taken it
                        d.stop()
                        if attempt == 3 or "Address already in use" not in d.logs():
                            raise
                results.append(run_collector(d, srv, tmp))
                d.stop()
                summary["failed"].extend(d.leftovers)
            res_a, res_b = results
            calls, different = compare(res_a, res_b, label_a, label_b, args.json)
            summary["calls"] = len(calls)
            summary["equal"] = len(calls) - len(different)
            summary["different"] = different
            for p in expectations(res_a["results"], srv):
                summary["failed"].append(f"{label_a} (reference): {p}")
            print(
                f"burp server up in {t_srv:.1f}s ({', '.join(f'{k} {v:.1f}s' for k, v in srv.timings.items())}); "
                f"total {time.monotonic() - t0:.1f}s"
            )
        for f in summary["failed"]:
            print(f"FAILED: {f}")
        rc = 0 if not summary["different"] and not summary["failed"] else 1
    except KeyboardInterrupt:
        summary["failed"].append("interrupted")
        print("interrupted", file=sys.stderr)
        rc = 130
    except (CompareError, burp_server.BurpSetupError) as e:
        summary["failed"].append(str(e).splitlines()[0] if str(e) else type(e).__name__)
        print(f"FAILED: {e}", file=sys.stderr)
        rc = 1
    except Exception as e:  # a bug here: still report, clean up, and fail
        import traceback

        traceback.print_exc()
        summary["failed"].append(f"{type(e).__name__}: {e}")
        rc = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for d in daemons:
            with contextlib.suppress(Exception):
                d.stop()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if args.json:
        print(json.dumps(summary, sort_keys=True), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
