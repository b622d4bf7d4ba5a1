#!/usr/bin/env python3
"""Small MCP clients for bench/run (standard library only, loopback only, bounded).

  mcp_client.py sessions URL COUNT WORKERS   open COUNT sessions (initialize) on WORKERS keep-alive
                                             connections; prints "opened=N failed=N seconds=S"
  mcp_client.py sse URL SESSION CALLS        CALLS streamed tools/call of get_exchange_info with a
                                             progressToken; prints each SSE event's arrival time
                                             (ms after the request was sent), one call per line
"""

import http.client
import json
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

INITIALIZE = json.dumps({
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "mcpgate-bench", "version": "1"}},
}).encode()


def open_sessions(url, count, workers):
    parts = urlsplit(url)
    assert parts.hostname in ("127.0.0.1", "localhost", "::1"), "loopback targets only"
    lock = threading.Lock()
    state = {"next": 0, "opened": 0, "failed": 0, "first_error": ""}

    def worker():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        while True:
            with lock:
                if state["next"] >= count:
                    break
                state["next"] += 1
            try:
                conn.request("POST", parts.path, body=INITIALIZE, headers={
                    "Content-Type": "application/json", "Accept": "application/json",
                    "MCP-Protocol-Version": "2025-06-18"})
                response = conn.getresponse()
                body = response.read()
                ok = response.status == 200 and response.getheader("Mcp-Session-Id")
            except (OSError, http.client.HTTPException) as err:
                ok, body = False, str(err).encode()
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            with lock:
                if ok:
                    state["opened"] += 1
                else:
                    state["failed"] += 1
                    state["first_error"] = state["first_error"] or body[:200].decode(errors="replace")
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"opened={state['opened']} failed={state['failed']} "
          f"seconds={time.monotonic() - started:.2f}")
    if state["first_error"]:
        print("first_error=" + state["first_error"].replace("\n", " "), file=sys.stderr)


def sse_arrivals(url, session, calls):
    """Raw socket, so each event's arrival is timed when its bytes arrive (no client buffering)."""
    parts = urlsplit(url)
    assert parts.hostname in ("127.0.0.1", "localhost"), "loopback targets only"
    for call in range(calls):
        body = json.dumps({
            "jsonrpc": "2.0", "id": 100 + call, "method": "tools/call",
            "params": {"name": "get_exchange_info", "arguments": {},
                       "_meta": {"progressToken": f"bench-{call}"}},
        }).encode()
        head = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
                f"MCP-Protocol-Version: 2025-06-18\r\nMcp-Session-Id: {session}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            received, arrivals = b"", []
            sent = time.perf_counter()
            sock.sendall(head + body)
            while True:
                chunk = sock.recv(65536)
                now = time.perf_counter()
                if not chunk:
                    break
                received += chunk
                # Every SSE event carries one "data:" line; count them as they come in.
                while received.count(b"data: ") > len(arrivals):
                    arrivals.append((now - sent) * 1000)
                if b'"result"' in received and received.endswith(b"0\r\n\r\n"):
                    break
            if b"200" not in received.split(b"\r\n", 1)[0] or b'"result"' not in received:
                print("error " + received[:300].decode(errors="replace").replace("\r\n", " "))
                continue
            print(" ".join(f"{t:.3f}" for t in arrivals))


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "sessions":
        open_sessions(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) == 5 and sys.argv[1] == "sse":
        sse_arrivals(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
