"""A tiny name → object registry used for every user-selectable variant.

Variants (likelihoods, posteriors, KL attachments, architectures, datasets) are
looked up by name here instead of being spread through ``if/elif`` chains, so
adding one is a single :meth:`Registry.register` call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to variants and fails loudly on unknown names.

    Args:
        kind: What the registry holds, used in error messages (``"likelihood"``).

    Example:
        >>> from tfpvae.registry import Registry
        >>> reg = Registry[int]("number")
        >>> reg.register("one", 1)
        1
        >>> reg.get("one")
        1
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        """Adds ``item`` under ``name``; re-registering a name is an error."""
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    @contextmanager
    def temporarily(self, name: str, item: T, *, replace: bool = False) -> Iterator[T]:
        """Registers ``item`` under ``name`` for the ``with`` block only, e.g. in a test.

        On leaving the block, however it is left, the registry is as it was
        before: the name is removed again, or, with ``replace=True``, the entry it
        shadowed is put back in its place (and its position in :meth:`names`).

        Args:
            name: The name to register.
            item: The variant to register under it.
            replace: Whether ``item`` may shadow an entry already called ``name``.
                Without it, an existing name is an error, as for :meth:`register`.

        Yields:
            ``item``.

        Raises:
            ValueError: If ``name`` is registered already and ``replace`` is false.

        Example:
            >>> from tfpvae.registry import Registry
            >>> reg = Registry[int]("number")
            >>> _ = reg.register("one", 1)
            >>> with reg.temporarily("two", 2) as two:
            ...     reg.names(), reg.get("two") == two
            (['one', 'two'], True)
            >>> reg.names()
            ['one']
            >>> with reg.temporarily("one", 11, replace=True):
            ...     reg.get("one")
            11
            >>> reg.get("one")
            1
        """
        if name in self._items and not replace:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        shadowed = {name: self._items[name]} if name in self._items else {}
        self._items[name] = item  # an existing key keeps its position
        try:
            yield item
        finally:
            if shadowed:
                self._items.update(shadowed)
            else:
                self._items.pop(name, None)

    def decorator(self, name: str) -> Callable[[T], T]:
        """Returns a decorator that registers its target under ``name``."""
        return lambda item: self.register(name, item)

    def get(self, name: str) -> T:
        """Returns the variant called ``name``.

        Raises:
            ValueError: If ``name`` is not registered; the message lists the known names.
        """
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def find(self, predicate: Callable[[T], bool]) -> T | None:
        """The first registered variant, in registration order, for which ``predicate`` holds.

        Example:
            >>> from tfpvae.registry import Registry
            >>> reg = Registry[int]("number")
            >>> _ = reg.register("one", 1), reg.register("two", 2)
            >>> reg.find(lambda n: n > 1), reg.find(lambda n: n > 2)
            (2, None)
        """
        return next((item for item in self._items.values() if predicate(item)), None)

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)
