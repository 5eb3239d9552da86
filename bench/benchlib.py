"""What the benchmarks share.

NUMA2, NUMA3 and NUMA3_HOME2: the guest's (4 vCPUs, 512 MiB) NUMA layouts
with one guest NUMA node per cluster node, for vCPUs placed 0:0:1:1,
0:1:2:1 and 0:0:1:2.
A NUMA node holds whole sockets, or Linux warns of its topology."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
from qmp import QMPClient  # noqa: E402

NUMA2 = ("-smp 4,sockets=2 -object memory-backend-ram,id=m0,size=256M "
         "-object memory-backend-ram,id=m1,size=256M "
         "-numa node,nodeid=0,memdev=m0,cpus=0-1 "
         "-numa node,nodeid=1,memdev=m1,cpus=2-3").split()
NUMA3 = ("-smp 4,sockets=4 -object memory-backend-ram,id=m0,size=256M "
         "-object memory-backend-ram,id=m1,size=128M "
         "-object memory-backend-ram,id=m2,size=128M "
         "-numa node,nodeid=0,memdev=m0,cpus=0 "
         "-numa node,nodeid=1,memdev=m1,cpus=1,cpus=3 "
         "-numa node,nodeid=2,memdev=m2,cpus=2").split()
NUMA3_HOME2 = ("-smp 4,sockets=4 -object memory-backend-ram,id=m0,size=256M "
               "-object memory-backend-ram,id=m1,size=128M "
               "-object memory-backend-ram,id=m2,size=128M "
               "-numa node,nodeid=0,memdev=m0,cpus=0-1 "
               "-numa node,nodeid=1,memdev=m1,cpus=2 "
               "-numa node,nodeid=2,memdev=m2,cpus=3").split()


def read(path):
    """A console or log file's text so far ("" if it is not there yet)."""
    try:
        with open(path, errors="replace") as f:
            return f.read().replace("\r\n", "\n")
    except FileNotFoundError:
        return ""


def wait_file(path, text, timeout=60):
    """Wait until the file at @path (a console) holds @text."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in read(path):
            return
        time.sleep(0.02)
    raise TimeoutError("no '%s' in %s" % (text, path))


def qmp(path):
    """A QMP connection to the QEMU listening at @path, once it does."""
    deadline = time.time() + 30
    while True:
        try:
            return QMPClient(path)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.02)
