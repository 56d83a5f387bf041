"""Retries with exponential backoff."""

from retrykit.backoff import exponential
from retrykit.errors import RetryError
from retrykit.policy import RetryPolicy
from retrykit.retry import call_with_retry, retry

__all__ = ["RetryError", "RetryPolicy", "call_with_retry", "exponential", "retry"]
