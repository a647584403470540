# Measurement helper for scripts/measure/*.sh (not a test).
import socket, sys, time, threading
port, n, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def session(name, lines, expect):
    s = socket.create_connection(("127.0.0.1", port)); buf = b""
    def until(tok):
        nonlocal buf
        while tok not in buf:
            d = s.recv(4096)
            if not d: raise RuntimeError(f"{name}: closed waiting for {tok}: {buf[-200:]}")
            buf += d
        buf = buf[buf.index(tok)+len(tok):]
    until(b"Username: ")
    for l, tok in zip(lines, expect):
        s.sendall(l.encode() + b"\n"); until(tok)
    return s
if mode == "register":
    for i in range(n):
        s = session(f"reg{i}", [f"reg{i}", f"/register password-{i}"], [b"welcome", b"is now registered"])
        s.sendall(b"/quit\n"); s.close()
    print(f"registered {n}")
else:
    t0 = time.time(); done = []; socks = []
    def one(i):
        s = session(f"reg{i}", [f"reg{i}", f"password-{i}"], [b"Password: ", b"welcome, reg"])
        done.append(time.time() - t0); socks.append(s)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts: t.start()
    for t in ts: t.join()
    done.sort()
    print(f"burst: {len(done)} registered logins in {done[-1]:.2f} s (median {done[len(done)//2]:.2f} s)")
