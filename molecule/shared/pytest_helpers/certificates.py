"""The certificate nginx serves for a name, read from the test host."""

from __future__ import annotations

import socket
import ssl
import time
from typing import Callable

from cryptography import x509


def certificate_probes(name: str) -> tuple[Callable[[str, str], x509.Certificate], Callable[[str, str, int], bool]]:
    """served_certificate(ip, cafile) and served_serial_changes(ip, cafile, before) for name."""

    def served_serial_changes(ip: str, cafile: str, before: int) -> bool:
        """nginx's old workers finish their connections after a reload: wait a little."""
        for _ in range(20):
            if served_certificate(ip, cafile).serial_number != before:
                return True
            time.sleep(0.5)
        return False

    def served_certificate(ip: str, cafile: str) -> x509.Certificate:
        context = ssl.create_default_context(cafile=cafile)
        with socket.create_connection((ip, 443), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=name) as tls:
                return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))

    return served_certificate, served_serial_changes
