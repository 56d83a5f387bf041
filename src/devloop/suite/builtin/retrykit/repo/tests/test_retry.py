import pytest

from retrykit import RetryError, RetryPolicy, call_with_retry, retry


class Flaky:
    def __init__(self, failures, exc=ConnectionError):
        self.failures, self.exc, self.calls = failures, exc, 0

    def __call__(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(f"failure {self.calls}")
        return "ok"


def test_succeeds_after_failures():
    slept = []
    flaky = Flaky(2)
    assert call_with_retry(flaky, RetryPolicy(attempts=3, jitter=False), sleep=slept.append) == "ok"
    assert slept == [0.1, 0.2]


def test_gives_up():
    flaky = Flaky(5)
    with pytest.raises(RetryError) as info:
        call_with_retry(flaky, RetryPolicy(attempts=3), sleep=lambda s: None)
    assert info.value.attempts == 3
    assert isinstance(info.value.last, ConnectionError)
    assert flaky.calls == 3


def test_non_retryable_propagates():
    flaky = Flaky(1, exc=KeyError)
    with pytest.raises(KeyError):
        call_with_retry(flaky, RetryPolicy(retry_on=(ConnectionError,)), sleep=lambda s: None)
    assert flaky.calls == 1


def test_should_retry_predicate():
    policy = RetryPolicy(should_retry=lambda exc: "1" not in str(exc))
    with pytest.raises(ConnectionError):
        call_with_retry(Flaky(3), policy, sleep=lambda s: None)


def test_on_retry_callback():
    seen = []
    call_with_retry(Flaky(1), RetryPolicy(jitter=False), sleep=lambda s: None,
                    on_retry=lambda n, exc, d: seen.append((n, str(exc), d)))
    assert seen == [(1, "failure 1", 0.1)]


def test_decorator():
    slept = []
    flaky = Flaky(2)

    @retry(attempts=4, base=1, factor=3, jitter=False, sleep=slept.append)
    def fetch():
        return flaky()

    assert fetch() == "ok"
    assert slept == [1, 3]


def test_policy_validation():
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
