from temporalio.exceptions import ApplicationError


def refuse(message: str, type_: str) -> ApplicationError:
    """A business refusal: non-retryable, typed, so the flow and the API can say exactly why."""
    return ApplicationError(message, type=type_, non_retryable=True)
