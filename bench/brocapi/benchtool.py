#!/usr/bin/env python3
"""Measuring helpers of bench/brocapi.sh (standard library only; not part of either pipeline).

  free-port                          a free 127.0.0.1 TCP port that is also free for UDP
  tree ROOT...                       the process trees under ROOT pids: JSON {pids, count, pss_kb}
  sample OUT INTERVAL ROOT...        writes a `tree` line to OUT every INTERVAL s until SIGTERM
  cpu PID...                         CPU seconds of the pids, their own and their reaped children's
  acct FILE [OFFSET]                 cputime records after byte OFFSET: JSON {runs, cpu_s, failed}
  stats CONTROL PREFIX OUT           the sink's counts for tags starting with PREFIX, to OUT
  quiet CONTROL PREFIX SECONDS TIMEOUT   waits until those tags got no line for SECONDS
  wait-tcp PORT TIMEOUT              waits until something listens on 127.0.0.1:PORT
  wait-http URL TIMEOUT              waits until URL answers 200
  wait  CONTROL JOBS ANALYZER ...    waits until every acknowledged job's lines all arrived
  row   ...                          one result row (JSON) from a run's files
  fault ...                          the fault run's result (JSON)
  job-states BASE_URL AUTH JOBS      GET /jobs/ID for the acknowledged jobs: state histograms
  report RESULTS                     the markdown report (tables, targets, notes)

Times are Unix seconds on one clock: httpload's `start`, syslogsink's arrival times.
A job is complete when its tag received every line the analyzer writes for its captures
(`expected`, computed once per capture set by running the analyzer), counted as distinct
(program, line) pairs so that lines sent twice are seen as duplicates, not as completion.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- processes -----------------------------------------------------------------------------


def parents():
    """pid -> ppid for every process."""
    result = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # comm may contain spaces and parentheses: fields start after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] == "Z":
            continue  # exited, not yet reaped: no memory, no work
        result[int(entry)] = int(fields[1])
    return result


def tree(roots):
    ppid = parents()
    children = {}
    for pid, parent in ppid.items():
        children.setdefault(parent, []).append(pid)
    seen, todo = set(), [r for r in roots if r in ppid]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo.extend(children.get(pid, []))
    return sorted(seen)


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_info(roots):
    pids = tree(roots)
    return {
        "pids": pids,
        "count": len(pids),
        "pss_kb": sum(pss_kb(p) for p in pids),
        "rss_kb": sum(rss_kb(p) for p in pids),
    }


def cpu_seconds(pid):
    """utime + stime + cutime + cstime (the process's and its waited-for children's)."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): utime..cstime are fields 14..17.
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def cmd_tree(args):
    print(json.dumps(tree_info([int(a) for a in args])))


def cmd_sample(args):
    out, interval, roots = args[0], float(args[1]), [int(a) for a in args[2:]]
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    with open(out, "a") as f:
        while running[0]:
            info = tree_info(roots)
            info["t"] = time.time()
            del info["pids"]
            f.write(json.dumps(info) + "\n")
            f.flush()
            time.sleep(interval)


def cmd_cpu(args):
    total = 0.0
    per = {}
    for a in args:
        try:
            per[a] = cpu_seconds(int(a))
        except OSError:
            per[a] = None
            continue
        total += per[a]
    print(json.dumps({"cpu_s": total, "per_pid": per, "missing": [a for a, v in per.items() if v is None]}))


def acct(path, offset=0):
    runs = failed = 0
    cpu_us = 0
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            for line in f:
                parts = line.split()
                if len(parts) != 3:
                    continue
                runs += 1
                cpu_us += int(parts[0]) + int(parts[1])
                failed += parts[2] != b"0"
    except FileNotFoundError:
        pass
    return {"runs": runs, "cpu_s": cpu_us / 1e6, "failed": failed}


def cmd_acct(args):
    print(json.dumps(acct(args[0], int(args[1]) if len(args) > 1 else 0)))


def cmd_free_port(_args):
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(port)
        return
    sys.exit("no free port")


def http_get(url, auth=None, timeout=10):
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def cmd_stats(args):
    with open(args[2], "w") as f:
        json.dump(sink_stats(args[0], args[1]), f)


def cmd_quiet(args):
    """Waits until no message for tags starting with PREFIX arrived for SECONDS (or TIMEOUT)."""
    control, prefix, quiet, deadline = args[0], args[1], float(args[2]), time.time() + float(args[3])
    last_total, last_change = -1, time.time()
    while time.time() < deadline:
        total = sum(t["lines"] for t in sink_stats(control, prefix)["tags"].values())
        if total != last_total:
            last_total, last_change = total, time.time()
        elif time.time() - last_change >= quiet:
            return
        time.sleep(0.5)


def cmd_wait_tcp(args):
    port, deadline = int(args[0]), time.time() + float(args[1])
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on 127.0.0.1:{port} after {args[1]} s")


def cmd_wait_http(args):
    url, deadline = args[0], time.time() + float(args[1])
    while time.time() < deadline:
        try:
            if http_get(url, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"{url} did not answer 200 within {args[1]} s")


# --- jobs and lines ------------------------------------------------------------------------


def read_jobs(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def sink_stats(control_port, prefix=""):
    with socket.create_connection(("127.0.0.1", int(control_port)), timeout=30) as s:
        s.sendall(f"stats {prefix}\n".encode())
        data = b""
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def expected_lines(analyzer, files, exclude, cache_path):
    """{"lines", "distinct"} the analyzer writes for these captures (cached by capture set)."""
    key = "\n".join(files) + "\n#exclude=" + ",".join(sorted(exclude))
    cache = {}
    if os.path.exists(cache_path):
        with open(cache_path) as f:
            cache = json.load(f)
    if key in cache:
        return cache[key]
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([analyzer, "analyze", "-o", out, *files], check=True, stdout=subprocess.DEVNULL)
        lines, pairs = 0, set()
        for name in sorted(os.listdir(out)):
            if not name.endswith(".log") or name[: -len(".log")] in exclude:
                continue
            with open(os.path.join(out, name), encoding="utf-8", errors="replace") as log:
                for line in log:
                    if line.startswith("#"):
                        continue
                    lines += 1
                    pairs.add((name, line))
    cache[key] = {"lines": lines, "distinct": len(pairs)}
    with open(cache_path + ".tmp", "w") as f:
        json.dump(cache, f)
    os.replace(cache_path + ".tmp", cache_path)
    return cache[key]


def options(args, spec):
    """--name value pairs into a dict (spec: name -> default)."""
    result = dict(spec)
    it = iter(args)
    for a in it:
        if not a.startswith("--") or a[2:] not in spec:
            sys.exit(f"unknown option {a}; known: {', '.join('--' + k for k in spec)}")
        result[a[2:]] = next(it)
    return result


WAIT_OPTS = {
    "control": None,
    "jobs": None,
    "analyzer": None,
    "exclude": "",
    "cache": None,
    "prefix": "",
    "stall": "20",
    "timeout": "600",
    "out": None,
}


def job_progress(jobs, stats, o):
    exclude = [x for x in o["exclude"].replace(",", " ").split() if x]
    done = 0
    for job in jobs:
        exp = expected_lines(o["analyzer"], job["files"], exclude, o["cache"])
        got = stats["tags"].get(job["tag"])
        if got and got["distinct"] >= exp["distinct"] and got["lines"] >= exp["lines"]:
            done += 1
    return done


def cmd_wait(args):
    """Polls the sink until every acknowledged job is complete, or nothing arrives for
    `stall` seconds, or `timeout`; writes the last stats to `out`."""
    o = options(args, WAIT_OPTS)
    jobs = [j for j in read_jobs(o["jobs"]) if j["ok"]]
    deadline = time.time() + float(o["timeout"])
    last_total, last_change = -1, time.time()
    while True:
        stats = sink_stats(o["control"], o["prefix"])
        total = sum(t["lines"] for t in stats["tags"].values())
        done = job_progress(jobs, stats, o)
        now = time.time()
        if total != last_total:
            last_total, last_change = total, now
        if done == len(jobs):
            reason = "complete"
            break
        if now - last_change > float(o["stall"]):
            reason = f"no new line for {o['stall']} s"
            break
        if now > deadline:
            reason = f"timeout {o['timeout']} s"
            break
        time.sleep(0.2)
    with open(o["out"], "w") as f:
        json.dump(stats, f)
    print(f"# {done}/{len(jobs)} acknowledged jobs complete ({reason})", file=sys.stderr)


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def classify(jobs, stats, analyzer, exclude, cache):
    """Per acknowledged job: complete / partial / none, duplicates, submit-to-last-line."""
    out = []
    for job in jobs:
        exp = expected_lines(analyzer, job["files"], exclude, cache)
        got = stats["tags"].get(job["tag"]) if job["tag"] else None
        lines = got["lines"] if got else 0
        distinct = got["distinct"] if got else 0
        if distinct >= exp["distinct"] and lines >= exp["lines"]:
            state = "complete"
        elif distinct:
            state = "partial"
        else:
            state = "none"
        out.append(
            {
                "tag": job["tag"],
                "ok": job["ok"],
                "state": state,
                "duplicated": lines - distinct,
                "extra": lines - exp["lines"],
                "e2e_ms": (got["last"] - job["start"]) * 1000 if got else None,
            }
        )
    return out


ROW_OPTS = {
    "side": None,
    "workload": None,
    "c": None,
    "jobs": None,
    "summary": None,
    "stats": None,
    "analyzer": None,
    "exclude": "",
    "cache": None,
    "cpu-before": None,
    "cpu-after": None,
    "acct": None,
    "acct-offset": "0",
    "samples": None,
    "out": None,
}


def max_sample(path):
    count = pss = rss = 0
    try:
        with open(path) as f:
            for line in f:
                s = json.loads(line)
                count, pss = max(count, s["count"]), max(pss, s["pss_kb"])
                rss = max(rss, s.get("rss_kb", 0))
    except FileNotFoundError:
        pass
    return count, pss, rss


def cmd_row(args):
    o = options(args, ROW_OPTS)
    jobs = read_jobs(o["jobs"])
    summary = json.load(open(o["summary"]))
    stats = json.load(open(o["stats"]))
    exclude = [x for x in o["exclude"].replace(",", " ").split() if x]
    acked = [j for j in jobs if j["ok"]]
    result = classify(acked, stats, o["analyzer"], exclude, o["cache"])
    complete = [r for r in result if r["state"] == "complete"]
    e2e = [r["e2e_ms"] for r in complete]
    starts = [j["start"] for j in jobs]
    lasts = [stats["tags"][r["tag"]]["last"] for r in complete]
    span = (max(lasts) - min(starts)) if lasts and starts else float("nan")
    cpu_after, cpu_before = json.load(open(o["cpu-after"])), json.load(open(o["cpu-before"]))
    cpu = cpu_after["cpu_s"] - cpu_before["cpu_s"]
    analyzer = acct(o["acct"], int(o["acct-offset"]))
    procs, pss, rss = max_sample(o["samples"])
    row = {
        "side": o["side"],
        "workload": o["workload"],
        "c": int(o["c"]),
        "jobs": len(jobs),
        "acknowledged": len(acked),
        "complete": len(complete),
        "duplicated_jobs": sum(1 for r in result if r["duplicated"] > 0),
        "jobs_per_s": len(complete) / span if span == span and span > 0 else float("nan"),
        "submit_p50_ms": summary["p50_ms"],
        "submit_p99_ms": summary["p99_ms"],
        "e2e_p50_ms": percentile(e2e, 50),
        "e2e_p99_ms": percentile(e2e, 99),
        "pipeline_cpu_ms_per_job": (cpu - analyzer["cpu_s"]) * 1000 / max(1, len(complete)),
        "analyzer_cpu_ms_per_job": analyzer["cpu_s"] * 1000 / max(1, analyzer["runs"]),
        "analyzer_runs": analyzer["runs"],
        "analyzer_failed": analyzer["failed"],
        "procs_max": procs,
        "pss_max_mib": pss / 1024,
        "rss_max_mib": rss / 1024,
        "client_cpu_s": summary["client_cpu_s"],
        "errors": summary["errors"],
        "first_errors": summary.get("first_errors", []),
        # A long-lived process that exited during the row takes its CPU with it.
        "cpu_missing_pids": cpu_after["missing"],
    }
    with open(o["out"], "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row))


FAULT_OPTS = {
    "side": None,
    "fault": None,
    "jobs": None,
    "stats-before": None,
    "stats": None,
    "analyzer": None,
    "exclude": "",
    "cache": None,
    "earlier-prefix": None,
    "fault-prefix": None,
    "fault-time": None,
    "states": "",
    "note": "",
    "out": None,
}


def cmd_fault(args):
    o = options(args, FAULT_OPTS)
    jobs = read_jobs(o["jobs"])
    stats = json.load(open(o["stats"]))
    before = json.load(open(o["stats-before"]))
    exclude = [x for x in o["exclude"].replace(",", " ").split() if x]
    acked = [j for j in jobs if j["ok"]]
    result = classify(acked, stats, o["analyzer"], exclude, o["cache"])
    unacked_tags = {j["tag"] for j in jobs if not j["ok"]}
    fault_time = float(open(o["fault-time"]).read())
    # Acknowledged before the fault, and their last line not arrived by then: queued or running.
    in_flight = [
        j
        for j in acked
        if j["start"] + j["latency_ms"] / 1000 < fault_time
        and stats["tags"].get(j["tag"], {"last": float("inf")})["last"] > fault_time
    ]
    in_flight_tags = {j["tag"] for j in in_flight}
    # Jobs of earlier rows that got lines again after the fault: run (or forwarded) twice.
    resent = [
        tag
        for tag, s in stats["tags"].items()
        if tag.startswith(o["earlier-prefix"])
        and not tag.startswith(o["fault-prefix"])
        and s["lines"] > before["tags"].get(tag, {"lines": 0})["lines"]
    ]
    row = {
        "side": o["side"],
        "fault": o["fault"],
        "submitted": len(jobs),
        "acknowledged": len(acked),
        "acknowledged_before": sum(1 for j in acked if j["start"] + j["latency_ms"] / 1000 < fault_time),
        "in_flight": len(in_flight),
        "in_flight_complete": sum(r["state"] == "complete" for r in result if r["tag"] in in_flight_tags),
        "complete": sum(r["state"] == "complete" for r in result),
        "partial": sum(r["state"] == "partial" for r in result),
        "none": sum(r["state"] == "none" for r in result),
        "duplicated_jobs": sum(r["duplicated"] > 0 for r in result),
        "unacknowledged_with_lines": sum(1 for t in unacked_tags if t in stats["tags"]),
        "earlier_jobs_resent": len(resent),
        "states": json.loads(o["states"]) if o["states"] else None,
        "note": o["note"],
    }
    with open(o["out"], "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row))


def cmd_job_states(args):
    base, auth, path = args[0].rstrip("/"), args[1], args[2]
    states, forwarding, errors = {}, {}, {}
    for job in read_jobs(path):
        if not job["ok"]:
            continue
        try:
            status, body = http_get(f"{base}/jobs/{job['job_id']}", auth or None)
            record = json.loads(body) if status == 200 else {}
        except (OSError, ValueError) as e:
            status, record = 0, {}
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
        state = record.get("state", f"HTTP {status}")
        fwd = (record.get("forwarding") or {}).get("state", "-")
        states[state] = states.get(state, 0) + 1
        forwarding[fwd] = forwarding.get(fwd, 0) + 1
    print(json.dumps({"state": states, "forwarding": forwarding, "errors": errors}))


# --- the tables ----------------------------------------------------------------------------


def fmt(value, digits=1):
    if value is None or value != value:
        return "—"
    return f"{value:.{digits}f}"


HEADER = """## Brocapi-style pipeline vs pcapd: HTTP upload, analysis, syslog forwarding

Measured {date} on {cpus} CPUs ({cpu}), both sides in one run on the same machine
(`bench/brocapi.sh`, {counts}; load average before the run: {load}).

- **Brocapi-style** (bench/brocapi/, written from Brocapi's README): Flask under gunicorn with
  4 sync workers, RQ with 2 workers and {redis} on Debian's redis.conf; {python},
  {pkgs}.
- **pcapd**: {pcapd}; `[Http]` gateway, `backend = command`, `pool = 2`, `[Syslog]` over TCP.
- Both: the same analyzer command (`pcapd analyze -o {{out}} {{pcaps}}`, run through
  examples/cputime.rs), the same receiver (examples/syslogsink.rs: TCP, LF framing, RFC 3164,
  program `bro25_LOG`, HOSTNAME = the job's tag), the same load generator
  (examples/httpload.rs: `POST /submit/pcap`, one `file[]` and a unique `tag` per job, C
  clients, keep-alive where the server allows it).
- Small captures, round-robin: {small}. Large: {big}.
"""

FOOTER = """
jobs/s: jobs whose lines all arrived, over the time from the first submit to the last line.
Submit: from the start of the request to the whole answer (acknowledged jobs). Submit→last
line: from the start of the request to the arrival of the job's last syslog line. Pipeline
CPU: utime+stime of the side's long-lived processes (gunicorn master and workers, RQ workers,
redis-server; pcapd's daemon and workers) and of the children they reaped (RQ work horses,
analyzer commands), from /proc, after the row minus before, minus the analyzer commands' own
CPU as cputime recorded it (getrusage), per job. Processes and PSS: the side's process trees,
analyzer commands included while they run (/proc/PID/smaps_rollup; RSS summed over the
processes counts shared pages once per process), the maximum of samples every 0.25 s.
Incomplete: acknowledged jobs whose lines did not all arrive (the bench waits until no line
has arrived for {stall} s, {fault_stall} s in the fault run). Fault run: C = {fault_c}, submissions
paced at {fault_rate} per second, the fault once half the jobs are acknowledged; "in flight": acknowledged
before the fault and not all their lines arrived by then (queued or running); "earlier jobs
sent again": jobs of the previous rows whose lines arrived again after the fault."""


def ratio(a, b):
    return a / b if a == a and b == b and b else float("nan")


def targets(rows, idle, faults):
    """The issue's targets, pcapd against the Brocapi-style pipeline of the same run."""
    by = {(r["side"], r["workload"], r["c"]): r for r in rows}
    keys = sorted({(r["workload"], r["c"]) for r in rows}, key=lambda k: (k[0] != "small", k[1]))
    out = []
    mark = lambda ok: "✔" if ok else "✘"
    for w, c in keys:
        b, p = by.get(("Brocapi-style", w, c)), by.get(("pcapd", w, c))
        if b and p:
            x = ratio(p["jobs_per_s"], b["jobs_per_s"])
            out.append(
                f"- jobs/s, {w} captures, C = {c}: {fmt(p['jobs_per_s'])} vs {fmt(b['jobs_per_s'])}"
                f" = **{fmt(x, 2)}×** (target ≥ 1.2×) {mark(x >= 1.2)}"
            )
    p_rows = [r for r in rows if r["side"] == "pcapd"]
    if p_rows:
        worst = max(r["pipeline_cpu_ms_per_job"] for r in p_rows)
        out.append(f"- pipeline CPU per job, pcapd, worst row: **{fmt(worst, 2)} ms** (target ≤ 1 ms) {mark(worst <= 1)}")
        c64 = [r for r in p_rows if r["workload"] == "small" and r["c"] == 64]
        if c64:
            p99 = c64[0]["submit_p99_ms"]
            out.append(f"- submit p99 at C = 64, pcapd: **{fmt(p99, 2)} ms** (target ≤ 10 ms) {mark(p99 <= 10)}")
    idle_by = {}
    for r in idle:
        idle_by.setdefault(r["side"], r)
    if "pcapd" in idle_by:
        n = idle_by["pcapd"]["count"]
        out.append(f"- pcapd processes when idle: **{n}** (target pool + 1 = 3) {mark(n <= 3)}")
    if "pcapd" in idle_by and "Brocapi-style" in idle_by:
        x = ratio(idle_by["pcapd"]["pss_kb"], idle_by["Brocapi-style"]["pss_kb"])
        out.append(f"- memory when idle (PSS): pcapd **{fmt(x * 100)}%** of the Brocapi-style pipeline's (target ≤ 25%) {mark(x <= 0.25)}")
        pm = max((r["pss_max_mib"] for r in rows if r["side"] == "pcapd"), default=float("nan"))
        bm = max((r["pss_max_mib"] for r in rows if r["side"] == "Brocapi-style"), default=float("nan"))
        x = ratio(pm, bm)
        out.append(f"- memory under load (largest PSS of any row): {fmt(pm)} vs {fmt(bm)} MiB = **{fmt(x * 100)}%** (target ≤ 25%) {mark(x <= 0.25)}")
    for r in faults:
        if r["side"] == "pcapd":
            lost = r["acknowledged"] - r["complete"]
            out.append(f"- fault run, pcapd: **{lost}** acknowledged jobs without all their lines (target 0) {mark(lost == 0)}")
    return out


def cmd_report(args):
    rows, faults, idle, meta = [], [], [], {}
    with open(args[0]) as f:
        for line in f:
            r = json.loads(line)
            kind = r.pop("kind", "row")
            {"row": rows, "fault": faults, "idle": idle, "meta": []}[kind].append(r)
            if kind == "meta":
                meta.update(r)
    print(HEADER.format(**{k: str(v).strip() for k, v in meta.items()}))
    print(
        "| side | captures | C | jobs | jobs/s | submit p50 ms | submit p99 ms "
        "| submit→last line p50 ms | p99 ms | pipeline CPU ms/job | analyzer CPU ms/job "
        "| processes (max) | PSS MiB (max) | not acknowledged | incomplete |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['side']} | {r['workload']} | {r['c']} | {r['jobs']} | {fmt(r['jobs_per_s'])} "
            f"| {fmt(r['submit_p50_ms'], 2)} | {fmt(r['submit_p99_ms'], 2)} | {fmt(r['e2e_p50_ms'])} "
            f"| {fmt(r['e2e_p99_ms'])} | {fmt(r['pipeline_cpu_ms_per_job'], 2)} "
            f"| {fmt(r['analyzer_cpu_ms_per_job'], 2)} | {r['procs_max']} | {fmt(r['pss_max_mib'])} "
            f"| {r['jobs'] - r['acknowledged']} | {r['acknowledged'] - r['complete']} |"
        )
    if idle:
        print()
        print("| side | when | processes | PSS MiB | RSS MiB (summed) |")
        print("|---|---|---:|---:|---:|")
        for r in idle:
            print(f"| {r['side']} | idle, {r['what']} | {r['count']} | {fmt(r['pss_kb'] / 1024)} | {fmt(r['rss_kb'] / 1024)} |")
    if faults:
        print()
        print(
            "| side | fault | submitted | acknowledged | all lines arrived | some lines "
            "| no line | in flight at the fault (of them complete) | acknowledged jobs with lines twice "
            "| earlier jobs sent again | not acknowledged but ran |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in faults:
            print(
                f"| {r['side']} | {r['fault']} | {r['submitted']} | {r['acknowledged']} "
                f"| {r['complete']} | {r['partial']} | {r['none']} "
                f"| {r['in_flight']} ({r['in_flight_complete']}) | {r['duplicated_jobs']} "
                f"| {r['earlier_jobs_resent']} | {r['unacknowledged_with_lines']} |"
            )
        print()
        for r in faults:
            if r.get("note"):
                print(f"- {r['side']}: {r['note']}")
            if r.get("states"):
                print(f"- {r['side']}: the acknowledged jobs' records afterwards (`GET /jobs/ID`): {json.dumps(r['states'])}")
    t = targets(rows, idle, faults)
    if t:
        print()
        print("### Against the targets (issue 7)")
        print()
        print("\n".join(t))
    print(FOOTER.format(**meta))


COMMANDS = {
    "free-port": cmd_free_port,
    "tree": cmd_tree,
    "sample": cmd_sample,
    "cpu": cmd_cpu,
    "acct": cmd_acct,
    "stats": cmd_stats,
    "quiet": cmd_quiet,
    "wait-tcp": cmd_wait_tcp,
    "wait-http": cmd_wait_http,
    "wait": cmd_wait,
    "row": cmd_row,
    "fault": cmd_fault,
    "job-states": cmd_job_states,
    "report": cmd_report,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](sys.argv[2:])
