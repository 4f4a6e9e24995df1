"""A real Kepler for the SDK's tests: `kepler-testnet` (the fixture internet on loopback)
and `kepler serve` on a SQLite file, started once per session.

Binaries come from `KEPLER_BIN` and `KEPLER_TESTNET_BIN`, defaulting to the repository's
`target/debug` (which `cargo test` builds before the Python tests run).
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]

# Tight limits on three tiers so each 429 is reachable in a couple of calls:
# starter's monthly cap; scale's per-key hour and account day (two keys open the breaker).
# Growth keeps its defaults; enterprise keeps force_fresh, which makes any run cold.
TIER_OVERRIDES = """
[tiers.starter]
monthly_cold_cap = 1

[tiers.scale]
key_hourly_cold_limit = 1
account_daily_cold_limit = 2
"""


def _binary(env: str, name: str) -> Path:
    path = Path(os.environ.get(env) or REPO / "target" / "debug" / name)
    if not path.is_file():
        pytest.fail(f"{path} is missing: build it (cargo build -p {name}) or set {env}", pytrace=False)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _await_ready_line(process: subprocess.Popen[str], log: Path) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        readable, _, _ = select.select([process.stdout], [], [], 0.5)
        if readable:
            line = process.stdout.readline()
            if line.strip() == "ready":
                return
            if line == "":
                break
        if process.poll() is not None:
            break
    pytest.fail(f"kepler-testnet did not print ready:\n{log.read_text()}", pytrace=False)


@dataclass
class Kepler:
    """The running server and the admin commands that provision it."""

    base_url: str
    binary: Path
    config: Path

    def admin(self, *args: str) -> dict[str, Any]:
        done = subprocess.run(
            [str(self.binary), "--config", str(self.config), "admin", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        document: dict[str, Any] = json.loads(done.stdout)
        return document

    def account(self, tier: str) -> str:
        account_id: str = self.admin("account", "create", "--name", f"sdk-{tier}", "--tier", tier)["account_id"]
        return account_id

    def key(self, account_id: str, *, sandbox: bool = False) -> str:
        created = self.admin("key", "create", "--account", account_id, *(["--sandbox"] if sandbox else []))
        key: str = created["key"]
        assert key.startswith("ki_test_" if sandbox else "ki_live_")
        return key

    def live_key(self, tier: str) -> str:
        """A live key on a new account of this tier."""
        return self.key(self.account(tier))


@pytest.fixture(scope="session")
def kepler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kepler]:
    kepler_bin = _binary("KEPLER_BIN", "kepler")
    testnet_bin = _binary("KEPLER_TESTNET_BIN", "kepler-testnet")
    home = tmp_path_factory.mktemp("kepler")
    engine = home / "engine.toml"

    testnet_log = home / "testnet.log"
    with testnet_log.open("w") as log:
        testnet = subprocess.Popen(
            [str(testnet_bin), "--engine-config", str(engine)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    server: subprocess.Popen[Any] | None = None
    try:
        _await_ready_line(testnet, testnet_log)
        port = _free_port()
        config = home / "kepler.toml"
        config.write_text(
            engine.read_text()
            + f'\n[server]\nlisten = "127.0.0.1:{port}"\n'
            + f'\n[database]\nurl = "sqlite://{home / "kepler.db"}"\n'
            # A short grace so that a run still in flight (slow.test) does not hold up teardown.
            + '\n[workers]\njob_timeout = "30s"\nshutdown_grace = "1s"\n'
            + TIER_OVERRIDES
        )
        server_log = home / "server.log"
        with server_log.open("w") as log:
            server = subprocess.Popen(
                [str(kepler_bin), "--config", str(config), "serve"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                pytest.fail(f"kepler serve exited:\n{server_log.read_text()}", pytrace=False)
            try:
                if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"kepler serve not ready in 30 s:\n{server_log.read_text()}", pytrace=False)
            time.sleep(0.1)
        yield Kepler(base_url=base_url, binary=kepler_bin, config=config)
    finally:
        if server is not None:
            _stop(server)
        _stop(testnet)


@pytest.fixture(scope="session")
def sandbox_key(kepler: Kepler) -> str:
    return kepler.key(kepler.account("growth"), sandbox=True)


@pytest.fixture(scope="session")
def growth_key(kepler: Kepler) -> str:
    return kepler.live_key("growth")


@pytest.fixture(scope="session")
def enterprise_key(kepler: Kepler) -> str:
    """Enterprise may force_fresh: every run it asks for is cold, whatever ran before."""
    return kepler.live_key("enterprise")


@pytest.fixture
def new_domain() -> Callable[[], str]:
    """Makes names nobody has scored: each is admitted as a cold call (and counted),
    then its run fails as unresolvable."""
    return lambda: f"sdk-{uuid.uuid4().hex[:12]}.test"
