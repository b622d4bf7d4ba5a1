"""What bench/run and bench/growth share: the tools they install, the servers they start and
watch through /proc, and a small MCP client (standard library only, loopback only)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# /proc counts CPU time in clock ticks.
HZ = os.sysconf("SC_CLK_TCK")
INIT = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                   "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                              "clientInfo": {"name": "mcpgate-bench", "version": "1"}}})
HEADERS = {"Content-Type": "application/json", "Accept": "application/json",
           "MCP-Protocol-Version": "2025-06-18"}
# The tools/call bench/run and bench/syscalls load the proxies with.
CALL = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                   "params": {"name": "get_price", "arguments": {"symbol": "BTCUSDT"}}})


def say(text):
    print(f"\033[1m== {text}\033[0m", file=sys.stderr, flush=True)


def install_command(command):
    """Installs the Debian package of the same name if `command` is missing, updating the
    package lists only if the first try fails."""
    if shutil.which(command):
        return
    say(f"installing {command}")
    subprocess.run(f"apt-get install -y -qq {command} >/dev/null 2>&1 || "
                   f"(apt-get update -qq && apt-get install -y -qq {command} >/dev/null)",
                   shell=True, check=True)


def install_tools(oha=True):
    """wrk, and oha unless `oha` is false (a script that measures no latency needs no oha)."""
    os.environ["PATH"] = f"{Path.home()}/.cargo/bin:{os.environ['PATH']}"
    install_command("wrk")
    if oha and not shutil.which("oha"):
        # native-tls rather than the default rustls/aws-lc: builds with Debian's OpenSSL, no cmake.
        say("installing oha (cargo install, once: several minutes on 2 cores)")
        subprocess.run("dpkg -s libssl-dev pkg-config >/dev/null 2>&1 || "
                       "apt-get install -y -qq libssl-dev pkg-config >/dev/null", shell=True, check=True)
        subprocess.run(["cargo", "install", "oha", "--locked", "--no-default-features",
                        "--features", "native-tls", "--quiet"], check=True)


class Process:
    """A server this run started: its CPU ticks, context switches and RSS, read from /proc."""

    running = []

    def __init__(self, name, argv, port, log_dir):
        self.name, self.port = name, port
        self.log = open(log_dir / f"{name}.log", "w")
        self.popen = subprocess.Popen(argv, stdout=self.log, stderr=self.log, cwd=ROOT)
        Process.running.append(self)
        self.url = f"http://127.0.0.1:{port}/mcp"
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                if self.popen.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"{name} did not start: see {self.log.name}:\n"
                             + Path(self.log.name).read_text()[-2000:])
                time.sleep(0.05)

    def ticks(self):
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    def switches(self):
        total = 0
        for task in Path(f"/proc/{self.popen.pid}/task").iterdir():
            try:
                for line in (task / "status").read_text().splitlines():
                    if "ctxt_switches" in line:
                        total += int(line.split()[1])
            except FileNotFoundError:
                pass  # a thread that ended meanwhile
        return total

    def rss_mb(self):
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        Process.running.remove(self)


def machine_switches():
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("ctxt "):
            return int(line.split()[1])
    return 0


def post(url, body, session=None):
    headers = dict(HEADERS)
    if session:
        headers["Mcp-Session-Id"] = session
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        return answer.headers.get("Mcp-Session-Id"), answer.read().decode()


def open_session(url):
    session, _ = post(url, INIT)
    if not session:
        sys.exit(f"initialize on {url} gave no Mcp-Session-Id")
    post(url, json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}), session)
    return session


def wrk_result(out):
    """The numbers of the RESULT line bench/post.lua prints at the end of a wrk run."""
    line = next((l for l in out.splitlines() if l.startswith("RESULT ")), None)
    if not line:
        sys.exit(f"wrk gave no RESULT line:\n{out}")
    return {k: float(v) for k, v in (pair.split("=") for pair in line.split()[1:])}
