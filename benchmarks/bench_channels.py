"""Channels benchmark: what the channel machinery adds per message, and what concurrency buys.

    python benchmarks/bench_channels.py                 # every part
    python benchmarks/bench_channels.py --messages 2000

Part 1, **overhead**: N clients each submit messages one after another to their own
session through a ``GatewayChannel`` served by a ``ChannelManager`` (adapter,
routing on a two-agent ``RuntimeMap``, per-session queue, capacity limiter), against
the **floor**: the same clients calling ``runtime.run`` directly. Scripted model
answering at once, in-memory store, so the figures are the cost around the model.
Each client spreads its messages over 20 sessions of its own, so histories stay short.
Printed: messages per second, p50/p99 latency per message, and the cost per message
(the inverse of the rate: the event loop is the one resource) of the channel against
the floor, as a ratio and a difference in microseconds. With 50 clients the floor's
latency is not comparable (a direct call with an instant model never yields, so it
does not queue); compare the costs.

Part 2, **concurrency** (orra's adapter took one message at a time, bug 21): 50
sessions send one message each to a model that takes 20 ms; the wall time with
``max_concurrency = 1`` (orra's behaviour) against ``max_concurrency = 50``.

Each figure is the median of ``--rounds`` rounds in this one process; compare
figures from one run only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import anyio

from orra_di import AgentProfile, Runtime
from orra_di.channels import ChannelAdapter, ChannelManager, GatewayChannel
from orra_di.runtime_set import RuntimeMap
from orra_di.stores import InMemoryStore
from orra_di.testing import ScriptedProvider


def _agents(store: InMemoryStore, delay: float = 0.0) -> RuntimeMap:
    llm = ScriptedProvider(lambda request: "ok", delay=delay)
    runtimes = {}

    def build(profile: AgentProfile) -> Runtime:
        if profile.key not in runtimes:
            runtimes[profile.key] = Runtime(llm, store)
        return runtimes[profile.key]

    return RuntimeMap([AgentProfile(name="Atlas"), AgentProfile(name="CodeBot")], build)


async def _clients(clients: int, per_client: int, send: object) -> tuple[float, list[float]]:
    latencies: list[float] = []

    async def client(i: int) -> None:
        for n in range(per_client):
            start = time.perf_counter()
            await send(f"bench:{i}:{n % 20}")  # type: ignore[operator]
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(clients):
            tg.start_soon(client, i)
    return time.perf_counter() - start, latencies


async def overhead(clients: int, messages: int) -> dict[str, tuple[float, float, float]]:
    per_client = max(1, messages // clients)
    store = InMemoryStore()
    agents = _agents(store)

    async def direct(ns: str) -> None:
        await agents["atlas"].run(ns, "hello")

    wall, lat = await _clients(clients, per_client, direct)
    floor = (clients * per_client / wall, *_p50_p99(lat))

    store = InMemoryStore()
    agents = _agents(store)
    gateway = GatewayChannel(timeout=60)
    adapter = ChannelAdapter(max_concurrency=max(clients, 1))
    async with ChannelManager(agents, adapter=adapter) as manager:
        await manager.start(gateway, "bench")

        async def through_channel(ns: str) -> None:
            await gateway.submit("hello", namespace=ns)

        wall, lat = await _clients(clients, per_client, through_channel)
    channel = (clients * per_client / wall, *_p50_p99(lat))
    return {"floor": floor, "channel": channel}


async def concurrency(sessions: int, delay: float, bound: int) -> float:
    store = InMemoryStore()
    gateway = GatewayChannel(timeout=120)
    adapter = ChannelAdapter(max_concurrency=bound)
    async with ChannelManager(_agents(store, delay), adapter=adapter) as manager:
        await manager.start(gateway, "bench")
        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for i in range(sessions):
                tg.start_soon(lambda i=i: gateway.submit("hi", namespace=f"s:{i}"))
        return time.perf_counter() - start


def _p50_p99(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    print("part 1: overhead per message (scripted model, in-memory store)")
    for clients in (1, 50):
        rounds = [anyio.run(overhead, clients, args.messages) for _ in range(args.rounds)]
        rows = {}
        for name in ("floor", "channel"):
            rate = statistics.median(r[name][0] for r in rounds)
            p50 = statistics.median(r[name][1] for r in rounds)
            p99 = statistics.median(r[name][2] for r in rounds)
            rows[name] = (rate, p50, p99)
            print(
                f"  {clients:>3} clients  {name:<8} {rate:>9,.0f} msg/s  "
                f"p50 {p50 * 1e6:>8,.0f} µs  p99 {p99 * 1e6:>8,.0f} µs"
            )
        cost = {name: 1e6 / rows[name][0] for name in rows}  # µs of the loop per message
        print(
            f"  {clients:>3} clients  cost per message: floor {cost['floor']:,.0f} µs, "
            f"channel {cost['channel']:,.0f} µs, ratio {cost['channel'] / cost['floor']:.2f} "
            f"(+{cost['channel'] - cost['floor']:,.0f} µs)"
        )
    print("part 2: 50 sessions, model 20 ms each")
    for bound in (1, 50):
        wall = statistics.median(
            anyio.run(concurrency, 50, 0.02, bound) for _ in range(args.rounds)
        )
        print(f"  max_concurrency={bound:<3} wall {wall * 1000:>7,.0f} ms")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
