"""The Ray executor: the same runs as Ray tasks, on this machine or a cluster, with the same traces.

May import: the rest of :mod:`reprokit.run` below it (runner, fork servers and their relay, process, trace,
workdirs, execution), the protocol and the core. Ray itself is imported only when a Ray session opens (an
optional extra).
"""
