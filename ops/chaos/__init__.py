"""`python -m ops chaos`: a mixed workload on servers of its own while the worker is killed at random,
then a check that every effect happened exactly once (ARCHITECTURE.md §6)."""
