"""From an ONNX node back to the spec line that made it, so that export errors point into the file."""

from __future__ import annotations

from ..inference import LayerInfo


def layer_index(layers: tuple[LayerInfo, ...], out: dict[str, LayerInfo] | None = None) -> dict[str, LayerInfo]:
    """Every layer, nested ones too, by its module path (`conv2d_1`, `basic_1.conv2d_1`)."""
    out = {} if out is None else out
    for layer in layers:
        out[layer.path] = layer
        for body in layer.children:
            layer_index(body, out)
    return out


def layer_of_node(node_name: str, layers: dict[str, LayerInfo]) -> LayerInfo | None:
    """The innermost layer a node belongs to, read from its name's scopes.

    The TorchScript exporter names nodes after the module path: `/model/lstm_1/LSTM`,
    `/model/basic_1/conv2d_1/Conv`; the longest run of scopes that is a layer path wins."""
    scopes = [part for part in node_name.strip("/").split("/") if part]
    best: LayerInfo | None = None
    for start in range(len(scopes)):
        for end in range(start + 1, len(scopes) + 1):
            layer = layers.get(".".join(scopes[start:end]))
            if layer is not None and (best is None or layer.path.count(".") > best.path.count(".")):
                best = layer
    return best
