#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A fault-injecting swtpm in front of a real one, for the tests of the bound on TPM waits.

tpm2-tss's swtpm TCTI with path=SOCK opens SOCK for each TPM command (raw TPM 2.0 command
bytes, answered by the response) and SOCK.ctrl for control commands (locality). This listens
on both and passes everything to swtpm's sockets, except:

  tpm-proxy.py LISTEN UPSTREAM hang CC       a command with code CC (hex, e.g. 153 for
                                             TPM2_Create) is read and never answered
  tpm-proxy.py LISTEN UPSTREAM truncate CC   its answer is cut to 5 bytes, then nothing
  tpm-proxy.py LISTEN - silent               nothing is ever answered, on either socket

It prints "ready" once both sockets listen and ends when its standard input closes.
"""
import os, socket, struct, sys, threading, time

listen, upstream, mode = sys.argv[1], sys.argv[2], sys.argv[3]
code = int(sys.argv[4], 16) if len(sys.argv) > 4 else None


def read_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def read_message(s):
    head = read_exact(s, 10)
    _, size, _ = struct.unpack(">HII", head)
    return head + read_exact(s, size - 10)


def forever():
    while True:
        time.sleep(3600)


def pump(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def control(conn):
    if mode == "silent":
        forever()
    up = socket.socket(socket.AF_UNIX)
    up.connect(upstream + ".ctrl")
    threading.Thread(target=pump, args=(up, conn), daemon=True).start()
    pump(conn, up)


def command(conn):
    try:
        cmd = read_message(conn)
    except EOFError:
        return
    if mode == "silent":
        forever()
    cc = struct.unpack(">I", cmd[6:10])[0]
    if mode == "hang" and cc == code:
        forever()
    up = socket.socket(socket.AF_UNIX)
    up.connect(upstream)
    up.sendall(cmd)
    rsp = read_message(up)
    up.close()
    if mode == "truncate" and cc == code:
        conn.sendall(rsp[:5])
        forever()
    conn.sendall(rsp)
    conn.close()


def serve(path, handler):
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(16)
    def loop():
        while True:
            conn, _ = s.accept()
            threading.Thread(target=handler, args=(conn,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()


serve(listen, command)
serve(listen + ".ctrl", control)
print("ready", flush=True)
sys.stdin.read()
for p in (listen, listen + ".ctrl"):
    try:
        os.unlink(p)
    except OSError:
        pass
