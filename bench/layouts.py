"""Guest NUMA layouts the benchmarks give the Linux test guest (4 vCPUs,
512 MiB): one guest NUMA node per cluster node, for vCPUs placed 0:0:1:1
(NUMA2) and 0:1:2:1 (NUMA3).  A NUMA node holds whole sockets, or Linux
warns of its topology."""

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
