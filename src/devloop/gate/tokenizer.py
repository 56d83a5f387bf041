"""Gate 0: do the model's tool-call delimiters each encode to one token, and does a tool-call conversation
rendered for the model parse back through devloop's format parser?

Tokenizers load from local files only: a Mistral `tekken.json` or SentencePiece `tokenizer.model*` through
mistral-common, or a Hugging Face `tokenizer.json` through `tokenizers`. Nothing is downloaded. Those
libraries are imported inside the functions, so `devloop --help` never pays for them.
"""

from __future__ import annotations

import importlib
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any, Literal

from devloop.formats.hermes import parse_hermes, render_hermes_call
from devloop.formats.mistral import parse_mistral, render_mistral_call
from devloop.gate.result import Check, GateInputError, GateResult, library_versions
from devloop.tools.base import ToolSpec
from devloop.types import ToolCall

Family = Literal["mistral", "hermes"]
FAMILIES: tuple[Family, ...] = ("mistral", "hermes")

MISTRAL_REQUIRED = (
    "[TOOL_CALLS]",
    "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
    "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]",
)
# Present only in some tokenizer versions (v11+ write `name[CALL_ID]id[ARGS]{...}`); absence is not a fault.
MISTRAL_OPTIONAL = ("[ARGS]", "[CALL_ID]")
# Often listed as a Mistral delimiter, but no shipped Mistral tokenizer has it: a call ends with `</s>`.
MISTRAL_NOT_SHIPPED = ("[/TOOL_CALLS]",)
HERMES_REQUIRED = ("<tool_call>", "</tool_call>")

_TOOL = ToolSpec(
    name="read_file",
    description="Read a file of the repository.",
    parameters={
        "type": "object",
        "properties": {"path": {"type": "string"}, "limit": {"type": "integer"}},
        "required": ["path"],
    },
)
_CALL = ToolCall(id="abc123DEF", name="read_file", arguments={"path": "src/app.py", "limit": 40})


SHIPPED = "mistral-common:"


def _shipped(name: str) -> Path:
    try:
        import mistral_common
    except ImportError as e:
        raise GateInputError(f"{SHIPPED}{name} needs mistral-common: pip install 'devloop[gate]'") from e
    data = Path(mistral_common.__file__).parent / "data"
    if "/" in name or not (data / name).is_file():
        names = ", ".join(sorted(p.name for p in data.iterdir() if not p.name.startswith(("_", "."))))
        raise GateInputError(f"{SHIPPED}{name}: not shipped with mistral-common (it has {names})")
    return data / name


def resolve_tokenizer(path: Path) -> Path:
    """The tokenizer file at `path` (a file, or a directory holding one); `mistral-common:NAME` names one of
    the tokenizers shipped inside the mistral-common wheel (e.g. `mistral-common:tekken_240911.json`)."""
    if str(path).startswith(SHIPPED):
        path = _shipped(str(path).removeprefix(SHIPPED))
    if path.is_file():
        return path
    if not path.is_dir():
        raise GateInputError(f"tokenizer not found: {path}")
    for pattern in ("tekken.json", "tokenizer.json", "tokenizer.model*"):
        hits = sorted(path.glob(pattern))
        if hits:
            return hits[0]
    raise GateInputError(f"no tekken.json, tokenizer.json or tokenizer.model in {path}")


def run_tokenizer_gate(path: Path, family: Family = "mistral") -> GateResult:
    if family not in FAMILIES:
        raise GateInputError(f"unknown tokenizer family {family!r} (choose {' or '.join(FAMILIES)})")
    file = resolve_tokenizer(path)
    result = GateResult(gate=0, name="tokenizer", versions=library_versions())
    result.details.update({"tokenizer": str(file), "family": family})
    is_hf = file.name == "tokenizer.json" or (file.suffix == ".json" and _is_hf_json(file))
    if file.suffix == ".gguf":
        with tempfile.TemporaryDirectory(prefix="devloop-gguf-tok-") as scratch:
            _hf_gate(_gguf_tokenizer(file, Path(scratch)), family, result)
    elif is_hf:
        _hf_gate(file, family, result)
    else:
        if family != "mistral":
            raise GateInputError(f"{file}: a Mistral tokenizer file; use --family mistral")
        _mistral_gate(file, result)
    return result


def _gguf_tokenizer(file: Path, scratch: Path) -> Path:
    """The tokenizer (and chat template) inside a GGUF, saved as tokenizer.json by transformers."""
    try:
        transformers = importlib.import_module("transformers")
        tok = transformers.AutoTokenizer.from_pretrained(
            str(file.parent), gguf_file=file.name, local_files_only=True
        )
    except ImportError as e:
        raise GateInputError(f"{file}: reading a GGUF tokenizer needs transformers and gguf ({e})") from e
    except (OSError, ValueError) as e:
        raise GateInputError(f"{file}: not a readable GGUF tokenizer ({str(e).splitlines()[0]})") from e
    tok.save_pretrained(str(scratch))
    return scratch / "tokenizer.json"


def _is_hf_json(file: Path) -> bool:
    try:
        data = json.loads(file.read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise GateInputError(f"{file}: not a readable JSON tokenizer ({e})") from e
    return isinstance(data, dict) and "model" in data and "added_tokens" in data


def _delimiter_checks(result: GateResult, family: Family, token_count: Any) -> None:
    """`token_count(s)` -> how many tokens `s` is (1 for a real single-token delimiter), or None if absent."""
    required = MISTRAL_REQUIRED if family == "mistral" else HERMES_REQUIRED
    optional = MISTRAL_OPTIONAL if family == "mistral" else ()
    not_shipped = MISTRAL_NOT_SHIPPED if family == "mistral" else ()
    ids: dict[str, int | None] = {}
    for text in (*required, *optional, *not_shipped):
        found = token_count(text)
        ids[text] = found[0] if found and len(found) == 1 else None
        single = found is not None and len(found) == 1
        if text in required:
            detail = f"id {found[0]}" if single else f"encodes to {len(found) if found else 0} tokens, not 1"
            result.checks.append(Check(f"delimiter {text}", single, detail))
        elif single:
            result.checks.append(Check(f"delimiter {text}", True, f"id {ids[text]}"))
        elif text in not_shipped:
            result.checks.append(Check(f"delimiter {text}", None, "absent: a call ends with </s>"))
        else:
            result.checks.append(Check(f"delimiter {text}", None, "absent in this tokenizer version"))
    result.details["delimiter_ids"] = ids


def _round_trip_check(result: GateResult, family: Family, rendered: str, how: str) -> None:
    parse = parse_mistral if family == "mistral" else parse_hermes
    try:
        calls = parse(rendered, [_TOOL])
    except Exception as e:  # a FormatError, or anything the parser raises on this text
        result.checks.append(Check("round trip", False, f"{how}: parser rejected it: {e}"))
        return
    got = [(c.name, c.arguments) for c in calls]
    ok = got == [(_CALL.name, _CALL.arguments)]
    result.details["round_trip"] = {"rendered": rendered, "parsed": [list(g) for g in got], "via": how}
    result.checks.append(Check("round trip", ok, f"{how}: parsed {got!r}"))


def _mistral_gate(file: Path, result: GateResult) -> None:
    try:
        from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
    except ImportError as e:
        raise GateInputError(f"Gate 0 needs mistral-common: pip install 'devloop[gate]' ({e})") from e
    try:
        tokenizer = MistralTokenizer.from_file(str(file))
    except Exception as e:
        raise GateInputError(f"{file}: not a Mistral tokenizer ({type(e).__name__}: {e})") from e
    raw = tokenizer.instruct_tokenizer.tokenizer
    result.details["tokenizer_version"] = str(
        raw.version.value if hasattr(raw.version, "value") else raw.version
    )

    def special_id(text: str) -> list[int] | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                token = int(raw.get_special_token(text))
            except Exception:
                return None
        # SentencePiece answers 0 (<unk>) for a piece it lacks; only a token that decodes back is real.
        return [token] if raw.id_to_piece(token) == text else None

    _delimiter_checks(result, "mistral", special_id)
    try:
        rendered = _mistral_render(tokenizer)
    except Exception as e:
        result.checks.append(Check("round trip", False, f"mistral-common cannot render tool calls: {e}"))
        return
    _round_trip_check(result, "mistral", rendered, "mistral-common encode_chat_completion")


def _mistral_render(tokenizer: Any) -> str:
    """The assistant's turn of a tool-call conversation, as the model would see and write it."""
    from mistral_common.protocol.instruct.messages import AssistantMessage, ToolMessage, UserMessage
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.protocol.instruct.tool_calls import Function, FunctionCall, Tool
    from mistral_common.protocol.instruct.tool_calls import ToolCall as MistralCall

    call = MistralCall(
        id=_CALL.id, function=FunctionCall(name=_CALL.name, arguments=json.dumps(_CALL.arguments))
    )
    messages: list[Any] = [
        UserMessage(content="Show me the first lines of src/app.py."),
        AssistantMessage(tool_calls=[call]),
        ToolMessage(content="import os", tool_call_id=_CALL.id, name=_CALL.name),
    ]
    request = ChatCompletionRequest(
        messages=messages,
        tools=[
            Tool(
                function=Function(name=_TOOL.name, description=_TOOL.description, parameters=_TOOL.parameters)
            )
        ],
    )
    from mistral_common.tokens.tokenizers.base import SpecialTokenPolicy

    tokens = tokenizer.encode_chat_completion(request).tokens
    raw = tokenizer.instruct_tokenizer.tokenizer
    # SentencePiece keeps its word-boundary mark next to control tokens; our fixed conversation has none.
    text = str(raw.decode(tokens, special_token_policy=SpecialTokenPolicy.KEEP)).replace("\u2581", " ")
    turn = text.rsplit("[/INST]", 1)[-1]
    return turn.split("[TOOL_RESULTS]", 1)[0]


def _hf_gate(file: Path, family: Family, result: GateResult) -> None:
    try:
        from tokenizers import Tokenizer
    except ImportError as e:
        raise GateInputError(f"Gate 0 needs tokenizers: pip install 'devloop[gate]' ({e})") from e
    try:
        tokenizer = Tokenizer.from_file(str(file))
    except Exception as e:
        raise GateInputError(f"{file}: not a tokenizers tokenizer.json ({e})") from e

    def encode(text: str) -> list[int] | None:
        ids = list(tokenizer.encode(text, add_special_tokens=False).ids)
        if len(ids) == 1 and tokenizer.id_to_token(ids[0]) != text:
            return None  # one <unk>, not the delimiter
        return ids or None

    _delimiter_checks(result, family, encode)
    how = "chat template (transformers)"
    try:
        rendered = _template_render(file.parent, family)
    except _TemplateError as e:
        result.checks.append(Check("round trip", False, f"{how} cannot render a tool call: {e}"))
        return
    if rendered is None:
        render = render_mistral_call if family == "mistral" else render_hermes_call
        # No chat template to render with: the delimiters must at least survive encode + decode intact.
        ids = tokenizer.encode(render(_CALL), add_special_tokens=False).ids
        rendered = tokenizer.decode(ids, skip_special_tokens=False)
        how = "devloop rendering, encoded and decoded"
    _round_trip_check(result, family, rendered, how)


def _template_render(directory: Path, family: Family) -> str | None:
    """The assistant turn rendered by the model's own chat template, or None when there is none. The
    template is wherever transformers keeps it: `tokenizer_config.json`'s `chat_template`, or (as
    transformers 4.47 and later save it) `chat_template.jinja` / `chat_template.json` beside it.
    Raises _TemplateError when the template exists but cannot render the conversation."""
    if not any((directory / name).is_file() for name in _TEMPLATE_FILES):
        return None
    try:
        transformers = importlib.import_module("transformers")
    except ImportError:
        return None
    try:
        tok = transformers.AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError) as e:
        raise GateInputError(
            f"{directory}: transformers cannot load this tokenizer ({_first_line(e)})"
        ) from e
    if not getattr(tok, "chat_template", None):
        return None
    messages = [
        {"role": "user", "content": "Show me the first lines of src/app.py."},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": _CALL.id,
                    "type": "function",
                    "function": {"name": _CALL.name, "arguments": _CALL.arguments},
                }
            ],
        },
    ]
    try:
        prompt = tok.apply_chat_template(
            messages[:1], tools=[_TOOL.openai()], tokenize=False, add_generation_prompt=True
        )
        full = tok.apply_chat_template(messages, tools=[_TOOL.openai()], tokenize=False)
    except Exception as e:  # a template that raises (jinja's raise_exception) on tools or tool calls
        raise _TemplateError(_first_line(e)) from e
    return str(full[len(prompt) :] if full.startswith(prompt) else full)


_TEMPLATE_FILES = ("tokenizer_config.json", "chat_template.jinja", "chat_template.json")


class _TemplateError(Exception):
    """The model's chat template refused to render a tool-call conversation."""


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
