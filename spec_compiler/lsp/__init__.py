"""The specc language server (`specc lsp`): diagnostics, hover, inlay hints, completion,
definitions and references, document symbols, formatting and quick fixes for `.spec` files.

Needs the `lsp` extra (pygls, lsprotocol); nothing else in specc imports this package.
"""
