"""`devloop dataset inspect DIR`: the counts of a built data set and one example as the model sees it.

The example is model-written text; the command passes what this returns through `shown`, so no
control character in it reaches the terminal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WIDTH = 400


def _lines(path: Path) -> list[str]:
    if path.is_symlink() or not path.is_file():
        return []
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def _cut(text: str) -> str:
    return text if len(text) <= WIDTH else text[:WIDTH] + f"... ({len(text)} chars)"


def render_example(row: dict[str, Any]) -> str:
    """The row's conversation as text: a [role] line per message, its content and its tool calls."""
    out = [f"example: {row.get('instance_id')} (attempt {row.get('attempt')}, render {row.get('render')})"]
    for turn in row.get("conversations") or []:  # ShareGPT
        if isinstance(turn, dict):
            out += [f"[{turn.get('from')}]", _cut(str(turn.get("value", "")))]
    for msg in row.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        out.append(
            f"[{msg.get('role')}"
            + (f" {msg['tool_call_id']}" if msg.get("tool_call_id") else "")
            + (" weight 0: left out of the loss" if msg.get("weight") == 0 else "")
            + "]"
        )
        if msg.get("content"):
            out.append(_cut(str(msg["content"])))
        for call in msg.get("tool_calls") or []:
            fn = call.get("function", {}) if isinstance(call, dict) else {}
            fn = fn if isinstance(fn, dict) else {}
            out.append(f"  -> {fn.get('name')}({_cut(str(fn.get('arguments', '')))})")
    return "\n".join(out)


# Inside the mistral-common wheel (no download): the v7 instruct tokenizer, whose assistant turns may carry
# reasoning text beside their calls (the shipped tekken files are v3, which refuses that).
SHIPPED_TOKENIZER = "mistral_instruct_tokenizer_241114.model.v7"


def _tokenizer_file(name: str) -> Path:
    """`mistral` (the v7 tokenizer shipped inside mistral-common), or a tekken.json /
    tokenizer.model.vN file; ValueError for anything else."""
    try:
        import mistral_common
    except ImportError:
        raise ValueError(
            "--tokenizer needs mistral-common: pip install 'mistral-common[sentencepiece]'"
        ) from None
    path = (
        Path(mistral_common.__file__).parent / "data" / SHIPPED_TOKENIZER if name == "mistral" else Path(name)
    )
    if not path.is_file():
        raise ValueError(
            f"--tokenizer {name}: no such file (give mistral, a tekken.json or tokenizer.model.vN)"
        )
    return path


def render_tokenized(row: dict[str, Any], tokenizer: str) -> str:
    """The row's conversation as a Mistral tokenizer lays it out for training (mistral-common's
    fine-tuning encoding: control tokens, tool list, calls, results), and its length in tokens."""
    from mistral_common.exceptions import MistralCommonException
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.protocol.instruct.validator import ValidationMode
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    path = _tokenizer_file(tokenizer)
    try:
        tok = MistralTokenizer.from_file(str(path), mode=ValidationMode.finetuning)
    except (MistralCommonException, ValueError, OSError) as exc:
        raise ValueError(
            f"--tokenizer {tokenizer}: not a Mistral tokenizer file ({exc})".splitlines()[0]
        ) from None
    if not isinstance(row.get("messages"), list):
        raise ValueError(
            "--tokenizer: the data set's rows have no messages (a sharegpt build); use openai or mistral"
        )
    messages = []
    for m in row["messages"]:
        if isinstance(m, dict):
            msg = {k: v for k, v in m.items() if k != "weight"}
            if msg.get("role") == "assistant" and msg.get("tool_calls") and not msg.get("content"):
                msg.pop("content", None)  # an empty text beside calls: older tokenizers refuse both
            messages.append(msg)
    try:
        request = ChatCompletionRequest.from_openai(messages, tools=row.get("tools") or None)
        encoded = tok.encode_chat_completion(request)
    except (MistralCommonException, ValueError, TypeError) as exc:
        raise ValueError(f"the example does not encode with {path.name}: {exc}".splitlines()[0]) from None
    head = f"example: {row.get('instance_id')} (attempt {row.get('attempt')}, render {row.get('render')})"
    return f"{head}, as {path.name} encodes it: {len(encoded.tokens)} tokens\n{_decoded(tok, encoded.tokens)}"


def _decoded(tok: Any, tokens: list[int]) -> str:
    """The tokens as text, control tokens ([INST], [TOOL_CALLS]...) written out where they stand (a
    plain decode drops them, and SentencePiece's piece view shows every space as U+2581)."""
    from mistral_common.tokens.tokenizers.base import SpecialTokenPolicy

    inner = tok.instruct_tokenizer.tokenizer
    out: list[str] = []
    run: list[int] = []
    for t in [*tokens, None]:
        if t is not None and not inner.is_special(t):
            run.append(t)
            continue
        if run:
            out.append(inner.decode(run, special_token_policy=SpecialTokenPolicy.IGNORE))
            run = []
        if t is not None:
            out.append(inner.id_to_piece(t))
    return "".join(out)


def inspect(directory: Path, tokenizer: str | None = None) -> str:
    """Counts per stage and split, then the first row found rendered (as text, or as `tokenizer`
    encodes it); ValueError if not a data set."""
    if directory.is_symlink() or not (directory / "filter_report.json").is_file():
        raise ValueError(f"{directory}: no filter_report.json (not a devloop data set)")
    out = []
    example = None
    for stage in ("stage1", "stage2"):
        for split in ("train", "valid"):
            path = directory / stage / f"{split}.jsonl"
            lines = _lines(path)
            out.append(f"{stage}/{split}: {len(lines)}")
            for lineno, line in enumerate(lines[:1], 1):
                try:
                    row = json.loads(line)
                except ValueError:
                    raise ValueError(f"{path}:{lineno}: not JSON") from None
                example = example or (row if isinstance(row, dict) else None)
    report = json.loads((directory / "filter_report.json").read_text(encoding="utf-8"))
    outputs = report.get("outputs") if isinstance(report, dict) else None
    for name, n in sorted((outputs if isinstance(outputs, dict) else {}).items()):
        out.append(f"{name}: {n}")
    if example is None:
        out.append("no examples")
    else:
        out.append(render_tokenized(example, tokenizer) if tokenizer else render_example(example))
    return "\n".join(out)
