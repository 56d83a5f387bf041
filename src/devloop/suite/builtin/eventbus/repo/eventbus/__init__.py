"""In-process publish/subscribe."""

from eventbus.bus import EventBus, Subscription
from eventbus.errors import HandlerErrors
from eventbus.topics import topic_matches

__all__ = ["EventBus", "HandlerErrors", "Subscription", "topic_matches"]
