"""TCP between the host and the cluster's network namespaces, without an address or a route in the host's.

`python -m tests.node.forwarder --map LISTEN=CONNECT ... [--connect-proxy SOCKET=NETNS]`, where LISTEN and
CONNECT are `NETNS/IP:PORT` (NETNS `-` is the namespace the forwarder started in, the host's):

- a `--map` listens in one namespace and connects each client to the other. The host's tests reach the API
  server of the cluster on 127.0.0.1, and the nodes and pods reach it (and S3) on the hub's address.
- `--connect-proxy` serves HTTP CONNECT on a unix socket and dials the target inside NETNS: the API server's
  egress to the cluster (`kubectl logs` and exec to kubelets, webhooks) goes through it.

A socket keeps the network namespace it was created in, so one process serves every namespace: it enters a
namespace (setns, which moves only the calling thread) to create a socket, then returns.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ipaddress
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
HOST = "-"
READY = "ready"  # printed on stdout once every socket listens
CONNECT_TIMEOUT = 10.0

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_libc = ctypes.CDLL(None, use_errno=True)
_HOME = os.open("/proc/self/ns/net", os.O_RDONLY)


@dataclass(frozen=True)
class Endpoint:
    netns: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        netns, _, addr = text.rpartition("/")
        host, _, port = addr.rpartition(":")
        return cls(netns or HOST, host, int(port))


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def inside(netns: str) -> Iterator[None]:
    """Sockets created in this block belong to `netns` (HOST: the forwarder's own)."""
    if netns == HOST:
        yield
        return
    fd = os.open(NETNS_DIR / netns, os.O_RDONLY)
    try:
        _setns(fd)
        try:
            yield
        finally:
            _setns(_HOME)
    finally:
        os.close(fd)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(1 << 16):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


async def _dial(target: Endpoint) -> Stream:
    # Addresses only: a name would be looked up with the host's resolver, outside the cluster's namespaces.
    ipaddress.ip_address(target.host)
    with inside(target.netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        connecting = asyncio.get_running_loop().sock_connect(sock, (target.host, target.port))
        await asyncio.wait_for(connecting, CONNECT_TIMEOUT)
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


async def _splice(client: Stream, upstream: Stream) -> None:
    try:
        await asyncio.gather(_pipe(client[0], upstream[1]), _pipe(upstream[0], client[1]))
    finally:
        for _, writer in (client, upstream):
            writer.close()


def _forward(target: Endpoint) -> object:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream = await _dial(target)
        except (OSError, TimeoutError) as exc:
            print(f"forward to {target}: {exc}", file=sys.stderr, flush=True)
            writer.close()
            return
        await _splice((reader, writer), upstream)

    return serve


def _connect_proxy(netns: str) -> object:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT)
            method, authority, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            if method != "CONNECT":
                raise ValueError(f"{method}: only CONNECT is served")
            host, _, port = authority.rpartition(":")
            upstream = await _dial(Endpoint(netns, host.strip("[]"), int(port)))
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
            print(f"connect proxy: {exc}", file=sys.stderr, flush=True)
            with contextlib.suppress(OSError):
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            writer.close()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await _splice((reader, writer), upstream)

    return serve


async def _main(maps: list[tuple[Endpoint, Endpoint]], proxies: list[tuple[str, str]]) -> None:
    servers = []
    for listen, target in maps:
        with inside(listen.netns):
            sock = socket.create_server((listen.host, listen.port), reuse_port=False)
        servers.append(await asyncio.start_server(_forward(target), sock=sock))  # type: ignore[arg-type]
    for path, netns in proxies:
        servers.append(await asyncio.start_unix_server(_connect_proxy(netns), path=path))  # type: ignore[arg-type]
    print(READY, flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def start(
    maps: list[tuple[str, str]], proxies: list[tuple[Path, str]] | None = None, log: Path | None = None
) -> subprocess.Popen[str]:
    """A forwarder process of its own session (stop it with cluster.stop_processes); returns once it listens.
    `maps`: (LISTEN, CONNECT) endpoints as --map takes them; `proxies`: (socket, netns) as --connect-proxy;
    `log`: where its complaints go (a dial that failed), else the caller's stderr."""
    args = [f"--map={listen}={connect}" for listen, connect in maps]
    args += [f"--connect-proxy={path}={netns}" for path, netns in proxies or []]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.node.forwarder", *args],
        stdout=subprocess.PIPE,
        stderr=log.open("ab") if log else None,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != READY:
        proc.kill()
        raise RuntimeError(f"the forwarder did not start (exit {proc.wait()}); its arguments: {args}")
    return proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.node.forwarder")
    parser.add_argument("--map", action="append", default=[], help="NETNS/IP:PORT=NETNS/IP:PORT (listen=connect)")
    parser.add_argument("--connect-proxy", action="append", default=[], help="SOCKET=NETNS")
    args = parser.parse_args(argv)
    maps = [(Endpoint.parse(a), Endpoint.parse(b)) for a, b in (m.split("=", 1) for m in args.map)]
    proxies = [(p, n) for p, n in (m.split("=", 1) for m in args.connect_proxy)]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(maps, proxies))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
