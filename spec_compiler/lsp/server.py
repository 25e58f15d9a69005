"""`specc lsp`: the language server, over stdio (pygls).

Each open document is checked when it opens and whenever its text changes (never twice
for the same text); its diagnostics are those `specc compile` prints, with the same
messages, hints and carets. Every other feature reads the latest check.
"""

from __future__ import annotations

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from .. import __version__
from ..errors import Diagnostic, SpecError
from ..formatter import format_source
from ..inference import Limits
from .analysis import Analysis, Checker
from .completion import complete
from .facts import line_hints
from .fixes import code_actions
from .hover import hover
from .outline import document_symbols
from .positions import Positions


class SpecLanguageServer(LanguageServer):
    def __init__(self, limits: Limits):
        super().__init__("specc", __version__)
        self.limits = limits
        self.checker = Checker(limits)
        self._published: dict[str, tuple[Analysis, Positions, dict[Diagnostic, types.Diagnostic]]] = {}

    def current(self, uri: str) -> tuple[Analysis, Positions, dict[Diagnostic, types.Diagnostic]]:
        """The check of the document's current text, with its positions and LSP diagnostics."""
        document = self.workspace.get_text_document(uri)
        analysis, _ = self.checker.check(uri, to_fs_path(uri) or uri, document.source)
        published = self._published.get(uri)
        if published is None or published[0] is not analysis:
            positions = Positions(analysis.source, self.workspace.position_codec)
            published = (analysis, positions, lsp_diagnostics(analysis, positions))
            self._published[uri] = published
        return published

    def check_and_publish(self, uri: str, version: int | None, always: bool) -> None:
        """Re-check a document and publish its diagnostics (unless its text is unchanged)."""
        document = self.workspace.get_text_document(uri)
        _, new = self.checker.check(uri, to_fs_path(uri) or uri, document.source)
        if new or always:
            _, _, diagnostics = self.current(uri)
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
                uri=uri, version=version, diagnostics=list(diagnostics.values()) + self._overflow(uri)))

    def _overflow(self, uri: str) -> list[types.Diagnostic]:
        """The CLI's closing line when errors were left out: `23 errors (3 more not shown...)`."""
        analysis = self._published[uri][0]
        if not analysis.not_shown:
            return []
        count = len(analysis.diagnostics) + analysis.not_shown
        start = types.Position(line=0, character=0)
        return [types.Diagnostic(range=types.Range(start=start, end=start), source="specc",
                                 severity=types.DiagnosticSeverity.Information,
                                 message=f"{count} errors ({analysis.not_shown} more not shown; fix these first)")]

    def forget(self, uri: str) -> None:
        self.checker.forget(uri)
        self._published.pop(uri, None)
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


def lsp_diagnostics(analysis: Analysis, positions: Positions) -> dict[Diagnostic, types.Diagnostic]:
    """The errors, and the warnings (severity Warning), as the editor shows them."""
    severity = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning}
    return {d: types.Diagnostic(range=positions.range(d.span), severity=severity[d.severity],
                                source="specc", message=d.message + (f"\nhint: {d.hint}" if d.hint else ""))
            for d in (*analysis.warnings, *analysis.diagnostics)}


def create_server(limits: Limits) -> SpecLanguageServer:
    server = SpecLanguageServer(limits)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: SpecLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.check_and_publish(params.text_document.uri, params.text_document.version, always=True)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: SpecLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.check_and_publish(params.text_document.uri, params.text_document.version, always=False)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: SpecLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.forget(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: SpecLanguageServer, params: types.HoverParams) -> types.Hover | None:
        analysis, positions, _ = ls.current(params.text_document.uri)
        return hover(analysis, positions, params.position)

    @server.feature(types.TEXT_DOCUMENT_INLAY_HINT)
    def inlay_hints(ls: SpecLanguageServer, params: types.InlayHintParams) -> list[types.InlayHint]:
        analysis, positions, _ = ls.current(params.text_document.uri)
        first, last = params.range.start.line + 1, params.range.end.line + 1
        return [types.InlayHint(position=positions.line_end(line), label=text, kind=types.InlayHintKind.Type,
                                padding_left=True)
                for line, text in sorted(line_hints(analysis).items()) if first <= line <= last]

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=["="]))
    def completion(ls: SpecLanguageServer, params: types.CompletionParams) -> types.CompletionList:
        uri = params.text_document.uri
        analysis, positions, _ = ls.current(uri)
        items = complete(analysis.braces, ls.checker.last_parsed(uri), positions, params.position)
        return types.CompletionList(is_incomplete=False, items=items)

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: SpecLanguageServer, params: types.DefinitionParams) -> types.Location | None:
        uri = params.text_document.uri
        analysis, positions, _ = ls.current(uri)
        found = analysis.symbols.at(*positions.locate(params.position))
        span = analysis.symbols.definition(found.symbol) if found else None
        return types.Location(uri=uri, range=positions.range(span)) if span else None

    @server.feature(types.TEXT_DOCUMENT_REFERENCES)
    def references(ls: SpecLanguageServer, params: types.ReferenceParams) -> list[types.Location]:
        uri = params.text_document.uri
        analysis, positions, _ = ls.current(uri)
        found = analysis.symbols.at(*positions.locate(params.position))
        if found is None:
            return []
        spans = analysis.symbols.references(found.symbol, params.context.include_declaration)
        return [types.Location(uri=uri, range=positions.range(span)) for span in spans]

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def symbols(ls: SpecLanguageServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
        analysis, positions, _ = ls.current(params.text_document.uri)
        return document_symbols(analysis, positions)

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: SpecLanguageServer, params: types.DocumentFormattingParams) -> list[types.TextEdit]:
        analysis, positions, _ = ls.current(params.text_document.uri)
        try:
            formatted = format_source(analysis.source, analysis.path)
        except SpecError:
            return []  # a file that does not parse has no canonical layout; its diagnostics say why
        if formatted == analysis.source:
            return []
        return [types.TextEdit(range=positions.offset_range(0, len(analysis.source)), new_text=formatted)]

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
    def actions(ls: SpecLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        analysis, positions, diagnostics = ls.current(uri)
        return code_actions(analysis, positions, diagnostics, params.range, uri, ls.limits)

    return server


def serve(limits: Limits) -> None:
    create_server(limits).start_io()
