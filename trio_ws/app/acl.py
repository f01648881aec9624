"""Access control: the events a connection may send in one namespace."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["AccessControl"]


class AccessControl:
    """The events a connection may send in one namespace.

    Two modes: an allow-list (only the listed events), or everything except
    a deny-list. :meth:`lift` allows everything; :meth:`reset` returns to
    the namespace's initial set. Plain bookkeeping: no method does I/O or
    raises, and each takes effect for the next event the connection sends.

    Args:
        initial: the namespace's initial allow-list, or None for "everything".
    """

    def __init__(self, initial: Iterable[str] | None) -> None:
        self._initial = None if initial is None else frozenset(initial)
        self._allowed: set[str] | None = None
        self._denied: set[str] = set()
        self.reset()

    @property
    def allowed(self) -> frozenset[str] | None:
        """The allow-list, or None when every event not in :attr:`denied` is allowed."""
        return None if self._allowed is None else frozenset(self._allowed)

    @property
    def denied(self) -> frozenset[str]:
        """The deny-list (used while there is no allow-list)."""
        return frozenset(self._denied)

    def allows(self, event: str) -> bool:
        """Whether ``event`` may be handled."""
        if self._allowed is None:
            return event not in self._denied
        return event in self._allowed

    def allow(self, *events: str) -> None:
        """Allow these events."""
        if self._allowed is None:
            self._denied.difference_update(events)
        else:
            self._allowed.update(events)

    def deny(self, *events: str) -> None:
        """Forbid these events."""
        if self._allowed is None:
            self._denied.update(events)
        else:
            self._allowed.difference_update(events)

    def lift(self) -> None:
        """Allow every event."""
        self._allowed = None
        self._denied = set()

    def reset(self) -> None:
        """Go back to the namespace's initial set."""
        self._allowed = None if self._initial is None else set(self._initial)
        self._denied = set()
