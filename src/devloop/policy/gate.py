"""GatedToolbox: a Toolbox whose calls pass the command policy first; a denied call becomes an observation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devloop.policy.rules import AskFn, Decision, Policy
from devloop.tools.base import ToolContext, ToolSpec
from devloop.tools.registry import Toolbox
from devloop.types import Observation, ToolCall


class GatedToolbox:
    """Wraps `toolbox` with `policy`: same interface (specs, openai_tools, validate, execute, names).

    interactive: whether a person is at the keyboard ("ask" rules call `ask(call, rule)`; in batch runs
    they deny). A denied call is not run: execute returns Observation(is_error=True) telling the model
    why, with meta["policy"] describing the decision. Invalid calls still raise FormatError first.
    """

    def __init__(
        self,
        toolbox: Toolbox,
        policy: Policy,
        root: Path,
        interactive: bool = False,
        ask: AskFn | None = None,
    ) -> None:
        self.toolbox = toolbox
        self.policy = policy
        self.root = Path(root)
        self.interactive = interactive
        self.ask = ask
        self.decisions: list[Decision] = []

    @property
    def names(self) -> list[str]:
        return self.toolbox.names

    def __contains__(self, name: object) -> bool:
        return name in self.toolbox

    def specs(self) -> list[ToolSpec]:
        return self.toolbox.specs()

    def openai_tools(self) -> list[dict[str, Any]]:
        return self.toolbox.openai_tools()

    def validate(self, call: ToolCall) -> Any:
        return self.toolbox.validate(call)

    def get(self, name: str) -> Any:
        return self.toolbox.get(name)

    def execute(self, call: ToolCall, ctx: ToolContext) -> Observation:
        """Validate, check the policy, then run the call (or return the denial)."""
        self.toolbox.validate(call)
        decision = self.policy.check(call, self.root, interactive=self.interactive, ask=self.ask)
        self.decisions.append(decision)
        if decision.action == "deny":
            source = decision.rule.source if decision.rule else "policy"
            return Observation(
                text=f"Not run: {decision.reason}. (command policy, rule from {source}) "
                "This call will be refused again; do something else to reach your goal.",
                is_error=True,
                meta={"policy": decision.meta()},
            )
        observation = self.toolbox.execute(call, ctx)
        if decision.rule is not None and decision.rule.action == "ask":  # who approved it, in the trajectory
            observation.meta["policy"] = decision.meta()
        return observation
