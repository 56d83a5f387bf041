"""Local weights (a transformers directory or a GGUF file) behind devloop's Model seam, so the gates that
grade tool calls run the same code on a served model and on weights on disk.

Text formats get their tool description in the system prompt, as from a server. For the API formats
(`native`, `auto`) the tools go to the model's chat template (`tools=`), and the reply text is read back the
way an OpenAI-compatible server's tool-call parser does (vLLM's `--tool-call-parser`): the first text
format whose markers appear in the reply turns it into `tool_calls`. A template that ignores `tools` (it
renders the same prompt with and without them, as SmolLM2's does) would show the model no tools at all;
then the tools are described in the system turn in the Hermes function-calling layout (a `<tools>` block,
calls in `<tool_call>` tags), as a server with a function-calling chat template would present them.
"""

from __future__ import annotations

import copy
import importlib
import time
from pathlib import Path
from typing import Any

from devloop.formats.native import render_native_call
from devloop.formats.registry import get_format, text_formats
from devloop.gate.smoke import load_local
from devloop.tools.base import ToolSpec
from devloop.types import Completion, FormatError, SamplingParams, Usage

# Below this many shared prompt tokens, batching beats computing the shared start once.
PREFIX_MIN_TOKENS = 64


class LocalModel:
    name = "local"

    def __init__(self, weights: Path, batch_size: int = 8, share: bool = True) -> None:
        """`share=False`: a one-off load, not kept for later gates of the run (an exported file)."""
        started = time.perf_counter()
        tokenizer, model, device = load_local(weights, take=not share)
        self._setup(tokenizer, model, device, batch_size)
        self.load_s = time.perf_counter() - started

    @classmethod
    def wrap(cls, tokenizer: Any, model: Any, device: str, batch_size: int = 8) -> LocalModel:
        """A LocalModel on an already loaded tokenizer and model."""
        self = cls.__new__(cls)
        self._setup(tokenizer, model, device, batch_size)
        self.load_s = 0.0
        return self

    def _setup(self, tokenizer: Any, model: Any, device: str, batch_size: int) -> None:
        self.tokenizer, self.model, self.device = tokenizer, model, device
        self.batch_size = max(1, batch_size)
        self.tokenizer.padding_side = "left"  # generation continues every row from its last real token
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tools_via = "chat template (tools=)"

    def close(self) -> None:
        return None

    def prompt(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> str:
        tok = self.tokenizer
        if not getattr(tok, "chat_template", None):
            if tools:
                messages = _tools_in_system(messages, tools)
            return "\n\n".join(str(m.get("content") or "") for m in messages) + "\n"
        if tools:
            with_tools = self._render(messages, tools)
            if with_tools != self._render(messages, None):
                return with_tools
            self.tools_via = "system prompt (hermes layout): the chat template ignores tools="
            messages = _tools_in_system(messages, tools)
        return self._render(messages, None)

    def _render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> str:
        tok = self.tokenizer
        try:
            return str(
                tok.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
            )
        except Exception:
            # Some templates refuse a system turn: fold it into the first user turn.
            system = "\n\n".join(str(m["content"]) for m in messages if m["role"] == "system")
            rest = [dict(m) for m in messages if m["role"] != "system"]
            if system and rest:
                rest[0]["content"] = f"{system}\n\n{rest[0]['content']}"
            return str(tok.apply_chat_template(rest, tools=tools, tokenize=False, add_generation_prompt=True))

    def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, params: SamplingParams
    ) -> Completion:
        return self.complete_many([messages], tools, params)[0]

    def complete_many(
        self,
        conversations: list[list[dict[str, Any]]],
        tools: list[dict[str, Any]] | None,
        params: SamplingParams,
    ) -> list[Completion]:
        """One reply per conversation, generated greedily. Conversations sharing a long start (the same
        system prompt and tools) reuse its key/value cache, computed once, and run one at a time; others
        run in left-padded batches of `batch_size`."""
        torch: Any = importlib.import_module("torch")
        prompts = [self.prompt(m, tools) for m in conversations]
        encoded = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        shared = _common_prefix(encoded) if len(encoded) > 1 else 0
        if shared >= PREFIX_MIN_TOKENS:
            return self._with_prefix(torch, encoded, shared, tools, params)
        out: list[Completion] = []
        for start in range(0, len(conversations), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            inputs = self.tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(
                self.device
            )
            began = time.perf_counter()
            with torch.no_grad():
                generated = self.model.generate(
                    **inputs,
                    max_new_tokens=params.max_tokens or 256,
                    do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            each = (time.perf_counter() - began) / len(chunk)
            width = inputs["input_ids"].shape[1]
            for row, prompt_ids in zip(generated, inputs["attention_mask"], strict=True):
                new = row[width:]
                text = str(self.tokenizer.decode(new, skip_special_tokens=False))
                text = _strip_trailing_specials(text, self.tokenizer)
                usage = Usage(int(prompt_ids.sum()), int((new != self.tokenizer.pad_token_id).sum()))
                out.append(_as_served(text, tools, usage, each))
        return out

    def _with_prefix(
        self, torch: Any, encoded: list[list[int]], shared: int, tools: list[dict[str, Any]] | None,
        params: SamplingParams,
    ) -> list[Completion]:  # fmt: skip
        transformers: Any = importlib.import_module("transformers")
        # Leave at least one token of every prompt uncached: generation starts from a real forward pass.
        shared = min(shared, min(len(e) for e in encoded) - 1)
        prefix = torch.tensor([encoded[0][:shared]], device=self.device)
        cache = transformers.DynamicCache()
        with torch.no_grad():
            self.model(input_ids=prefix, past_key_values=cache, use_cache=True)
        out = []
        for ids in encoded:
            began = time.perf_counter()
            inputs = torch.tensor([ids], device=self.device)
            with torch.no_grad():
                generated = self.model.generate(
                    input_ids=inputs,
                    attention_mask=torch.ones_like(inputs),
                    past_key_values=copy.deepcopy(cache),
                    max_new_tokens=params.max_tokens or 256,
                    do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            new = generated[0][len(ids) :]
            text = _strip_trailing_specials(
                str(self.tokenizer.decode(new, skip_special_tokens=False)), self.tokenizer
            )
            usage = Usage(len(ids), int(new.shape[0]))
            out.append(_as_served(text, tools, usage, time.perf_counter() - began))
        return out


def _specs(tools: list[dict[str, Any]]) -> list[ToolSpec]:
    return [
        ToolSpec(t["function"]["name"], t["function"].get("description", ""), t["function"]["parameters"])
        for t in tools
    ]


def _tools_in_system(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`messages` with the tools described at the end of the system turn (one is added if there is none)."""
    block = get_format("hermes").render_tools(_specs(tools))
    out = [dict(m) for m in messages]
    if out and out[0].get("role") == "system":
        out[0]["content"] = f"{out[0].get('content') or ''}\n\n{block}"
    else:
        out.insert(0, {"role": "system", "content": block})
    return out


def _common_prefix(rows: list[list[int]]) -> int:
    first = rows[0]
    n = min(len(r) for r in rows)
    for row in rows[1:]:
        i = 0
        while i < n and row[i] == first[i]:
            i += 1
        n = i
    return n


def _strip_trailing_specials(text: str, tokenizer: Any) -> str:
    """The reply without the end-of-turn and padding tokens that follow it."""
    ends = {t for t in (tokenizer.eos_token, tokenizer.pad_token, "<|im_end|>", "</s>") if t}
    changed = True
    while changed:
        changed = False
        for end in ends:
            if text.rstrip().endswith(end):
                text = text.rstrip()[: -len(end)]
                changed = True
    return text.strip()


def _as_served(text: str, tools: list[dict[str, Any]] | None, usage: Usage, latency: float) -> Completion:
    if tools is None:
        return Completion(content=text, usage=usage, finish_reason="stop", latency_s=latency)
    specs = _specs(tools)
    for fmt in text_formats():
        if not fmt.detects(text, specs):
            continue
        try:
            calls = fmt.parse(Completion(content=text), specs)
        except FormatError:
            continue
        rendered = [render_native_call(call, n) for n, call in enumerate(calls)]
        return Completion(None, rendered, usage, "tool_calls", latency)
    return Completion(content=text, usage=usage, finish_reason="stop", latency_s=latency)
