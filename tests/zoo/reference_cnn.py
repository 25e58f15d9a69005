"""Plain PyTorch references for the CNN specs in specs/, written after torchvision's
models (torchvision is not installable here) and the papers, so that each spec's forward
can be compared with an independent implementation given the same weights.

Each module registers its parameters in the order its spec writes the layers, so weights
map across by order (tests/zoo/test_cnn_zoo.py checks every shape on the way). Where
torchvision registers a module earlier than it runs (RegNet's projection shortcut), the
reference registers it in running order; the computation is torchvision's.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's _make_divisible: round to a multiple of `divisor`, never below 90%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_norm_act(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, activation=nn.ReLU,
                  eps: float = 1e-5) -> nn.Sequential:
    """torchvision's Conv2dNormActivation: a bias-free conv with padding (k - 1) // 2, batchnorm,
    an activation (None: none)."""
    layers = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout, eps=eps)]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation: x * gate(fc2(act(fc1(avgpool(x)))))."""

    def __init__(self, channels: int, squeeze: int, activation=nn.ReLU, gate=nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation, self.scale_activation = activation(), gate()

    def forward(self, x: Tensor) -> Tensor:
        return self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x))))) * x


class Classifier(nn.Module):
    """Global average pooling, then the given head on the pooled vector."""

    def __init__(self, features: nn.Module, head: nn.Module):
        super().__init__()
        self.features, self.avgpool, self.head = features, nn.AdaptiveAvgPool2d(1), head

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.avgpool(self.features(x)).flatten(1))


# --- EfficientNet-B0 (torchvision efficientnet_b0) -------------------------------------------

class MBConv(nn.Module):
    def __init__(self, expand_ratio: int, kernel: int, stride: int, cin: int, cout: int):
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        expanded = make_divisible(cin * expand_ratio)
        layers = [conv_norm_act(cin, expanded, 1, activation=nn.SiLU)] if expanded != cin else []
        layers += [conv_norm_act(expanded, expanded, kernel, stride, groups=expanded, activation=nn.SiLU),
                   SqueezeExcitation(expanded, max(1, cin // 4), nn.SiLU),
                   conv_norm_act(expanded, cout, 1, activation=None)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        y = self.block(x)  # stochastic depth is the identity at inference
        return y + x if self.use_res_connect else y


def efficientnet_b0() -> nn.Module:
    # expand ratio, kernel, stride, in, out, layers (torchvision's table for width and depth 1.0)
    setting = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
               (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]
    layers = [conv_norm_act(3, 32, 3, 2, activation=nn.SiLU)]
    for ratio, kernel, stride, cin, cout, count in setting:
        layers.append(nn.Sequential(*(MBConv(ratio, kernel, stride if i == 0 else 1, cin if i == 0 else cout, cout)
                                      for i in range(count))))
    layers.append(conv_norm_act(320, 1280, 1, activation=nn.SiLU))
    return Classifier(nn.Sequential(*layers), nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000)))


# --- MobileNetV3 (torchvision mobilenet_v3_large / _small) -------------------------------------

class InvertedResidual(nn.Module):
    def __init__(self, cin: int, kernel: int, expanded: int, cout: int, se: bool, hardswish: bool, stride: int):
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        activation = nn.Hardswish if hardswish else nn.ReLU
        norm = {"eps": 1e-3}  # torchvision: BatchNorm2d(eps=0.001, momentum=0.01)
        layers = [conv_norm_act(cin, expanded, 1, activation=activation, **norm)] if expanded != cin else []
        layers.append(conv_norm_act(expanded, expanded, kernel, stride, groups=expanded, activation=activation, **norm))
        if se:
            layers.append(SqueezeExcitation(expanded, make_divisible(expanded // 4), nn.ReLU, nn.Hardsigmoid))
        layers.append(conv_norm_act(expanded, cout, 1, activation=None, **norm))
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        y = self.block(x)
        return y + x if self.use_res_connect else y


MOBILENET_V3 = {
    # in, kernel, expanded, out, squeeze-excitation, hardswish, stride (torchvision's tables)
    "large": ([(16, 3, 16, 16, False, False, 1), (16, 3, 64, 24, False, False, 2), (24, 3, 72, 24, False, False, 1),
               (24, 5, 72, 40, True, False, 2), (40, 5, 120, 40, True, False, 1), (40, 5, 120, 40, True, False, 1),
               (40, 3, 240, 80, False, True, 2), (80, 3, 200, 80, False, True, 1), (80, 3, 184, 80, False, True, 1),
               (80, 3, 184, 80, False, True, 1), (80, 3, 480, 112, True, True, 1), (112, 3, 672, 112, True, True, 1),
               (112, 5, 672, 160, True, True, 2), (160, 5, 960, 160, True, True, 1),
               (160, 5, 960, 160, True, True, 1)], 1280),
    "small": ([(16, 3, 16, 16, True, False, 2), (16, 3, 72, 24, False, False, 2), (24, 3, 88, 24, False, False, 1),
               (24, 5, 96, 40, True, True, 2), (40, 5, 240, 40, True, True, 1), (40, 5, 240, 40, True, True, 1),
               (40, 5, 120, 48, True, True, 1), (48, 5, 144, 48, True, True, 1), (48, 5, 288, 96, True, True, 2),
               (96, 5, 576, 96, True, True, 1), (96, 5, 576, 96, True, True, 1)], 1024),
}


def mobilenet_v3(size: str) -> nn.Module:
    setting, last_channel = MOBILENET_V3[size]
    layers = [conv_norm_act(3, 16, 3, 2, activation=nn.Hardswish, eps=1e-3)]
    layers += [InvertedResidual(*row) for row in setting]
    last_conv = 6 * setting[-1][3]
    layers.append(conv_norm_act(setting[-1][3], last_conv, 1, activation=nn.Hardswish, eps=1e-3))
    head = nn.Sequential(nn.Linear(last_conv, last_channel), nn.Hardswish(), nn.Dropout(0.2),
                         nn.Linear(last_channel, 1000))
    return Classifier(nn.Sequential(*layers), head)


# --- ShuffleNet V2 1.0x (torchvision shufflenet_v2_x1_0) --------------------------------------

def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    n, c, h, w = x.size()
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, -1, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        half = cout // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                nn.Conv2d(cin, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU())
        self.branch2 = nn.Sequential(
            nn.Conv2d(cin if stride > 1 else half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(),
            nn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False), nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


def shufflenet_v2_x1_0() -> nn.Module:
    layers = [nn.Conv2d(3, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 24
    for repeats, cout in zip((4, 8, 4), (116, 232, 464)):
        layers += [ShuffleUnit(cin, cout, 2)] + [ShuffleUnit(cout, cout, 1) for _ in range(repeats - 1)]
        cin = cout
    layers += [nn.Conv2d(464, 1024, 1, bias=False), nn.BatchNorm2d(1024), nn.ReLU()]
    return Classifier(nn.Sequential(*layers), nn.Linear(1024, 1000))


# --- RegNetY-400MF (torchvision regnet_y_400mf) -----------------------------------------------

class ResBottleneckBlock(nn.Module):
    def __init__(self, width_in: int, width_out: int, stride: int, group_width: int = 8, se_ratio: float = 0.25):
        super().__init__()
        groups = width_out // group_width
        self.f = nn.Sequential(
            conv_norm_act(width_in, width_out, 1),
            conv_norm_act(width_out, width_out, 3, stride, groups=groups),
            SqueezeExcitation(width_out, int(round(se_ratio * width_in))),
            conv_norm_act(width_out, width_out, 1, activation=None))
        # torchvision registers `proj` before `f`; here it follows, in the order the spec writes it
        self.proj = conv_norm_act(width_in, width_out, 1, stride, activation=None) \
            if width_in != width_out or stride != 1 else None
        self.activation = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        shortcut = self.proj(x) if self.proj is not None else x
        return self.activation(shortcut + self.f(x))


def regnet_y_400mf() -> nn.Module:
    # stage widths and depths from torchvision's BlockParams.from_init_params(depth=16, w_0=48,
    # w_a=27.89, w_m=2.09, group_width=8, se_ratio=0.25)
    layers, width = [conv_norm_act(3, 32, 3, 2)], 32
    for width_out, depth in zip((48, 104, 208, 440), (1, 3, 6, 6)):
        layers += [ResBottleneckBlock(width if i == 0 else width_out, width_out, 2 if i == 0 else 1)
                   for i in range(depth)]
        width = width_out
    return Classifier(nn.Sequential(*layers), nn.Linear(440, 1000))


# --- DCGAN generator (the PyTorch DCGAN tutorial's Generator) ----------------------------------

def dcgan_generator(nz: int = 100, ngf: int = 64, nc: int = 3) -> nn.Module:
    """Takes (N, nz, 1, 1) noise, gives (N, nc, 64, 64) images in [-1, 1]."""
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())


# --- U-Net (Ronneberger et al. 2015, Fig. 1) ------------------------------------------------------

def double_conv(cin: int, cout: int) -> nn.Sequential:
    """Two unpadded 3x3 convolutions with relu (each shrinks the size by 2)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3), nn.ReLU(), nn.Conv2d(cout, cout, 3), nn.ReLU())


def center_crop(x: Tensor, height: int, width: int) -> Tensor:
    top, left = (x.shape[2] - height) // 2, (x.shape[3] - width) // 2
    return x[:, :, top:top + height, left:left + width]


class UpLevel(nn.Module):
    """One level of the expanding path: a 2x2 up-convolution halving the channels, the
    concatenation with the level's cropped features, a double conv."""

    def __init__(self, width: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.decode = double_conv(2 * width, width)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.up(x)
        return self.decode(torch.cat((center_crop(skip, x.shape[2], x.shape[3]), x), dim=1))


class UNet(nn.Module):
    """The paper's network: a contracting path of double convs and 2x2 max pooling (64 to 1024
    channels), an expanding path of up-convolutions, each level concatenated with the cropped
    features of the same level, and a 1x1 conv to the classes."""

    def __init__(self, in_channels: int = 1, classes: int = 2):
        super().__init__()
        widths = (64, 128, 256, 512)
        self.down = nn.ModuleList(double_conv(cin, width) for cin, width in zip((in_channels, *widths), widths))
        self.bottom = double_conv(512, 1024)
        self.levels = nn.ModuleList(UpLevel(width) for width in reversed(widths))
        self.pool = nn.MaxPool2d(2)
        self.classify = nn.Conv2d(64, classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for level, skip in zip(self.levels, reversed(skips)):
            x = level(x, skip)
        return self.classify(x)
