"""Crash classes the fuzzer found that are not fixed yet: the one list to edit.

Each entry names the stage, the exception (or disagreement) and the innermost
spec_compiler frame where it happens (for a hang: where it was interrupted, so a
pattern of the spec text names it instead), whose files hold the fix, and a minimal
reproduction. A finding that matches an entry is "known": the fuzz test tolerates it,
and tests/fuzz/test_fuzz.py runs every reproduction as a strict xfail, so fixing a class
makes that test fail until its entry here is removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# whose files hold the fix (as the work is split today)
LAYERS = "layers/ and inference.py (H1)"
TORCH = "backends/torch_build.py, torch_source.py, modules/ (H1)"


@dataclass(frozen=True)
class Known:
    name: str
    owner: str  # where the fix belongs
    stage: str
    error: str  # the exception's type ("" for any)
    site: str  # a prefix of the finding's site ("" for any)
    reproduce: str  # a minimal spec
    text: str = ""  # a regular expression the spec must contain (for hangs, whose site varies)
    detail: str = ""  # a regular expression the finding's message must contain
    path: str = "fuzz.spec"  # the path the spec is compiled under (the fuzzer always uses fuzz.spec)
    isolated: bool = False  # reproduced as `specc export` in its own process (it may crash the process)

    def matches(self, finding, source: str, path: str) -> bool:
        return (finding.stage == self.stage and self.error in ("", finding.error) and path == self.path
                and finding.site.startswith(self.site)
                and (not self.text or re.search(self.text, source) is not None)
                and (not self.detail or re.search(self.detail, finding.detail) is not None))


KNOWN: list[Known] = [
    Known("`?` lengths compare equal after a layer that changes the length: add/residual accept, forward fails",
          LAYERS, "build", "RuntimeError", "spec_compiler/modules/structure.py:forward",
          "input sequence ?x4\nresidual { maxpool1d 2 }\n"),
    Known("attention mask=padding after a layer that changes the length: the token padding no longer lines up",
          "layers/attention.py (mask=padding)", "build", "RuntimeError", "spec_compiler/modules/attention.py:forward",
          "input tokens ? vocab=7\nembedding 2\nconv_transpose1d 2 2\nluong_attention mask=padding\n",
          detail="must match the size"),
    Known("a run-time length past positional_embedding max_length: a raw PyTorch size error, not a message",
          "layers/transformer.py (positional_embedding)", "build", "RuntimeError",
          "spec_compiler/modules/transformer.py:forward", "input sequence Tx7\npad 3\npositional_embedding max_length=3\n",
          detail="must match the size"),
    Known("a recurrent layer after multihead_attention exports a graph ONNX Runtime cannot run (initial_h shape)",
          "export/ (H7)", "export", "Refused", "spec_compiler/export/", "input sequence ?x6\nmultihead_attention 3\ngru 5\n",
          detail="initial_h"),
    Known("export of a model whose `?` length a random input makes too short (crop, instancenorm): a traceback",
          "export/ (H7): verification lengths; layers/spatial.py (crop)", "export", "", "spec_compiler/modules/",
          "input sequence Tx1\ncrop amount=3\n", detail="narrow|spatial element|Invalid computed output size",
          isolated=True),
    Known("export of a crop to an empty length before instancenorm crashes the process (SIGSEGV)",
          "export/ (H7); layers/spatial.py (crop)", "export", "Signal11", "-",
          "input sequence Tx1\nclass_token\ncrop amount=3\ninstancenorm\n", isolated=True),
    Known("init=orthogonal on a 1-d weight passes compile, fails at build", TORCH, "build", "SpecError",
          "spec_compiler/backends/torch_build.py:weight_options", "input vector 4\nlayernorm init=orthogonal\n"),
    Known("layer named like an nn.Module attribute (`training`): build fails", TORCH, "build", "TypeError",
          "spec_compiler/backends/torch_build.py:train", "input vector 4\ndense 2 name=training\n"),
    Known("layer named like an nn.Module attribute (`_modules`): --emit torch fails", TORCH, "emit", "AttributeError",
          "spec_compiler/backends/torch_source.py", "input vector 4\ndense 2 name=_modules\n"),
    Known("layer name starting with `__` is mangled in --emit torch source", TORCH, "emit", "RuntimeError",
          "spec_compiler/backends/torch_source.py:check_source", "input vector 4\ndense 2 name=__x\n"),
    Known("model named like a Python keyword (`model true`, `None`): --emit torch source does not compile", TORCH,
          "emit", "SyntaxError", "spec_compiler/backends/torch_source.py:load_source",
          "model true\ninput vector 4\ndense 2\n", text=r"(?m)^\s*model\s+(True|False|None|true|false|none)\b"),
    Known("a spec path with backslashes (Windows) breaks --emit torch source", TORCH, "emit", "SyntaxError",
          "spec_compiler/backends/torch_source.py:load_source", "input vector 4\ndense 2\n", path="C:\\new\\x.spec"),
]


def match_known(finding, source: str, path: str) -> str | None:
    for known in KNOWN:
        if known.matches(finding, source, path):
            return known.name
    return None
