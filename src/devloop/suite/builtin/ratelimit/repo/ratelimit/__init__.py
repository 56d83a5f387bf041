"""Token-bucket and sliding-window rate limiting."""

from ratelimit.bucket import TokenBucket
from ratelimit.limiter import RateLimiter
from ratelimit.rates import Rate, parse_rate
from ratelimit.window import SlidingWindow

__all__ = ["Rate", "RateLimiter", "SlidingWindow", "TokenBucket", "parse_rate"]
