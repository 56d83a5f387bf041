"""Model-written text shown on a person's terminal: control characters made visible, never sent.

A command's output, a patch or a reply may hold escape sequences (OSC 52 writes the clipboard, others
retitle the window, move the cursor or hide text), and rich passes ESC through. Everything devloop prints
that a model or a server wrote goes through `shown` first.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, and the C1 range (some terminals act on 8-bit CSI/OSC too).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def shown(text: object) -> str:
    """`text` with each control character replaced by its visible form (ESC -> `\\x1b`)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))
