# Fixed-count echo load for benches/echo_count/count.sh: CONNS connections
# (default 50) to 127.0.0.1:PORT, each sending a 64-byte message and waiting
# for the whole echo (checked) before the next; TOTAL messages in all.
# usage: python3 client.py PORT TOTAL [CONNS]
import selectors
import socket
import sys

port, total = int(sys.argv[1]), int(sys.argv[2])
conns = int(sys.argv[3]) if len(sys.argv) > 3 else 50
sel = selectors.DefaultSelector()
per = total // conns
state = {}
for i in range(conns):
    s = socket.create_connection(('127.0.0.1', port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(False)
    msg = (b'%08d' % i) * 8
    state[s] = [per, msg, b'']
    if per > 0:
        s.send(msg)
        sel.register(s, selectors.EVENT_READ)
left = sum(1 for v in state.values() if v[0] > 0)
while left:
    for key, _ in sel.select():
        s = key.fileobj
        st = state[s]
        d = s.recv(4096)
        if not d:
            raise SystemExit('server closed')
        st[2] += d
        if len(st[2]) >= 64:
            assert st[2] == st[1], (st[2], st[1])
            st[2] = b''
            st[0] -= 1
            if st[0] == 0:
                sel.unregister(s)
                left -= 1
            else:
                s.send(st[1])
for s in state:
    s.close()
