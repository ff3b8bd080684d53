"""Named crash points for the crash-consistency tests: `VEILLE_TEST_CRASH_AT=<point>` exits hard there.

Only tests set the variable; in production `crash_point` is a dictionary lookup that does nothing.
"""

from __future__ import annotations

import os


def crash_point(name: str) -> None:
    if os.environ.get("VEILLE_TEST_CRASH_AT") == name:
        os._exit(137)
