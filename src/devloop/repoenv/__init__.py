"""The repository's own environment for `devloop run`: chosen (detect.py), built when it is a cached
one (build.py), and shown read-only to the agent's commands first on PATH (model.py)."""

from devloop.repoenv.detect import choose_environment, prepare
from devloop.repoenv.model import EnvChoiceError, RepoEnvironment

__all__ = ["EnvChoiceError", "RepoEnvironment", "choose_environment", "prepare"]
