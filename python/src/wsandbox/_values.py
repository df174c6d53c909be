"""The component values Python has no type of its own for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, NoReturn, TypeVar, Union

T = TypeVar("T")
E = TypeVar("E")


class ResultError(Exception):
    """``unwrap`` of an ``Err``: its value is ``args[0]``."""


@dataclass(frozen=True)
class Ok(Generic[T]):
    """The ``ok`` case of a WIT ``result``."""

    value: T = None  # type: ignore[assignment]

    @property
    def is_ok(self) -> bool:
        return True

    def unwrap(self) -> T:
        return self.value


@dataclass(frozen=True)
class Err(Generic[E]):
    """The ``err`` case of a WIT ``result``."""

    value: E = None  # type: ignore[assignment]

    @property
    def is_ok(self) -> bool:
        return False

    def unwrap(self) -> NoReturn:
        raise ResultError(self.value)


Result = Union[Ok[Any], Err[Any]]


@dataclass(frozen=True)
class Variant:
    """A case of a WIT ``variant``, with its payload (``None`` if the case
    has none). A case without a payload may be sent as its name alone, and
    one with a payload as ``{case: payload}``."""

    case: str
    value: Any = None
