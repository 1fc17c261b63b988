"""Client for benches/idle.sh: opens CONNS keep-alive connections (one request each, then
idle) and WS WebSockets (upgrade, one echoed frame, then idle) through a proxy, and reports
the proxy's RSS and CPU before, with them open, and over HOLD seconds of idleness.

    python3 benches/idle_client.py PORT CONNS WS HOLD PID...

Prints one tab-separated line: rss0_kb rss_keepalive_kb rss_ws_kb setup_cpu_ms idle_cpu_ms

Every connection must be answered within STEP seconds, so a proxy that stops accepting (or a
machine too loaded to keep up) fails the run with a message instead of hanging it.
"""

import asyncio
import base64
import os
import sys

HZ = os.sysconf("SC_CLK_TCK")
BATCH = 250
# Longest wait for one connection's connect and answer.
STEP = 30


def rss_kb(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def cpu_ms(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total * 1000 // HZ


async def keepalive(port, held):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /idle HTTP/1.1\r\nHost: bench\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"keep-alive request answered {head[:40]!r}")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    held.append(writer)


async def websocket(port, held):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"upgrade answered {head[:40]!r}")
    # One masked text frame "hi", echoed back unmasked.
    mask = os.urandom(4)
    writer.write(bytes([0x81, 0x82]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(b"hi")))
    await writer.drain()
    echo = await reader.readexactly(4)
    if echo != b"\x81\x02hi":
        raise RuntimeError(f"echo was {echo!r}")
    held.append(writer)


async def open_all(make, port, n, held):
    for start in range(0, n, BATCH):
        batch = (make(port, held) for _ in range(min(BATCH, n - start)))
        try:
            await asyncio.gather(*(asyncio.wait_for(c, STEP) for c in batch))
        except (OSError, RuntimeError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
            kind = make.__name__
            sys.exit(f"idle_client: a {kind} connection failed with {len(held)} open: {e!r}")


async def main():
    port, conns, ws, hold = (int(a) for a in sys.argv[1:5])
    pids = [int(p) for p in sys.argv[5:]]
    held = []
    rss0, cpu0 = rss_kb(pids), cpu_ms(pids)
    await open_all(keepalive, port, conns, held)
    await asyncio.sleep(1)
    rss_ka = rss_kb(pids)
    await open_all(websocket, port, ws, held)
    await asyncio.sleep(1)
    cpu1 = cpu_ms(pids)
    await asyncio.sleep(hold)
    rss_ws, cpu2 = rss_kb(pids), cpu_ms(pids)
    print(f"{rss0}\t{rss_ka}\t{rss_ws}\t{cpu1 - cpu0}\t{cpu2 - cpu1}")
    for w in held:
        w.close()


asyncio.run(main())
