"""The port: the same classifier in plain PyTorch, loading the fastai model's weights.

No fastai and no numtrace in it; trace it with

    trace run --backend torch -o port.safetensors \
        --probe-function port_frontend:pad_spectrogram=data.x.PadSpectrogram ... \
        torch_port.py --state-dict weights.pt
"""

import argparse

import torch
from clips import CLIPS, N_MELS
from port_frontend import mel_spectrogram, pad_spectrogram, power_to_db, synthesize_clip
from torch import nn


class AdaptiveConcatPool2d(nn.Module):
    """fastai's layer, rewritten: max and average pooling, concatenated."""

    def __init__(self):
        super().__init__()
        self.ap = nn.AdaptiveAvgPool2d(1)
        self.mp = nn.AdaptiveMaxPool2d(1)

    def forward(self, x):
        return torch.cat([self.mp(x), self.ap(x)], 1)


def build_model() -> nn.Module:
    return nn.Sequential(
        nn.Unflatten(1, (1, N_MELS)),
        nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2)),
        nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True)),
        AdaptiveConcatPool2d(),
        nn.Flatten(),
        nn.BatchNorm1d(32),
        nn.Dropout(0.25),
        nn.Linear(32, 16),
        nn.ReLU(inplace=True),
        nn.BatchNorm1d(16),
        nn.Dropout(0.5),
        nn.Linear(16, 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dict", default="weights.pt", help="the fastai model's weights")
    args = parser.parse_args()

    features = [pad_spectrogram(power_to_db(mel_spectrogram(synthesize_clip(i)))) for i in range(len(CLIPS))]
    model = build_model()
    model.load_state_dict(torch.load(args.state_dict))
    model.eval()
    with torch.no_grad():
        probs = model(torch.stack(features)).softmax(-1)
    for (seconds, pitch, _), p in zip(CLIPS, probs):
        print(f"port:   {seconds:.1f} s at {pitch:.0f} Hz -> p(call) = {p[0]:.3f}")


if __name__ == "__main__":
    main()
