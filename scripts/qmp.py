#!/usr/bin/env python3
"""Minimal QMP client for distvm's scripts.

    qmp.py SOCKET COMMAND [JSON-ARGUMENTS]

Prints the command's "return" value as JSON; exits 1 with the error's
description on an error reply.  Events that arrive first are skipped.
"""

import json
import socket
import sys


class QMPClient:
    """A persistent QMP connection that keeps the events it reads."""

    def __init__(self, path, timeout=60.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.stream = self.sock.makefile("rw", encoding="utf-8")
        self.events = []
        if "QMP" not in json.loads(self.stream.readline()):
            raise ConnectionError("not a QMP server")
        self.cmd("qmp_capabilities")

    def _read(self):
        line = self.stream.readline()
        if not line:
            raise ConnectionError("QMP connection closed")
        return json.loads(line)

    def cmd(self, command, **arguments):
        request = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self.stream.write(json.dumps(request) + "\n")
        self.stream.flush()
        while True:
            msg = self._read()
            if "event" in msg:
                self.events.append(msg)
            elif "error" in msg:
                raise RuntimeError("%s: %s" % (command, msg["error"]["desc"]))
            else:
                return msg["return"]

    def event(self, name, match=None):
        """Wait for (and consume) the first event @name whose data
        includes the items of @match."""
        while True:
            for i, ev in enumerate(self.events):
                data = ev.get("data", {})
                if ev["event"] == name and all(
                        data.get(k) == v for k, v in (match or {}).items()):
                    return self.events.pop(i)
            msg = self._read()
            if "event" in msg:
                self.events.append(msg)

    def close(self):
        self.sock.close()


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
