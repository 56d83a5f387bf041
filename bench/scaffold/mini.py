"""mini-swe-agent's side: the same scripted trajectory, its model asking the server through the openai SDK."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from scaffold.servers import serve
from scaffold.work import BASH_TOOL, ISSUE, SUBMIT, tool_script


def mini_model(url: str) -> Any:
    """A mini-swe-agent model that asks the scripted server over HTTP, through the openai SDK."""
    import openai
    from minisweagent.models.test_models import DeterministicModel

    class HTTPModel(DeterministicModel):  # reuse its observation formatting; only query() differs
        client = openai.OpenAI(base_url=url, api_key="x", max_retries=0)

        def query(self, messages: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
            sent = [{"role": m["role"], "content": m["content"]} for m in messages]
            reply = self.client.chat.completions.create(model="bench", messages=sent, tools=[BASH_TOOL])
            msg = reply.choices[0].message
            args = json.loads(msg.tool_calls[0].function.arguments)
            extra = {"actions": [{"command": args["command"]}], "cost": 0.0, "timestamp": time.time()}
            return {"role": "assistant", "content": msg.content, "extra": extra}

    return HTTPModel(outputs=[])


def mini_once(repo: Path, out: Path, cmds: list[str]) -> float:
    from minisweagent.agents.default import DefaultAgent
    from minisweagent.environments.local import LocalEnvironment

    script = tool_script(cmds, "bash", {"bash": {"command": SUBMIT}})
    with serve(script) as server:
        agent = DefaultAgent(
            mini_model(server.url),
            LocalEnvironment(cwd=str(repo)),
            system_template="You are a helpful assistant that can run bash commands.",
            instance_template="Please solve this issue: {{task}}",
            step_limit=len(cmds) + 10,
            cost_limit=0,
            output_path=out / "traj.json",
        )
        t0 = time.perf_counter()
        info = agent.run(ISSUE)
        elapsed = time.perf_counter() - t0
    assert info.get("exit_status") == "Submitted", info
    assert "* of note" in info.get("submission", ""), "mini-swe-agent: the edits are missing"
    return elapsed
