#!/usr/bin/env python3
"""A loopback TCP proxy that delays every new connection: for dbreg's latency benchmark.

    delay-proxy.py --upstream-port PORT [--listen-port 0] [--delay-ms 200]
                   [--lifetime 300] [--port-file FILE]

It listens on 127.0.0.1, and for each accepted connection it sleeps --delay-ms, then
connects to 127.0.0.1:--upstream-port and copies bytes both ways until either side
closes.  Whatever the client sends meanwhile waits in the socket buffer, so a
PostgreSQL login through it costs one extra --delay-ms, as a far-away server would.

Bounded: it only talks to loopback addresses, it exits by itself after --lifetime
seconds (or on SIGTERM / SIGINT), and it accepts at most --max-clients connections at
once.  With --listen-port 0 it picks a free port; --port-file receives the port it
listens on once it is ready (written atomically), and the same line goes to stdout.
Python 3.7+ standard library only.
"""

import argparse
import asyncio
import ipaddress
import os
import signal
import sys

COPY_CHUNK = 65536


def loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_args(argv):
    p = argparse.ArgumentParser(description="delay each new TCP connection, then relay it (loopback only)")
    p.add_argument("--listen-host", default="127.0.0.1")
    p.add_argument("--listen-port", type=int, default=0, help="0 picks a free port (default)")
    p.add_argument("--upstream-host", default="127.0.0.1")
    p.add_argument("--upstream-port", type=int, required=True)
    p.add_argument("--delay-ms", type=float, default=200.0, help="delay before relaying a new connection (default 200)")
    p.add_argument("--lifetime", type=float, default=300.0, help="exit after this many seconds (default 300)")
    p.add_argument("--max-clients", type=int, default=2000, help="connections relayed at once (default 2000)")
    p.add_argument("--port-file", help="write the listening port here once ready")
    a = p.parse_args(argv)
    if not loopback(a.listen_host) or not loopback(a.upstream_host):
        p.error("only loopback addresses are allowed")
    if not 0 <= a.listen_port <= 65535 or not 1 <= a.upstream_port <= 65535:
        p.error("ports must be within 1..65535 (0 to pick the listening port)")
    if a.delay_ms < 0 or not 0 < a.lifetime <= 24 * 3600 or a.max_clients < 1:
        p.error("--delay-ms >= 0, 0 < --lifetime <= 86400, --max-clients >= 1")
    return a


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(COPY_CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        # Pass the end of stream on; the other direction may still be running.
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError, RuntimeError):
            pass


def close(writer):
    try:
        writer.close()
    except (ConnectionError, OSError, RuntimeError):
        pass


class Proxy:
    def __init__(self, args):
        self.args = args
        self.slots = asyncio.Semaphore(args.max_clients)
        self.accepted = 0
        self.failed = 0

    async def handle(self, c_reader, c_writer):
        self.accepted += 1
        async with self.slots:
            u_writer = None
            try:
                await asyncio.sleep(self.args.delay_ms / 1000.0)
                u_reader, u_writer = await asyncio.open_connection(self.args.upstream_host, self.args.upstream_port)
                up = asyncio.ensure_future(pipe(c_reader, u_writer))
                down = asyncio.ensure_future(pipe(u_reader, c_writer))
                # The server closes after the client's Terminate; either way, once the
                # server side is done nothing more can come.
                done, pending = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
                if down not in done:
                    try:
                        await asyncio.wait_for(asyncio.shield(down), timeout=5)
                    except asyncio.TimeoutError:
                        pass
                for t in (up, down):
                    t.cancel()
            except (ConnectionError, OSError):
                self.failed += 1
            finally:
                close(c_writer)
                if u_writer is not None:
                    close(u_writer)


async def main(args):
    loop = asyncio.get_running_loop()
    proxy = Proxy(args)
    server = await asyncio.start_server(proxy.handle, args.listen_host, args.listen_port,
                                        backlog=4096, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print(port, flush=True)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.call_later(args.lifetime, stop.set)
    async with server:
        await stop.wait()
    print("delay-proxy: %d connections accepted, %d upstream failures" % (proxy.accepted, proxy.failed),
          file=sys.stderr)


if __name__ == "__main__":
    try:
        asyncio.run(main(parse_args(sys.argv[1:])))
    except KeyboardInterrupt:
        pass
