"""The command policy: which tool calls may run, must be approved, or are refused, and from which file."""

from devloop.policy.defaults import DEFAULT_RULES
from devloop.policy.gate import GatedToolbox
from devloop.policy.loader import (
    PROJECT_POLICY,
    PolicyError,
    load_policy,
    project_policy_file,
    read_rules,
    user_policy_file,
)
from devloop.policy.paths import bash_write_targets, writes_outside
from devloop.policy.rules import Decision, Policy, Rule

__all__ = [
    "DEFAULT_RULES",
    "PROJECT_POLICY",
    "Decision",
    "GatedToolbox",
    "Policy",
    "PolicyError",
    "Rule",
    "bash_write_targets",
    "load_policy",
    "project_policy_file",
    "read_rules",
    "user_policy_file",
    "writes_outside",
]
