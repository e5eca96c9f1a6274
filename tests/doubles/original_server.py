"""A behavioural double of the original Go red-packet server, written from how the
original was seen to behave (DESIGN §2, issue 11), not from its source. It speaks our
wire protocol through hongbao.protocol, and:

- answers a SHAKE with a SEND_NOTICE in place of its SHAKE_RESULT when a sent packet
  waits in the user's SET (user_id % 256), and never pushes a notice unprompted;
- splits a sent packet into random shares that can be 0 cents;
- sends no CLAIM_RESULT for an unknown or already-claimed packet, and ignores the user id
  in CLAIM;
- is driven by the original's control API: ``/yaohongbao?qps=&sum=`` (``sum`` shake
  packets at ``qps`` per second) and ``/fahongbao?qps=&sum=&min=&max=`` (``sum`` sent
  packets, each waiting in the SET of a sender drawn from ``min..max``).

It keeps its own ``Totals`` for tests to balance against (also at ``/totals``). It does
not shed load. Run it alone with ``python -m tests.doubles.original_server``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import random
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aiohttp import web

from hongbao import protocol as p
from hongbao.pacing import SteadyRate

ORIGINAL_SETS = 256
SHARES_PER_PACKET = 3
GENERATOR_INTERVAL = 0.02
ANY_USER = (0, 2**32 - 1)


@dataclass
class Totals:
    logins: int = 0
    requests: int = 0  # shakes
    won: int = 0
    won_amount: int = 0
    none: int = 0
    generated: int = 0
    sent: int = 0
    sent_amount: int = 0
    notices: int = 0
    claims: int = 0  # answered
    claims_zero: int = 0
    claimed_amount: int = 0
    claims_ignored: int = 0  # unknown or already-claimed packets: no reply


@dataclass
class SentPacket:
    amount: int
    shares: list[int]  # handed out in claim order, whoever claims
    notices_left: int


@dataclass
class Options:
    seed: int | None = None
    shake_amount: tuple[int, int] = (1, 2000)
    send_amount: tuple[int, int] = (1, 20000)
    # Notices per sent packet: more than SHARES_PER_PACKET makes claims that get no reply.
    notices_per_packet: int = SHARES_PER_PACKET


def split_with_zeros(amount: int, parts: int, rng: random.Random) -> list[int]:
    """Random shares summing exactly to ``amount``; any of them may be 0."""
    cuts = sorted(rng.randint(0, amount) for _ in range(parts - 1))
    return [high - low for low, high in zip([0, *cuts], [*cuts, amount], strict=True)]


class OriginalServer:
    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        seed = self.options.seed
        self.totals = Totals()
        # Separate streams: the sent packets' shares do not depend on timing.
        self._shake_rng = random.Random(seed)
        self._send_rng = random.Random(None if seed is None else seed + 1)
        self._shake_sets: list[deque[tuple[int, int]]] = [deque() for _ in range(ORIGINAL_SETS)]
        self._send_sets: list[deque[int]] = [deque() for _ in range(ORIGINAL_SETS)]
        self._sent: dict[int, SentPacket] = {}
        self._next_set = 0
        self._next_shake_id = p.SHAKE_PACKET_ID_BASE
        self._next_send_id = p.SEND_PACKET_ID_BASE
        self._shake_rate = SteadyRate(0, 0, 0.0)
        self._send_rate = SteadyRate(0, 0, 0.0)
        self._senders = ANY_USER
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.AbstractServer | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.control = ""

    # ---- lifecycle ----
    async def start(self, host: str = "127.0.0.1", port: int = 0, control_port: int = 0) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: OriginalConnection(self), host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        app = web.Application()
        app.router.add_get("/yaohongbao", self._yaohongbao)
        app.router.add_get("/fahongbao", self._fahongbao)
        app.router.add_get("/totals", self._totals)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, control_port).start()
        control_host, bound_port = self._runner.addresses[0][:2]
        self.control = f"{control_host}:{bound_port}"
        task = loop.create_task(self._generate())
        self._tasks.add(task)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._server is not None:
            self._server.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- frames ----
    def shake(self, user: int) -> bytes:
        totals = self.totals
        totals.requests += 1
        index = user % ORIGINAL_SETS
        waiting = self._send_sets[index]
        if waiting:
            packet_id = waiting[0]
            packet = self._sent[packet_id]
            packet.notices_left -= 1
            if not packet.notices_left:
                waiting.popleft()
            totals.notices += 1
            return p.encode_send_notice(packet_id, packet.amount, (user, 0, 0), now())
        queue = self._shake_sets[index]
        if not queue:
            totals.none += 1
            return p.encode_shake_result(user, p.RESULT_NONE, 0, 0, now())
        packet_id, amount = queue.popleft()
        totals.won += 1
        totals.won_amount += amount
        return p.encode_shake_result(user, p.RESULT_WON, packet_id, amount, now())

    def claim(self, packet_id: int) -> bytes | None:
        """The next share of the packet, whoever claims; None (no reply at all) for an
        unknown or already-claimed packet."""
        totals = self.totals
        packet = self._sent.get(packet_id)
        if packet is None or not packet.shares:
            totals.claims_ignored += 1
            return None
        share = packet.shares.pop(0)
        totals.claims += 1
        totals.claimed_amount += share
        totals.claims_zero += share == 0
        return p.encode_claim_result(packet_id, share, now())

    # ---- generators ----
    async def _generate(self) -> None:
        while True:
            moment = time.time()
            for _ in range(self._shake_rate.due(moment)):
                self._generate_shake_packet()
            for _ in range(self._send_rate.due(moment)):
                self._send_packet()
            await asyncio.sleep(GENERATOR_INTERVAL)

    def _generate_shake_packet(self) -> None:
        amount = self._shake_rng.randint(*self.options.shake_amount)
        self._shake_sets[self._next_set].append((self._next_shake_id, amount))
        self._next_set = (self._next_set + 1) % ORIGINAL_SETS
        self._next_shake_id += 1
        self.totals.generated += 1

    def _send_packet(self) -> None:
        rng = self._send_rng
        sender = rng.randint(*self._senders)
        amount = rng.randint(*self.options.send_amount)
        packet_id = self._next_send_id
        self._next_send_id += 1
        shares = split_with_zeros(amount, SHARES_PER_PACKET, rng)
        self._sent[packet_id] = SentPacket(amount, shares, self.options.notices_per_packet)
        self._send_sets[sender % ORIGINAL_SETS].append(packet_id)
        self.totals.sent += 1
        self.totals.sent_amount += amount

    # ---- control API ----
    async def _yaohongbao(self, request: web.Request) -> web.Response:
        qps, total = query_ints(request, "qps", "sum")
        self._shake_rate = SteadyRate(qps, total, time.time())
        return web.json_response({"qps": qps, "sum": total})

    async def _fahongbao(self, request: web.Request) -> web.Response:
        qps, total, low, high = query_ints(request, "qps", "sum", "min", "max")
        self._senders = (low, high)
        self._send_rate = SteadyRate(qps, total, time.time())
        return web.json_response({"qps": qps, "sum": total, "min": low, "max": high})

    async def _totals(self, _request: web.Request) -> web.Response:
        return web.json_response(dataclasses.asdict(self.totals))


def now() -> int:
    return int(time.time())


def query_ints(request: web.Request, *names: str) -> list[int]:
    try:
        return [int(request.query[name]) for name in names]
    except (KeyError, ValueError):
        message = f"give integer query parameters {', '.join(names)}\n"
        raise web.HTTPBadRequest(text=message) from None


class OriginalConnection(asyncio.Protocol):
    def __init__(self, server: OriginalServer) -> None:
        self._server = server
        self._decoder = p.FrameDecoder()
        self._user: int | None = None
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        try:
            frames = self._decoder.feed(data)
        except p.ProtocolError:
            self._transport.abort()
            return
        for frame in frames:
            reply = self._reply(frame)
            if reply is not None:
                self._transport.write(reply)

    def _reply(self, frame: p.Frame) -> bytes | None:
        server = self._server
        if isinstance(frame, p.Login):
            self._user = frame.user_id
            server.totals.logins += 1
            return p.encode_login_ok(frame.user_id, now())
        if self._user is None:
            return None
        if isinstance(frame, p.Shake):
            return server.shake(self._user)
        if isinstance(frame, p.Claim):
            return server.claim(frame.packet_id)  # the claim's user id is ignored
        return None


@dataclass
class ThreadedDouble:
    """An OriginalServer running on its own event loop thread."""

    server: OriginalServer
    loop: asyncio.AbstractEventLoop

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def control(self) -> str:
        return self.server.control

    def totals(self) -> Totals:
        """A consistent snapshot, taken on the server's own loop."""
        async def snapshot() -> Totals:
            return dataclasses.replace(self.server.totals)

        return asyncio.run_coroutine_threadsafe(snapshot(), self.loop).result(10)


@contextmanager
def running_original_server(options: Options | None = None) -> Iterator[ThreadedDouble]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="original-server", daemon=True)
    thread.start()
    server = OriginalServer(options)
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        yield ThreadedDouble(server, loop)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def serve(host: str, port: int, control_port: int, options: Options) -> None:
    server = OriginalServer(options)
    await server.start(host, port, control_port)
    print(f"original-server double on {host}:{server.port}, control on {server.control}",
          flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="the original server's behavioural double")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7000)
    parser.add_argument("--control-port", type=int, default=8989)
    parser.add_argument("--seed", type=int)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.control_port, Options(seed=args.seed)))


if __name__ == "__main__":
    main()
