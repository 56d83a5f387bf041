"""Model client per request: devloop's direct path (http.client) and its httpx path, against the floor.

One scripted server in a process of its own, as a model server is; the same ~60 KB request body (20
messages of 3 KB) posted by three clients in rotating order, each on its own keep-alive connection:
the floor (a bare `http.client` exchange: one request, read the reply), `ChatHttp` on a plain-http URL
(its direct path), and `ChatHttp` with the direct path turned off (httpx, as for an https URL or
through a proxy). Printed: each client's median round trip and its ratio to the floor's.

    python bench/http_client.py [--requests 600]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import time

from scaffold.servers import serve  # bench/ is on sys.path when this file is run

from devloop.models.http import ChatHttp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=600, help="requests per client")
    args = ap.parse_args()
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 3000}] * 20}).encode()
    script = [{"role": "assistant", "content": "ok"}] * (3 * args.requests + 10)
    with serve(script) as server:
        port = int(server.url.rsplit(":", 1)[1].split("/")[0])
        floor = http.client.HTTPConnection("127.0.0.1", port)
        direct = ChatHttp(server.url, "k", timeout=60)
        via_httpx = ChatHttp(server.url, "k", timeout=60)
        assert direct._direct is not None
        via_httpx._direct = None

        def bare() -> None:
            floor.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            floor.getresponse().read()

        clients = {
            "floor (bare http.client)": bare,
            "ChatHttp, direct": lambda: direct.request("POST", "/chat/completions", content=body),
            "ChatHttp, httpx": lambda: via_httpx.request("POST", "/chat/completions", content=body),
        }
        times: dict[str, list[float]] = {name: [] for name in clients}
        names = list(clients)
        for i in range(args.requests):
            for name in names[i % 3 :] + names[: i % 3]:
                t0 = time.perf_counter()
                clients[name]()
                times[name].append(time.perf_counter() - t0)
        floor.close()
        direct.close()
        via_httpx.close()
    base = statistics.median(times[names[0]])
    print(f"{args.requests} requests per client, {len(body) / 1024:.0f} KB body, rotating order")
    for name in names:
        med = statistics.median(times[name])
        print(f"  {name:<26} {med * 1e3:6.3f} ms  {med / base:4.2f}x floor")


if __name__ == "__main__":
    main()
