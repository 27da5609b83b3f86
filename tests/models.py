"""Small models of the architectures `convcalc inspect` must get right (imported only where torch is)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def vgg16_features() -> nn.Sequential:
    """VGG-16's convolutional trunk (published field at pool5: 212, jump 32), with few channels."""
    layers: list[nn.Module] = []
    channels = 3
    for width, repeats in ((8, 2), (8, 2), (8, 3), (8, 3), (8, 3)):
        for _ in range(repeats):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
            channels = width
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:  # projection shortcut
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class TinyResNet(nn.Module):
    """A ResNet with strided blocks and projection shortcuts, then global pooling and a classifier."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 7, 2, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        self.layer1 = nn.Sequential(BasicBlock(8, 8, 1), BasicBlock(8, 8, 1))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, 2), BasicBlock(16, 16, 1))
        self.layer3 = nn.Sequential(BasicBlock(16, 16, 2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


class InceptionBlock(nn.Module):
    """Branches of different kernels, concatenated along the channels."""

    def __init__(self, c_in: int = 4):
        super().__init__()
        self.b1 = nn.Conv2d(c_in, 4, 1)
        self.b3 = nn.Sequential(nn.Conv2d(c_in, 4, 1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
        self.b5 = nn.Sequential(nn.Conv2d(c_in, 4, 1), nn.ReLU(), nn.Conv2d(4, 4, 5, padding=2))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(c_in, 4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], dim=1)


class TinyInception(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, 2, 1)
        self.block = InceptionBlock(4)
        self.head = nn.Conv2d(16, 4, 3, padding=2, dilation=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.block(F.relu(self.stem(x)))))


class TinyUNet(nn.Module):
    """Encoder with pooling, decoder with transposed convolutions and skip concatenations."""

    def __init__(self):
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.enc2 = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.bottom = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.up2 = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.dec2 = nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.ReLU())
        self.up1 = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.dec1 = nn.Sequential(nn.Conv2d(8, 4, 3, padding=1), nn.ReLU())
        self.out = nn.Conv2d(4, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        b = self.bottom(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.out(d1)


class SEBlock(nn.Module):
    """Squeeze-and-excitation: a global branch gating every position."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.squeeze = nn.AdaptiveAvgPool2d(1)
        self.excite = nn.Sequential(nn.Linear(channels, 2), nn.ReLU(), nn.Linear(2, channels), nn.Sigmoid())
        self.after = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv(x))
        gate = self.excite(self.squeeze(y).flatten(1))[:, :, None, None]
        return self.after(y * gate)


class ASPPHead(nn.Module):
    """A dilated backbone at output stride 4 and a DeepLabv3-style ASPP head, upsampled back."""

    def __init__(self, rates: tuple[int, ...] = (2, 4, 6)):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU(),
                                      nn.Conv2d(8, 8, 3, 1, 2, dilation=2), nn.ReLU())
        self.branches = nn.ModuleList([nn.Conv2d(8, 4, 1)] + [nn.Conv2d(8, 4, 3, padding=r, dilation=r)
                                                               for r in rates])
        self.project = nn.Conv2d(4 * (len(rates) + 1), 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        features = self.backbone(x)
        y = self.project(torch.cat([branch(features) for branch in self.branches], dim=1))
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False)


class DataDependent(nn.Module):
    """Control flow on tensor values: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        if y.sum() > 0:  # the line fx cannot trace
            y = y * 2
        return self.b(y)


def deeplab_like() -> nn.Module:
    return ASPPHead()


class CostZoo(nn.Module):
    """Every op the MAC conventions treat differently: functional convolutions and products, the
    normalisations (affine or not, running statistics or not), upsampling modes, frozen parameters."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, groups=1)
        self.grouped = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4, bias=False)
        self.bn_plain = nn.BatchNorm2d(8, affine=False)
        self.bn_batch_stats = nn.BatchNorm2d(8, track_running_stats=False)
        self.gn = nn.GroupNorm(2, 8)
        self.inorm = nn.InstanceNorm2d(8, affine=True)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.tconv = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        self.weight = nn.Parameter(torch.randn(6, 4, 3, 3))
        self.ln = nn.LayerNorm(6)
        self.proj = nn.Parameter(torch.randn(6, 5))
        self.head = nn.Linear(5, 3)
        self.conv.weight.requires_grad_(False)  # frozen: non-trainable

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.inorm(self.gn(self.bn_batch_stats(self.bn_plain(self.grouped(self.conv(x))))))
        y = F.interpolate(self.up(y), scale_factor=0.5, mode="bilinear", align_corners=False)
        y = F.adaptive_avg_pool2d(F.conv2d(self.tconv(y), self.weight, padding=1), 4)  # N x 6 x 4 x 4
        tokens = self.ln(y.flatten(2).transpose(1, 2))  # N x 16 x 6
        scores = torch.bmm(tokens, tokens.transpose(1, 2))  # N x 16 x 16
        mixed = torch.matmul(scores, tokens) @ self.proj  # N x 16 x 5
        return F.linear(mixed, self.head.weight, self.head.bias).mean(1)


class LeNet(nn.Module):
    """LeNet-5: its classifier expects exactly 16 x 5 x 5 features (a 32 x 32 input, or 32..35)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


class StridedEncoderDecoder(nn.Module):
    """Strided encoder, decoder upsampling by interpolation and adding the encoder's features."""

    def __init__(self):
        super().__init__()
        self.down1 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.down2 = nn.Conv2d(4, 8, 3, stride=2, padding=1)
        self.down3 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.lateral = nn.Conv2d(4, 8, 1)
        self.head = nn.Conv2d(8, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f1 = self.down1(x)
        f2 = self.down2(f1)
        f3 = self.down3(f2)
        y = F.interpolate(f3, scale_factor=2, mode="nearest") + f2
        y = F.interpolate(y, scale_factor=2, mode="nearest") + self.lateral(f1)
        return self.head(y)


class UNet4(nn.Module):
    """A 4-level U-Net (3 poolings, transposed convolutions, cat skips), with few channels."""

    def __init__(self, width: int = 4):
        super().__init__()
        w = [width * 2**i for i in range(4)]
        self.enc = nn.ModuleList([nn.Conv2d(3 if i == 0 else w[i - 1], w[i], 3, padding=1) for i in range(4)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(w[i], w[i - 1], 2, stride=2) for i in range(3, 0, -1)])
        self.dec = nn.ModuleList([nn.Conv2d(2 * w[i - 1], w[i - 1], 3, padding=1) for i in range(3, 0, -1)])
        self.out = nn.Conv2d(w[0], 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, conv in enumerate(self.enc):
            x = F.relu(conv(x if i == 0 else F.max_pool2d(x, 2)))
            skips.append(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips[:-1])):
            x = F.relu(dec(torch.cat([up(x), skip], dim=1)))
        return self.out(x)


class CountingQuirks(nn.Module):
    """What the counters treat unlike one another: 'same' padding with an even kernel (fvcore has no
    handler for it), a branch the output never uses (fvcore's jit trace drops it), a ceil-mode pool,
    interpolation to another tensor's size, adaptive pooling with a None size, bilinear nn.Upsample."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 4, padding="same")
        self.pool = nn.MaxPool2d(3, 2, 1, ceil_mode=True)
        self.unused = nn.AdaptiveAvgPool2d((None, 3))
        self.up = nn.Upsample(scale_factor=2, mode="bilinear")
        self.fc = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(self.conv(x))
        self.unused(y)
        z = F.interpolate(y, size=x.shape[-2:], mode="bilinear") + x
        return self.fc(self.up(z.reshape(x.size(0), -1, x.shape[-1]).unsqueeze(1)))


class UnitStack(nn.Module):
    """A linear stack whose every weight is 1 (no bias, no nonlinearity, one channel): its input gradient
    from a unit is the number of paths, the exact profile `convcalc erf --layers 3x3,3x3s2,3x3d2` gives."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 1, 3, bias=False), nn.Conv2d(1, 1, 3, stride=2, bias=False),
                                  nn.Conv2d(1, 1, 3, dilation=2, bias=False))
        with torch.no_grad():
            for conv in self.body:
                conv.weight.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class TinyAttention(nn.Module):
    """A ViT-style block: a patch embedding, then attention over every patch (scaled_dot_product_attention),
    reshaped back into a map; every output position sees the whole input (a global field)."""

    def __init__(self, width: int = 8, patch: int = 4):
        super().__init__()
        self.embed = nn.Conv2d(3, width, patch, stride=patch)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Conv2d(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.embed(x)
        n, c, h, w = y.shape
        tokens = y.flatten(2).transpose(1, 2)
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        mixed = F.scaled_dot_product_attention(q, k, v)
        return self.proj(mixed.transpose(1, 2).reshape(n, c, h, w) + y)


class ASPPWithPooling(nn.Module):
    """DeepLabv3's ASPP with its image-pooling branch: a global average, broadcast back over the map."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 1, 2, dilation=2))
        self.branches = nn.ModuleList([nn.Conv2d(8, 4, 1), nn.Conv2d(8, 4, 3, padding=3, dilation=3)])
        self.pooling = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 4, 1))
        self.project = nn.Conv2d(12, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.backbone(x)
        pooled = F.interpolate(self.pooling(y), size=y.shape[-2:], mode="nearest")
        return self.project(torch.cat([b(y) for b in self.branches] + [pooled], dim=1))


class DepthwiseNet(nn.Module):
    """MobileNet-style: depthwise 3x3 then pointwise 1x1 convolutions, BatchNorm, ReLU6, a classifier."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU6())
        blocks = []
        for _ in range(3):
            blocks += [nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU6(), nn.Conv2d(width, 2 * width, 1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU6()]
            width *= 2
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


class FrozenBackbone(nn.Module):
    """A frozen backbone (no gradients, no optimizer state) under a trainable head; in-place ReLUs."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(32, 8, 1))
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class SharedConv(nn.Module):
    """One convolution applied twice (shared weights), with a residual add."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.shared = nn.Conv2d(16, 16, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.stem(x))
        return self.shared(F.relu(self.shared(y))) + y


class DictHeads(nn.Module):
    """A backbone with two heads returned as a dict (detection-style outputs)."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU())
        self.boxes = nn.Conv2d(32, 4, 1)
        self.scores = nn.Conv2d(32, 3, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone(x)
        return {"boxes": self.boxes(features), "scores": self.scores(features)}


class ShapeBranch(nn.Module):
    """A block that branches in Python on its input's size (as timm's mvitv2, nest, tiny_vit do): fx cannot
    trace it, so it becomes an opaque leaf while the model around it stays a graph."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2:  # the line fx cannot trace
            x = F.pad(x, (0, 1, 0, 1))
        return self.conv(x)


class PartlyTraceable(nn.Module):
    """A stem, a block fx cannot trace, a strided convolution and a classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = ShapeBranch(8)
        self.down = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.down(F.relu(self.block(F.relu(self.stem(x)))))
        return self.head(y.mean((2, 3)))


class OpaqueAttention(nn.Module):
    """timm's cpubone ConvAttention in small, opaque (it branches on its input's size): a strided depthwise
    conv with batch norm, fused attention over the reduced grid, upsampled back. Its MACs come from the ops
    it dispatches; fvcore sees BatchNorm as ``native_batch_norm``, the fused attention as 0 and an einsum
    through numpy's printed count."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.reduce = nn.Sequential(nn.Conv2d(channels, channels, 3, stride=2, padding=1, groups=channels),
                                    nn.BatchNorm2d(channels))
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2:
            x = F.pad(x, (0, 1, 0, 1))
        y = self.qkv(self.reduce(x))
        n, c, h, w = y.shape
        q, k, v = y.reshape(n, 3, c // 3, h * w).transpose(-1, -2).unbind(1)
        v = v * torch.einsum("bnc,bmc->bnm", q, k).softmax(-1).mean()  # fvcore: numpy's 4 figures, not exact
        y = F.scaled_dot_product_attention(q, k, v).transpose(-1, -2).reshape(n, c // 3, h, w)
        return x + self.up(y)


class WithOpaqueAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = OpaqueAttention(8)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.block(self.stem(x)))


class PatchesAndGrid(nn.Module):
    """timm's NaFlexEmbeds in small: patches and their grid size, a tuple, from a forward fx cannot trace."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(3, 8, 4, stride=4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        if x.shape[-1] % 4:
            x = F.pad(x, (0, 4 - x.shape[-1] % 4))
        y = self.proj(x)
        return y.flatten(2).transpose(1, 2), (y.shape[-2], y.shape[-1])


class TokensFromATuple(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = PatchesAndGrid()
        self.head = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens, grid = self.embed(x)
        return self.head(tokens.mean(1))


class Conv2dSame(nn.Conv2d):
    """timm's Conv2dSame: TensorFlow's SAME padding worked out from the input's size in Python (math.ceil on a
    shape: fx cannot trace it), the odd pixel on the right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import math

        pads = []
        for size, k, s, d in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1], self.dilation[::-1]):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class TFStem(nn.Module):
    """A strided Conv2dSame stem (opaque: its window is measured), then a 3x3 convolution."""

    def __init__(self):
        super().__init__()
        self.stem = Conv2dSame(3, 8, 3, stride=2)
        self.conv = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.relu(self.stem(x)))


def _patch_merging_pad(x: torch.Tensor) -> torch.Tensor:
    """torchvision Swin's patch merging, as it has it: pad H and W to even, the four 2x2 phases on channels."""
    H, W, _ = x.shape[-3:]
    x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
    return torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]], -1)


torch.fx.wrap("_patch_merging_pad")  # as torchvision does: fx keeps it whole


class PatchMerging(nn.Module):
    """A 2x2 patch embedding, channels last, torchvision's patch merging, a linear reduction, back to
    channels first and a 3x3 convolution: fields 2 -> 4 (jump 4) -> 4 + 2 x 4 = 12."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 2, stride=2)
        self.reduction = nn.Linear(32, 16)
        self.conv = nn.Conv2d(16, 16, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.reduction(_patch_merging_pad(self.embed(x).permute(0, 2, 3, 1)))
        return self.conv(y.permute(0, 3, 1, 2))


def resize_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resized only when it is not ``size`` already: a branch on a shape, as timm's crossvit ``scale_image``."""
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear")
    return x


class RegisteredFunction(nn.Module):
    """A model whose own forward calls a function fx cannot trace: without a library's registry naming the
    function, the whole model falls back to forward hooks."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(resize_to(x, 16)) + 1


class WindowAttention(nn.Module):
    """Swin's block in small: a 2x2 patch embedding, channels-last tokens, a cyclic shift (torch.roll), the
    windows cut out by view and permute, attention inside each window (as matmuls, or fused), the windows
    put back and the shift undone. A token sees its (shifted) window of 4x4 patches: 8x8 pixels."""

    def __init__(self, width: int = 8, window: int = 4, shift: int = 2, fused: bool = False):
        super().__init__()
        self.window, self.shift, self.fused = window, shift, fused
        self.embed = nn.Conv2d(3, width, 2, stride=2)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.embed(x).permute(0, 2, 3, 1)
        n, h, w, c = y.shape
        ws = self.window
        shifted = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        tokens = shifted.view(n, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        if self.fused:
            mixed = F.scaled_dot_product_attention(q, k, v)
        else:
            mixed = (q @ k.transpose(-2, -1) * c ** -0.5).softmax(dim=-1) @ v
        back = self.proj(mixed).view(n, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(n, h, w, c)
        return (y + torch.roll(back, shifts=(self.shift, self.shift), dims=(1, 2))).permute(0, 3, 1, 2)


class NHWCBlock(nn.Module):
    """ConvNeXt's block: a depthwise 7x7, then an MLP over channels on channels-last tensors (permute,
    Linear, GELU, Linear, permute back), added to its input."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 2, stride=2)
        self.dw = nn.Conv2d(width, width, 7, padding=3, groups=width)
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        z = self.dw(y).permute(0, 2, 3, 1)
        return y + self.fc2(F.gelu(self.fc1(z))).permute(0, 3, 1, 2)


class ChannelShuffleNet(nn.Module):
    """ShuffleNet's channel shuffle between two grouped convolutions: view into groups, transpose, view back."""

    def __init__(self, width: int = 8, groups: int = 2):
        super().__init__()
        self.groups = groups
        self.conv1 = nn.Conv2d(3, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        n, c, h, w = y.shape
        y = y.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
        return self.conv2(y)


class Linear(nn.Linear):
    """timm's Linear: a subclass of nn.Linear outside torch.nn, which fx traces through to F.linear."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class StdConv2d(nn.Conv2d):
    """A weight-standardised convolution (timm's ScaledStdConv2d, NFNets): the weight normalised per output
    channel by F.batch_norm, then F.conv2d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None, training=True,
                              momentum=0.0, eps=1e-6).reshape_as(self.weight)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class TimmLayers(nn.Module):
    """Modules that are subclasses of torch.nn ones, as timm writes them: counted as torchinfo counts the
    class they are."""

    def __init__(self):
        super().__init__()
        self.conv = StdConv2d(3, 8, 3, stride=2, padding=1)
        self.head = Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.conv(x)).mean((2, 3)))


class RowLSTM(nn.Module):
    """Sequencer2d's horizontal mixing: every row of the map a sequence for a bidirectional LSTM, so each
    position sees its whole row (global along the width) and its own rows along the height."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.lstm = nn.LSTM(width, width // 2, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        n, c, h, w = y.shape
        rows, _ = self.lstm(y.permute(0, 2, 3, 1).reshape(n * h, w, c))
        return rows.reshape(n, h, w, c).permute(0, 3, 1, 2)


class TinyMHA(nn.Module):
    """torchvision's ViT encoder block in small: nn.MultiheadAttention over the patches (batch first, no
    weights asked for), a residual, then the tokens back into a map."""

    def __init__(self, width: int = 8, patch: int = 4):
        super().__init__()
        self.embed = nn.Conv2d(3, width, patch, stride=patch)
        self.attention = nn.MultiheadAttention(width, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.embed(x)
        n, c, h, w = y.shape
        tokens = y.flatten(2).transpose(1, 2)
        mixed, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return (tokens + mixed).transpose(1, 2).reshape(n, c, h, w)


class OptionalMask(nn.Module):
    """A forward with an optional second argument (timm's hiera: ``forward(x, mask=None)``): inspected as
    ``model(x)`` calls it, the mask left out."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        y = self.conv(x)
        if mask is not None:
            y = y * mask.view(y.shape[0], 1, *y.shape[2:])
        return y


class ManyBranches(nn.Module):
    """NASNet's cells in miniature: many strided branches read the same input, which fx cannot trace (a
    Python branch on a value), so forward hooks compose every branch in call order and the jump doubles
    with each: the field must be given up, not followed into bitsets of gigabytes."""

    def __init__(self, branches: int = 40):
        super().__init__()
        # stride 2 with padding 9 keeps a 16x16 map 16x16, so each branch's input looks like the last output
        self.branches = nn.ModuleList(nn.Conv2d(3, 3, 3, stride=2, padding=9) for _ in range(branches))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if float(x.sum()) > 1e30:  # a branch on a value: fx cannot trace it
            return x
        return torch.stack([b(x) for b in self.branches]).sum(0)


class EinsumAttention(nn.Module):
    """MaxViT's attention in small, written with einsum over (batch, heads, tokens, dims): fvcore counts
    einsum from numpy's printed FLOP count, to four significant figures."""

    def __init__(self, width: int = 12, patch: int = 2, heads: int = 3):
        super().__init__()
        self.heads = heads
        self.embed = nn.Conv2d(3, width, patch, stride=patch)
        self.qkv = nn.Linear(width, 3 * width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.embed(x)
        n, c, h, w = y.shape
        tokens = y.flatten(2).transpose(1, 2)
        q, k, v = self.qkv(tokens).reshape(n, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        scores = torch.einsum("bhid, bhjd -> bhij", q, k).softmax(dim=-1)
        mixed = torch.einsum("bhij,bhjd->bhid", scores, v)
        return mixed.permute(0, 1, 3, 2).reshape(n, c, h, w)


class TableBias(nn.Module):
    """Swin v2's continuous position bias in small: an MLP run on a constant table (a buffer), not on the
    input, its output added to every sample: counted once per forward, not once per sample."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.register_buffer("table", torch.linspace(-1, 1, 16 * 16 * 2).reshape(16 * 16, 2))
        self.mlp = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.mlp(self.table).transpose(0, 1).reshape(1, 4, 16, 16)
        return self.conv(x) + bias
