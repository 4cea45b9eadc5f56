"""The guard itself must trip, in this process and in children, or the offline rule is unenforced."""

import socket
import subprocess
import sys

import pytest


def test_guard_blocks_outbound_connect_in_process() -> None:
    with pytest.raises(OSError, match="blocked by the Vigie test guard"):
        socket.create_connection(("93.184.216.34", 80), timeout=1)


def test_guard_blocks_name_lookup() -> None:
    with pytest.raises(OSError, match="blocked by the Vigie test guard"):
        socket.getaddrinfo("pypi.org", 443)


def test_guard_allows_loopback() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=1)
    client.close()
    server.close()


def test_guard_is_active_in_child_processes() -> None:
    code = "import socket\ntry:\n    socket.getaddrinfo('github.com', 443)\nexcept OSError as e:\n    print(e)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "blocked by the Vigie test guard" in out
