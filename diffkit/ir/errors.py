"""Errors of the front doors that the IR shares: text or SymPy objects that cannot be
built into a graph."""

from __future__ import annotations

__all__ = ["ParseError"]


class ParseError(ValueError):
    """Text (or a SymPy object) that is not an expression diffkit can build.

    Attributes:
        text: the expression.
        column: 1-based column of the problem (``None`` when it concerns the whole text).

    Args:
        message: the one-line description.
        text: the expression.
        column: 1-based column of the problem, or None.

    >>> import diffkit as dk
    >>> try:
    ...     dk.parse("x +")
    ... except dk.ParseError as err:
    ...     print(err.column, err)
    4 cannot parse 'x +': the expression ends too early at column 4
    """

    def __init__(self, message: str, text: str = "", column: int | None = None):
        self.text = text
        self.column = column
        if column is not None:
            message = f"{message} at column {column}"
        if text and len(text) <= 80:
            message = f"cannot parse {text!r}: {message}"
        elif text:
            message = f"cannot parse the expression: {message}"
        super().__init__(message)

    @property
    def caret(self) -> str:
        """The expression with a caret under the column of the problem (two lines)."""
        if self.column is None or not self.text or len(self.text) > 200:
            return ""
        line = self.text.replace("\n", " ").replace("\t", " ")
        return f"  {line}\n  {' ' * (self.column - 1)}^"


# errors raised inside the parser print as the front door's
ParseError.__module__ = "diffkit.parse"
