"""Expressions as text: on one line (`format_expr`), or broken over lines to fit a line length (`Layout`), the way
Black breaks Python. Newlines are not significant in `.dann`, so a line may break after any bracket and before any
operator.

>>> from spec_lang.syntax.parser import parse
>>> loss = parse("model m() loss l = 0.5 * (label_loss + domain_loss)").losses[0]
>>> print("\\n".join(Layout(30).lines(loss.value, "loss l = ")))
loss l = 0.5 * (
    label_loss + domain_loss
)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from spec_lang.syntax import ir

PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
INDENT = "    "  # the indentation of a continuation line, and of the contents of a broken bracket
ATOM = 4  # the context of an expression that must be an atom (a dense layer's units, a loop's list, a bound)


def format_expr(expr: ir.Expr) -> str:
    """One expression on one line, with only the parentheses its structure needs."""
    return flat(expr, 0)


def flat(expr: ir.Expr, context: int) -> str:
    """`expr` on one line where an operator of precedence `context` surrounds it (0: none; 3: a negation)."""
    match expr:
        case ir.Number(value=value):
            text = repr(value)
            return f"({text})" if context >= 3 and text.startswith("-") else text
        case ir.Bool(value=value):
            return "true" if value else "false"
        case ir.Ref(name=name):
            return name
        case ir.ListExpr(items=items):
            return "[" + ", ".join(flat(i, 0) for i in items) + "]"
        case ir.Call(func=func, args=args, kwargs=kwargs):
            return f"{func}({arguments(args, kwargs)})"
        case ir.Neg(operand=operand):
            text = "-" + flat(operand, 3)
            return f"({text})" if context > 3 else text
        case ir.BinOp(op=op, left=left, right=right):
            precedence = PRECEDENCE[op]
            # Left-associative: the right operand needs parentheses at equal precedence, so that
            # a + (b + c) keeps its shape through a round trip.
            text = f"{flat(left, precedence)} {op} {flat(right, precedence + 1)}"
            return f"({text})" if precedence < context else text
    raise TypeError(f"not an expression: {expr!r}")


def arguments(args: tuple[ir.Expr, ...], kwargs: tuple[ir.Keyword, ...]) -> str:
    """Arguments of a call on one line: `a, b, key = value`."""
    return ", ".join(prefix + flat(value, 0) for prefix, value in items(args, kwargs))


type Item = tuple[str, ir.Expr | None]  # what an item of a bracket starts with (`key = `), and its value if any


def items(args: tuple[ir.Expr, ...], kwargs: tuple[ir.Keyword, ...]) -> list[tuple[str, ir.Expr]]:
    """The items of a call's brackets: each argument, then each `key = value`."""
    return [("", a) for a in args] + [(f"{k.name} = ", k.value) for k in kwargs]


def terms(expr: ir.BinOp) -> list[tuple[str, ir.Expr]]:
    """The operands of a chain of operators of the precedence of `expr`'s, e.g. the terms of a sum, each after its
    operator."""
    level = PRECEDENCE[expr.op]
    chained: list[tuple[str, ir.Expr]] = []
    node: ir.Expr = expr
    while isinstance(node, ir.BinOp) and PRECEDENCE[node.op] == level:
        chained.append((node.op, node.right))
        node = node.left
    return [("", node), *reversed(chained)]


def _parenthesised(expr: ir.Expr, context: int) -> bool:
    return (isinstance(expr, ir.BinOp) and PRECEDENCE[expr.op] < context) or (isinstance(expr, ir.Neg) and context > 3)


@dataclass(frozen=True)
class Layout:
    """Breaks what does not fit in `width` characters: the outermost brackets first, one item per line (with a
    trailing comma) unless the items fit on one line together; a chain of operators one operand per line, each
    continuation line starting with its operator."""

    width: int

    def fits(self, line: str) -> bool:
        """Whether a line is short enough."""
        return len(line) <= self.width

    def lines(
        self, expr: ir.Expr, lead: str, tail: str = "", context: int = 0, indent: str = "", cont: str | None = None
    ) -> list[str]:
        """`lead + expr + tail`, on one line if it fits. `indent` is where a broken bracket closes; a broken chain
        of operators continues at `cont` (by default `indent` and four spaces)."""
        line = lead + flat(expr, context) + tail
        if self.fits(line):
            return [line]
        inner = indent + INDENT
        if _parenthesised(expr, context):
            body = self.lines(expr, inner, "", 0, inner, inner)
            return [lead + "(", *body, indent + ")" + tail]
        match expr:
            case ir.Neg(operand=operand):
                return self.lines(operand, lead + "-", tail, 3, indent, cont)
            case ir.Call(func=func, args=args, kwargs=kwargs) if args or kwargs:
                return self.bracket(lead + func + "(", items(args, kwargs), ")" + tail, indent)
            case ir.ListExpr(items=values) if values:
                return self.bracket(lead + "[", [("", v) for v in values], "]" + tail, indent)
            case ir.BinOp():
                return self.chain(expr, lead, tail, indent, inner if cont is None else cont)
        return [line]

    def chain(
        self,
        expr: ir.BinOp,
        lead: str,
        tail: str,
        indent: str,
        cont: str,
        box: str | None = None,
        note: Callable[[ir.Expr], str] | None = None,
    ) -> list[str]:
        """A chain of operators of the precedence of `expr`'s, one operand per line, the operators at the start of
        the lines at `cont`; `note` gives what follows each operand's last line (a comment). Without `note`, a
        single operator after a name or a number breaks the bracket that follows it instead: `0.5 * (` … `)`,
        closing at `indent`. Brackets in the operands close at `box` if given, else at the indentation of their
        line."""
        level = PRECEDENCE[expr.op]
        chained = terms(expr)
        first, (op, last) = chained[0][1], chained[-1]
        if note is None and len(chained) == 2 and isinstance(first, ir.Number | ir.Ref | ir.Bool):
            if self._opens(last, level + 1):
                return self.lines(last, f"{lead}{flat(first, level)} {op} ", tail, level + 1, indent)
        lines: list[str] = []
        for number, (op, term) in enumerate(chained):
            start = f"{cont}{op} " if number else lead
            end = tail if number == len(chained) - 1 else ""
            context = level + 1 if number else level
            lines += self.lines(term, start, end, context, (cont if number else indent) if box is None else box)
            lines[-1] += note(term) if note else ""
        return lines

    @staticmethod
    def _opens(expr: ir.Expr, context: int) -> bool:
        """Whether `expr` printed in `context` ends in a bracket that can break."""
        if isinstance(expr, ir.Neg) and context <= 3:
            return Layout._opens(expr.operand, 3)
        if isinstance(expr, ir.Call):
            return bool(expr.args or expr.kwargs)
        return _parenthesised(expr, context) or (isinstance(expr, ir.ListExpr) and bool(expr.items))

    def bracket(self, opener: str, entries: Sequence[Item], closer: str, indent: str, comma: bool = True) -> list[str]:
        """`opener` (ending in a bracket), the entries and `closer` (starting with the closing bracket), broken: the
        entries on one line inside if they fit there, numbers filling lines, or one entry per line, each followed
        by a comma (the last only if `comma`: the grammar allows one there)."""
        inner = indent + INDENT
        texts = [prefix + ("" if value is None else flat(value, 0)) for prefix, value in entries]
        together = inner + ", ".join(texts)
        if self.fits(together):
            return [opener, together, indent + closer]
        body: list[str] = []
        if all(isinstance(value, ir.Number) for _, value in entries):  # a list of numbers fills its lines
            for text in texts:
                if body and self.fits(f"{body[-1]} {text},"):
                    body[-1] += f" {text},"
                else:
                    body.append(f"{inner}{text},")
        else:
            for prefix, value in entries:
                if value is None:
                    body.append(inner + prefix + ",")
                else:
                    body += self.lines(value, inner + prefix, ",", 0, inner)
        if not comma:
            body[-1] = body[-1][:-1]
        return [opener, *body, indent + closer]
