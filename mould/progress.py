"""Progress bars: tqdm's when tqdm is installed, else none.

tqdm is a dependency of the package, but a GPU machine that runs a plain copy of it (docs/gpu-recipe.md) may
lack it; generating and training must not stop there for want of a progress bar.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def progress_bar(iterable: Iterable | None = None, **options):
    """``tqdm(iterable, **options)``, or without tqdm an object with its interface that draws nothing."""
    try:
        from tqdm import tqdm
    except ImportError:
        return SilentBar(iterable)
    return tqdm(iterable, **options)


class SilentBar:
    """The part of tqdm's interface the package uses (iteration, ``update``, ``set_postfix``, ``close``),
    drawing nothing."""

    def __init__(self, iterable: Iterable | None = None) -> None:
        self.iterable = iterable

    def __iter__(self) -> Iterator:
        return iter(self.iterable if self.iterable is not None else ())

    def update(self, count: int = 1) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass
