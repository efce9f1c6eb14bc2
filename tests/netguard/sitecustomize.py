"""Network guard for tests: any socket use outside loopback is refused and recorded.

Put this folder first on PYTHONPATH (the smoke-repro test does) and set
STAGETRACK_NETGUARD_LOG to a file: every Python process of the run (dvc, its stage commands,
their workers) then refuses connections and DNS look-ups to non-loopback hosts, appending one
line per attempt to that file, which the test asserts is empty.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import traceback

_LOG = os.environ.get("STAGETRACK_NETGUARD_LOG")
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""}


def _is_local(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).split("%")[0]
    if host in _LOCAL_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def _record(kind: str, target: object) -> None:
    if _LOG:
        stack = "".join(traceback.format_stack(limit=12)[:-2]).replace("\n", " | ")
        with open(_LOG, "a", encoding="utf-8") as fh:
            fh.write(f"pid={os.getpid()} {kind} {target!r} :: {stack}\n")


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def _guard(sock: socket.socket, address: object, kind: str) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) and not _is_local(address[0]):
        _record(kind, address)
        raise OSError(101, f"network access disabled in tests: {kind} {address!r}")


def connect(self: socket.socket, address: object) -> None:
    _guard(self, address, "connect")
    return _connect(self, address)


def connect_ex(self: socket.socket, address: object) -> int:
    _guard(self, address, "connect_ex")
    return _connect_ex(self, address)


def _is_ip_literal(host: object) -> bool:
    try:
        ipaddress.ip_address(host.decode() if isinstance(host, bytes) else str(host).split("%")[0])
    except ValueError:
        return False
    return True


def getaddrinfo(host, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201 - socket's signature
    # numeric addresses resolve locally (connect() then decides); names need DNS: refused
    if not _is_local(host) and not _is_ip_literal(host):
        _record("getaddrinfo", host)
        raise socket.gaierror(socket.EAI_NONAME, f"DNS disabled in tests: {host!r}")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
socket.getaddrinfo = getaddrinfo
