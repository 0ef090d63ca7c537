"""A throwaway PostgreSQL server on 127.0.0.1 for tests: initdb into a temporary folder, start it on a free
port with password authentication, and stop it afterwards. `.ci/run` installs Debian's postgresql and sets
MCP_TRADER_REQUIRE_POSTGRES=1, so there a missing server fails the tests instead of skipping them."""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

USER, PASSWORD, DATABASE = "trader", "pg-s3cret-pw", "studies"


def _bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _as_owner(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres account there."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_url() -> Iterator[str]:
    bindir = _bindir()
    if bindir is None:
        message = "no PostgreSQL server binaries (initdb) on this machine"
        if os.environ.get("MCP_TRADER_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message + "; .ci/run installs them")
    root = Path(tempfile.mkdtemp(prefix="mcp-trader-pg-"))
    root.chmod(0o755)
    data, password_file = root / "data", root / "password"
    password_file.write_text(PASSWORD)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for path in (root, password_file):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = _free_port()

    def run(program: str, *args: str) -> None:
        subprocess.run(_as_owner([str(bindir / program), *args]), check=True, capture_output=True, text=True,
                       timeout=120)

    run("initdb", "-D", str(data), "-U", USER, "--auth=scram-sha-256", f"--pwfile={password_file}", "-E", "UTF8")
    run("pg_ctl", "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-o",
        f"-p {port} -c listen_addresses=127.0.0.1 -k {root}", "start")
    try:
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        subprocess.run([str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, "-d", "postgres",
                        "-c", f"CREATE DATABASE {DATABASE}"], check=True, capture_output=True, env=env, timeout=60)
        yield f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"
    finally:
        subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
