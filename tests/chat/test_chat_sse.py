"""The server-sent events of a streamed reply, read without the `openai` SDK as its Stream reads them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devloop.chat.streaming import events
from devloop.models.base import ModelError
from devloop.models.openai_compat import _Transient


def test_events_are_the_data_of_each_event_until_done() -> None:
    lines = [": a comment", "data: {\"a\": 1}", "", "data:{\"b\":", "data: 2}", "", "event: ping", "",
             "data: [DONE]", "", "data: {\"after\": 1}", ""]  # fmt: skip
    assert list(events(iter(lines))) == [{"a": 1}, {"b": 2}]
    assert list(events(iter(['data: {"last": true}']))) == [{"last": True}]  # no blank line at the end


def test_an_error_event_is_a_model_error_and_a_bad_one_is_retried() -> None:
    with pytest.raises(ModelError, match="the server failed while streaming: overloaded"):
        list(events(iter(['data: {"error": {"message": "overloaded"}}', ""])))
    with pytest.raises(_Transient, match="not JSON"):
        list(events(iter(["data: {nope", ""])))


def test_a_chat_turn_streams_without_the_openai_sdk() -> None:
    probe = "import sys, devloop.chat.streaming, devloop.session; print('openai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
