"""Where clients can reach a gateway that listens on every address (``--host 0.0.0.0``).

Layer: serve. ``0.0.0.0`` and ``::`` are addresses to bind, not to connect to: the
banner printed ``http://0.0.0.0:11435``, which a client on this machine may or may
not accept and one elsewhere cannot use. The banner now names loopback for this
machine, and these for the others.

The addresses are read from the machine's own interfaces (Linux: the ``SIOCGIFADDR``
ioctl, ``/proc/net/if_inet6``), never by resolving the host name: that may ask a DNS
server, and cortan contacts no host the user did not configure. Elsewhere the list is
empty and the banner says so in words.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

WILDCARDS = frozenset({"0.0.0.0", "::", ""})
_SIOCGIFADDR = 0x8915  # Linux's ioctl for an interface's IPv4 address
_IF_INET6 = Path("/proc/net/if_inet6")
_GLOBAL_SCOPE = "00"


def get_addresses(host: str) -> list[str]:
    """This machine's addresses (not loopback) a gateway bound to ``host`` answers on."""
    if host not in WILDCARDS:
        return []
    found = _ipv4_addresses()
    if ":" in host:  # a dual-stack socket answers on both families
        found += _ipv6_addresses()
    return list(dict.fromkeys(found))


def _ipv4_addresses() -> list[str]:
    try:
        import fcntl

        names = [name for _, name in socket.if_nameindex()]
    except (ImportError, OSError, AttributeError):
        return []
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for name in names:
            request = struct.pack("256s", name.encode()[:15])
            try:
                packed = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
            except OSError:  # no IPv4 address on it, or not Linux's ioctl
                continue
            address = socket.inet_ntoa(packed[20:24])
            if not address.startswith("127."):
                found.append(address)
    return found


def _ipv6_addresses() -> list[str]:
    """Global IPv6 addresses: ``/proc/net/if_inet6`` lines are ``hex index prefix scope
    flags name``."""
    try:
        lines = _IF_INET6.read_text(encoding="ascii").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) == 6 and fields[3] == _GLOBAL_SCOPE and len(fields[0]) == 32:
            packed = bytes.fromhex(fields[0])
            found.append(socket.inet_ntop(socket.AF_INET6, packed))
    return found


def format_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
