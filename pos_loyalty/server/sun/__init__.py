"""NTAG 424 DNA SUN read counters shared by the chain."""
