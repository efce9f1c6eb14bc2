"""The network guard used by the smoke repro really refuses and records non-loopback access."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

GUARD = Path(__file__).resolve().parent / "netguard"

PROBE = """
import socket, sys
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port), timeout=5); s.close()       # loopback: allowed
for target in (("203.0.113.7", 80),):                                        # TEST-NET-3: refused
    try:
        socket.create_connection(target, timeout=1)
    except OSError as exc:
        print("refused", exc.errno)
try:
    socket.getaddrinfo("example.com", 443)
except socket.gaierror:
    print("dns refused")
"""


def test_guard_refuses_and_records_outside_loopback(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    threading.Thread(target=lambda: server.accept()[0].close(), daemon=True).start()
    log = tmp_path / "net.log"
    env = {**os.environ, "PYTHONPATH": str(GUARD), "STAGETRACK_NETGUARD_LOG": str(log)}
    out = subprocess.run([sys.executable, "-c", PROBE, str(server.getsockname()[1])], env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    server.close()
    assert "refused 101" in out and "dns refused" in out
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    assert "connect ('203.0.113.7', 80)" in lines[0] and "getaddrinfo 'example.com'" in lines[1]
