"""Computing integer expressions (`4*c`, `(c+1)//2`, `kxk`, `(2*c)x3x3`) once a block's
parameters are bound. The result is a Number or a Dims spanning the expression, so
every check after this one sees the values as if they had been written out.

Arithmetic is on whole numbers only (`//` rounds down, `%` takes its sign from the
divisor, as in Python), each result at most limits.MAX_INTEGER. A word such as `kxk`
is a name to the parser (`x` is a letter); here it is read as a size when it is no
parameter itself and every part between its `x`s is a parameter or a whole number."""

from __future__ import annotations

from collections.abc import Mapping

from .. import ast
from ..errors import Diagnostic, did_you_mean
from ..limits import MAX_DIMS, MAX_INTEGER

WHOLE_NUMBERS_HINT = "expressions compute with whole numbers; `//` divides to one (`c//2`)"


class ExpressionError(Exception):
    """A value that cannot be computed; `diagnostic` says where and why."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def evaluate(value: ast.Value, bindings: Mapping[str, ast.Value], block: ast.BlockDef | None) -> ast.Value:
    """`value` with the parameters of `block` replaced by their `bindings` (values already
    computed where the block is used) and every expression in it computed."""
    return _Evaluator(bindings, block).value(value)


def is_size_word(name: str, bindings: Mapping[str, ast.Value]) -> bool:
    """Whether a word is read as a size: `kxk`, `cx3` (each part a parameter or a number)."""
    return "x" in name and name not in bindings and _parts_bound(name, bindings)


def _parts_bound(word: str, bindings: Mapping[str, ast.Value]) -> bool:
    return all(part.isdigit() or part in bindings for part in word.split("x"))


class _Evaluator:
    def __init__(self, bindings: Mapping[str, ast.Value], block: ast.BlockDef | None):
        self.bindings = bindings
        self.block = block

    def value(self, value: ast.Value) -> ast.Value:
        if isinstance(value, ast.Name):
            if value.name in self.bindings:
                return self.bindings[value.name]
            if is_size_word(value.name, self.bindings):
                return self.dims(self.size_word(value.name, value), value)
            return value
        if isinstance(value, ast.ListValue):
            return ast.ListValue(tuple(map(self.value, value.items)), value.span)
        if isinstance(value, ast.Call):
            if _size_call(value, self.bindings):  # `cx(h*w)`: the parser took `cx(` for a call
                return self.dims((*self.size_word(value.name[:-1], value), *self.factor(value.args[0])), value)
            return ast.Call(value.name, tuple(map(self.value, value.args)),
                            tuple(ast.Option(o.key, self.value(o.value), o.span) for o in value.options), value.span)
        if isinstance(value, ast.Group):
            return self.value(value.inner)
        if isinstance(value, ast.Size):
            return self.dims(tuple(item for factor in value.factors for item in self.factor(factor)), value)
        if isinstance(value, (ast.Binary, ast.Negate)):
            return ast.Number(self.integer(value), value.span)
        return value

    # --- whole numbers ------------------------------------------------------------

    def integer(self, node: ast.Value) -> int:
        if isinstance(node, ast.Number):
            if isinstance(node.value, float):
                raise self.error(node, f"`{ast.written(node)}` is not a whole number", WHOLE_NUMBERS_HINT)
            return node.value
        if isinstance(node, ast.Group):
            return self.integer(node.inner)
        if isinstance(node, ast.Negate):
            return self.checked(node, -self.integer(node.operand))
        if isinstance(node, ast.Binary):
            return self.binary(node)
        if isinstance(node, ast.Name):
            if node.name in self.bindings:
                return self.bound_integer(node, self.bindings[node.name])
            if is_size_word(node.name, self.bindings):
                raise self.error(node, f"`{node.name}` is a size, not a number",
                                 "sizes cannot be computed with; write the arithmetic inside a part: `(2*c)x3x3`")
            raise self.unknown(node)
        if isinstance(node, (ast.Size, ast.Dims)):
            raise self.error(node, f"`{ast.written(node)}` is a size, not a number",
                             "sizes cannot be computed with; write the arithmetic inside a part: `(2*c)x3x3`")
        if isinstance(node, ast.Unknown):
            raise self.error(node, "`?` (a size known only when the model runs) cannot be computed with")
        raise self.error(node, f"`{ast.written(node)}` is not a number", WHOLE_NUMBERS_HINT)

    def binary(self, node: ast.Binary) -> int:
        left, right = self.integer(node.left), self.integer(node.right)
        if node.operator in ("//", "%") and right == 0:
            zero = "" if isinstance(node.right, ast.Number) else f": `{_bare(node.right)}` is 0"
            raise self.error(node.right, f"`{ast.written(node)}` divides by zero{zero}", self.givens(node.right))
        result = {"+": lambda: left + right, "-": lambda: left - right, "*": lambda: left * right,
                  "//": lambda: left // right, "%": lambda: left % right}[node.operator]()
        return self.checked(node, result)

    def checked(self, node: ast.Value, result: int) -> int:
        if abs(result) > MAX_INTEGER:
            raise self.error(node, f"`{ast.written(node)}` is too large: whole numbers are at most {MAX_INTEGER:,}",
                             self.givens(node))
        return result

    def bound_integer(self, name: ast.Name, bound: ast.Value) -> int:
        """The whole number a parameter stands for here, or an error saying what it is instead."""
        given = f" (given at line {bound.span.line})"
        if isinstance(bound, ast.Number) and isinstance(bound.value, int):
            return bound.value
        if isinstance(bound, ast.Number):
            raise self.error(name, f"`{name.name}` is {ast.written(bound)} here{given}, not a whole number",
                             WHOLE_NUMBERS_HINT)
        if isinstance(bound, ast.Dims):
            raise self.error(name, f"`{name.name}` is the size {ast.written(bound)} here{given}, not a number",
                             "sizes cannot be computed with; pass a number")
        raise self.error(name, f"`{name.name}` is `{ast.written(bound)}` here{given}, not a number",
                         "pass a whole number for it")

    # --- sizes --------------------------------------------------------------------

    def dims(self, items: tuple[int | str, ...], node: ast.Value) -> ast.Dims:
        if len(items) > MAX_DIMS:
            raise self.error(node, f"a size with {len(items)} parts: at most {MAX_DIMS}")
        return ast.Dims(items, node.span, computed=True)

    def factor(self, node: ast.Value) -> tuple[int | str, ...]:
        """The parts one factor of a size gives: `(2*c)` one, a parameter bound to `3x3` two."""
        result = self.value(node)
        if isinstance(result, ast.Dims):
            return result.items
        if isinstance(result, ast.Unknown):
            return ("?",)
        if isinstance(result, ast.Number) and isinstance(result.value, int):
            value = result.value
        else:
            value = self.integer(node)  # a float, a word: raises the error that says what it is
        if value < 1:
            shown = _bare(node)
            got = f"got {value}" if shown == str(value) else f"`{shown}` is {value} here"
            raise self.error(node, f"the parts of a size are whole numbers of at least 1: {got}", self.givens(node))
        return (value,)

    def size_word(self, word: str, where: ast.Value) -> tuple[int | str, ...]:
        items: list[int | str] = []
        for part in word.split("x"):
            if part.isdigit():
                if len(part.lstrip("0")) > len(str(MAX_INTEGER)) or int(part) > MAX_INTEGER:
                    raise self.error(where, f"`{word}` has a part too large: whole numbers are at most {MAX_INTEGER:,}")
                items.extend(self.factor(ast.Number(int(part), where.span)))
            else:
                items.extend(self.factor(ast.Name(part, where.span)))
        return tuple(items)

    # --- errors -------------------------------------------------------------------

    def error(self, node: ast.Value, message: str, hint: str | None = None) -> ExpressionError:
        return ExpressionError(Diagnostic(message, node.span, hint))

    def unknown(self, name: ast.Name) -> ExpressionError:
        if self.block is None:
            return self.error(name, f"unknown name `{name.name}` in an expression",
                              "outside a block an expression computes with numbers only")
        params = [p.name for p in self.block.params]
        otherwise = (f"the block's parameters are: {', '.join(params)}" if params
                     else f"block `{self.block.name}` has no parameters")
        return self.error(name, f"unknown name `{name.name}` in block `{self.block.name}`",
                          did_you_mean(name.name, params) or otherwise)

    def givens(self, node: ast.Value) -> str | None:
        """`with k = 3 (line 12)`: the parameters an expression used, and where each was given."""
        names = dict.fromkeys(n.name for n in _names_in(node) if n.name in self.bindings)
        if not names:
            return None
        shown = [f"{name} = {ast.written(self.bindings[name])} (line {self.bindings[name].span.line})" for name in names]
        return "with " + ", ".join(shown)


def _bare(node: ast.Value) -> str:
    """An operand as written, without the parentheses around it: `k-3` for `(k-3)`."""
    return ast.written(node.inner if isinstance(node, ast.Group) else node)


def _names_in(node: ast.Value):
    if isinstance(node, ast.Name):
        yield node
    for inner in ast.operands(node):
        yield from _names_in(inner)


def _size_call(call: ast.Call, bindings: Mapping[str, ast.Value]) -> bool:
    """`cx(h*w)`: a size whose first parts are a word, read by the parser as a call of `cx`."""
    return (call.name.endswith("x") and len(call.args) == 1 and not call.options
            and _parts_bound(call.name[:-1], bindings))
