"""The chat's settings, validated after its first prompt is drawn.

Validating the settings means loading pydantic and pydantic-settings (~0.1 s of CPU), and all the first
prompt needs of them is the model's name for the banner. `model_hint` finds that name the way the settings
will (the flag, else a DEVLOOP_MODEL variable, else `model` in ./devloop.toml, else in the user's
devloop.toml), reading nothing it is not sure of: when unsure it says so and the settings are validated
first, as everywhere else. `DeferredSettings` then validates them after the prompt is drawn (or at the
first use, whichever comes first); a bad setting ends the chat with its one-line error.
"""

from __future__ import annotations

import os
import threading
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devloop.config import RunSettings


class SettingsFailed(Exception):
    """The settings cannot be used; the message is the one line to show."""


def user_config_file() -> Path:
    """devloop.config.user_config_file, without importing pydantic."""
    import platformdirs

    return Path(platformdirs.user_config_dir("devloop")) / "devloop.toml"


def _from_toml(path: Path) -> str | None:
    """`model` in the TOML file `path`: "" when the file or the key is not there; None when unsure."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None  # the settings' own reading says what is wrong with it
    if [k for k in table if k.lower() == "model"] not in ([], ["model"]):
        return None
    value = table.get("model", "")
    return value if isinstance(value, str) else None


def model_hint(flag: str | None) -> str | None:
    """The model the settings will name, or None when that is not certain without validating them."""
    if flag is not None:
        return flag or None
    named = [v for k, v in os.environ.items() if k.lower() == "devloop_model"]  # pydantic-settings: any case
    if len(named) > 1:
        return None
    if named:
        return named[0] or None
    for path in (Path.cwd() / "devloop.toml", user_config_file()):  # the project's file wins
        value = _from_toml(path) if path.is_file() else ""
        if value != "":
            return value
    return None  # no model anywhere: the settings' validation says so


class DeferredSettings:
    """Settings loaded by `load` at the first `get` (from any thread; later callers wait for it)."""

    def __init__(self, load: Callable[[], RunSettings], model: str) -> None:
        self.model = model  # the name the banner and the bottom bar show meanwhile
        self._load = load
        self._lock = threading.Lock()
        self._done: RunSettings | SettingsFailed | None = None
        self.on_failure: Callable[[SettingsFailed], None] = lambda e: None

    @property
    def ready(self) -> RunSettings | None:
        done = self._done
        return None if done is None or isinstance(done, SettingsFailed) else done

    def get(self) -> RunSettings:
        with self._lock:
            if self._done is None:
                try:
                    self._done = self._load()
                except SettingsFailed as e:
                    self._done = e
                    self.on_failure(e)
                except Exception as e:  # one line, never a traceback from a thread
                    self._done = SettingsFailed(f"cannot read settings: {e}")
                    self.on_failure(self._done)
        if isinstance(self._done, SettingsFailed):
            raise self._done
        return self._done
