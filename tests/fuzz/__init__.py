"""Fuzzing specc: generated valid specs, mutated real ones, and the oracle that judges a run.

Shared by the suite (tests/fuzz/test_fuzz.py, about half a minute) and the long run
(bench/fuzz.py, 100,000 cases): `generate` grows valid specs over the registry's kinds,
`mutate` damages real specs at the byte, token and structure level, `oracle` runs one
case through every stage and names what went wrong, and `known` lists the crash
classes found and not yet fixed (the one place to remove an entry once it is).
"""
