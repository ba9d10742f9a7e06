"""Listening sockets of a process tree, and connection attempts on this machine's other
addresses: the checks that a server the product starts listens on loopback only."""

from __future__ import annotations

import ipaddress
import socket

import psutil

LOOPBACK = {"127.0.0.1", "::1"}


def listening(pid: int) -> list[tuple[str, int]]:
    """(ip, port) of every TCP socket in LISTEN state held by ``pid`` or its descendants."""
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    found = set()
    for proc in tree:
        try:
            conns = proc.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found |= {(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN}
    return sorted(found)


def other_addresses() -> list[str]:
    """This machine's non-loopback, non-link-local IP addresses (IPv4 and IPv6)."""
    found = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            ip = ipaddress.ip_address(a.address.split("%")[0])
            if not (ip.is_loopback or ip.is_link_local):
                found.append(str(ip))
    return found


def accepts(ip: str, port: int) -> bool:
    """True when a TCP connection to ip:port is accepted (refused, unreachable or timed out:
    False)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        try:
            s.connect((ip, port))
        except OSError:
            return False
    return True


def assert_loopback_only(pid: int, expected_ports: set[int], only: bool = False
                         ) -> list[tuple[str, int]]:
    """Every listening socket of ``pid``'s tree (with ``only``: those on ``expected_ports``, for
    a server inside the test's own process) is on loopback, the expected ports are among them,
    and a connection to each port on every other address of this machine is refused."""
    sockets = [(ip, port) for ip, port in listening(pid)
               if not only or port in expected_ports]
    assert expected_ports <= {port for _, port in sockets}, (sockets, expected_ports)
    wide = [(ip, port) for ip, port in sockets if ip not in LOOPBACK]
    # On a machine with no other address, the bound addresses above are the whole check.
    accepted = [(ip, port) for ip in other_addresses() for _, port in sockets
                if accepts(ip, port)]
    assert not wide and not accepted, \
        f"listening beyond loopback: {wide}; accepted a connection on: {accepted}"
    return sockets
