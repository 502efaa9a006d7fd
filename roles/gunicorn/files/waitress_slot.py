"""Run a WSGI app with Waitress on a Unix socket, and stop it gracefully.

    <release venv>/bin/python waitress_slot.py --unix-socket PATH --threads N \
        --channel-timeout S --graceful-timeout S module:callable

(--listen HOST:PORT in place of --unix-socket serves on TCP: `make bench` runs the
live slot's command line that way, beside it.)

Installed by flask-vps's gunicorn role (flask_vps_app_server: waitress); runs with
the release's own interpreter, from the release's directory. waitress-serve exits
at once on SIGTERM, dropping the requests it is serving; here SIGTERM closes the
listening socket, lets every request already received finish (at most
--graceful-timeout seconds), then exits. Settings and secrets come from the
environment only, never from this command line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import time

from waitress import create_server
from waitress import wasyncore


def load(target: str):
    module_name, _, attribute = target.partition(":")
    sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    return getattr(module, attribute or "application")


def busy(server) -> bool:
    """A channel still has a request to answer or bytes to send."""
    return any(channel.requests or channel.request is not None or channel.total_outbufs_len
               for channel in list(server.active_channels.values()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--unix-socket")
    where.add_argument("--listen", help="HOST:PORT instead of a Unix socket (make bench)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--channel-timeout", type=int, default=120)
    parser.add_argument("--graceful-timeout", type=float, default=20)
    parser.add_argument("--backlog", type=int, default=1024)
    parser.add_argument("app")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    stopping: list[float] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(time.monotonic()))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(time.monotonic()))

    bind = {"unix_socket": args.unix_socket, "unix_socket_perms": "666"} if args.unix_socket else {"listen": args.listen}
    server = create_server(load(args.app), **bind, threads=args.threads, channel_timeout=args.channel_timeout,
                           backlog=args.backlog, ident="", clear_untrusted_proxy_headers=False)
    logging.info("Serving on %s with %s threads", f"unix:{args.unix_socket}" if args.unix_socket else args.listen,
                 args.threads)
    while not stopping:
        wasyncore.loop(timeout=0.5, map=server._map, count=1)

    # Stop accepting, then answer what was received.
    logging.info("SIGTERM: no new connections; finishing the requests received (at most %ss)", args.graceful_timeout)
    server.accepting = False
    server.del_channel()
    server.socket.close()
    deadline = stopping[0] + args.graceful_timeout
    while busy(server) and time.monotonic() < deadline:
        wasyncore.loop(timeout=0.1, map=server._map, count=1)
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
    if args.unix_socket:
        try:
            os.unlink(args.unix_socket)
        except FileNotFoundError:
            pass
    logging.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
