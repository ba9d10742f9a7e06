"""Links to the trace viewers (XProf, Perfetto) as the browser must reach them.

A viewer's link names the address the server listens on, as this machine reaches it (127.0.0.1
for a wildcard). That is right on loopback, the default. When the dashboard is served to the
network (`RELU_LAB_HOST`, `make run HOST=0.0.0.0`), a browser on another machine must use the
host it used for the dashboard itself, with the viewer's port: the request's Host header.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

OFFLINE_TOOLS = ("XProf (for .xplane.pb traces) offline: its **trace viewer** works; its **Overview** and **Framework Op "
                 "Stats** pages render empty (they load Google Charts from the internet).")


def is_loopback(serve_host: str) -> bool:
    """True when servers bound to ``serve_host`` are reachable from this machine only."""
    host = serve_host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a wildcard ("", 0.0.0.0, ::) or a name: served beyond this machine


def browser_hostname(host_header: str | None) -> str | None:
    """The host part of an HTTP Host header ('lab.example:8501' -> 'lab.example', '[::1]:8501'
    -> '[::1]'); None when absent or unusable."""
    header = (host_header or "").strip()
    if not header or any(c in header for c in "/?#@ "):
        return None
    try:
        hostname = urlsplit(f"//{header}").hostname
    except ValueError:
        return None
    if not hostname:
        return None
    return f"[{hostname}]" if ":" in hostname else hostname


def browser_link(link: str, host_header: str | None, serve_host: str) -> str:
    """``link`` (a viewer URL naming this machine's address for it) rewritten to the host the
    browser used, keeping the viewer's scheme and port, when ``serve_host`` is not loopback;
    every copy of the address is replaced (Perfetto's link carries the trace's URL inside it).
    Unchanged on loopback or without a usable Host header."""
    hostname = browser_hostname(host_header)
    if is_loopback(serve_host) or hostname is None:
        return link
    parts = urlsplit(link)
    if not parts.netloc or parts.port is None:
        return link
    return link.replace(f"//{parts.netloc}", f"//{hostname}:{parts.port}")


def exposure_warning(serve_host: str, host_header: str | None) -> str | None:
    """The one-line warning for a dashboard served beyond loopback, None on loopback."""
    if is_loopback(serve_host):
        return None
    where = browser_hostname(host_header) or serve_host or "this machine's addresses"
    return (f"Served to the network (RELU_LAB_HOST={serve_host or '0.0.0.0'}): traces opened in "
            f"XProf or Perfetto are readable by anyone who can reach {where}.")
