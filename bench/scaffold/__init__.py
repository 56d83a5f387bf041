"""Pieces of bench/scaffold_overhead.py: the work both agents do, the scripted server, each side."""
