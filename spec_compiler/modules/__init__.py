"""PyTorch modules that registry builders need beyond torch.nn, one file per family of
spec_compiler/layers/ (`layers/conv.py` builds from `modules/conv.py`).

Conventions every module here keeps:
- it takes a batch-first tensor (images (N, C, H, W), sequences (N, T, F), vectors (N, F));
- parameters keep PyTorch's names (`weight`, `bias`, nn.Linear submodules), so state_dict
  keys stay readable; the registry entry that builds a module names each parameter's
  role (kernel, bias, ...; layers/base.py `WeightRoles`);
- sizes are read from the tensor at run time, so a dynamic length stays dynamic in ONNX,
  and everything exports with standard ONNX operators;
- a file imports only torch and the standard library: `specc compile --emit torch`
  copies these classes into the standalone source it writes.

Nothing here is imported by `specc compile`: builders import these files inside the
builder function.
"""
