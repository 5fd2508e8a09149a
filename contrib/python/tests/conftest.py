"""Fixtures: certificates and real pcapd daemons (see support.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Callable, Dict, Iterator, List

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import support  # noqa: E402

if importlib.util.find_spec("pcapd_client") is None:
    support.missing("the pcapd_client package (pip install ./contrib/python into the test venv)")


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Dict[str, Path]]:
    d = tmp_path_factory.mktemp("certs")
    return {
        "daemon": support.make_cert(d, "daemon"),
        "other": support.make_cert(d, "other"),
    }


@pytest.fixture
def make_daemon(
    tmp_path: Path, certs: Dict[str, Dict[str, Path]], request: pytest.FixtureRequest
) -> Iterator[Callable[..., support.Daemon]]:
    """``make_daemon(pool=…, backend=…, command=…, extra_global=…)`` → a started daemon,
    stopped with SIGTERM by pid at the end of the test."""
    started: List[support.Daemon] = []

    def make(name: str = "pcapd", cert: Dict[str, Path] = None, **kw) -> support.Daemon:  # type: ignore[assignment]
        d = support.Daemon(tmp_path / name, cert or certs["daemon"], **kw)
        started.append(d)
        return d.start()

    yield make
    for d in started:
        try:
            d.stop()
        except AssertionError as e:
            print(e)
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for d in started:
            print(f"---- pcapd stderr ({d.dir}) ----\n{d.stderr()[-4000:]}")


@pytest.fixture
def daemon(make_daemon: Callable[..., support.Daemon]) -> support.Daemon:
    """A builtin-backend daemon with a pool of 2."""
    return make_daemon()


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    if support.FIGURES:
        terminalreporter.section("pcapd client figures")
        for line in support.FIGURES:
            terminalreporter.write_line(line)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
