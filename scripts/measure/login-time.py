# Measurement helper for scripts/measure/*.sh (not a test).
import socket, sys, time
port = int(sys.argv[1]); t = time.time()
s = socket.create_connection(("127.0.0.1", port)); buf = b""
while b"Username: " not in buf and b"! " not in buf: buf += s.recv(4096)
if b"Username: " not in buf: print("newcomer refused:", buf); sys.exit(1)
s.sendall(b"newcomer\n")
while b"welcome, newcomer" not in buf:
    d = s.recv(4096)
    if not d: print("closed", buf); sys.exit(1)
    buf += d
print(f"newcomer logged in after {1000*(time.time()-t):.1f} ms")
