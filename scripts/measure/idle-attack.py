# Measurement helper for scripts/measure/*.sh (not a test).
# Holds N pre-login connections spread over A addresses (127.0.x.y), then reports how many the
# server kept open, refused, or displaced. Stops by itself after HOLD seconds.
import socket, sys, time, resource, select
n, addrs, port, hold = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
socks = []
for i in range(n):
    a = i % addrs
    local = f"127.0.{1 + a // 250}.{2 + a % 250}"
    s = socket.socket(); s.bind((local, 0)); s.setblocking(True)
    try:
        s.connect(("127.0.0.1", port))
    except OSError as e:
        print("connect failed", e, file=sys.stderr); break
    socks.append(s)
time.sleep(1.0)
print(f"attack: {len(socks)} connections opened from {addrs} addresses", flush=True)
deadline = time.time() + hold
while time.time() < deadline: time.sleep(0.2)
kept = refused = displaced = 0
for s in socks:
    s.setblocking(False)
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d: break
            data += d
    except BlockingIOError: pass
    except OSError: pass
    if b"too many connections" in data or (b"server full" in data and b"Username" not in data): refused += 1
    elif b"server full" in data: displaced += 1
    else: kept += 1
    s.close()
print(f"attack result: kept {kept}, refused {refused}, displaced {displaced}", flush=True)
