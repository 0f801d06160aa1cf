"""How much the pool's concurrency buys: one round of slow expert calls, run through
`ExpertPool.ask_many` and then one after another. With N calls of D seconds each, the
concurrent round should take about D and the sequential one about N * D, so the ratio
should come out near N. A ratio far below N means calls are being serialised somewhere.

    python benchmarks/expert_pool_concurrency.py [--n 16] [--delay 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from eapo.experts import ExpertPool, FakeExpert
from eapo.types import ExpertRequest


async def sequential(expert: FakeExpert, requests: list[ExpertRequest]) -> None:
    for request in requests:
        await expert.ask(request)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=16, help="requests in the round")
    parser.add_argument("--delay", type=float, default=0.2, help="seconds each expert call takes")
    args = parser.parse_args()

    expert = FakeExpert(delay_s=args.delay)
    pool = ExpertPool([expert], timeout_s=10 * args.delay + 1)
    requests = [ExpertRequest(problem="p", query=f"q{i}", key=f"bench/{i}") for i in range(args.n)]

    start = time.perf_counter()
    replies = pool.ask_many_sync(requests, list(range(args.n)))
    concurrent_s = time.perf_counter() - start
    assert all(r.ok for _, r in replies)

    start = time.perf_counter()
    asyncio.run(sequential(expert, requests))
    sequential_s = time.perf_counter() - start

    print(f"{args.n} requests x {args.delay:.3f} s")
    print(f"concurrent (pool): {concurrent_s:.3f} s")
    print(f"sequential:        {sequential_s:.3f} s")
    print(f"ratio sequential/concurrent: {sequential_s / concurrent_s:.1f} (ideal {args.n})")


if __name__ == "__main__":
    main()
