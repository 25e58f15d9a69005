"""Crash classes the fuzzer found that are not fixed yet: the one list to edit.

Each entry names the stage, the exception (or disagreement) and the innermost
spec_compiler frame where it happens, whose files hold the fix, and a minimal
reproduction. A finding that matches an entry is "known": the fuzz test tolerates it,
and tests/test_fuzz.py runs every reproduction as a strict xfail, so fixing a class
makes that test fail until its entry here is removed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Known:
    name: str
    owner: str  # where the fix belongs
    stage: str
    error: str
    site: str  # a prefix of the finding's site (path, or path:function)
    reproduce: str  # a minimal spec

    def matches(self, finding) -> bool:
        return (finding.stage == self.stage and finding.error == self.error
                and finding.site.startswith(self.site))


KNOWN: list[Known] = []


def match_known(finding) -> str | None:
    for known in KNOWN:
        if known.matches(finding):
            return known.name
    return None
