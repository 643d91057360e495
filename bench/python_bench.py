#!/usr/bin/env python3
"""Python side of the benchmarks: the seed's Python SDK against the agentburn package.

    python_bench.py seed --url URL --key KEY --agent ID --count N
    python_bench.py compare --url URL --key KEY --agent ID --seed-count N --ours-count M \
                            --buffer-dir DIR

Each prints one JSON object on stdout. The server is a running agentburn-server started with
--enable-fault-injection, whose GET /api/_stats tells how many events it stored, so that a
baseline that silently failed (the seed SDK ignores the answer) is caught.

`seed` times the seed SDK's track() on a sample of N events: it does one HTTP round trip per
event, so a few thousand give its rate. `compare` times the seed SDK and then the agentburn
package (AgentBurn.track, durability "process", the sender delivering in the background) on
the same server and event, and checks that the package delivered every event; then the
package again with no endpoint, for the cost of the call alone.
"""

import argparse
import json
import sys
import time

import requests


# --- The seed's Python SDK, as the integration guide gives it (section 3), unchanged. ---
class AgentBurn:
    def __init__(self, base_url, api_key, agent_id):
        self.base_url = base_url
        self.api_key = api_key
        self.agent_id = agent_id

    def track(self, provider, cost_usd, **kwargs):
        requests.post(
            f"{self.base_url}/api/ingest",
            headers={"x-api-key": self.api_key},
            json={
                "agentId": self.agent_id,
                "provider": provider,
                "costUsd": cost_usd,
                **kwargs
            }
        )
# --- end of the seed SDK ---


def stored(url, key):
    r = requests.get(url + "/api/_stats", headers={"x-api-key": key}, timeout=30)
    r.raise_for_status()
    return r.json()["events_stored"]


def summary(samples_ns, total_s, count):
    samples = sorted(samples_ns)

    def at(q):
        return samples[min(len(samples) - 1, int(q * len(samples)))] / 1000.0

    return {
        "events": count,
        "seconds": total_s,
        "per_event_us": total_s * 1e6 / count,
        "rate": count / total_s,
        "p50_us": at(0.50),
        "p99_us": at(0.99),
    }


def track_usage(client):
    # The seed's usage example.
    client.track("anthropic", 0.085, model="claude-3.5-sonnet",
                 operation="llm_call", inputTokens=12500, outputTokens=3200)


def timed(client, count):
    samples = []
    clock = time.perf_counter_ns
    t0 = time.perf_counter()
    for _ in range(count):
        s = clock()
        track_usage(client)
        samples.append(clock() - s)
    return samples, time.perf_counter() - t0


def run_seed(args, count):
    client = AgentBurn(args.url, args.key, args.agent)
    for _ in range(20):  # warm-up: imports, the first connection
        track_usage(client)
    before = stored(args.url, args.key)
    samples, total = timed(client, count)
    arrived = stored(args.url, args.key) - before
    if arrived != count:
        sys.exit("the seed SDK's events did not all arrive: %d of %d" % (arrived, count))
    return summary(samples, total, count)


def run_ours(args, count):
    import agentburn

    before = stored(args.url, args.key)
    client = agentburn.AgentBurn(args.url, args.key, args.agent, buffer_dir=args.buffer_dir)
    warm = 1000
    for _ in range(warm):
        track_usage(client)
    samples, total = timed(client, count)
    if not client.flush(timeout=120):
        sys.exit("the agentburn package did not deliver everything: %r" % client.stats())
    client.close()
    arrived = stored(args.url, args.key) - before
    if arrived != count + warm:
        sys.exit("the agentburn package's events did not all arrive: %d of %d"
                 % (arrived, count + warm))
    out = summary(samples, total, count)
    out["library"] = agentburn.library_path
    return out


def run_ours_offline(args, count):
    """The package with no endpoint: the cost of the call alone, no delivery competing for
    the CPU (on a small machine the server and the sender share the cores with the caller)."""
    import os

    import agentburn

    client = agentburn.AgentBurn(None, None, args.agent,
                                 buffer_dir=os.path.join(args.buffer_dir, "offline"))
    for _ in range(1000):
        track_usage(client)
    samples, total = timed(client, count)
    client.close(timeout=0)
    return summary(samples, total, count)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["seed", "compare"])
    p.add_argument("--url", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--agent", required=True)
    p.add_argument("--count", type=int, default=3000)
    p.add_argument("--seed-count", type=int, default=3000)
    p.add_argument("--ours-count", type=int, default=50000)
    p.add_argument("--buffer-dir")
    args = p.parse_args()
    if args.mode == "seed":
        out = run_seed(args, args.count)
    else:
        if not args.buffer_dir:
            p.error("compare needs --buffer-dir")
        out = {"seed": run_seed(args, args.seed_count), "ours": run_ours(args, args.ours_count),
               "ours_offline": run_ours_offline(args, args.ours_count)}
        out["python"] = sys.version.split()[0]
        out["requests"] = requests.__version__
    print(json.dumps(out))


if __name__ == "__main__":
    main()
