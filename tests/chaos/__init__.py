"""Chaos: real processes and servers killed mid-flow; every alert handed over is stored exactly once."""
