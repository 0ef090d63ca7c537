"""The LSTM as it is exported: the network with its calibration and the return head's scale inside the graph."""

import torch
from torch import nn


class CalibratedLSTM(nn.Module):
    def __init__(self, net: nn.Module, temperature: float, return_std: float):
        super().__init__()
        self.net, self.temperature, self.return_std = net, float(temperature), float(return_std)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, ret = self.net(x)
        return torch.softmax(logits / self.temperature, dim=-1), ret * self.return_std
