#!/usr/bin/env python3
"""Minimal QMP client for distvm's scripts.

    qmp.py SOCKET COMMAND [JSON-ARGUMENTS]

Prints the command's "return" value as JSON; exits 1 with the error's
description on an error reply.  Events that arrive first are skipped.
"""

import json
import socket
import sys


def qmp_command(path, command, arguments=None, timeout=30.0):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(path)
    stream = sock.makefile("rw", encoding="utf-8")

    def reply():
        while True:
            line = stream.readline()
            if not line:
                raise ConnectionError("QMP connection closed")
            msg = json.loads(line)
            if "return" in msg or "error" in msg:
                return msg

    greeting = json.loads(stream.readline())
    if "QMP" not in greeting:
        raise ConnectionError("not a QMP server")
    stream.write(json.dumps({"execute": "qmp_capabilities"}) + "\n")
    stream.flush()
    reply()
    request = {"execute": command}
    if arguments:
        request["arguments"] = arguments
    stream.write(json.dumps(request) + "\n")
    stream.flush()
    msg = reply()
    sock.close()
    return msg


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
    msg = qmp_command(sys.argv[1], sys.argv[2], args)
    if "error" in msg:
        print(msg["error"].get("desc", msg["error"]), file=sys.stderr)
        sys.exit(1)
    print(json.dumps(msg["return"], indent=2))


if __name__ == "__main__":
    main()
