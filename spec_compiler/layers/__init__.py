"""The layer catalogue. A built-in kind is registered when its module is imported, which
happens the first time one of its words is looked up (or every word is listed): a spec
builds the schemas of the kinds it uses only. CATALOGUE says which module registers which
words; tests/compiler/test_layer_catalogue.py checks it against what each module registers.
A kind added to a module and not to CATALOGUE still works (an unknown word imports every
module before it is called unknown), only slower."""

import importlib

from .base import REGISTRY, BodyLayout, Catalogue, Count, LayerKind, LayerParams, Slot, WeightRoles, register

WORDS = {  # module -> each kind's name and aliases, in registration order
    "activations": "relu relu6 selu gelu silu swish tanh sigmoid softplus hard_sigmoid hardsigmoid hardswish hard_swish "
                   "mish linear identity leaky_relu elu softmax log_softmax",
    "attention": "attention luong_attention dot_attention bahdanau_attention additive_attention multihead_attention mha "
                 "self_attention multi_head_attention attention_pool attention_pooling",
    "conv": "conv2d conv conv1d conv_transpose conv_transpose2d deconv conv_transpose1d depthwise depthwise_conv2d dwconv "
            "separable separable_conv2d sepconv maxpool1d avgpool1d maxpool2d maxpool avgpool2d avgpool global_avgpool "
            "global_avgpool2d global_avgpool1d global_maxpool global_maxpool2d global_maxpool1d",
    "core": "dense linear_layer fc flatten reshape dropout",
    "functions": "l2_normalize l2_norm scale clip clamp permute transpose mean reduce_mean sum reduce_sum max reduce_max "
                 "abs square sqrt exp log expand_dims unsqueeze squeeze slice channel_shuffle",
    "norm": "batchnorm batch_norm bn layernorm layer_norm groupnorm group_norm instancenorm instance_norm lrn "
            "local_response_norm",
    "recurrent": "embedding rnn simple_rnn lstm gru bidirectional timedistributed time_distributed",
    "residual_branch": "layer_scale layerscale drop_path stochastic_depth",
    "spatial": "upsample upsampling pad crop",
    "structure": "group sequential residual concat add multiply maximum minimum average",
    "transformer": "positional_embedding position_embedding pos_embedding class_token cls_token class_pool cls_pool",
}
CATALOGUE = Catalogue(
    words={module: tuple(words.split()) for module, words in WORDS.items()},
    activations=tuple(WORDS["activations"].split()),  # every word of activations.py
    markers={"shortcut": ("residual",), "branch": ("concat", "add", "multiply", "maximum", "minimum", "average")},
    load=lambda module: importlib.import_module(f"{__name__}.{module}"),
)
REGISTRY.set_catalogue(CATALOGUE)

__all__ = ["CATALOGUE", "REGISTRY", "BodyLayout", "Count", "LayerKind", "LayerParams", "Slot", "WeightRoles",
           "register"]
