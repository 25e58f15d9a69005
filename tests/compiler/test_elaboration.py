"""Elaboration's passes: structural bodies split by the kind's declared layout (never
by kind name), and every pass's mistakes reported together, in file order."""

from __future__ import annotations

import pytest

from spec_compiler import SpecError
from spec_compiler.elaborate import elaborate
from spec_compiler.layers import REGISTRY, LayerKind, LayerParams
from spec_compiler.layers.base import BodyLayout
from spec_compiler.parser import parse


class _NoParams(LayerParams):
    pass


def _unused(*args):
    raise AssertionError("elaboration never infers or builds")


FORK = LayerKind(name="fork", params=_NoParams, shape=_unused, build=_unused, doc="three or more paths, added",
                 layout=BodyLayout("branches", marker="path", min_bodies=3, merge="add"),
                 example="fork { path { dense 2 }; path { dense 2 }; path { dense 2 } }")
HIGHWAY = LayerKind(name="highway", params=_NoParams, shape=_unused, build=_unused, doc="a body and a skip, added",
                    layout=BodyLayout("main_and_marked", marker="skip", labels=("body", "skip"), merge="add"),
                    example="highway { dense 4; skip { dense 4 } }")


@pytest.fixture
def new_kinds(monkeypatch):
    """`fork` and `highway`, kinds elaboration has never heard of, in the registry for one test."""
    extra = {kind.name: kind for kind in (FORK, HIGHWAY)}
    lookup, kinds, words, markers = REGISTRY.lookup, REGISTRY.kinds, REGISTRY.words, REGISTRY.markers
    monkeypatch.setattr(REGISTRY, "lookup", lambda word: extra.get(word) or lookup(word))
    monkeypatch.setattr(REGISTRY, "kinds", lambda: [*kinds(), *extra.values()])
    monkeypatch.setattr(REGISTRY, "words", lambda: sorted([*words(), *extra]))
    monkeypatch.setattr(REGISTRY, "markers", lambda: {**markers(), **{k.layout.marker: [k.name] for k in extra.values()}})


def _elaborate(text: str):
    return elaborate(parse(text, "t.spec"))


def _messages(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        _elaborate(text)
    return [d.message for d in caught.value.diagnostics]


def test_branches_are_split_by_the_declared_marker(new_kinds):
    (node,) = _elaborate("input vector 4\nfork {\n  path { dense 2 }\n  path { dense 3 }\n  path { dense 4 }\n}\n").nodes
    assert node.kind == "fork"
    assert [[n.params.units for n in body] for body in node.bodies] == [[2], [3], [4]]
    assert [span.line for span in node.body_spans] == [3, 4, 5]


def test_branch_layout_mistakes_name_the_declared_marker(new_kinds):
    assert _messages("input vector 4\nfork { path { dense 2 }; path { dense 2 } }\n") == [
        "`fork` needs at least three `path { }` bodies"]
    assert _messages("input vector 4\nfork { dense 2 }\n") == ["inside `fork`, write each path as `path { ... }`"]
    assert _messages("input vector 4\npath { dense 2 }\n") == ["`path { }` is only allowed directly inside `fork`"]
    assert _messages("block path() { dense 2 }\ninput vector 4\ndense 2\n") == [
        "block name `path` is already a layer word"]


def test_a_main_body_and_a_marked_body(new_kinds):
    (node,) = _elaborate("input vector 4\nhighway {\n  dense 4 relu\n  skip { dense 4 }\n}\n").nodes
    assert [[n.kind for n in body] for body in node.bodies] == [["dense"], ["dense"]]
    assert [span.line for span in node.body_spans] == [2, 4]
    (plain,) = _elaborate("input vector 4\nhighway { dense 4 }\n").nodes
    assert plain.bodies[1] == ()  # no marked body: the identity
    assert _messages("input vector 4\nhighway { dense 4; skip { dense 4 }; skip { dense 4 } }\n") == [
        "a highway has at most one `skip { }`"]


def test_the_first_mistakes_in_the_file_are_shown_whichever_pass_found_them():
    zeros = "dense 0\n" * 24
    late = _elaborate_error("input vector 4\n" + zeros + "maxpol 2\n")
    assert late.not_shown == 5
    assert all(d.message == "dense units must be greater than 0, got 0" for d in late.diagnostics)
    early = _elaborate_error("input vector 4\nmaxpol 2\n" + zeros)
    assert early.first.message == "unknown layer `maxpol`"
    assert [d.span.line for d in early.diagnostics] == list(range(2, 22))


def _elaborate_error(text: str) -> SpecError:
    with pytest.raises(SpecError) as caught:
        _elaborate(text)
    return caught.value
