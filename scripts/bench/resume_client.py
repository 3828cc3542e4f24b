"""The resumption client of scripts/bench/resumption.sh: THREADS workers, each in a loop opening a
new TCP + TLS 1.3 connection to a DoT server, sending one query (A h1.bench.test.), reading the
answer and closing, for SECONDS. With `resume`, each connection offers the session (ticket) its
worker's previous connection received; with `new`, none (a full handshake every time).

Why Python: neither Deno's TLS client (Deno.startTls, node:tls) nor `openssl s_time -reuse` offers
a TLS 1.3 ticket (s_time never reads, so it never receives one); Python's ssl module (OpenSSL)
does, with `session=`.

Usage: python3 resume_client.py HOST PORT CA_PEM SECONDS new|resume THREADS
Prints one JSON line: {"completed", "reused", "failed", "seconds"}.
"""
import json
import socket
import ssl
import struct
import sys
import threading
import time

host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seconds, resume, threads = float(sys.argv[4]), sys.argv[5] == "resume", int(sys.argv[6])
ctx = ssl.create_default_context(cafile=ca)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
query = struct.pack(">HHHHHH", 0x0101, 0x0100, 1, 0, 0, 0) + b"\x02h1\x05bench\x04test\x00"
query += struct.pack(">HH", 1, 1)
frame = struct.pack(">H", len(query)) + query
end = time.monotonic() + seconds
stats = {"completed": 0, "reused": 0, "failed": 0}
lock = threading.Lock()


def worker():
    session = None
    while time.monotonic() < end:
        try:
            sock = socket.create_connection((host, port), timeout=5)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = ctx.wrap_socket(sock, server_hostname="localhost", session=session)
            tls.sendall(frame)
            buf = b""
            while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
                chunk = tls.recv(4096)
                if not chunk:
                    raise EOFError("closed before the answer")
                buf += chunk
            reused = tls.session_reused
            if resume:
                session = tls.session  # read after the answer: the tickets came before it
            tls.close()
            with lock:
                stats["completed"] += 1
                stats["reused"] += int(reused)
        except Exception:
            with lock:
                stats["failed"] += 1
            session = None


workers = [threading.Thread(target=worker) for _ in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
stats["seconds"] = seconds
print(json.dumps(stats))
