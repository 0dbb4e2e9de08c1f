"""A tiny name → object registry used for every user-selectable variant.

Variants (likelihoods, posteriors, KL attachments, architectures, datasets) are
looked up by name here instead of being spread through ``if/elif`` chains, so
adding one is a single :meth:`Registry.register` call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)
