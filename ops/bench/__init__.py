"""Benchmarks (`python -m ops bench ...`): throughput of the platform's flows on servers of their own,
each set against a bare Temporal workflow of the same shape run in the same process on the same server,
so the number that matters is the ratio rather than absolute speed, which depends on the machine."""
