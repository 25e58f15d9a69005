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
    Known("a constraint's axis= past the rank of the kernel (max_norm(axis=2) on dense's 2-d weight) passes compile, "
          "and is refused only when the module is built", "layers/base.py WeightRoles: a rank per role, so that compile "
          "can check axis= (bias_constraint is checked: a bias is a vector)", "build", "SpecError",
          "spec_compiler/backends/torch_build.py:weight_options", "input vector 6\ndense 8 constraint=max_norm(3, axis=2)\n"),
    Known("exp of exp then convolutions: values past 1e14, where float32 sums of large terms cancel, and ONNX Runtime "
          "and PyTorch differ by just over the relative tolerance (1.6e-3 against 1e-3)",
          "export/verify.py (a tolerance for sums of terms far larger than their result)", "export", "Refused",
          "spec_compiler/export/", "input image 3x11x11\npad 4\nexp -> selu\nresidual { exp }\nrepeat 3 {\n"
          "  conv2d 8 3\n}\n", detail=r"max abs diff \d(\.\d+)?e\+(0[6-9]|[1-9]\d)"),
]


def match_known(finding, source: str, path: str) -> str | None:
    for known in KNOWN:
        if known.matches(finding, source, path):
            return known.name
    return None
