"""`search_code`: ranked files and definitions of the workspace for a query (devloop.retrieval).

The workspace is the model's, so it is read on the host only through safefs (no link followed, no
FIFO opened) and never with git. The index is kept between calls and rebuilt only for changed files."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from devloop.tools.base import ToolContext, ToolSpec
from devloop.tools.common import load_description, make_spec
from devloop.types import Observation

_MAX_K = 50


class SearchCodeArgs(BaseModel):
    """Arguments of `search_code`."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(description="Words, identifiers or error text to look for.")
    k: int = Field(10, ge=1, le=_MAX_K, description="How many files and definitions to return.")


class SearchCodeTool:
    """The `search_code` tool."""

    name: ClassVar[str] = "search_code"
    Args: ClassVar[type[BaseModel]] = SearchCodeArgs

    def __init__(self) -> None:
        self._index: object | None = None

    def spec(self) -> ToolSpec:
        return make_spec(self.name, SearchCodeArgs, load_description("search_code"))

    def run(self, args: BaseModel, ctx: ToolContext) -> Observation:
        from devloop.retrieval import Index

        assert isinstance(args, SearchCodeArgs)
        if not args.query.strip():
            return Observation(
                text="The query is empty: give words or identifiers to look for.", is_error=True
            )
        previous = self._index if isinstance(self._index, Index) else None
        index = Index.of_directory(str(ctx.root), previous)
        self._index = index
        files = index.search(args.query, args.k)
        defs = index.search_definitions(args.query, args.k)
        if not files and not defs:
            return Observation(text=f"No file matches {args.query!r}. Try other words or identifiers.")
        lines = ["Files (best first):", *(f"  {h.path}" for h in files)]
        if defs:
            lines += ["Definitions:", *(f"  {h.path}:{h.line}: {h.signature}" for h in defs)]
        text = "\n".join(lines)
        if len(text) > ctx.output_cap:
            text = text[: ctx.output_cap] + "\n[... cut]"
        return Observation(text=text)
