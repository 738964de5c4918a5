"""Retry policies and timeouts for activity calls, in one place."""

from datetime import timedelta

from temporalio.common import RetryPolicy

from domain.refusals import Refusal

CHANNEL_REJECTED = Refusal.CHANNEL_REJECTED.value

# Database writes: transient failures (connection drops, serialisation) heal quickly; business refusals
# are raised non-retryable by the activity itself.
DB = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=30)
)
DB_TIMEOUT = timedelta(seconds=30)

# Creating a channel order: a few quick tries, then the flow fails over to the next channel.
CHANNEL_CREATE = RetryPolicy(
    initial_interval=timedelta(milliseconds=300),
    backoff_coefficient=2.0,
    maximum_attempts=3,
    non_retryable_error_types=[CHANNEL_REJECTED],
)
# Queries are best effort: the next poll comes anyway.
CHANNEL_QUERY = RetryPolicy(
    initial_interval=timedelta(milliseconds=300), maximum_attempts=2, non_retryable_error_types=[CHANNEL_REJECTED]
)
# Closing must eventually happen, however long the channel is down.
CHANNEL_CLOSE = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=[CHANNEL_REJECTED],
)
CHANNEL_TIMEOUT = timedelta(seconds=15)

# Asking a channel for a refund: keep trying through outages (the refund number makes repeats safe);
# the flow bounds the total time with a schedule-to-close timeout.
CHANNEL_REFUND = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=[CHANNEL_REJECTED],
)

# Handing a batch to the bank must eventually happen, however long it is down; the numbers make repeats safe.
BANK_SUBMIT = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=[Refusal.PARTY_REJECTED.value],
)
BANK_QUERY = RetryPolicy(initial_interval=timedelta(milliseconds=300), maximum_attempts=2)
# Short: a call lost with a crashed worker is retried after this (the HTTP client gives up after 10 s).
BANK_TIMEOUT = timedelta(seconds=12)

# KYC and e-sign: keep trying through outages (the request number makes repeats safe); an operator
# sees the pending attempts on the flow.
PARTY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=[Refusal.PARTY_REJECTED.value, Refusal.APPLICATION_NOT_FOUND.value],
)

# Downloading a statement: "Bill Creating" and outages are waited out politely (the party builds its
# bill some hours into the next day), for up to a day; a definite refusal fails the run at once.
STATEMENT_DOWNLOAD = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=["STATEMENT_UNAVAILABLE"],
)
STATEMENT_DOWNLOAD_TIMEOUT = timedelta(minutes=2)
STATEMENT_DOWNLOAD_WITHIN = timedelta(days=1)
# Loading and matching a day: a million lines take most of a minute on a small machine.
RECON_MATCH_TIMEOUT = timedelta(minutes=10)

# Settlement: long set-based activities prove they are alive by heartbeating; a silent one is retried
# elsewhere. Verifying a cycle is one set-based check.
PAGED_TIMEOUT = timedelta(hours=2)
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
VERIFY_TIMEOUT = timedelta(minutes=10)
# Finance may take weeks; the waiting activity heartbeats, so a dead worker is noticed within a minute.
DECIDED_TIMEOUT = timedelta(days=366)
DECIDED_HEARTBEAT = timedelta(seconds=60)
