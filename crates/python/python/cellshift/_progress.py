"""Progress of long calls: a tqdm bar by default, or any callable ``(done, total, text)``."""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator, Optional, Union

Progress = Union[bool, None, Callable[[int, int, str], None]]
"""``True`` (a tqdm bar), ``False``/``None`` (silent), or a callable ``(done, total, text)``."""


class _Bar:
    """A tqdm bar created at the first report, so calls that end at once show nothing. On a terminal or
    in a notebook it redraws at most ten times a second; in a log, at most every 30 seconds."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.bar = None

    def __call__(self, done: int, total: int, text: str) -> None:
        if self.bar is None:
            from tqdm.auto import tqdm

            live = sys.stderr.isatty() or "ipykernel" in sys.modules
            self.bar = tqdm(total=total, desc=self.description, delay=0.5, leave=False,
                            mininterval=0.1 if live else 30.0)
        if total and self.bar.total != total:
            self.bar.total = total
        self.bar.set_postfix_str(text[:80], refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextlib.contextmanager
def reporter(progress: Progress, description: str) -> Iterator[Optional[Callable[[int, int, str], None]]]:
    """The callback the native module reports to, closed (bar removed) when the call ends."""
    if callable(progress):
        yield progress
    elif progress:
        bar = _Bar(description)
        try:
            yield bar
        finally:
            bar.close()
    else:
        yield None
