"""The TextMate grammar on integer expressions (docs/language.md#expressions): operators,
computed sizes and a call's tight `(` get their scopes, run through VS Code's engine."""

from __future__ import annotations

from test_textmate import node, tokenize  # noqa: F401 - the fixtures that run the grammar under node

SAMPLE = """\
block b(c, k=3, e=4*c) {
  conv (2*c)x3x3 pad=k//2 -> conv c 3xk -> dense c%2-1 -> dense -k + 1 -> clip -2 2
  conv c (k)x(k+1) regularizer=l2(0.1)
}
"""
EXPECTED_SCOPES = [
    (1, "*", "keyword.operator.arithmetic.spec"),
    (2, "(", "punctuation.section.parens.begin.spec"),
    (2, "x", "keyword.operator.size.spec"),
    (2, "3x3", "constant.numeric.size.spec"),
    (2, "//", "keyword.operator.arithmetic.spec"),
    (2, "3", "constant.numeric.spec"),
    (2, "%", "keyword.operator.arithmetic.spec"),
    (2, "-", "keyword.operator.arithmetic.spec"),
    (2, "+", "keyword.operator.arithmetic.spec"),
    (2, "-2", "constant.numeric.spec"),
    (3, "c", "variable.other.word.spec"),  # a space before `(`: a group, not a call
    (3, "l2", "support.function.call.spec"),
]


def test_expressions_get_their_scopes(tokenize, tmp_path):  # noqa: F811 - the fixture imported above
    sample = tmp_path / "expressions.spec"
    sample.write_text(SAMPLE, encoding="utf-8")
    tokens = tokenize([sample])[str(sample)]
    for line, text, scope in EXPECTED_SCOPES:
        matches = [t for t in tokens if t[0] == line and t[3] == text]
        assert matches, f"line {line}: no token {text!r} in {[t[3] for t in tokens if t[0] == line]}"
        assert any(scope in t[4] for t in matches), (line, text, [t[4] for t in matches])
    assert not [t for t in tokens if any(s.startswith("invalid") for s in t[4])]
    assert not [t for t in tokens if t[3].strip() and t[4] == ["source.spec"]]
